import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import Synchronization
import Testing

/// Stops the pipeline right after each phase (as a crash would), starts a new runner on the same store, and checks
/// that nothing is lost and no provider batch is created twice.
@Suite struct PipelineResumeTests {
    typealias H = PipelineHarness

    @Test("resume after each phase: nothing lost, nothing created twice", .timeLimit(.minutes(1)),
          arguments: [PipelinePhase.claimed, .uploaded, .created, .submitted, .polled, .appliedChunk])
    func resumeAfterPhase(_ stopPhase: PipelinePhase) async throws {
        try await Emulator.withEmulator(configuration: H.emulatorConfiguration()) { endpoint in
            let path = H.tempStorePath()
            let job = JobID("resume-\(stopPhase.rawValue)")
            let provider = H.provider(endpoint, maxRequests: 50)
            do {
                let store = try SQLiteJobStore(path: path)
                try await H.makeJob(store: store, job: job, count: 120)
                let stopped = SharedCounter()
                let runner = H.runner(store: store, provider: provider, onPhase: { phase, _ in
                    if phase == stopPhase, stopped.increment() == 1 { throw PipelineStop(phase: phase) }
                })
                await #expect(throws: PipelineStop.self) { try await runner.runUntilDone(job: job) }
            }
            // A new process: new store connection, new runner, same file.
            let store = try SQLiteJobStore(path: path)
            try await H.makeJob(store: store, job: job, count: 120)  // the rerun re-ingests: idempotent
            let counts = try await H.runner(store: store, provider: provider).runUntilDone(job: job)
            #expect(counts.total == 120)
            #expect(counts[.succeeded] == 120)
            let requests = try await H.allRequests(store: store, job: job)
            #expect(requests.count == 120)
            #expect(requests.values.allSatisfy { $0.state == .succeeded && $0.attempts == 1 })
            let stats = endpoint.stats()
            #expect(stats.duplicateSubmissions == 0)
            #expect(stats.batches.count == 4)  // 2 models × 60 requests, 50 per batch
        }
    }
}
