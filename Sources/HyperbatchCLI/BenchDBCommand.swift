import ArgumentParser
import Foundation
import GRDB
import Hyperbatch
import HyperbatchPostgres
import HyperbatchSQLite
import Logging
import PostgresNIO

/// `hyperbatch bench db`: single-row statements vs the batch writer at several batch sizes, UPDATE (random keys) and
/// INSERT, one connection, baseline and writer in the same run.
///
/// Before each measurement the table is settled (PostgreSQL: `VACUUM`; SQLite: WAL checkpoint), untimed, so that
/// later sizes do not pay for the dead rows and WAL that earlier sizes left behind.
struct BenchDBCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Batched database writes vs single-row statements (postgres://… or sqlite:PATH)."
    )

    @Option(help: "postgres://user@host:port/db or sqlite:PATH") var url: String
    @Option(help: "Comma-separated batch sizes.") var sizes: String = "1,8,32,73,127,256,857,2048"
    @Option(help: "Rows in the entities table.") var rows: Int = 100_000
    @Option(help: "Operations per measurement.") var ops: Int = 20_000
    @Option(help: "Single-row operations per measurement.") var singleOps: Int = 3_000
    @Option(help: "At least this many batches per batch size (large sizes would otherwise run only a few).")
    var minBatches: Int = 20
    @Option(name: .customLong("synchronous-commit"), help: "PostgreSQL synchronous_commit for the session (on/off).")
    var synchronousCommit: String?
    @Flag(help: "PostgreSQL: after the sweep, show the UPDATE's plan at the largest size (prepared vs bare arrays).")
    var explain = false
    @Flag(help: "Print one JSON object.") var json = false

    struct Entity: Sendable {
        var id: Int
        var hp: Int
        var state: String
        var updatedAt: Date
    }

    /// One measured line.
    struct Line: Codable {
        var operation: String
        var batchSize: Int
        var opsPerSecond: Double
        var ratio: Double
    }

    func run() async throws {
        let batchSizes = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        let backend: any DBBackend = url.hasPrefix("sqlite:")
            ? try SQLiteBackend(path: String(url.dropFirst("sqlite:".count)))
            : try PostgresBackend(url: url, synchronousCommit: synchronousCommit)
        let (lines, notes) = try await Self.measure(backend, options: self, batchSizes: batchSizes)
        report(lines, notes: notes)
    }

    private static func measure<B: DBBackend>(_ backend: B, options: BenchDBCommand, batchSizes: [Int]) async throws -> ([Line], [String]) {
        let (rows, ops, singleOps, minBatches, explain) = (options.rows, options.ops, options.singleOps, options.minBatches, options.explain)
        return try await backend.run { b in
            try await b.reset(rows: rows)
            var lines: [Line] = []
            var nextID = rows
            for operation in ["update", "insert"] {
                func single() async throws -> Double {
                    let start = ContinuousClock.now
                    for _ in 0..<singleOps {
                        if operation == "update" {
                            try await b.singleUpdate(Entity(id: Int.random(in: 0..<rows), hp: Int.random(in: 0..<1000), state: "{}", updatedAt: Date()))
                        } else {
                            try await b.singleInsert(Entity(id: nextID, hp: 1, state: "{}", updatedAt: Date()))
                            nextID += 1
                        }
                    }
                    return Double(singleOps) / (ContinuousClock.now - start).seconds
                }
                try await b.settle()
                let base = try await single()
                lines.append(Line(operation: operation, batchSize: 0, opsPerSecond: base, ratio: 1))
                for size in batchSizes {
                    let batches = max(minBatches, ops / size)
                    try await b.settle()
                    let start = ContinuousClock.now
                    for _ in 0..<batches {
                        if operation == "update" {
                            let batch = (0..<size).map { _ in Entity(id: Int.random(in: 0..<rows), hp: Int.random(in: 0..<1000), state: "{}", updatedAt: Date()) }
                            // Duplicate ids in one UPDATE … FROM UNNEST would update a row twice; keep the last.
                            var seen = Set<Int>()
                            try await b.batchUpdate(batch.filter { seen.insert($0.id).inserted })
                        } else {
                            let batch = (0..<size).map { Entity(id: nextID + $0, hp: 1, state: "{}", updatedAt: Date()) }
                            nextID += size
                            try await b.batchInsert(batch)
                        }
                    }
                    let rate = Double(batches * size) / (ContinuousClock.now - start).seconds
                    lines.append(Line(operation: operation, batchSize: size, opsPerSecond: rate, ratio: rate / base))
                }
            }
            var notes = try await b.settings()
            if explain { notes += try await b.explainUpdate(rows: rows, batchSize: batchSizes.max() ?? 1) }
            return (lines, notes)
        }
    }

    private func report(_ lines: [Line], notes: [String]) {
        var best: [String: Int] = [:]
        for op in ["update", "insert"] {
            let candidates = lines.filter { $0.operation == op && $0.batchSize > 0 }
            if let top = candidates.max(by: { $0.opsPerSecond < $1.opsPerSecond }) {
                // Recommend the smallest size within 10% of the best rate (lower latency, same throughput).
                best[op] = candidates.filter { $0.opsPerSecond >= 0.9 * top.opsPerSecond }.map(\.batchSize).min()
            }
        }
        if json {
            struct Output: Codable {
                var url: String; var synchronousCommit: String?; var rows: Int; var lines: [Line]
                var recommendedBatchSize: [String: Int]; var notes: [String]
            }
            let redacted = url.hasPrefix("sqlite:") ? url : (URLComponents(string: url).map { c in var c = c; c.password = nil; return c.string ?? "" } ?? "")
            let data = try! JSONEncoder().encode(Output(
                url: redacted, synchronousCommit: synchronousCommit, rows: rows, lines: lines, recommendedBatchSize: best, notes: notes))
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("operation  batch      ops/s   ×single")
        for l in lines {
            let size = l.batchSize == 0 ? "single" : String(l.batchSize)
            print(l.operation.padding(toLength: 10, withPad: " ", startingAt: 0)
                + " " + String(repeating: " ", count: max(0, 6 - size.count)) + size
                + " " + String(format: "%10.0f %8.1f×", l.opsPerSecond, l.ratio))
        }
        for (op, size) in best.sorted(by: { $0.key < $1.key }) { print("recommended \(op) batch size: \(size)") }
        for note in notes { print(note) }
    }
}


protocol DBBackend: Sendable {
    func run<T: Sendable>(_ body: @escaping @Sendable (Self) async throws -> T) async throws -> T
    func reset(rows: Int) async throws
    func singleUpdate(_ e: BenchDBCommand.Entity) async throws
    func singleInsert(_ e: BenchDBCommand.Entity) async throws
    func batchUpdate(_ rows: [BenchDBCommand.Entity]) async throws
    func batchInsert(_ rows: [BenchDBCommand.Entity]) async throws
    /// Untimed housekeeping before a measurement (PostgreSQL `VACUUM`, SQLite WAL checkpoint).
    func settle() async throws
    /// Settings that shape the figures, one line each (for the report).
    func settings() async throws -> [String]
    /// Diagnostic lines: the plan of the writer's UPDATE at `batchSize` rows (PostgreSQL only).
    func explainUpdate(rows: Int, batchSize: Int) async throws -> [String]
}

private func tables(_ op: WriteOperation) -> WriterTable<BenchDBCommand.Entity> {
    let t = WriterTable<BenchDBCommand.Entity>("entities", operation: op)
        .key("id", .int, \.id).column("hp", .int, \.hp)
    return (op == .insert ? t.column("state", .jsonb, \.state) : t).column("updated_at", .timestamptz, \.updatedAt)
}

private func check(_ results: [Result<Void, any Error>]) throws {
    for r in results { try r.get() }
}

struct PostgresBackend: DBBackend {
    let client: PostgresClient
    let logger = Logger(label: "hyperbatch.bench.db")
    let update: PostgresBatchWriter<BenchDBCommand.Entity>
    let insert: PostgresBatchWriter<BenchDBCommand.Entity>

    init(url: String, synchronousCommit: String?) throws {
        guard let c = URLComponents(string: url), let host = c.host else { throw ValidationError("bad --url") }
        var config = PostgresClient.Configuration(
            host: host, port: c.port ?? 5432, username: c.user ?? "postgres", password: c.password,
            database: c.path.count > 1 ? String(c.path.dropFirst()) : nil, tls: .disable)
        if let synchronousCommit { config.options.additionalStartupParameters = [("synchronous_commit", synchronousCommit)] }
        config.options.maximumConnections = 1
        client = PostgresClient(configuration: config)
        update = try PostgresBatchWriter(client: client, table: tables(.update), logger: logger)
        insert = try PostgresBatchWriter(client: client, table: tables(.insert), logger: logger)
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (Self) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await client.run(); return nil }
            defer { group.cancelAll() }
            return try await body(self)
        }
    }

    func reset(rows: Int) async throws {
        try await client.query("DROP TABLE IF EXISTS entities", logger: logger)
        try await client.query("CREATE TABLE entities (id bigint PRIMARY KEY, state jsonb, hp int, updated_at timestamptz)", logger: logger)
        try await client.query(
            "INSERT INTO entities SELECT g, '{}'::jsonb, 100, now() FROM generate_series(0, \(rows - 1)) AS g", logger: logger)
        try await client.query("ANALYZE entities", logger: logger)
    }

    func singleUpdate(_ e: BenchDBCommand.Entity) async throws {
        try await client.query("UPDATE entities SET hp = \(e.hp), updated_at = \(e.updatedAt) WHERE id = \(e.id)", logger: logger)
    }

    func singleInsert(_ e: BenchDBCommand.Entity) async throws {
        try await client.query(
            "INSERT INTO entities (id, hp, state, updated_at) VALUES (\(e.id), \(e.hp), \(e.state)::jsonb, \(e.updatedAt))", logger: logger)
    }

    func batchUpdate(_ rows: [BenchDBCommand.Entity]) async throws { try check(try await update.write(rows)) }
    func batchInsert(_ rows: [BenchDBCommand.Entity]) async throws { try check(try await insert.write(rows)) }

    func settle() async throws {
        try await client.query("VACUUM entities", logger: logger)
    }

    func settings() async throws -> [String] {
        var out: [String] = []
        for try await (version, sync, mode) in try await client.query(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit'), current_setting('plan_cache_mode')",
            logger: logger).decode((String, String, String).self) {
            out.append("server \(version), synchronous_commit=\(sync), plan_cache_mode=\(mode)")
        }
        return out
    }

    /// The writer's prepared UPDATE (`EXPLAIN ANALYZE EXECUTE`, on the bench's only connection) next to the same
    /// statement with bare array parameters (the unprepared form that flips to a sequential scan), at `batchSize` rows.
    func explainUpdate(rows: Int, batchSize: Int) async throws -> [String] {
        var out: [String] = []
        for try await (generic, custom) in try await client.query(
            "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = \(update.statementName)",
            logger: logger).decode((Int, Int).self) {
            out.append("\(update.statementName): \(generic) generic plans, \(custom) custom plans so far")
        }
        let step = max(1, rows / max(1, batchSize))
        let ids = (0..<min(batchSize, rows)).map { $0 * step }
        let hps = ids.map { _ in Int.random(in: 0..<1000) }
        let dates = ids.map { _ in Date() }
        func plan(_ title: String, _ query: PostgresQuery) async throws {
            out.append("\(title):")
            for try await line in try await client.query(query, logger: logger).decode(String.self) { out.append("  " + line) }
        }
        let literal = { (xs: [Int]) in "'{" + xs.map(String.init).joined(separator: ",") + "}'" }
        try await plan("prepared writer UPDATE, \(ids.count) rows", PostgresQuery(unsafeSQL:
            "EXPLAIN (ANALYZE, COSTS OFF) EXECUTE \(update.statementName)(\(literal(ids)), \(literal(hps)), array_fill(now(), ARRAY[\(ids.count)]))"))
        var binds = PostgresBindings()
        binds.append(ids)
        binds.append(hps)
        binds.append(dates)
        let bare = update.sql.replacingOccurrences(of: #"\(SELECT (\$[0-9]+::[a-z0-9]+\[\])\)"#, with: "$1", options: .regularExpression)
        try await plan("same UPDATE with bare array parameters (unprepared), \(ids.count) rows",
                       PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, COSTS OFF) " + bare, binds: binds))
        return out
    }
}

struct SQLiteBackend: DBBackend {
    let pool: DatabasePool
    let update: SQLiteBatchWriter<BenchDBCommand.Entity>
    let insert: SQLiteBatchWriter<BenchDBCommand.Entity>

    init(path: String) throws {
        var config = Configuration()
        config.prepareDatabase { try $0.execute(sql: "PRAGMA synchronous = NORMAL") }
        pool = try DatabasePool(path: path, configuration: config)
        update = try SQLiteBatchWriter(writer: pool, table: tables(.update))
        insert = try SQLiteBatchWriter(writer: pool, table: tables(.insert))
    }

    func run<T: Sendable>(_ body: @escaping @Sendable (Self) async throws -> T) async throws -> T { try await body(self) }

    func reset(rows: Int) async throws {
        try await pool.write { db in
            try db.execute(sql: "DROP TABLE IF EXISTS entities")
            try db.execute(sql: "CREATE TABLE entities (id INTEGER PRIMARY KEY, state TEXT, hp INTEGER, updated_at TEXT)")
            try db.execute(sql: """
                WITH RECURSIVE g(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM g WHERE i + 1 < ?)
                INSERT INTO entities SELECT i, '{}', 100, datetime('now') FROM g
                """, arguments: [rows])
        }
    }

    // Single rows format dates the way the writer does, so the ratio measures batching, not date formatting.
    func singleUpdate(_ e: BenchDBCommand.Entity) async throws {
        try await pool.write { try $0.execute(sql: "UPDATE entities SET hp = ?, updated_at = ? WHERE id = ?", arguments: [e.hp, SQLiteDateText.string(e.updatedAt), e.id]) }
    }

    func singleInsert(_ e: BenchDBCommand.Entity) async throws {
        try await pool.write {
            try $0.execute(sql: "INSERT INTO entities (id, hp, state, updated_at) VALUES (?, ?, ?, ?)", arguments: [e.id, e.hp, e.state, SQLiteDateText.string(e.updatedAt)])
        }
    }

    func batchUpdate(_ rows: [BenchDBCommand.Entity]) async throws { try check(try await update.write(rows)) }
    func batchInsert(_ rows: [BenchDBCommand.Entity]) async throws { try check(try await insert.write(rows)) }

    func settle() async throws {
        try await pool.writeWithoutTransaction { try $0.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
    }

    func settings() async throws -> [String] {
        try await pool.read { db in
            let version = try String.fetchOne(db, sql: "SELECT sqlite_version()") ?? "?"
            let mode = try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "?"
            let sync = try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
            let cache = try Int.fetchOne(db, sql: "PRAGMA cache_size") ?? 0
            return ["sqlite \(version), journal_mode=\(mode), synchronous=\(sync == 1 ? "NORMAL" : String(sync)), cache_size=\(cache)"]
        }
    }

    func explainUpdate(rows: Int, batchSize: Int) async throws -> [String] { [] }
}
