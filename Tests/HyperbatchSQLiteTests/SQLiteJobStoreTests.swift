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
}
