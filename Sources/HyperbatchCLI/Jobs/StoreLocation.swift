import Foundation
import HyperbatchJobs
import HyperbatchPostgres
import HyperbatchSQLite
import Logging
import PostgresNIO

/// Where a job command keeps its jobs, chosen by the `--store` value: a `postgres://user[:password]@host[:port]/db`
/// URL (or `postgresql://`, with libpq's `sslmode` / `sslrootcert` and `PGPASSWORD` / `PGSSLMODE` / `PGSSLROOTCERT`;
/// see ``PostgresStoreURL``) for the shared PostgreSQL store, anything else a SQLite file path.
enum StoreLocation {
    case sqlite(path: String)
    case postgres(PostgresStoreURL)

    /// Parses `--store`.
    init(_ value: String) throws {
        guard PostgresStoreURL.isPostgresURL(value) else {
            self = .sqlite(path: value)
            return
        }
        do {
            self = .postgres(try PostgresStoreURL(value))
        } catch {
            throw ValidationFailure("--store: \(error)")
        }
    }

    /// `value` with any password replaced by `***` (for messages and logs).
    static func redacted(_ value: String) -> String { PostgresStoreURL.redacted(value) }
}

extension PostgresStoreURL {
    /// A client for this server (no minimum of idle connections), after one test connection succeeded, so a bad
    /// certificate, host name or login fails at once with its reason rather than after the pool's retries.
    ///
    /// With `retry`, a failure that may pass (refused or closed connection, server starting or shutting down) is
    /// tried again with its backoff, as a long-running worker should when it starts during a database restart.
    func checkedClient(logger: Logger, retry: StoreRetryPolicy? = nil) async throws -> PostgresClient {
        do {
            if let retry {
                try await retry.run(clock: ContinuousClock(), logger: logger, "connecting to PostgreSQL") {
                    try await checkConnection(logger: logger)
                }
            } else {
                try await checkConnection(logger: logger)
            }
        } catch let error as PostgresStoreURLError {
            throw ValidationFailure("--store: \(error)")
        }
        var configuration = clientConfiguration
        configuration.options.minimumConnections = 0
        return PostgresClient(configuration: configuration, backgroundLogger: logger)
    }
}

extension JobCLI {
    /// Opens the store named by `--store` for a one-shot command. For PostgreSQL the client runs for the rest of the
    /// process in a background task (the command ends the process), and the schema is migrated first; with `leases`
    /// (a command that runs the pipeline, like `run`) a ``WorkerLease`` keeps its batch leases alive the same way.
    static func openStore(_ value: String, leases: Bool = false) async throws -> any JobStore {
        var logger = Logger(label: "hyperbatch.store")
        logger.logLevel = .error
        switch try StoreLocation(value) {
        case .sqlite(let path):
            return try SQLiteJobStore(path: path)
        case .postgres(let url):
            let client = try await url.checkedClient(logger: logger)
            // One-shot commands have no ServiceGroup; the process exits when the command returns.
            Task.detached { await client.run() }
            let store = PostgresJobStore(client: client, logger: logger)
            try await store.migrate()
            if leases {
                let lease = WorkerLease(
                    store: store, configuration: .init(leaseDuration: store.configuration.leaseDuration), clock: ContinuousClock(), logger: logger)
                Task.detached {
                    // When renewal fails past the lease, the gate closes and the runner's next claim throws.
                    do { try await lease.run() } catch { logger.error("worker lease lost", metadata: ["error": "\(error)"]) }
                }
            }
            return store
        }
    }
}
