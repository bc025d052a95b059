import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import HyperbatchTestKit
import Synchronization
import Testing

/// The whole pipeline over real HTTP against the in-process emulator, with a SQLite store in a temp file.
@Suite struct PipelineEndToEndTests {
    typealias H = PipelineHarness

    func assertEveryRequestTerminalAndMatching(_ requests: [String: RequestRecord], count: Int) {
        #expect(requests.count == count)
        for (customID, r) in requests {
            #expect(r.state.isTerminal, "\(customID) is \(r.state)")
            if r.state == .succeeded {
                let text = String(decoding: r.response ?? [], as: UTF8.self)
                #expect(text.contains("echo \(customID) "), "response of \(customID) does not echo it")
            }
        }
    }

    @Test("error lines, 429s and 5xx: every request ends in exactly one terminal state", .timeLimit(.minutes(1)))
    func errorLinesAndRateLimits() async throws {
        var configuration = H.emulatorConfiguration()
        configuration.faults.requestErrorRate = 0.1
        configuration.faults.http429Rate = 0.1
        configuration.faults.http5xxRate = 0.05
        try await Emulator.withEmulator(configuration: configuration) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("e2e-faults")
            try await H.makeJob(store: store, job: job, count: 300)
            let counts = try await H.runner(store: store, provider: H.provider(endpoint)).runUntilDone(job: job)
            #expect(counts.total == 300)
            #expect(counts.terminal == 300)
            #expect(counts[.succeeded] > 200)
            #expect(counts[.succeeded] + counts[.errored] + counts[.failed] == 300)
            let requests = try await H.allRequests(store: store, job: job)
            assertEveryRequestTerminalAndMatching(requests, count: 300)
            // Each provider batch was created once for its tag, and each store batch maps to one provider batch.
            let stats = endpoint.stats()
            let tags = stats.batches.compactMap { $0.metadata["hyperbatch_tag"] }
            #expect(tags.count == stats.batches.count)
            #expect(Set(tags).count == tags.count)
            let stored = try await store.batches(job: job).filter { $0.providerBatchID != nil }
            #expect(stored.count == stats.batches.count)
            #expect(Set(stored.map(\.idempotencyTag)) == Set(tags))
            #expect(try await store.job(job)?.state == .finished)
        }
    }

    @Test("an expired batch keeps its finished work and resubmits the rest", .timeLimit(.minutes(1)))
    func expiredBatchIsResubmitted() async throws {
        var configuration = H.emulatorConfiguration()
        configuration.faults.expireAfterFraction = 0.5
        try await Emulator.withEmulator(configuration: configuration) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("e2e-expiry")
            try await H.makeJob(store: store, job: job, count: 200, maxAttempts: 2)
            let provider = H.provider(endpoint, maxRequests: 100)
            // Expire only the first wave of batches; the resubmitted remainders run normally.
            let waves = SharedCounter()
            let counts = try await H.runner(store: store, provider: provider, onPhase: { phase, _ in
                if phase == .reconciled, waves.increment() == 1 { endpoint.setFaults(EmulatorFaults()) }
            }).runUntilDone(job: job)
            #expect(counts.terminal == 200)
            #expect(counts[.succeeded] == 200)
            let requests = try await H.allRequests(store: store, job: job)
            assertEveryRequestTerminalAndMatching(requests, count: 200)
            #expect(requests.values.contains { $0.attempts == 1 }, "work finished before the expiry was kept")
            #expect(requests.values.contains { $0.attempts == 2 }, "the unfinished rest was resubmitted")
            let stats = endpoint.stats()
            #expect(stats.batches.contains { $0.status == "expired" })
            #expect(stats.duplicateSubmissions == 0)
        }
    }

    @Test("a batch cancelled at the provider: its requests are retried and finish", .timeLimit(.minutes(1)))
    func cancelledBatchIsRetried() async throws {
        var configuration = H.emulatorConfiguration()
        configuration.requestsPerSecond = 50
        // Emulated time stands still until the batch is created and cancelled (however late the callback comes on a
        // loaded machine): then it jumps to 0.5 s into the work (about 25 requests done) and the cancel lands there.
        let clock = PausableClock(paused: true)
        let jump = Duration.seconds(configuration.validationSeconds + 0.5)
        try await Emulator.withEmulator(configuration: configuration, clock: clock) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("e2e-cancel")
            try await H.makeJob(store: store, job: job, count: 100, maxAttempts: 3)
            let provider = H.provider(endpoint, maxRequests: 100)
            let cancelled = SharedCounter()
            let counts = try await H.runner(store: store, provider: provider, onPhase: { phase, batch in
                guard phase == .submitted, cancelled.increment() == 1 else { return }
                defer { clock.resume() }
                clock.advance(by: jump)
                if let id = try await store.batch(batch)?.providerBatchID { _ = try await provider.cancelBatch(id: id) }
            }).runUntilDone(job: job)
            #expect(cancelled.current >= 1)
            #expect(counts.terminal == 100)
            #expect(counts[.succeeded] == 100)
            assertEveryRequestTerminalAndMatching(try await H.allRequests(store: store, job: job), count: 100)
            #expect(endpoint.stats().batches.contains { $0.status == "cancelled" })
            #expect(endpoint.stats().batches.count >= 2)
        }
    }
}
