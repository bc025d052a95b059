import Foundation
import Hyperbatch
import Logging
import PostgresNIO

/// Applies batches of rows to a PostgreSQL table with ONE set-based statement per batch (`INSERT … SELECT FROM
/// UNNEST`, `UPDATE … FROM UNNEST`, `INSERT … ON CONFLICT DO UPDATE`), and isolates failing rows by bisecting under
/// savepoints so one bad row never rolls back its neighbours.
///
/// The caller runs `client` (a `Service`). Rows are sorted by key before writing, so concurrent batches over
/// overlapping keys lock rows in one order and do not deadlock. A batch that succeeds costs one round trip: the
/// statement runs on its own (a single statement is atomic) as a named prepared statement, which postgres-nio parses
/// once per connection and caches under ``statementName``.
///
/// ## Why the plan stays an index plan at every batch size
/// Each column array is bound as `(SELECT $n::type[])`, a scalar sub-select, never as a bare `$n`. PostgreSQL sizes
/// `UNNEST($n)` from the array when it can see the value: an unprepared statement (or one of the first five custom
/// plans of a prepared one) is planned with the bound array as a constant, so at 2,048 keys on a 100k-row table the
/// planner estimates 2,048 rows and switches from a nested loop over the primary-key index to a hash join over a
/// sequential scan of the whole table (measured: the flip happens above ~925 keys; see `hyperbatch bench db
/// --explain`). Behind a sub-select the array is a run-time value, the estimate stays at the default (10 rows), and the
/// plan is the index nested loop for every batch size, prepared or not, custom or generic. The price is that very
/// large batches over most of a table (where a hash join would win) still probe the index row by row.
public struct PostgresBatchWriter<Row: Sendable>: Sendable {
    /// The table description the SQL is rendered from.
    public let table: WriterTable<Row>
    /// The name the batch statement is prepared under on each connection (`hb_writer_` + a hash of its SQL).
    public let statementName: String
    /// The batch statement (parameters `$1…$n`: one array per column, in column order).
    public let sql: String
    private let client: PostgresClient
    private let logger: Logger

    /// A writer for `table` through `client` (which the caller runs); throws if the table cannot be rendered.
    ///
    /// The table must exist before the first batch: a statement whose preparation fails stays failed on that
    /// connection (postgres-nio caches the error under ``statementName``).
    public init(client: PostgresClient, table: WriterTable<Row>, logger: Logger) throws {
        self.client = client
        self.table = table
        self.logger = logger
        self.sql = try Self.render(table)
        self.statementName = Self.name(forSQL: sql)
    }

    /// The `Batcher` handler: applies one batch and returns one `Result` per row, in input order.
    public func handler<Key: Sendable>() -> @Sendable (Key, [Row]) async throws -> [Result<Void, any Error>] {
        { _, rows in try await self.write(rows) }
    }

    /// Applies `rows` atomically, except that failing rows are isolated; returns one `Result` per row in input order.
    /// Throws only if the connection or transaction itself fails.
    public func write(_ rows: [Row]) async throws -> [Result<Void, any Error>] {
        guard !rows.isEmpty else { return [] }
        let order = table.lockOrder(rows)
        let values: [[WriterValue]] = rows.map { row in table.columns.map { $0.value(row) } }
        return try await client.withConnection { connection in
            try await self.write(values: values, order: order, on: connection)
        }
    }

    private func write(values: [[WriterValue]], order: [Int], on connection: PostgresConnection) async throws -> [Result<Void, any Error>] {
        // Fast path: the whole batch as one statement, its own implicit transaction (one round trip).
        do {
            try await execute(values, order[...], on: connection)
            return Array(repeating: .success(()), count: values.count)
        } catch {
            // Connection-level failures fail the whole batch; statement errors and bad values are isolated below.
            if let psql = error as? PSQLError, psql.serverInfo == nil { throw error }
        }
        // Slow path: bisect under savepoints in one transaction.
        var results = [Result<Void, any Error>?](repeating: nil, count: values.count)
        try await connection.guardedQuery("BEGIN", logger: logger)
        do {
            await bisectBatch(order[...], into: &results) { slice in
                try await connection.guardedQuery("SAVEPOINT hb_bisect", logger: logger)
                do {
                    try await execute(values, slice, on: connection)
                    try await connection.guardedQuery("RELEASE SAVEPOINT hb_bisect", logger: logger)
                } catch {
                    try await connection.guardedQuery("ROLLBACK TO SAVEPOINT hb_bisect", logger: logger)
                    try await connection.guardedQuery("RELEASE SAVEPOINT hb_bisect", logger: logger)
                    throw error
                }
            }
            try await connection.guardedQuery("COMMIT", logger: logger)
        } catch {
            // A closed connection needs no ROLLBACK: the server rolled the transaction back when it closed.
            if !connection.isClosed { _ = try? await connection.guardedQuery("ROLLBACK", logger: logger) }
            throw error
        }
        return results.map { $0 ?? .failure(BatchWriterError.invalidTable("row not attempted")) }
    }

    /// Runs the prepared batch statement for the rows at `slice` (postgres-nio prepares it on first use per connection).
    private func execute(_ values: [[WriterValue]], _ slice: ArraySlice<Int>, on connection: PostgresConnection) async throws {
        let statement = WriterStatement(bindings: try bindings(values, slice))
        try await WriterStatement.$current.withValue(.init(name: statementName, sql: sql)) {
            // Drain the (empty) row sequence: postgres-nio 1.33's command-tag overload of `execute` can trap when the
            // command completes after the row stream is handed over.
            // Guarded: on a connection the server closed, postgres-nio would wait forever (ClosedConnectionGuard).
            let logger = self.logger
            for try await _ in try await connection.guarded({ try await connection.execute(statement, logger: logger) }) {}
        }
    }

    /// A stable statement name for `sql` (FNV-1a, so the same SQL has the same name in every process).
    static func name(forSQL sql: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return "hb_writer_" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Binds one array per column for the rows at `slice`, in that (key-sorted) order.
    private func bindings(_ values: [[WriterValue]], _ slice: ArraySlice<Int>) throws -> PostgresBindings {
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
        return binds
    }

    /// Renders the one set-based statement for `table` (identifiers quoted, values only as `$n` array binds).
    public static func render(_ table: WriterTable<Row>) throws -> String {
        let q = WriterTable<Row>.quote
        guard !table.columns.isEmpty else { throw BatchWriterError.invalidTable("no columns") }
        let keys = table.keyColumns
        let others = table.valueColumns
        if table.operation != .insert, keys.isEmpty { throw BatchWriterError.invalidTable("update/upsert needs a key column") }
        if table.operation == .update, others.isEmpty { throw BatchWriterError.invalidTable("update needs a non-key column") }
        // `(SELECT $n::type[])` hides each array's length from the planner (see the type's documentation).
        let arrays = table.columns.enumerated().map { i, c in "(SELECT $\(i + 1)::\(arrayType(c.type)))" }.joined(separator: ", ")
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
