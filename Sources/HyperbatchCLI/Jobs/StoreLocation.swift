import Foundation
import HyperbatchJobs
import HyperbatchPostgres
import HyperbatchSQLite
import Logging
import PostgresNIO

/// Where a job command keeps its jobs, chosen by the `--store` value: `postgres://user[:password]@host[:port]/db`
/// (or `postgresql://`) for the shared PostgreSQL store, anything else a SQLite file path.
enum StoreLocation {
    case sqlite(path: String)
    case postgres(PostgresClient.Configuration)

    /// Parses `--store`. Only `sslmode=disable` (the default) is supported for PostgreSQL for now.
    init(_ value: String) throws {
        guard value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") else {
            self = .sqlite(path: value)
            return
        }
        guard let url = URLComponents(string: value), let host = url.host, !host.isEmpty else {
            throw ValidationFailure("--store: not a PostgreSQL URL: \(Self.redacted(value))")
        }
        let sslmode = url.queryItems?.first { $0.name == "sslmode" }?.value ?? "disable"
        guard sslmode == "disable" || sslmode == "prefer" || sslmode == "allow" else {
            throw ValidationFailure("--store: sslmode=\(sslmode) is not supported yet (use sslmode=disable)")
        }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        var configuration = PostgresClient.Configuration(
            host: host, port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
            database: database.isEmpty ? nil : database, tls: .disable)
        configuration.options.minimumConnections = 0
        self = .postgres(configuration)
    }

    /// `value` with any password replaced by `***` (for messages and logs).
    static func redacted(_ value: String) -> String {
        guard var url = URLComponents(string: value), url.password != nil else { return value }
        url.password = "***"
        return url.string ?? "postgres://***"
    }
}

extension JobCLI {
    /// Opens the store named by `--store` for a one-shot command. For PostgreSQL the client runs for the rest of the
    /// process in a background task (the command ends the process), and the schema is migrated first; with `leases`
    /// (a command that runs the pipeline, like `run`) a ``WorkerLease`` keeps its batch leases alive the same way.
    static func openStore(_ value: String, leases: Bool = false) async throws -> any JobStore {
        var logger = Logger(label: "hyperbatch.store")
        logger.logLevel = .error
        switch try StoreLocation(value) {
        case .sqlite(let path):
            return try SQLiteJobStore(path: path)
        case .postgres(let configuration):
            let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
            // One-shot commands have no ServiceGroup; the process exits when the command returns.
            Task.detached { await client.run() }
            let store = PostgresJobStore(client: client, logger: logger)
            try await store.migrate()
            if leases {
                let lease = WorkerLease(
                    store: store, configuration: .init(leaseDuration: store.configuration.leaseDuration), clock: ContinuousClock(), logger: logger)
                Task.detached {
                    // When renewal fails past the lease, the gate closes and the runner's next claim throws.
                    do { try await lease.run() } catch { logger.error("worker lease lost", metadata: ["error": "\(error)"]) }
                }
            }
            return store
        }
    }
}
