import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://user[:password]@host[:port]/db?sslmode=…&sslrootcert=…` URL (or `postgresql://`), read with libpq's
/// meaning of the parameters, turned into postgres-nio configurations.
///
/// Falls back to the `PGPASSWORD`, `PGSSLMODE` and `PGSSLROOTCERT` environment variables for values the URL lacks.
/// `hostaddr=IP` connects to that address while TLS still checks the certificate against `host` (as in libpq).
/// Other query parameters are ignored. Use ``redacted(_:)`` for any URL shown to people.
public struct PostgresStoreURL: Sendable {
    /// Server host name or IP address (what `verify-full` checks the certificate against).
    public var host: String
    /// The `hostaddr` to connect to instead of resolving ``host``, or nil.
    public var hostAddress: String?
    /// Server port (default 5432).
    public var port: Int
    /// User name (default `postgres`).
    public var username: String
    /// Password from the URL, else `PGPASSWORD`, else nil.
    public var password: String?
    /// Database name, or nil for the server's default (the user name).
    public var database: String?
    /// How TLS is used.
    public var tls: PostgresTLSChoice

    /// True when `value` starts with `postgres://` or `postgresql://`.
    public static func isPostgresURL(_ value: String) -> Bool {
        value.hasPrefix("postgres://") || value.hasPrefix("postgresql://")
    }

    /// Parses `value`. `environment` supplies the `PG…` fallbacks; `fileExists` checks an `sslrootcert` path.
    /// - Throws: ``PostgresStoreURLError`` naming what is wrong (never containing the password).
    public init(
        _ value: String, environment: [String: String] = ProcessInfo.processInfo.environment,
        fileExists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }
    ) throws(PostgresStoreURLError) {
        guard Self.isPostgresURL(value), let url = URLComponents(string: value), let host = url.host, !host.isEmpty else {
            throw PostgresStoreURLError("not a PostgreSQL URL (postgres://user@host[:port]/db): \(Self.redacted(value))")
        }
        let query = url.queryItems ?? []
        func parameter(_ name: String) -> String? { query.last { $0.name == name }?.value }
        self.host = host
        self.hostAddress = parameter("hostaddr").flatMap { $0.isEmpty ? nil : $0 }
        self.port = url.port ?? 5432
        self.username = url.user.flatMap { $0.isEmpty ? nil : $0 } ?? "postgres"
        self.password = url.password ?? environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        let database = url.path.hasPrefix("/") ? String(url.path.dropFirst()) : url.path
        self.database = database.isEmpty ? nil : database
        self.tls = try PostgresTLSChoice(
            sslmode: parameter("sslmode"), sslrootcert: parameter("sslrootcert"), environment: environment)
        // Only a file the connection will read must exist (prefer and disable never read it, as in libpq).
        if let verification = tls.verification, verification != .none, case .file(let path) = tls.rootCertificate,
            !fileExists(path)
        {
            let source = (parameter("sslrootcert") ?? "").isEmpty ? "PGSSLROOTCERT" : "sslrootcert"
            throw PostgresStoreURLError("\(source)=\(path): no such root certificate file")
        }
    }

    /// The configuration for a `PostgresClient` (connection pool) to this server.
    public var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: hostAddress ?? host, port: port, username: username, password: password, database: database,
            tls: tls.clientTLS)
        configuration.options.tlsServerName = tlsServerName
        return configuration
    }

    /// With `hostaddr`, the name TLS checks (and sends as SNI): ``host``, unless it is an IP address, which is
    /// checked against the connected address anyway. Nil otherwise (postgres-nio then uses the host it connects to).
    private var tlsServerName: String? {
        guard hostAddress != nil, !host.contains(":"), host.split(separator: ".").contains(where: { Int($0) == nil })
        else { return nil }
        return host
    }

    /// The configuration for one `PostgresConnection` to this server.
    /// - Throws: NIOSSL's error when the root certificates cannot be loaded.
    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration = try PostgresConnection.Configuration(
            host: hostAddress ?? host, port: port, username: username, password: password, database: database,
            tls: tls.connectionTLS())
        configuration.options.tlsServerName = tlsServerName
        return configuration
    }

    /// `value` with any password replaced by `***` (for messages and logs).
    public static func redacted(_ value: String) -> String {
        guard var url = URLComponents(string: value), url.password != nil else { return value }
        url.password = "***"
        return url.string ?? "postgres://***"
    }
}

/// A PostgreSQL URL that cannot be used, or a server that cannot be reached with it; the message names the
/// parameter or the failure and never contains the password.
public struct PostgresStoreURLError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What is wrong.
    public var description: String
    /// Whether trying again later may succeed (the server refused or closed the connection, or is starting or
    /// shutting down), as opposed to a wrong URL, certificate or login.
    public var isTransient: Bool

    /// An error saying `description`.
    public init(_ description: String, isTransient: Bool = false) {
        self.description = description
        self.isTransient = isTransient
    }
}
