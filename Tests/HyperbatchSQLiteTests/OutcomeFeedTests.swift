import Foundation
import GRDB
import HyperbatchJobs
import HyperbatchSQLite
import HyperbatchTestKit
import Testing

@Suite("OutcomeFeed")
struct OutcomeFeedTests {
    @Test("resumes after the acknowledged event and waits for new ones", .timeLimit(.minutes(1)))
    func resumeAndWait() async throws {
        let store = try SQLiteJobStore(writer: DatabaseQueue())
        let job = JobID("feed")
        let key = CompatibilityKey(provider: .openai, endpoint: "/v1/embeddings", model: "m")
        _ = try await store.createJob(NewJob(id: job, provider: .openai, maxAttempts: 1), at: Date())
        _ = try await store.insertRequests(["a", "b", "c"].map { NewRequest(customID: $0, key: key, body: Array("{}".utf8), appReference: "rec-\($0)") }, into: job, at: Date())
        let ids = try await store.pendingCandidates(job: job, key: key, limit: 10).map(\.id)
        let batch = try await store.claimBatch(BatchClaim(jobID: job, key: key, requestIDs: ids), at: Date())!
        try await store.recordSubmitted(batch: batch.id, providerBatchID: "b1", at: Date())
        _ = try await store.applyResults(batch: batch.id, [
            ProviderResultLine(customID: "a", outcome: .succeeded(body: Array("{\"v\":1}".utf8), usage: nil)),
            ProviderResultLine(customID: "b", outcome: .succeeded(body: Array("{\"v\":2}".utf8), usage: nil)),
        ], at: Date())

        let clock = ManualClock()
        let feed = OutcomeFeed(store: store, consumer: "app", pageSize: 1, pollInterval: .seconds(5), clock: clock)
        var first = feed.makeAsyncIterator()
        let a = try await first.next()
        #expect(a?.customID == "a")
        #expect(a?.appReference == "rec-a")
        try await feed.acknowledge(a!)

        // A "restarted" consumer resumes after the acknowledged event.
        var second = feed.makeAsyncIterator()
        let b = try await second.next()
        #expect(b?.customID == "b")
        #expect(b.map { String(decoding: $0.response ?? [], as: UTF8.self) } == "{\"v\":2}")

        // Caught up: the iterator sleeps on the clock until the next event exists.
        let waiter = Task { [second] in
            var it = second
            return try await it.next()
        }
        let deadline = await clock.nextSleep()
        _ = try await store.finishReconcile(batch: batch.id, missing: .expired, at: Date())
        clock.advance(to: deadline)
        let c = try await waiter.value
        #expect(c?.customID == "c")
        #expect(c?.state == .expired)
    }
}
