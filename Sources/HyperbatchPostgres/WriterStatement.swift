import PostgresNIO

/// A batch writer's statement as a postgres-nio `PostgresPreparedStatement`, so postgres-nio prepares it once per
/// connection (Parse on first use, then Bind/Execute only) and caches it under its name.
///
/// `PostgresPreparedStatement` takes its name and SQL from static properties, but a writer's SQL is rendered at run
/// time from its `WriterTable`. The statics therefore read a task-local (``current``) that the writer binds around
/// each `execute` call; postgres-nio reads them synchronously inside that call.
struct WriterStatement: PostgresPreparedStatement {
    /// The name and SQL in effect for the current task.
    struct Text: Sendable {
        /// Prepared statement name (the per-connection cache key).
        var name: String
        /// The statement SQL.
        var sql: String
    }

    /// Bound by the writer around each execution.
    @TaskLocal static var current = Text(name: "hb_writer_unset", sql: "SELECT 1")

    static var name: String { current.name }
    static var sql: String { current.sql }

    typealias Row = ()

    /// One array per column, in column order.
    let bindings: PostgresBindings

    func makeBindings() -> PostgresBindings { bindings }

    func decodeRow(_ row: PostgresRow) throws -> Row {}
}
