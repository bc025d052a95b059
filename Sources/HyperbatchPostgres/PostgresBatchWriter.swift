import Foundation
import Hyperbatch
import Logging
import PostgresNIO

/// Applies batches of rows to a PostgreSQL table as ONE transaction with ONE set-based statement
/// (`INSERT … SELECT FROM UNNEST`, `UPDATE … FROM UNNEST`, `INSERT … ON CONFLICT DO UPDATE`), and isolates failing rows
/// by bisecting under savepoints so one bad row never rolls back its neighbours.
///
/// The caller runs `client` (a `Service`). Rows are sorted by key before writing, so concurrent batches over
/// overlapping keys lock rows in one order and do not deadlock. Inside each batch transaction hash and merge joins are
/// disabled (`SET LOCAL`), which pins the index nested-loop plan that a prepared generic plan would use (the unprepared
/// array plan flips to a sequential scan above ~925 rows on a 100k-row table).
public struct PostgresBatchWriter<Row: Sendable>: Sendable {
    /// The table description the SQL is rendered from.
    public let table: WriterTable<Row>
    private let client: PostgresClient
    private let logger: Logger
    private let sql: String

    /// A writer for `table` through `client` (which the caller runs); throws if the table cannot be rendered.
    public init(client: PostgresClient, table: WriterTable<Row>, logger: Logger) throws {
        self.client = client
        self.table = table
        self.logger = logger
        self.sql = try Self.render(table)
    }

    /// The `Batcher` handler: applies one batch and returns one `Result` per row, in input order.
    public func handler<Key: Sendable>() -> @Sendable (Key, [Row]) async throws -> [Result<Void, any Error>] {
        { _, rows in try await self.write(rows) }
    }

    /// Applies `rows` in one transaction; returns one `Result` per row in input order. Throws only if the
    /// connection or transaction itself fails.
    public func write(_ rows: [Row]) async throws -> [Result<Void, any Error>] {
        guard !rows.isEmpty else { return [] }
        let order = table.lockOrder(rows)
        let values: [[WriterValue]] = rows.map { row in table.columns.map { $0.value(row) } }
        return try await client.withConnection { connection in
            try await self.write(values: values, order: order, on: connection)
        }
    }

    private func write(values: [[WriterValue]], order: [Int], on connection: PostgresConnection) async throws -> [Result<Void, any Error>] {
        // Fast path: the whole batch in one statement.
        try await begin(connection)
        do {
            try await connection.query(try query(values, order[...]), logger: logger)
            try await connection.query("COMMIT", logger: logger)
            return Array(repeating: .success(()), count: values.count)
        } catch {
            try? await connection.query("ROLLBACK", logger: logger)
            // Connection-level failures fail the whole batch; statement errors and bad values are isolated below.
            if let psql = error as? PSQLError, psql.serverInfo == nil { throw error }
        }
        // Slow path: bisect under savepoints in one transaction.
        var results = [Result<Void, any Error>?](repeating: nil, count: values.count)
        try await begin(connection)
        await bisectBatch(order[...], into: &results) { slice in
            try await connection.query("SAVEPOINT hb_bisect", logger: logger)
            do {
                try await connection.query(try query(values, slice), logger: logger)
                try await connection.query("RELEASE SAVEPOINT hb_bisect", logger: logger)
            } catch {
                try await connection.query("ROLLBACK TO SAVEPOINT hb_bisect", logger: logger)
                try await connection.query("RELEASE SAVEPOINT hb_bisect", logger: logger)
                throw error
            }
        }
        try await connection.query("COMMIT", logger: logger)
        return results.map { $0 ?? .failure(BatchWriterError.invalidTable("row not attempted")) }
    }

    private func begin(_ connection: PostgresConnection) async throws {
        try await connection.query("BEGIN", logger: logger)
        try await connection.query(
            "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)",
            logger: logger
        )
    }

    /// Binds one array per column for the rows at `slice`, in that (key-sorted) order.
    private func query(_ values: [[WriterValue]], _ slice: ArraySlice<Int>) throws -> PostgresQuery {
        var binds = PostgresBindings(capacity: table.columns.count)
        for (c, column) in table.columns.enumerated() {
            switch column.type {
            case .int:
                try binds.append(try slice.map { i -> Int in
                    guard case let .int(v) = values[i][c] else { throw BatchWriterError.typeMismatch(column: column.name) }
                    return v
                })
            case .double:
                try binds.append(try slice.map { i -> Double in
                    switch values[i][c] {
                    case let .double(v): return v
                    case let .int(v): return Double(v)
                    default: throw BatchWriterError.typeMismatch(column: column.name)
                    }
                })
            case .bool:
                try binds.append(try slice.map { i -> Bool in
                    guard case let .bool(v) = values[i][c] else { throw BatchWriterError.typeMismatch(column: column.name) }
                    return v
                })
            case .text, .jsonb:
                try binds.append(try slice.map { i -> String in
                    guard case let .text(v) = values[i][c] else { throw BatchWriterError.typeMismatch(column: column.name) }
                    return v
                })
            case .timestamptz:
                try binds.append(try slice.map { i -> Date in
                    guard case let .date(v) = values[i][c] else { throw BatchWriterError.typeMismatch(column: column.name) }
                    return v
                })
            }
        }
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    /// Renders the one set-based statement for `table` (identifiers quoted, values only as `$n` array binds).
    public static func render(_ table: WriterTable<Row>) throws -> String {
        let q = WriterTable<Row>.quote
        guard !table.columns.isEmpty else { throw BatchWriterError.invalidTable("no columns") }
        let keys = table.keyColumns
        let others = table.valueColumns
        if table.operation != .insert, keys.isEmpty { throw BatchWriterError.invalidTable("update/upsert needs a key column") }
        if table.operation == .update, others.isEmpty { throw BatchWriterError.invalidTable("update needs a non-key column") }
        let arrays = table.columns.enumerated().map { i, c in "$\(i + 1)::\(arrayType(c.type))" }.joined(separator: ", ")
        let aliases = table.columns.indices.map { "c\($0)" }
        let unnest = "UNNEST(\(arrays)) AS u(\(aliases.joined(separator: ", ")))"
        func expr(_ i: Int) -> String { table.columns[i].type == .jsonb ? "u.c\(i)::jsonb" : "u.c\(i)" }
        let index = { (c: WriterColumn<Row>) in table.columns.firstIndex { $0.name == c.name }! }
        switch table.operation {
        case .insert, .upsert:
            var s = "INSERT INTO \(q(table.name)) (\(table.columns.map { q($0.name) }.joined(separator: ", "))) "
                + "SELECT \(table.columns.indices.map(expr).joined(separator: ", ")) FROM \(unnest)"
            if table.operation == .upsert {
                s += " ON CONFLICT (\(keys.map { q($0.name) }.joined(separator: ", "))) "
                s += others.isEmpty
                    ? "DO NOTHING"
                    : "DO UPDATE SET " + others.map { "\(q($0.name)) = EXCLUDED.\(q($0.name))" }.joined(separator: ", ")
            }
            return s
        case .update:
            let set = others.map { "\(q($0.name)) = \(expr(index($0)))" }.joined(separator: ", ")
            let whereClause = keys.map { "t.\(q($0.name)) = u.c\(index($0))" }.joined(separator: " AND ")
            return "UPDATE \(q(table.name)) AS t SET \(set) FROM \(unnest) WHERE \(whereClause)"
        }
    }

    private static func arrayType(_ type: WriterColumnType) -> String {
        switch type {
        case .int: "bigint[]"
        case .double: "float8[]"
        case .bool: "bool[]"
        case .text, .jsonb: "text[]"
        case .timestamptz: "timestamptz[]"
        }
    }
}
