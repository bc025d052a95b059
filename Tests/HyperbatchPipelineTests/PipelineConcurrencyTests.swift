import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import Synchronization
import Testing

/// Several provider batches uploaded, created and polled at once, each still in its write-ahead order.
@Suite struct PipelineConcurrencyTests {
    typealias H = PipelineHarness

    @Test("4 batches upload/create and poll at once, never more; every request ends exactly once", .timeLimit(.minutes(1)))
    func boundedParallelBatches() async throws {
        try await Emulator.withEmulator(configuration: H.emulatorConfiguration()) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("parallel")
            try await H.makeJob(store: store, job: job, count: 80, maxAttempts: 1)
            let provider = H.provider(endpoint, maxRequests: 10)  // 2 models × 40 → 8 batches
            // A sequential pipeline never gets 4 batches between upload and create, or 4 first polls, at once: the
            // rendezvous would then never open (the time limit fails the test).
            let uploads = Rendezvous(count: 4), polls = Rendezvous(count: 4)
            let sending = Occupancy(), polling = Occupancy()
            let order = OrderLog()
            let runner = H.runner(store: store, provider: provider, onPhase: { phase, batch in
                order.record(phase, batch)
                switch phase {
                case .uploaded:
                    sending.enter()
                    await uploads.arrive()
                case .submitted:
                    sending.leave()
                case .polled:
                    polling.enter()
                    await polls.arrive()
                    polling.leave()
                default: break
                }
            }) { $0.maxConcurrentBatches = 4 }
            let counts = try await runner.runUntilDone(job: job)
            #expect(counts[.succeeded] == 80)
            #expect(sending.peak == 4, "at most 4 batches between upload and recorded create, and 4 reached")
            #expect(polling.peak == 4)

            // Per batch the write-ahead order held: claimed → uploaded → created → submitted → polled → reconciled.
            let expected: [PipelinePhase] = [.claimed, .uploaded, .created, .submitted]
            let batches = try await store.batches(job: job)
            #expect(batches.count == 8)
            for b in batches {
                let phases = order.phases(of: b.id)
                #expect(Array(phases.prefix(4)) == expected, "batch \(b.id): \(phases)")
                #expect(phases.last == .reconciled)
                #expect(phases.filter { $0 == .reconciled }.count == 1)
            }
            // Every request ended exactly once: one outcome event per request, and one provider batch per store batch.
            let events = try await store.outcomes(after: 0, job: job, limit: 1_000)
            #expect(events.count == 80)
            #expect(Set(events.map(\.customID)).count == 80)
            let stats = endpoint.stats()
            #expect(stats.batches.count == 8)
            #expect(stats.duplicateSubmissions == 0)
            #expect(Set(batches.compactMap(\.providerBatchID)) == Set(stats.batches.map(\.id)))
        }
    }

    @Test("width 1 keeps the old one-at-a-time behaviour", .timeLimit(.minutes(1)))
    func widthOne() async throws {
        try await Emulator.withEmulator(configuration: H.emulatorConfiguration()) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("sequential")
            try await H.makeJob(store: store, job: job, count: 40, maxAttempts: 1)
            let sending = Occupancy(), polling = Occupancy()
            let runner = H.runner(store: store, provider: H.provider(endpoint, maxRequests: 10), onPhase: { phase, _ in
                switch phase {
                case .uploaded: sending.enter()
                case .submitted: sending.leave()
                case .polled:
                    polling.enter()
                    await Task.yield()
                    polling.leave()
                default: break
                }
            }) { $0.maxConcurrentBatches = 1 }
            #expect(try await runner.runUntilDone(job: job)[.succeeded] == 40)
            #expect(sending.peak == 1)
            #expect(polling.peak == 1)
        }
    }
}

/// The phases each batch went through, in order.
final class OrderLog: Sendable {
    private let log = Mutex<[Int64: [PipelinePhase]]>([:])
    func record(_ phase: PipelinePhase, _ batch: Int64) { log.withLock { $0[batch, default: []].append(phase) } }
    func phases(of batch: Int64) -> [PipelinePhase] { log.withLock { $0[batch] ?? [] } }
}
