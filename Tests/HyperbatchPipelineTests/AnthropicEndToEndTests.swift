import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import HyperbatchTestKit
import Synchronization
import Testing

/// The whole pipeline with the Anthropic client over real HTTP against the in-process emulator, with faults.
@Suite struct AnthropicEndToEndTests {
    typealias H = PipelineHarness

    @Test("Anthropic: error lines, 429s, an expired and a cancelled batch; every request ends once, results match",
          .timeLimit(.minutes(1)))
    func anthropicWithFaults() async throws {
        var configuration = H.emulatorConfiguration()
        configuration.requestsPerSecond = 5  // a 40-request batch expires after 4 s (half its work)
        var faults = EmulatorFaults()
        faults.requestErrorRate = 0.1
        faults.http429Rate = 0.1
        faults.expireAfterFraction = 0.5
        configuration.faults = faults
        var laterFaults = faults  // only the first wave expires; the error lines and 429s stay
        laterFaults.expireAfterFraction = nil
        let rest = laterFaults
        // Emulated time stands still until the first batch is created and cancelled (however late the callback comes
        // on a loaded machine): it jumps 1 s into the work, the cancel lands there, before the batch could expire.
        let clock = PausableClock(paused: true)
        try await Emulator.withEmulator(configuration: configuration, clock: clock) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("anthropic-e2e")
            let count = 240
            try await H.makeAnthropicJob(store: store, job: job, count: count, maxAttempts: 4)
            let provider = H.anthropicProvider(endpoint, maxRequests: 40)  // 2 models × 120 → 6 batches a wave
            let submitted = SharedCounter(), reconciled = SharedCounter()
            let cancelledID = Mutex<String?>(nil)
            let runner = H.runner(store: store, provider: provider, onPhase: { phase, batch in
                switch phase {
                case .submitted where submitted.increment() == 1:
                    // Cancel the first batch at the provider right after its create.
                    defer { clock.resume() }
                    clock.advance(by: .seconds(1))
                    let id = try #require(try await store.batch(batch)?.providerBatchID)
                    _ = try await provider.cancelBatch(id: id)
                    cancelledID.withLock { $0 = id }
                case .reconciled where reconciled.increment() == 1:
                    endpoint.setFaults(rest)
                default: break
                }
            }) { $0.maxConcurrentBatches = 3 }
            let counts = try await runner.runUntilDone(job: job)

            // Every request is in exactly one terminal state; error lines are permanent (failed), the rest succeeded.
            #expect(counts.total == count)
            #expect(counts.terminal == count)
            #expect(counts[.failed] > 0)
            #expect(counts[.succeeded] + counts[.failed] == count)
            let requests = try await H.allRequests(store: store, job: job)
            #expect(requests.count == count)
            for (customID, r) in requests {
                switch r.state {
                case .succeeded:
                    let text = String(decoding: r.response ?? [], as: UTF8.self)
                    #expect(text.contains("echo \(customID) "), "response of \(customID) does not echo it")
                    #expect(text.contains(#""type":"message""#) || text.contains(#""type": "message""#))
                case .failed:
                    #expect(r.lastError?.type == "invalid_request_error", "\(customID): \(String(describing: r.lastError))")
                default:
                    Issue.record("\(customID) ended \(r.state)")
                }
            }
            let events = try await store.outcomes(after: 0, job: job, limit: 10_000)
            #expect(events.count == count)
            #expect(Set(events.map(\.customID)).count == count)

            // The faults happened: 429s were sent, one batch was cancelled, lines expired and were resubmitted.
            let stats = endpoint.stats()
            #expect(stats.http429Sent > 0)
            #expect(stats.batches.allSatisfy { $0.provider == "anthropic" })
            var expired = 0, canceled = 0
            for b in stats.batches {
                let status = try await provider.retrieveBatch(id: b.id)
                expired += status.counts.expired
                canceled += status.counts.canceled
            }
            #expect(expired > 0, "an expired batch")
            #expect(canceled > 0, "a cancelled batch")
            let cancelled = try #require(cancelledID.withLock { $0 })
            let stored = try await store.batches(job: job)
            #expect(stored.contains { $0.providerBatchID == cancelled && $0.outcome == .cancelled })
            #expect(requests.values.contains { $0.attempts > 1 }, "expired/cancelled requests were resubmitted")
            // Each provider batch belongs to exactly one store batch.
            let ids = stored.compactMap(\.providerBatchID)
            #expect(Set(ids).count == ids.count)
            #expect(Set(ids) == Set(stats.batches.map(\.id)))
            #expect(try await store.job(job)?.state == .finished)
        }
    }

    @Test("Anthropic resume among equal-size batches: a lost create is found again, never confused with a recorded one",
          .timeLimit(.minutes(1)), arguments: [PipelinePhase.claimed, .created, .submitted, .polled])
    func anthropicResume(_ stopPhase: PipelinePhase) async throws {
        try await Emulator.withEmulator(configuration: H.emulatorConfiguration()) { endpoint in
            let path = H.tempStorePath()
            let job = JobID("anthropic-resume-\(stopPhase.rawValue)")
            let provider = H.anthropicProvider(endpoint, maxRequests: 20)  // 2 models × 80 → 8 batches of 20
            do {
                let store = try SQLiteJobStore(path: path)
                try await H.makeAnthropicJob(store: store, job: job, count: 160)
                let seen = SharedCounter()
                let runner = H.runner(store: store, provider: provider, onPhase: { phase, _ in
                    // The third time: two batches of the same size are already recorded.
                    if phase == stopPhase, seen.increment() == 3 { throw PipelineStop(phase: phase) }
                }) { $0.maxConcurrentBatches = 4 }
                await #expect(throws: PipelineStop.self) { try await runner.runUntilDone(job: job) }
            }
            let store = try SQLiteJobStore(path: path)
            try await H.makeAnthropicJob(store: store, job: job, count: 160)
            let counts = try await H.runner(store: store, provider: provider) { $0.maxConcurrentBatches = 4 }.runUntilDone(job: job)
            #expect(counts[.succeeded] == 160)
            let requests = try await H.allRequests(store: store, job: job)
            #expect(requests.values.allSatisfy { $0.state == .succeeded && $0.attempts == 1 }, "a request was resent")
            for (customID, r) in requests {
                #expect(String(decoding: r.response ?? [], as: UTF8.self).contains("echo \(customID) "))
            }
            let stats = endpoint.stats()
            #expect(stats.duplicateSubmissions == 0)
            #expect(stats.batches.count == 8)
            let ids = try await store.batches(job: job).compactMap(\.providerBatchID)
            #expect(ids.count == 8)
            #expect(Set(ids) == Set(stats.batches.map(\.id)))
        }
    }
}
