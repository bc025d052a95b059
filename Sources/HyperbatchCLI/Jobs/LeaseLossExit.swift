import Foundation
import HyperbatchPostgres
import Logging
import ServiceLifecycle

/// Runs a worker's ``WorkerLease`` and makes sure the process really ends once the lease is lost.
///
/// Losing the lease closes the store's gate (no more claims or sends) and makes the `ServiceGroup` stop. If some
/// step of the runner still hangs (a query or a call that ignores cancellation), the process would live on holding
/// nothing while looking alive to a supervisor; after `grace` it exits with status 75 (`EX_TEMPFAIL`) instead.
struct LeaseLossExit: Service {
    let lease: WorkerLease<ContinuousClock>
    var grace: Duration = .seconds(10)
    let logger: Logger

    func run() async throws {
        do {
            try await lease.run()
        } catch let error as PostgresJobStoreError where error.code == .leaseLost {
            let seconds = Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18
            let logger = self.logger
            Thread {
                Thread.sleep(forTimeInterval: seconds)
                logger.error("worker still running after its lease was lost; exiting", metadata: ["grace.seconds": "\(seconds)"])
                exit(75)
            }.start()
            throw error
        }
    }
}
