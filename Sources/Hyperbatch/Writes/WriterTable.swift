import Foundation

/// The SQL type of one column a batch writer fills.
public enum WriterColumnType: Sendable, Hashable {
    /// 64-bit integer (`bigint` on PostgreSQL; `integer`/`int` columns accept it by assignment cast).
    case int
    /// Double precision floating point.
    case double
    /// Boolean.
    case bool
    /// Text.
    case text
    /// JSON text, cast to `jsonb` on PostgreSQL, stored as TEXT on SQLite.
    case jsonb
    /// Timestamp with time zone (`Date`).
    case timestamptz
}

/// One value taken from a row for one column.
public enum WriterValue: Sendable, Hashable, Comparable {
    /// An integer.
    case int(Int)
    /// A double.
    case double(Double)
    /// A boolean.
    case bool(Bool)
    /// A string (text or JSON).
    case text(String)
    /// A timestamp.
    case date(Date)

    /// Orders values of the same kind; used to sort rows by key so batches lock rows in one consistent order.
    public static func < (lhs: WriterValue, rhs: WriterValue) -> Bool {
        switch (lhs, rhs) {
        case let (.int(a), .int(b)): return a < b
        case let (.double(a), .double(b)): return a < b
        case let (.bool(a), .bool(b)): return !a && b
        case let (.text(a), .text(b)): return a < b
        case let (.date(a), .date(b)): return a < b
        default: return lhs.rank < rhs.rank
        }
    }

    private var rank: Int {
        switch self {
        case .int: 0
        case .double: 1
        case .bool: 2
        case .text: 3
        case .date: 4
        }
    }
}

/// What a batch writer does with each row.
public enum WriteOperation: Sendable, Hashable {
    /// `INSERT`; a row whose key exists fails alone.
    case insert
    /// `UPDATE … WHERE key = …`; a row whose key does not exist changes nothing and succeeds.
    case update
    /// `INSERT … ON CONFLICT (key) DO UPDATE`.
    case upsert
}

/// One column of a ``WriterTable``: its name, SQL type, whether it is part of the key, and how to read it from a row.
public struct WriterColumn<Row>: Sendable {
    /// Column name (quoted when rendered into SQL).
    public let name: String
    /// SQL type.
    public let type: WriterColumnType
    /// True for key columns (the conflict target, the `WHERE` of updates, the lock order).
    public let isKey: Bool
    /// Reads the column's value from a row.
    public let value: @Sendable (Row) -> WriterValue
}

/// Describes, once and without SQL, how rows of type `Row` map to a table; batch writers render their SQL from it.
///
/// ```swift
/// let table = WriterTable<Entity>("entities", operation: .update)
///     .key("id", .int, \.id)
///     .column("hp", .int, \.hp)
///     .column("state", .jsonb, \.stateJSON)
/// ```
public struct WriterTable<Row>: Sendable {
    /// Table name (quoted when rendered into SQL).
    public let name: String
    /// Insert, update or upsert.
    public let operation: WriteOperation
    /// Columns in declaration order.
    public private(set) var columns: [WriterColumn<Row>] = []

    /// A table named `name` written with `operation`; add columns with ``key(_:_:_:)`` and ``column(_:_:_:)``.
    public init(_ name: String, operation: WriteOperation) {
        self.name = name
        self.operation = operation
    }

    /// Key columns, in declaration order.
    public var keyColumns: [WriterColumn<Row>] { columns.filter(\.isKey) }
    /// Non-key columns, in declaration order.
    public var valueColumns: [WriterColumn<Row>] { columns.filter { !$0.isKey } }

    /// Adds a key column read with a closure.
    public func key(_ name: String, _ type: WriterColumnType, _ value: @escaping @Sendable (Row) -> WriterValue) -> Self {
        adding(WriterColumn(name: name, type: type, isKey: true, value: value))
    }

    /// Adds a non-key column read with a closure.
    public func column(_ name: String, _ type: WriterColumnType, _ value: @escaping @Sendable (Row) -> WriterValue) -> Self {
        adding(WriterColumn(name: name, type: type, isKey: false, value: value))
    }

    /// Adds an integer key column read through a key path.
    public func key(_ name: String, _ type: WriterColumnType, _ path: any KeyPath<Row, Int> & Sendable) -> Self {
        key(name, type) { .int($0[keyPath: path]) }
    }

    /// Adds a string key column read through a key path.
    public func key(_ name: String, _ type: WriterColumnType, _ path: any KeyPath<Row, String> & Sendable) -> Self {
        key(name, type) { .text($0[keyPath: path]) }
    }

    /// Adds an integer column read through a key path.
    public func column(_ name: String, _ type: WriterColumnType, _ path: any KeyPath<Row, Int> & Sendable) -> Self {
        column(name, type) { .int($0[keyPath: path]) }
    }

    /// Adds a double column read through a key path.
    public func column(_ name: String, _ type: WriterColumnType, _ path: any KeyPath<Row, Double> & Sendable) -> Self {
        column(name, type) { .double($0[keyPath: path]) }
    }

    /// Adds a boolean column read through a key path.
    public func column(_ name: String, _ type: WriterColumnType, _ path: any KeyPath<Row, Bool> & Sendable) -> Self {
        column(name, type) { .bool($0[keyPath: path]) }
    }

    /// Adds a text or JSON column read through a key path.
    public func column(_ name: String, _ type: WriterColumnType, _ path: any KeyPath<Row, String> & Sendable) -> Self {
        column(name, type) { .text($0[keyPath: path]) }
    }

    /// Adds a timestamp column read through a key path.
    public func column(_ name: String, _ type: WriterColumnType, _ path: any KeyPath<Row, Date> & Sendable) -> Self {
        column(name, type) { .date($0[keyPath: path]) }
    }

    /// The key of a row, used to sort a batch into one consistent lock order.
    public func keyValues(of row: Row) -> [WriterValue] {
        keyColumns.map { $0.value(row) }
    }

    /// Row indices sorted by key (stable), so concurrent batches over overlapping keys lock rows in the same order.
    public func lockOrder(_ rows: [Row]) -> [Int] {
        let keys = rows.map(keyValues(of:))
        return rows.indices.sorted { a, b in
            keys[a].lexicographicallyPrecedes(keys[b]) || (keys[a] == keys[b] && a < b)
        }
    }

    /// Quotes an SQL identifier (`"` doubled), for PostgreSQL and SQLite alike.
    public static func quote(_ identifier: String) -> String {
        "\"" + identifier.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private func adding(_ column: WriterColumn<Row>) -> Self {
        var copy = self
        copy.columns.append(column)
        return copy
    }
}

/// Errors a batch writer reports for a whole batch or for one row.
public enum BatchWriterError: Error, Sendable, Equatable {
    /// The table description cannot be rendered (no columns, no key for update/upsert).
    case invalidTable(String)
    /// A row's value did not match its column's declared type.
    case typeMismatch(column: String)
}

/// Splits `indices` in halves until every failing index is alone; `attempt` applies a sub-batch atomically.
///
/// Pure driver shared by the PostgreSQL and SQLite writers: successful halves are kept, failing singletons get their error.
public func bisectBatch(
    _ indices: ArraySlice<Int>,
    into results: inout [Result<Void, any Error>?],
    attempt: (ArraySlice<Int>) async throws -> Void
) async {
    guard !indices.isEmpty else { return }
    do {
        try await attempt(indices)
        for i in indices { results[i] = .success(()) }
    } catch {
        if indices.count == 1 {
            results[indices.first!] = .failure(error)
            return
        }
        let mid = indices.startIndex + indices.count / 2
        await bisectBatch(indices[indices.startIndex..<mid], into: &results, attempt: attempt)
        await bisectBatch(indices[mid..<indices.endIndex], into: &results, attempt: attempt)
    }
}
