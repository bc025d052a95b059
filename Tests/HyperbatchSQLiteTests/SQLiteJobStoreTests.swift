import Foundation
import GRDB
import HyperbatchJobs
import HyperbatchSQLite
import HyperbatchTestKit
import Testing

@Suite("SQLiteJobStore")
struct SQLiteJobStoreTests {
    @Test("contract (in-memory queue)", .timeLimit(.minutes(1)), arguments: JobStoreContract.names)
    func contractInMemory(_ name: String) async throws {
        try await JobStoreContract.run(name, on: SQLiteJobStore(writer: DatabaseQueue()))
    }

    @Test("contract (WAL pool file)", .timeLimit(.minutes(1)), arguments: JobStoreContract.names)
    func contractOnFile(_ name: String) async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hb-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try await JobStoreContract.run(name, on: SQLiteJobStore(path: dir.appendingPathComponent("jobs.sqlite").path))
    }

    @Test("state survives reopening the file", .timeLimit(.minutes(1)))
    func reopen() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hb-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("jobs.sqlite").path
        let key = CompatibilityKey(provider: .anthropic, endpoint: "/v1/messages", model: "claude")
        do {
            let store = try SQLiteJobStore(path: path)
            _ = try await store.createJob(NewJob(id: JobID("j"), provider: .anthropic), at: Date())
            _ = try await store.insertRequests([NewRequest(customID: "a", key: key, body: Array("{}".utf8))], into: JobID("j"), at: Date())
            let ids = try await store.pendingCandidates(job: JobID("j"), key: key, limit: 10).map(\.id)
            _ = try await store.claimBatch(BatchClaim(jobID: JobID("j"), key: key, requestIDs: ids, idempotencyTag: "tag-r"), at: Date())
        }
        let reopened = try SQLiteJobStore(path: path)
        let live = try await reopened.liveBatches(job: nil)
        #expect(live.count == 1)
        #expect(live.first?.idempotencyTag == "tag-r")
        #expect(live.first?.state == .building)
        #expect(try await reopened.requestCounts(job: JobID("j"))[.packed] == 1)
    }

    @Test("a large result chunk: responses in multi-row groups, one event per request, re-apply changes nothing", .timeLimit(.minutes(1)))
    func largeChunk() async throws {
        let store = try SQLiteJobStore(writer: DatabaseQueue())
        let job = JobID("big")
        let key = CompatibilityKey(provider: .openai, endpoint: "/v1/chat/completions", model: "m")
        _ = try await store.createJob(NewJob(id: job, provider: .openai, maxAttempts: 1), at: Date())
        let ids = (0..<150).map { "r-\($0)" }
        _ = try await store.insertRequests(ids.map { NewRequest(customID: $0, key: key, body: Array("{}".utf8)) }, into: job, at: Date())
        let candidates = try await store.pendingCandidates(job: job, key: key, limit: 1_000)
        let batch = try #require(try await store.claimBatch(BatchClaim(jobID: job, key: key, requestIDs: candidates.map(\.id), idempotencyTag: "t"), at: Date()))
        try await store.recordSubmitted(batch: batch.id, providerBatchID: "pb", at: Date())
        // 140 successes (each body names its request; 2 groups of 64 rows and 12 single rows), a duplicate line,
        // 10 permanent errors, a line for a request not in the batch, in a shuffled order.
        let permanent = ProviderError(status: 400, type: "invalid_request_error", message: "bad")
        var lines = ids.enumerated().map { i, id in
            i < 140
                ? ProviderResultLine(customID: id, outcome: .succeeded(body: Array("{\"for\":\"\(id)\"}".utf8), usage: TokenUsage(inputTokens: i, outputTokens: 1)))
                : ProviderResultLine(customID: id, outcome: .errored(permanent))
        }
        lines.append(ProviderResultLine(customID: "r-7", outcome: .succeeded(body: Array("dup".utf8), usage: nil)))
        lines.append(ProviderResultLine(customID: "stranger", outcome: .succeeded(body: Array("x".utf8), usage: nil)))
        var generator = SystemRandomNumberGenerator()
        lines.shuffle(using: &generator)
        let first = try await store.applyResults(batch: batch.id, lines, at: Date())
        #expect(first == ApplySummary(finished: 150, retried: 0, ignored: 2))
        for (i, id) in ids.enumerated() {
            let r = try #require(try await store.request(job: job, customID: id))
            if i < 140 {
                #expect(r.state == .succeeded, "\(id)")
                let own = (response: Array("{\"for\":\"\(id)\"}".utf8), usage: TokenUsage(inputTokens: i, outputTokens: 1))
                if id == "r-7" {
                    // The duplicate line of r-7 came either first or second: its first success wins, never a mix.
                    let ownWon = r.response == own.response && r.usage == own.usage
                    let duplicateWon = r.response == Array("dup".utf8) && r.usage == nil
                    #expect(ownWon || duplicateWon, "r-7: response and usage come from one line")
                } else {
                    #expect(r.response == own.response && r.usage == own.usage, "\(id)")
                }
            } else {
                #expect(r.state == .failed && r.lastError == permanent, "\(id)")
            }
        }
        let events = try await store.outcomes(after: 0, job: job, limit: 1_000)
        #expect(events.count == 150)
        #expect(Set(events.map(\.customID)) == Set(ids))
        let again = try await store.applyResults(batch: batch.id, lines, at: Date())
        #expect(again == ApplySummary(finished: 0, retried: 0, ignored: lines.count))
        #expect(try await store.outcomes(after: 0, job: job, limit: 1_000).count == 150)
    }
}
