import NIOSSL
import PostgresNIO

/// How a connection to PostgreSQL uses TLS, resolved the way libpq resolves `sslmode` and `sslrootcert`.
///
/// Pure: ``init(sslmode:sslrootcert:environment:)`` reads only its arguments (the file named by `sslrootcert` is
/// checked later, by ``PostgresStoreURL``).
public struct PostgresTLSChoice: Sendable, Hashable {
    /// libpq's `sslmode` values.
    public enum Mode: String, Sendable, Hashable, CaseIterable {
        /// Plain connection.
        case disable
        /// libpq tries plain first; here the same as ``prefer``.
        case allow
        /// TLS when the server offers it, else plain; the certificate is not checked (libpq's default).
        case prefer
        /// TLS or fail; the certificate is not checked, unless `sslrootcert` is given (then as ``verifyCA``).
        case require
        /// TLS, and the server's certificate chain must lead to the root certificate; the host name is not checked.
        case verifyCA = "verify-ca"
        /// TLS, the chain must lead to the root certificate, and the certificate must name the host.
        case verifyFull = "verify-full"
    }

    /// Where the trusted root certificates come from.
    public enum RootCertificate: Sendable, Hashable {
        /// The system trust store (`sslrootcert=system`, and the default for `verify-ca` / `verify-full`).
        case system
        /// A PEM file of one or more root certificates (`sslrootcert=PATH`).
        case file(String)
    }

    /// What is checked about the server's certificate.
    public enum Verification: Sendable, Hashable {
        /// Nothing: the connection is encrypted but the server is not authenticated.
        case none
        /// The chain leads to a trusted root.
        case chain
        /// The chain leads to a trusted root and the certificate names the host.
        case chainAndHostName
    }

    /// The `sslmode`.
    public var mode: Mode
    /// The `sslrootcert` given, or nil.
    public var rootCertificate: RootCertificate?

    /// A choice made in code.
    public init(mode: Mode, rootCertificate: RootCertificate? = nil) {
        self.mode = mode
        self.rootCertificate = rootCertificate
    }

    /// Resolves the URL's `sslmode` / `sslrootcert` values (nil or empty when absent), falling back to the
    /// `PGSSLMODE` / `PGSSLROOTCERT` variables of `environment`, then to `prefer` and no root certificate.
    /// `sslrootcert=system` makes the default mode `verify-full` and forbids weaker ones, as in libpq 16.
    /// - Throws: ``PostgresStoreURLError`` naming the parameter (or variable) whose value is not valid.
    public init(sslmode: String?, sslrootcert: String?, environment: [String: String]) throws(PostgresStoreURLError) {
        func given(_ value: String?) -> String? { (value?.isEmpty ?? true) ? nil : value }
        let root: (source: String, value: String)? =
            given(sslrootcert).map { ("sslrootcert", $0) } ?? given(environment["PGSSLROOTCERT"]).map { ("PGSSLROOTCERT", $0) }
        let modeValue: (source: String, value: String)? =
            given(sslmode).map { ("sslmode", $0) } ?? given(environment["PGSSLMODE"]).map { ("PGSSLMODE", $0) }
        self.rootCertificate = root.map { $0.value == "system" ? .system : .file($0.value) }
        if let modeValue {
            guard let mode = Mode(rawValue: modeValue.value) else {
                throw PostgresStoreURLError(
                    "\(modeValue.source)=\(modeValue.value) is not a valid sslmode (use one of "
                        + Mode.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            self.mode = mode
        } else {
            self.mode = rootCertificate == .system ? .verifyFull : .prefer
        }
        if let root, rootCertificate == .system, mode != .verifyFull {
            throw PostgresStoreURLError(
                "\(root.source)=system needs sslmode=verify-full (got \(modeValue?.source ?? "sslmode")=\(mode.rawValue))")
        }
    }

    /// What is checked about the server's certificate; nil when TLS is off.
    public var verification: Verification? {
        switch mode {
        case .disable: return nil
        case .allow, .prefer: return Verification.none
        // libpq: "if a root CA file exists, the behavior of sslmode=require will be the same as that of verify-ca".
        case .require: return rootCertificate == nil ? Verification.none : .chain
        case .verifyCA: return .chain
        case .verifyFull: return .chainAndHostName
        }
    }

    /// The roots the chain is checked against: the given ones, else the system trust store.
    public var effectiveRootCertificate: RootCertificate { rootCertificate ?? .system }

    /// The NIOSSL client configuration for this choice; nil when TLS is off.
    public var tlsConfiguration: TLSConfiguration? {
        guard let verification else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        switch verification {
        case .none: tls.certificateVerification = .none
        case .chain: tls.certificateVerification = .noHostnameVerification
        case .chainAndHostName: tls.certificateVerification = .fullVerification
        }
        // Without verification the roots are never consulted: leave the default, so a missing file cannot fail it.
        if verification != .none, case .file(let path) = effectiveRootCertificate { tls.trustRoots = .file(path) }
        return tls
    }

    /// The setting for `PostgresClient.Configuration.tls`.
    public var clientTLS: PostgresClient.Configuration.TLS {
        guard let tls = tlsConfiguration else { return .disable }
        switch mode {
        case .disable: return .disable
        case .allow, .prefer: return .prefer(tls)
        case .require, .verifyCA, .verifyFull: return .require(tls)
        }
    }

    /// The setting for `PostgresConnection.Configuration.tls` (for a single connection).
    /// - Throws: NIOSSL's error when the root certificates cannot be loaded.
    public func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        guard let tls = tlsConfiguration else { return .disable }
        let context = try NIOSSLContext(configuration: tls)
        switch mode {
        case .disable: return .disable
        case .allow, .prefer: return .prefer(context)
        case .require, .verifyCA, .verifyFull: return .require(context)
        }
    }
}
