import Hyperbatch
import HyperbatchPostgres
import Logging
import PostgresNIO
import Testing

private struct Entity: Sendable {
    var id: Int
    var hp: Int
}

/// The writer's UPDATE keeps the primary-key index plan at 2,048 rows on a 100k-row table, where the same statement
/// with bare array parameters flips to a sequential scan (the trap the writer's SQL avoids).
@Suite(.enabled(if: PostgresTestEnvironment.url != nil, "HYPERBATCH_POSTGRES_URL not set: PostgreSQL tests skipped"))
struct PostgresBatchWriterPlanTests {
    private static let logger = Logger(label: "test")
    private static func table(_ name: String) -> WriterTable<Entity> {
        WriterTable<Entity>(name, operation: .update).key("id", .int, \.id).column("hp", .int, \.hp)
    }

    /// One connection, so the writer's prepared statement and the EXPLAIN run on the same session.
    private func withOneConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        var configuration = try PostgresTestEnvironment.configuration()
        configuration.options.maximumConnections = 1
        let client = PostgresClient(configuration: configuration)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await client.run(); return nil }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// A 100k-row table named `name` (a fixed test identifier), analyzed.
    private func seed(_ client: PostgresClient, _ name: String) async throws {
        for sql in [
            "DROP TABLE IF EXISTS \(name)",
            "CREATE TABLE \(name) (id bigint PRIMARY KEY, hp int NOT NULL)",
            "INSERT INTO \(name) SELECT g, 0 FROM generate_series(0, 99999) AS g",
            "ANALYZE \(name)",
        ] { try await client.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger) }
    }

    private func plan(_ client: PostgresClient, _ sql: String, binds: PostgresBindings) async throws -> String {
        var lines: [String] = []
        for try await line in try await client.query(PostgresQuery(unsafeSQL: "EXPLAIN " + sql, binds: binds), logger: Self.logger)
            .decode(String.self) { lines.append(line) }
        return lines.joined(separator: "\n")
    }

    @Test(.timeLimit(.minutes(1))) func updateOf2048KeysUsesThePrimaryKeyIndex() async throws {
        try await withOneConnection { client in
            try await seed(client, "writer_plan_explain")
            let writer = try PostgresBatchWriter(client: client, table: Self.table("writer_plan_explain"), logger: Self.logger)
            let ids = (0..<2048).map { $0 * 48 }
            var binds = PostgresBindings()
            binds.append(ids)
            binds.append(ids)
            let writerPlan = try await plan(client, writer.sql, binds: binds)
            #expect(writerPlan.contains("Index Scan using writer_plan_explain_pkey"), "\(writerPlan)")
            #expect(!writerPlan.contains("Seq Scan"), "\(writerPlan)")
            // Control: the same statement with bare array parameters is planned from the array's length and flips.
            let bare = writer.sql.replacingOccurrences(of: "(SELECT $1::bigint[])", with: "$1::bigint[]")
                .replacingOccurrences(of: "(SELECT $2::bigint[])", with: "$2::bigint[]")
            #expect(bare != writer.sql)
            let barePlan = try await plan(client, bare, binds: binds)
            #expect(barePlan.contains("Seq Scan on writer_plan_explain"), "\(barePlan)")
        }
    }

    @Test(.timeLimit(.minutes(1))) func batchStatementIsPreparedOncePerConnectionAndStaysOnTheIndex() async throws {
        try await withOneConnection { client in
            try await seed(client, "writer_plan_prepared")
            let writer = try PostgresBatchWriter(client: client, table: Self.table("writer_plan_prepared"), logger: Self.logger)
            for round in 0..<7 {
                let results = try await writer.write((0..<2048).map { Entity(id: $0 * 48, hp: round + 1) })
                #expect(results.allSatisfy { (try? $0.get()) != nil })
            }
            var executions = -1
            for try await (n) in try await client.query(
                "SELECT (generic_plans + custom_plans)::bigint FROM pg_prepared_statements WHERE name = \(writer.statementName)",
                logger: Self.logger).decode(Int.self) { executions = n }
            #expect(executions == 7)
            // EXPLAIN EXECUTE plans the prepared statement as the 8th execution would be planned.
            let array = "'{" + (0..<2048).map { String($0 * 48) }.joined(separator: ",") + "}'"
            let explained = try await plan(client, "EXECUTE \(writer.statementName)(\(array), \(array))", binds: PostgresBindings())
            #expect(explained.contains("Index Scan using writer_plan_prepared_pkey"), "\(explained)")
            #expect(!explained.contains("Seq Scan"), "\(explained)")
            var total = 0
            for try await s in try await client.query("SELECT sum(hp)::bigint FROM writer_plan_prepared", logger: Self.logger).decode(Int.self) { total = s }
            #expect(total == 2048 * 7)
        }
    }
}
