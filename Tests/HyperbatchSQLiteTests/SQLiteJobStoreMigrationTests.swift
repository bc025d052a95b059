import Foundation
import GRDB
import HyperbatchJobs
import Testing

@testable import HyperbatchSQLite

@Suite("SQLiteJobStore migrations")
struct SQLiteJobStoreMigrationTests {
    @Test("a v1 file keeps its requests and responses, and works, after the v2/v3 migrations", .timeLimit(.minutes(1)))
    func migratesV1File() async throws {
        let queue = try DatabaseQueue()
        try SQLiteJobStoreSchema.migrator.migrate(queue, upTo: "hb-jobs-v1")
        try await queue.write { db in
            try db.execute(sql: "INSERT INTO hb_job (id, provider, tenant, max_attempts, state, created_at) VALUES ('j', 'openai', '', 3, 'active', 0)")
            for (id, cid, state) in [(1, "done", "succeeded"), (2, "todo", "pending")] {
                try db.execute(
                    sql: """
                        INSERT INTO hb_request (id, job_id, custom_id, provider, endpoint, model, tenant, body, encoded_size, state, updated_at)
                        VALUES (?, 'j', ?, 'openai', '/v1/chat/completions', 'm', '', X'7B7D', 2, ?, 0)
                        """,
                    arguments: [id, cid, state])
            }
            try db.execute(sql: "INSERT INTO hb_response (request_id, body, input_tokens, output_tokens) VALUES (1, X'7B226F6B223A747275657D', 5, 7)")
        }
        let store = try SQLiteJobStore(writer: queue)
        let done = try #require(try await store.request(job: JobID("j"), customID: "done"))
        #expect(done.response == Array(#"{"ok":true}"#.utf8))
        #expect(done.usage == TokenUsage(inputTokens: 5, outputTokens: 7))
        #expect(try await store.tokenUsage(job: JobID("j")) == TokenUsage(inputTokens: 5, outputTokens: 7))
        let key = CompatibilityKey(provider: .openai, endpoint: "/v1/chat/completions", model: "m")
        #expect(try await store.pendingCandidates(job: JobID("j"), key: key, limit: 10).map(\.id) == [2])
        let counts = try await store.requestCounts(job: JobID("j"))
        #expect(counts[.succeeded] == 1 && counts[.pending] == 1)
    }
}
