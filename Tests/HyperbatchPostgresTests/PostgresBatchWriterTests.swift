import Hyperbatch
import HyperbatchPostgres
import Logging
import PostgresNIO
import Testing

private struct Entity: Sendable {
    var id: Int
    var hp: Int
    var state: String
}

/// Fails (does not skip) when `CI=true` and no server URL is set: the PostgreSQL tests must run in CI.
@Suite struct PostgresCIGuardTests {
    @Test func postgresURLIsSetInCI() {
        if PostgresTestEnvironment.isCI {
            #expect(PostgresTestEnvironment.url != nil, "CI=true but HYPERBATCH_POSTGRES_URL is not set: run tests through scripts/with-postgres.sh")
        } else {
            #expect(!PostgresTestEnvironment.isCI)
        }
    }
}

@Suite(.enabled(if: PostgresTestEnvironment.url != nil, "HYPERBATCH_POSTGRES_URL not set: PostgreSQL tests skipped"))
struct PostgresBatchWriterTests {
    private static let logger = Logger(label: "test")

    private func reset(_ client: PostgresClient, table: String) async throws {
        try await client.query(PostgresQuery(unsafeSQL: "DROP TABLE IF EXISTS \"\(table)\""), logger: Self.logger)
        try await client.query(PostgresQuery(unsafeSQL:
            "CREATE TABLE \"\(table)\" (id bigint PRIMARY KEY, state jsonb NOT NULL, hp int NOT NULL CHECK (hp >= 0), updated_at timestamptz NOT NULL DEFAULT now())"),
            logger: Self.logger)
    }

    @Test(.timeLimit(.minutes(1))) func threeBadRowsAmongAThousandFailAlone() async throws {
        try await PostgresTestEnvironment.withClient { client in
            try await reset(client, table: "writer_bad_rows")
            let table = WriterTable<Entity>("writer_bad_rows", operation: .insert)
                .key("id", .int, \.id)
                .column("hp", .int, \.hp)
                .column("state", .jsonb, \.state)
            let writer = try PostgresBatchWriter(client: client, table: table, logger: Self.logger)
            let bad: Set<Int> = [3, 480, 998]
            let rows = (0..<1000).reversed().map { Entity(id: $0, hp: bad.contains($0) ? -1 : $0, state: #"{"n":\#($0)}"#) }
            let results = try await writer.write(rows)
            #expect(results.count == 1000)
            let failedIDs = Set(zip(rows, results).compactMap { row, r -> Int? in
                if case .failure = r { return row.id } else { return nil }
            })
            #expect(failedIDs == bad)
            var count = 0, sum = 0
            for try await (c, s) in try await client.query("SELECT count(*)::bigint, sum(hp)::bigint FROM writer_bad_rows", logger: Self.logger)
                .decode((Int, Int).self) { count = c; sum = s }
            #expect(count == 997)
            #expect(sum == (0..<1000).filter { !bad.contains($0) }.reduce(0, +))
        }
    }

    @Test(.timeLimit(.minutes(1))) func overlappingBatchesInOppositeOrdersDoNotDeadlock() async throws {
        try await PostgresTestEnvironment.withClient { client in
            try await reset(client, table: "writer_overlap")
            let insert = try PostgresBatchWriter(client: client, table: WriterTable<Entity>("writer_overlap", operation: .insert)
                .key("id", .int, \.id).column("hp", .int, \.hp).column("state", .jsonb, \.state), logger: Self.logger)
            _ = try await insert.write((0..<500).map { Entity(id: $0, hp: 0, state: "{}") })
            let update = try PostgresBatchWriter(client: client, table: WriterTable<Entity>("writer_overlap", operation: .update)
                .key("id", .int, \.id).column("hp", .int, \.hp), logger: Self.logger)
            let failures = try await withThrowingTaskGroup(of: Int.self) { group in
                for round in 0..<10 {
                    group.addTask {
                        let ids = round.isMultiple(of: 2) ? Array(0..<500) : Array((0..<500).reversed())
                        let results = try await update.write(ids.map { Entity(id: $0, hp: round, state: "") })
                        return results.filter { if case .failure = $0 { true } else { false } }.count
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(failures == 0)
            var count = 0
            for try await c in try await client.query("SELECT count(*)::bigint FROM writer_overlap WHERE hp BETWEEN 0 AND 9", logger: Self.logger)
                .decode(Int.self) { count = c }
            #expect(count == 500)
        }
    }

    @Test(.timeLimit(.minutes(1))) func upsertUpdatesExistingRows() async throws {
        try await PostgresTestEnvironment.withClient { client in
            try await reset(client, table: "writer_upsert")
            let upsert = try PostgresBatchWriter(client: client, table: WriterTable<Entity>("writer_upsert", operation: .upsert)
                .key("id", .int, \.id).column("hp", .int, \.hp).column("state", .jsonb, \.state), logger: Self.logger)
            _ = try await upsert.write([Entity(id: 1, hp: 1, state: "{}"), Entity(id: 2, hp: 2, state: "{}")])
            let results = try await upsert.write([Entity(id: 2, hp: 20, state: "{}"), Entity(id: 3, hp: 3, state: "not json")])
            #expect((try? results[0].get()) != nil)
            #expect((try? results[1].get()) == nil)
            var hps: [Int] = []
            for try await h in try await client.query("SELECT hp::bigint FROM writer_upsert ORDER BY id", logger: Self.logger)
                .decode(Int.self) { hps.append(h) }
            #expect(hps == [1, 20])
        }
    }
}
