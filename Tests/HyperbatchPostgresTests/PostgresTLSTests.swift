import Foundation
import HyperbatchJobs
import HyperbatchPostgres
import HyperbatchTestKit
import Logging
import PostgresNIO
import Testing

/// Fails (does not skip) when `CI=true` and the test server has no TLS: the TLS tests must run in CI.
@Suite struct PostgresTLSCIGuardTests {
    @Test func postgresCAIsSetInCI() {
        if PostgresTestEnvironment.isCI {
            #expect(PostgresTestEnvironment.caPath != nil, "CI=true but HYPERBATCH_POSTGRES_CA is not set: run tests through scripts/with-postgres.sh with openssl installed")
        } else {
            #expect(!PostgresTestEnvironment.isCI)
        }
    }
}

/// `sslmode` against a real server with TLS: `scripts/with-postgres.sh` gives it a certificate for the name `localhost`
/// only, signed by a throwaway CA (`HYPERBATCH_POSTGRES_CA`). The server URL's host is 127.0.0.1, a wrong host name
/// for that certificate; the right one is reached as `localhost` with libpq's `hostaddr=127.0.0.1` (connect to that
/// address, check the certificate against the host name), which also makes other wrong names.
///
/// Why not put 127.0.0.1 in the certificate too: NIOSSL accepts a certificate whose IP address entry matches the
/// connected address whatever host name was asked for, so no wrong name could then be shown to fail.
@Suite(
    "PostgreSQL over TLS",
    .enabled(if: PostgresTestEnvironment.url != nil && PostgresTestEnvironment.caPath != nil,
             "HYPERBATCH_POSTGRES_URL or HYPERBATCH_POSTGRES_CA not set: PostgreSQL TLS tests skipped"))
struct PostgresTLSTests {
    static let logger = Logger(label: "test.pgtls")
    struct Failure: Error, CustomStringConvertible { var description: String }

    var ca: String { PostgresTestEnvironment.caPath ?? "" }

    /// The test server's URL with `query` (and `host`, when given); the `PG…` variables are not consulted.
    func url(host: String? = nil, _ query: String) throws -> PostgresStoreURL {
        var components = try #require(URLComponents(string: PostgresTestEnvironment.url ?? ""))
        if let host { components.host = host }
        components.query = query
        return try PostgresStoreURL(try #require(components.string), environment: [:])
    }

    /// Whether the session running the query is encrypted, as the server sees it.
    static func sslInUse(_ client: PostgresClient) async throws -> Bool {
        let rows = try await client.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: logger)
        for try await ssl in rows.decode(Bool.self) { return ssl }
        throw Failure(description: "no pg_stat_ssl row for this backend")
    }

    /// Runs `body` with a client made from `url`, its `search_path` a new empty schema (dropped afterwards).
    static func withClient<T: Sendable>(
        _ url: PostgresStoreURL, _ body: @escaping @Sendable (PostgresClient) async throws -> T
    ) async throws -> T {
        try await PostgresStoreFixture.withFreshSchema(configuration: url.clientConfiguration) { client, _ in try await body(client) }
    }

    @Test("verify-full with the CA: the store contract passes over an encrypted session", .timeLimit(.minutes(2)),
          arguments: JobStoreContract.names)
    func verifyFullStoreContract(_ name: String) async throws {
        let url = try url(host: "localhost", "hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert=\(ca)")
        #expect(url.tls.verification == .chainAndHostName)
        try await url.checkConnection(logger: Self.logger)
        try await Self.withClient(url) { client in
            #expect(try await Self.sslInUse(client), "pg_stat_ssl says this session is not encrypted")
            let store = PostgresJobStore(client: client, logger: Self.logger)
            try await store.migrate()
            try await JobStoreContract.run(name, on: store)
            #expect(try await Self.sslInUse(client))
        }
    }

    @Test("verify-full: 127.0.0.1 and other names the certificate lacks fail, naming them; verify-ca accepts them",
          .timeLimit(.minutes(1)))
    func hostNameCheck() async throws {
        let byAddress = try url("sslmode=verify-full&sslrootcert=\(ca)")
        let addressError = await #expect(throws: PostgresStoreURLError.self) { try await byAddress.checkConnection(logger: Self.logger) }
        let addressMessage = try #require(addressError?.description)
        #expect(addressMessage.hasPrefix("cannot connect to PostgreSQL at 127.0.0.1:"), "\(addressMessage)")
        #expect(addressMessage.contains("(sslmode=verify-full): the server's certificate is not valid for host name 127.0.0.1"), "\(addressMessage)")
        try await url("sslmode=verify-ca&sslrootcert=\(ca)").checkConnection(logger: Self.logger)

        let wrong = try url(host: "wrong-name.invalid", "hostaddr=127.0.0.1&sslmode=verify-full&sslrootcert=\(ca)")
        let error = await #expect(throws: PostgresStoreURLError.self) { try await wrong.checkConnection(logger: Self.logger) }
        let message = try #require(error?.description)
        #expect(message.hasPrefix("cannot connect to PostgreSQL at wrong-name.invalid:"), "\(message)")
        #expect(message.contains("(sslmode=verify-full, hostaddr=127.0.0.1)"), "\(message)")
        #expect(message.contains("not valid for host name wrong-name.invalid"), "\(message)")

        let chainOnly = try url(host: "wrong-name.invalid", "hostaddr=127.0.0.1&sslmode=verify-ca&sslrootcert=\(ca)")
        try await chainOnly.checkConnection(logger: Self.logger)
        #expect(try await Self.withClient(chainOnly) { try await Self.sslInUse($0) })
    }

    @Test("verify-ca without sslrootcert uses the system trust store, which rejects the throwaway CA",
          .timeLimit(.minutes(1)))
    func untrustedRoot() async throws {
        let url = try url("sslmode=verify-ca")
        let error = await #expect(throws: PostgresStoreURLError.self) { try await url.checkConnection(logger: Self.logger) }
        let message = try #require(error?.description)
        #expect(message.contains("not signed by a trusted root (the system trust store"), "\(message)")
    }

    @Test("require connects without a CA, encrypted; prefer encrypts too; disable stays plain", .timeLimit(.minutes(1)))
    func requirePreferDisable() async throws {
        for (query, encrypted) in [("sslmode=require", true), ("sslmode=prefer", true), ("sslmode=disable", false)] {
            let url = try url(query)
            try await url.checkConnection(logger: Self.logger)
            let ssl = try await Self.withClient(url) { client in
                let store = PostgresJobStore(client: client, logger: Self.logger)
                try await store.migrate()
                return try await Self.sslInUse(client)
            }
            #expect(ssl == encrypted, "\(query)")
        }
    }

    @Test("hyperbatch status --store …?sslmode=verify-full: runs as localhost, fails clearly as 127.0.0.1",
          .timeLimit(.minutes(1)))
    func commandLine() async throws {
        let binary = MultiWorkerTests.binary
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the CLI first: \(binary) is missing")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hb-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // A database of its own (generated name, safe to splice), dropped at the end.
        let database = "hb_tls_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await PostgresTestEnvironment.withClient { admin in
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"), logger: Self.logger)
        }
        var components = try #require(URLComponents(string: PostgresTestEnvironment.url ?? ""))
        components.path = "/" + database
        components.password = "not-printed"  // trust authentication ignores it
        func status(host: String, _ name: String) async throws -> (Int32, String) {
            components.host = host
            components.query = (host == "localhost" ? "hostaddr=127.0.0.1&" : "") + "sslmode=verify-full&sslrootcert=\(ca)"
            let log = dir.appendingPathComponent(name).path
            let process = try Process.launch(binary, ["status", "--store", try #require(components.string)], log: log)
            while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
            return (process.terminationStatus, (try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
        }
        let (okStatus, okOutput) = try await status(host: "localhost", "ok.log")
        #expect(okStatus == 0, "\(okOutput)")
        let (badStatus, badOutput) = try await status(host: "127.0.0.1", "bad.log")
        #expect(badStatus != 0)
        #expect(badOutput.contains("--store: cannot connect to PostgreSQL at 127.0.0.1:"), "\(badOutput)")
        #expect(badOutput.contains("not valid for host name 127.0.0.1"), "\(badOutput)")
        #expect(!badOutput.contains("not-printed") && !okOutput.contains("not-printed"))
        try await PostgresTestEnvironment.withClient { admin in
            try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(database) WITH (FORCE)"), logger: Self.logger)
        }
    }
}
