import HyperbatchPostgres
import NIOSSL
import PostgresNIO
import Testing

/// `PostgresStoreURL` / `PostgresTLSChoice`: the libpq reading of a `--store` URL plus the `PG…` variables. Pure (the
/// `sslrootcert` file check is injected); no server needed.
@Suite("PostgresStoreURL (StoreLocation parsing)")
struct PostgresStoreURLTests {
    static let root = "/certs/root.pem"

    func parse(_ value: String, _ environment: [String: String] = [:]) throws(PostgresStoreURLError) -> PostgresStoreURL {
        try PostgresStoreURL(value, environment: environment, fileExists: { $0 == Self.root })
    }

    func error(_ value: String, _ environment: [String: String] = [:]) -> String? {
        do {
            _ = try parse(value, environment)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("host, port, user, password, database; defaults 5432, postgres, server default database")
    func parts() throws {
        let url = try parse("postgresql://ann:s%40cret@db.example.com:6543/jobs")
        #expect(url.host == "db.example.com" && url.port == 6543 && url.username == "ann" && url.database == "jobs")
        #expect(url.password == "s@cret")
        let bare = try parse("postgres://db.example.com")
        #expect(bare.port == 5432 && bare.username == "postgres" && bare.password == nil && bare.database == nil)
        #expect(bare.clientConfiguration.host == "db.example.com" && bare.clientConfiguration.port == 5432)
    }

    @Test("sslmode: each libpq value maps to its postgres-nio mode and certificate check", arguments: [
        ("disable", PostgresTLSChoice.Mode.disable, nil),
        ("allow", .allow, CertificateVerification.none),
        ("prefer", .prefer, CertificateVerification.none),
        ("require", .require, CertificateVerification.none),
        ("verify-ca", .verifyCA, .noHostnameVerification),
        ("verify-full", .verifyFull, .fullVerification),
    ] as [(String, PostgresTLSChoice.Mode, CertificateVerification?)])
    func modes(_ value: String, _ mode: PostgresTLSChoice.Mode, _ check: CertificateVerification?) throws {
        let tls = try parse("postgres://h/db?sslmode=\(value)").tls
        #expect(tls.mode == mode)
        #expect(tls.tlsConfiguration?.certificateVerification == check)
        // Without sslrootcert the chain is checked against the system trust store.
        if let configuration = tls.tlsConfiguration { #expect(configuration.trustRoots == .default) }
    }

    @Test("no sslmode anywhere: prefer (libpq's default), nothing verified")
    func defaultIsPrefer() throws {
        let tls = try parse("postgres://h/db").tls
        #expect(tls.mode == .prefer && tls.verification == PostgresTLSChoice.Verification.none)
    }

    @Test("sslrootcert: the file's roots for verify-*, and require with a root checks the chain (libpq compat)")
    func rootCertificate() throws {
        let full = try parse("postgres://h/db?sslmode=verify-full&sslrootcert=\(Self.root)").tls
        #expect(full.rootCertificate == .file(Self.root) && full.verification == .chainAndHostName)
        #expect(full.tlsConfiguration?.trustRoots == .file(Self.root))
        let require = try parse("postgres://h/db?sslmode=require&sslrootcert=\(Self.root)").tls
        #expect(require.verification == .chain)
        #expect(require.tlsConfiguration?.certificateVerification == .noHostnameVerification)
        #expect(require.tlsConfiguration?.trustRoots == .file(Self.root))
    }

    @Test("sslrootcert=system: verify-full by default, weaker modes refused")
    func systemRoots() throws {
        let tls = try parse("postgres://h/db?sslrootcert=system").tls
        #expect(tls.mode == .verifyFull && tls.effectiveRootCertificate == .system)
        #expect(tls.tlsConfiguration?.trustRoots == .default)
        let message = try #require(error("postgres://h/db?sslmode=require&sslrootcert=system"))
        #expect(message.contains("sslrootcert=system needs sslmode=verify-full"))
    }

    @Test("PGSSLMODE / PGSSLROOTCERT / PGPASSWORD fill in what the URL lacks; the URL wins")
    func environmentFallbacks() throws {
        let environment = ["PGSSLMODE": "verify-ca", "PGSSLROOTCERT": Self.root, "PGPASSWORD": "from-env"]
        let fromEnvironment = try parse("postgres://ann@h/db", environment)
        #expect(fromEnvironment.tls == PostgresTLSChoice(mode: .verifyCA, rootCertificate: .file(Self.root)))
        #expect(fromEnvironment.password == "from-env")
        let fromURL = try parse("postgres://ann:pw@h/db?sslmode=disable", environment)
        #expect(fromURL.tls.mode == .disable && fromURL.password == "pw")
        #expect(fromURL.clientConfiguration.password == "pw")
        // Empty values count as absent.
        #expect(try parse("postgres://h/db?sslmode=", ["PGSSLMODE": "require", "PGPASSWORD": ""]).tls.mode == .require)
        #expect(try parse("postgres://h/db", ["PGPASSWORD": ""]).password == nil)
    }

    @Test("an unknown sslmode names the parameter (or variable) and the valid values")
    func unknownMode() throws {
        let message = try #require(error("postgres://ann:secret@h/db?sslmode=verify_full"))
        #expect(message.contains("sslmode=verify_full is not a valid sslmode"))
        #expect(message.contains("disable, allow, prefer, require, verify-ca, verify-full"))
        #expect(!message.contains("secret"))
        #expect(try #require(error("postgres://h/db", ["PGSSLMODE": "on"])).contains("PGSSLMODE=on is not a valid sslmode"))
    }

    @Test("a missing sslrootcert file is an error naming its source when the file would be used, ignored otherwise")
    func missingRootFile() throws {
        #expect(error("postgres://h/db?sslmode=verify-full&sslrootcert=/nope.pem") == "sslrootcert=/nope.pem: no such root certificate file")
        #expect(error("postgres://h/db?sslmode=require", ["PGSSLROOTCERT": "/nope.pem"]) == "PGSSLROOTCERT=/nope.pem: no such root certificate file")
        // prefer never checks the certificate, disable never uses TLS: the file is not needed.
        #expect(error("postgres://h/db?sslmode=prefer&sslrootcert=/nope.pem") == nil)
        #expect(error("postgres://h/db?sslmode=disable&sslrootcert=/nope.pem") == nil)
    }

    @Test("hostaddr: connect to the address, check the certificate against host")
    func hostAddress() throws {
        let named = try parse("postgres://db.internal:5433/db?hostaddr=10.0.0.7&sslmode=verify-full")
        #expect(named.clientConfiguration.host == "10.0.0.7")
        #expect(named.clientConfiguration.options.tlsServerName == "db.internal")
        #expect(try named.connectionConfiguration().options.tlsServerName == "db.internal")
        // An IP host is checked against the connected address by NIOSSL; it is not a valid SNI name.
        #expect(try parse("postgres://10.0.0.8/db?hostaddr=10.0.0.7").clientConfiguration.options.tlsServerName == nil)
        #expect(try parse("postgres://db.internal/db").clientConfiguration.options.tlsServerName == nil)
    }

    @Test("not a URL, or no host: an error without the password; redacted hides it")
    func badURLs() throws {
        let message = try #require(error("postgres://ann:secret@/db"))
        #expect(message.contains("not a PostgreSQL URL") && !message.contains("secret"))
        #expect(PostgresStoreURL.redacted("postgres://ann:secret@h/db") == "postgres://ann:***@h/db")
        #expect(PostgresStoreURL.redacted("postgres://ann@h/db") == "postgres://ann@h/db")
        #expect(!PostgresStoreURL.isPostgresURL("jobs.sqlite") && PostgresStoreURL.isPostgresURL("postgresql://h"))
    }

    @Test("connection failures are explained: host name mismatch, untrusted root")
    func explanations() throws {
        let url = try parse("postgres://db.internal:5433/db?sslmode=verify-full&sslrootcert=\(Self.root)")
        let mismatch = url.explain(NIOSSLExtraError.failedToValidateHostname)
        #expect(mismatch.hasPrefix("cannot connect to PostgreSQL at db.internal:5433 (sslmode=verify-full): "))
        #expect(mismatch.contains("not valid for host name db.internal"))
        let untrusted = url.explain(NIOSSLError.handshakeFailed(.sslError([])))
        #expect(untrusted.contains("TLS handshake failed"))
    }
}
