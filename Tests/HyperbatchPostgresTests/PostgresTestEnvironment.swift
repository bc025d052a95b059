import Foundation
import Logging
import PostgresNIO

/// Where the PostgreSQL tests find their server: `HYPERBATCH_POSTGRES_URL` (set by `scripts/with-postgres.sh`).
enum PostgresTestEnvironment {
    /// The server URL, or nil when not set (tests are then skipped locally, and fail under `CI=true`).
    static let url: String? = {
        let value = ProcessInfo.processInfo.environment["HYPERBATCH_POSTGRES_URL"]
        return (value?.isEmpty ?? true) ? nil : value
    }()

    /// The CA certificate of the test server's TLS (`HYPERBATCH_POSTGRES_CA`, set by `scripts/with-postgres.sh` when
    /// openssl is installed), or nil.
    static let caPath: String? = {
        let value = ProcessInfo.processInfo.environment["HYPERBATCH_POSTGRES_CA"]
        return (value?.isEmpty ?? true) ? nil : value
    }()

    /// True when running in CI, where the PostgreSQL tests must never be skipped.
    static let isCI: Bool = ProcessInfo.processInfo.environment["CI"] == "true"

    /// Client configuration parsed from ``url``.
    static func configuration() throws -> PostgresClient.Configuration {
        guard let url, let components = URLComponents(string: url), let host = components.host else {
            throw PostgresTestEnvironmentError.missingURL
        }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        return PostgresClient.Configuration(
            host: host, port: components.port ?? 5432,
            username: components.user ?? "postgres", password: components.password,
            database: database.isEmpty ? nil : database, tls: .disable
        )
    }

    /// Runs `body` with a running client, then stops it.
    static func withClient<T: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> T) async throws -> T {
        let client = PostgresClient(configuration: try configuration())
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { await client.run(); return nil }
            defer { group.cancelAll() }
            let value = try await body(client)
            return value
        }
    }
}

enum PostgresTestEnvironmentError: Error { case missingURL }
