import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import Testing

/// Cancelling a job whose batch was claimed but never sent (or sent without its id recorded).
@Suite struct PipelineCancelTests {
    typealias H = PipelineHarness

    @Test("cancel after claim/upload/create without a recorded id: those requests end canceled, never failed", .timeLimit(.minutes(1)),
          arguments: [PipelinePhase.claimed, .uploaded, .created])
    func cancelUnsentBatch(_ stopPhase: PipelinePhase) async throws {
        var configuration = H.emulatorConfiguration()
        configuration.requestsPerSecond = 2  // slow enough that a found batch is still running when cancelled (the job cancels every live batch)
        try await Emulator.withEmulator(configuration: configuration) { endpoint in
            let path = H.tempStorePath()
            let job = JobID("cancel-\(stopPhase.rawValue)")
            let provider = H.provider(endpoint, maxRequests: 50)
            let store = try SQLiteJobStore(path: path)
            try await H.makeJob(store: store, job: job, count: 60, maxAttempts: 3)
            let stopped = SharedCounter()
            await #expect(throws: PipelineStop.self) {
                try await H.runner(store: store, provider: provider, onPhase: { phase, _ in
                    if phase == stopPhase, stopped.increment() == 1 { throw PipelineStop(phase: phase) }
                }).runUntilDone(job: job)
            }
            let unsent = try await store.liveBatches(job: job).filter { $0.providerBatchID == nil }
            #expect(unsent.count == 1)
            #expect(unsent.first?.state == (stopPhase == .claimed ? .building : .uploading))

            // A new process cancels the job, then a runner finishes it.
            let runner = H.runner(store: try SQLiteJobStore(path: path), provider: provider)
            try await runner.cancel(job: job)
            let counts = try await runner.runUntilDone(job: job)
            #expect(counts.terminal == 60)
            #expect(counts[.failed] == 0, "a cancelled job's unsent batch must not fail its requests")
            #expect(counts[.errored] == 0)
            #expect(counts[.canceled] > 0)
            #expect(counts[.succeeded] + counts[.canceled] == 60)
            let requests = try await H.allRequests(store: store, job: job)
            let batches = try await store.batches(job: job)
            let claimed = try #require(batches.first { $0.id == unsent.first?.id })
            let inClaimed = requests.values.filter { $0.batchID == claimed.id }
            #expect(inClaimed.count == claimed.requestCount)
            if stopPhase == .created {
                // The create had happened: the lookup by tag found it, recorded it, and cancelled it at the provider.
                #expect(claimed.providerBatchID != nil)
                #expect(endpoint.stats().batches.contains { $0.status == "cancelled" })
            } else {
                #expect(claimed.state == .abandoned)
                #expect(inClaimed.allSatisfy { $0.state == .canceled && $0.lastError?.code == "job_canceled" })
            }
            #expect(endpoint.stats().duplicateSubmissions == 0)
            #expect(try await store.job(job)?.state == .canceled)
        }
    }

    @Test("the disposition rule: jobCanceled ends a request canceled whatever its attempts")
    func dispositionOfJobCanceled() {
        for attempts in 0...3 {
            let d = ResultDisposition.decide(.errored(.jobCanceled), attempts: attempts, maxAttempts: 3)
            #expect(d.state == .canceled)
            #expect(d.error == .jobCanceled)
        }
        #expect(ResultDisposition.decide(.errored(ProviderError(type: "canceled", message: "x")), attempts: 1, maxAttempts: 3).state == .failed)
    }
}
