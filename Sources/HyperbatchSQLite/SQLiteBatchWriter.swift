import Foundation
import GRDB
import Hyperbatch

/// Applies batches of rows to a SQLite table in ONE write transaction with cached prepared statements (INSERT/UPSERT:
/// up to 64 rows per multi-row `VALUES` statement; UPDATE: one execution per row, keys sorted), and isolates failing
/// rows by bisecting under savepoints so one bad row never rolls back its neighbours.
public struct SQLiteBatchWriter<Row: Sendable>: Sendable {
    /// The table description the SQL is rendered from.
    public let table: WriterTable<Row>
    private let writer: any DatabaseWriter
    private let sql: String
    /// Column indices in the statement's placeholder order (UPDATE: values then keys; INSERT/UPSERT: columns).
    private let placeholderColumns: [Int]

    /// A writer for `table` through `writer` (a `DatabaseQueue` or `DatabasePool`); throws if the table cannot be rendered.
    public init(writer: any DatabaseWriter, table: WriterTable<Row>) throws {
        self.writer = writer
        self.table = table
        self.sql = try Self.render(table)
        let indices = Array(table.columns.indices)
        self.placeholderColumns = table.operation == .update
            ? indices.filter { !table.columns[$0].isKey } + indices.filter { table.columns[$0].isKey }
            : indices
    }

    /// The `Batcher` handler: applies one batch and returns one `Result` per row, in input order.
    public func handler<Key: Sendable>() -> @Sendable (Key, [Row]) async throws -> [Result<Void, any Error>] {
        { _, rows in try await self.write(rows) }
    }

    /// Applies `rows` in one transaction; returns one `Result` per row in input order. Throws only if the
    /// transaction itself cannot be opened or committed.
    public func write(_ rows: [Row]) async throws -> [Result<Void, any Error>] {
        guard !rows.isEmpty else { return [] }
        let table = self.table
        let order = table.lockOrder(rows)
        let values: [[WriterValue]] = rows.map { row in table.columns.map { $0.value(row) } }
        let sql = self.sql
        let placeholderColumns = self.placeholderColumns
        let rowsPerStatement = table.operation == .update ? 1 : max(1, min(64, 999 / max(1, table.columns.count)))
        let outcome: [RowOutcome] = try await writer.write { db in
            // INSERT/UPSERT: up to `rowsPerStatement` rows per multi-row `VALUES` statement (one statement per
            // chunk size, cached); UPDATE: one row per execution.
            var statements: [Int: Statement] = [:]
            func statement(rows n: Int) throws -> Statement {
                if let s = statements[n] { return s }
                let s = try db.cachedStatement(sql: n == 1 ? sql : try Self.render(table, rows: n))
                statements[n] = s
                return s
            }
            func apply(_ slice: ArraySlice<Int>) throws {
                var start = slice.startIndex
                while start < slice.endIndex {
                    let n = min(rowsPerStatement, slice.endIndex - start)
                    var arguments: [DatabaseValue] = []
                    arguments.reserveCapacity(n * placeholderColumns.count)
                    for i in slice[start..<(start + n)] { arguments += try Self.arguments(values[i], placeholderColumns, table) }
                    do {
                        try statement(rows: n).execute(arguments: StatementArguments(arguments))
                    } catch {
                        // A statement whose last step failed reports that error again on its next reset:
                        // continue with a fresh statement so the next attempt does not inherit the failure.
                        statements[n] = try db.makeStatement(sql: n == 1 ? sql : try Self.render(table, rows: n))
                        throw error
                    }
                    start += n
                }
            }
            // Fast path: every row in this transaction under one savepoint.
            var failed = false
            do {
                try db.inSavepoint { try apply(order[...]); return .commit }
            } catch {
                failed = true
            }
            guard failed else { return Array(repeating: .ok, count: values.count) }
            // Slow path: bisect; each attempt runs under its own savepoint and rolls back alone.
            var results = [RowOutcome?](repeating: nil, count: values.count)
            func bisect(_ slice: ArraySlice<Int>) {
                guard !slice.isEmpty else { return }
                do {
                    try db.inSavepoint { try apply(slice); return .commit }
                    for i in slice { results[i] = .ok }
                } catch {
                    if slice.count == 1 { results[slice.first!] = .failed(error); return }
                    let mid = slice.startIndex + slice.count / 2
                    bisect(slice[slice.startIndex..<mid])
                    bisect(slice[mid..<slice.endIndex])
                }
            }
            bisect(order[...])
            return results.map { $0 ?? .failed(BatchWriterError.invalidTable("row not attempted")) }
        }
        return outcome.map {
            switch $0 {
            case .ok: .success(())
            case let .failed(error): .failure(error)
            }
        }
    }

    private enum RowOutcome: Sendable {
        case ok
        case failed(any Error)
    }

    /// One row's arguments in the statement's placeholder order, converted once to `DatabaseValue`s.
    private static func arguments(_ row: [WriterValue], _ order: [Int], _ table: WriterTable<Row>) throws -> [DatabaseValue] {
        var out: [DatabaseValue] = []
        out.reserveCapacity(order.count)
        for c in order {
            let column = table.columns[c]
            switch (column.type, row[c]) {
            case let (.int, .int(x)): out.append(x.databaseValue)
            case let (.double, .double(x)): out.append(x.databaseValue)
            case let (.double, .int(x)): out.append(Double(x).databaseValue)
            case let (.bool, .bool(x)): out.append(x.databaseValue)
            case let (.text, .text(x)), let (.jsonb, .text(x)): out.append(x.databaseValue)
            // GRDB's own text for dates, without its DateFormatter (the largest per-row cost otherwise).
            case let (.timestamptz, .date(x)): out.append(SQLiteDateText.string(x).databaseValue)
            default: throw BatchWriterError.typeMismatch(column: column.name)
            }
        }
        return out
    }

    /// Renders the per-row statement for `table` (identifiers quoted, values only as `?` placeholders).
    /// With `rows` > 1 (INSERT/UPSERT only), one statement with that many `VALUES` tuples.
    public static func render(_ table: WriterTable<Row>, rows: Int = 1) throws -> String {
        let q = WriterTable<Row>.quote
        guard !table.columns.isEmpty else { throw BatchWriterError.invalidTable("no columns") }
        let keys = table.keyColumns
        let others = table.valueColumns
        if table.operation != .insert, keys.isEmpty { throw BatchWriterError.invalidTable("update/upsert needs a key column") }
        if table.operation == .update, others.isEmpty { throw BatchWriterError.invalidTable("update needs a non-key column") }
        switch table.operation {
        case .insert, .upsert:
            let tuple = "(" + table.columns.map { _ in "?" }.joined(separator: ", ") + ")"
            var s = "INSERT INTO \(q(table.name)) (\(table.columns.map { q($0.name) }.joined(separator: ", "))) VALUES "
                + Array(repeating: tuple, count: max(1, rows)).joined(separator: ", ")
            if table.operation == .upsert {
                s += " ON CONFLICT (\(keys.map { q($0.name) }.joined(separator: ", "))) "
                s += others.isEmpty
                    ? "DO NOTHING"
                    : "DO UPDATE SET " + others.map { "\(q($0.name)) = excluded.\(q($0.name))" }.joined(separator: ", ")
            }
            return s
        case .update:
            return "UPDATE \(q(table.name)) SET " + others.map { "\(q($0.name)) = ?" }.joined(separator: ", ")
                + " WHERE " + keys.map { "\(q($0.name)) = ?" }.joined(separator: " AND ")
        }
    }
}
