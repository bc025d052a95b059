import Foundation
import HyperbatchJobs
import HyperbatchPostgres
import HyperbatchTestKit
import Logging
import PostgresNIO
import Testing

/// A fresh schema per test (its own `search_path`), so every contract case starts from an empty store.
enum PostgresStoreFixture {
    static let logger = Logger(label: "test.pgstore")

    /// Runs `body` with a client whose `search_path` is a new empty schema; drops the schema afterwards. The client
    /// connects with `configuration` (default: the test server's plain one).
    static func withFreshSchema<T: Sendable>(
        configuration: PostgresClient.Configuration? = nil, _ body: @escaping @Sendable (PostgresClient, String) async throws -> T
    ) async throws -> T {
        let schema = "hb_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        // The name is generated here ([a-z0-9_] only), never user input: safe to splice as an identifier.
        try await PostgresTestEnvironment.withClient { admin in
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA \(schema)"), logger: logger)
        }
        var configuration = try configuration ?? PostgresTestEnvironment.configuration()
        configuration.options.additionalStartupParameters = [("search_path", schema)]
        let client = PostgresClient(configuration: configuration)
        do {
            let value = try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { await client.run(); return nil }
                defer { group.cancelAll() }
                return try await body(client, schema)
            }
            try await drop(schema)
            return value
        } catch {
            try? await drop(schema)
            throw error
        }
    }

    static func drop(_ schema: String) async throws {
        try await PostgresTestEnvironment.withClient { admin in
            try await admin.query(PostgresQuery(unsafeSQL: "DROP SCHEMA \(schema) CASCADE"), logger: logger)
        }
    }
}

@Suite("PostgresJobStore", .enabled(if: PostgresTestEnvironment.url != nil, "HYPERBATCH_POSTGRES_URL not set: PostgreSQL tests skipped"))
struct PostgresJobStoreTests {
    @Test("contract", .timeLimit(.minutes(2)), arguments: JobStoreContract.names)
    func contract(_ name: String) async throws {
        try await PostgresStoreFixture.withFreshSchema { client, _ in
            let store = PostgresJobStore(client: client, logger: PostgresStoreFixture.logger)
            try await store.migrate()
            try await JobStoreContract.run(name, on: store)
        }
    }

    @Test("migrations: idempotent, and 8 workers starting together apply them once", .timeLimit(.minutes(1)))
    func concurrentMigrations() async throws {
        try await PostgresStoreFixture.withFreshSchema { client, _ in
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for i in 0..<8 {
                    group.addTask {
                        try await PostgresJobStore(client: client, configuration: .init(workerID: "w\(i)"), logger: PostgresStoreFixture.logger).migrate()
                    }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(applied == [1])
            let again = try await PostgresJobStore(client: client, logger: PostgresStoreFixture.logger).migrate()
            #expect(again.isEmpty)
        }
    }

    @Test("a batch leased by a live worker is invisible to others; an expired lease is taken over", .timeLimit(.minutes(1)))
    func leasesAndTakeover() async throws {
        try await PostgresStoreFixture.withFreshSchema { client, _ in
            let logger = PostgresStoreFixture.logger
            let a = PostgresJobStore(client: client, configuration: .init(workerID: "A", leaseDuration: .seconds(30)), logger: logger)
            let b = PostgresJobStore(client: client, configuration: .init(workerID: "B", leaseDuration: .seconds(30)), logger: logger)
            try await a.migrate()
            let key = CompatibilityKey(provider: .openai, endpoint: "/v1/chat/completions", model: "m")
            let job = JobID("j")
            _ = try await a.createJob(NewJob(id: job, provider: .openai), at: Date())
            _ = try await a.insertRequests((0..<4).map { NewRequest(customID: "r\($0)", key: key, body: Array("{}".utf8)) }, into: job, at: Date())
            let ids = try await a.pendingCandidates(job: job, key: key, limit: 10).map(\.id)
            // Both claim the same ids: the second gets nothing (each request lands in exactly one batch).
            let claimedA = try await a.claimBatch(BatchClaim(jobID: job, key: key, requestIDs: ids), at: Date())
            let claimedB = try await b.claimBatch(BatchClaim(jobID: job, key: key, requestIDs: ids), at: Date())
            #expect(claimedA?.requestCount == 4)
            #expect(claimedB == nil)
            let batch = try #require(claimedA)
            #expect(try await b.liveBatches(job: nil).isEmpty, "B must not see A's leased batch")
            await #expect(throws: JobStoreError.self) { try await b.markUploading(batch: batch.id, at: Date()) }
            #expect(try await a.liveBatches(job: nil).map(\.id) == [batch.id])
            #expect(try await a.renewLeases() == 1)
            // A goes away (its leases end); B takes the batch over and A can no longer send it.
            try await a.releaseLeases()
            #expect(try await b.liveBatches(job: job).map(\.id) == [batch.id])
            await #expect(throws: JobStoreError.self) { try await a.markUploading(batch: batch.id, at: Date()) }
            try await b.markUploading(batch: batch.id, at: Date())
            let leases = try await b.batchLeases(job: job)
            #expect(leases == [BatchLease(batch: batch.id, claimedBy: "A", owner: "B", takeovers: 1)])
            // A closed gate stops claims.
            b.gate.close(reason: "test")
            await #expect(throws: PostgresJobStoreError.self) { _ = try await b.liveBatches(job: nil) }
            await #expect(throws: PostgresJobStoreError.self) { _ = try await b.claimBatch(BatchClaim(jobID: job, key: key, requestIDs: ids), at: Date()) }
        }
    }
}
