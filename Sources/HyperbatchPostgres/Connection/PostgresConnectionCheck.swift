import Logging
import NIOSSL
import PostgresNIO

extension PostgresStoreURL {
    /// Opens one connection (TLS handshake and login included), runs `SELECT 1` and closes it.
    ///
    /// A `PostgresClient` whose connections cannot be made keeps retrying and fails its queries only after a minute,
    /// with a generic error: call this first to fail fast with the reason (bad certificate, wrong host name, server
    /// without TLS, refused login).
    /// - Throws: ``PostgresStoreURLError`` saying which server and why (never the password), and whether the failure
    ///   may pass (``PostgresStoreURLError/isTransient``).
    public func checkConnection(logger: Logger) async throws(PostgresStoreURLError) {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: try connectionConfiguration(), id: 0, logger: logger)
            do {
                try await connection.query("SELECT 1", logger: logger)
            } catch {
                try? await connection.close()
                throw error
            }
            try await connection.close()
        } catch {
            throw PostgresStoreURLError(explain(error), isTransient: PostgresStoreErrors.classify(error) == .transient)
        }
    }

    /// `cannot connect to PostgreSQL at HOST:PORT (sslmode=…): REASON` for a connection failure `error`.
    public func explain(_ error: any Error) -> String {
        let address = hostAddress.map { ", hostaddr=\($0)" } ?? ""
        return "cannot connect to PostgreSQL at \(host):\(port) (sslmode=\(tls.mode.rawValue)\(address)): \(reason(error))"
    }

    private var rootsDescription: String {
        switch tls.effectiveRootCertificate {
        case .system: return "the system trust store; give the server's CA with sslrootcert=PATH"
        case .file(let path): return "sslrootcert=\(path)"
        }
    }

    private func reason(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            if error.code == .sslUnsupported {
                return "the server does not support TLS, and sslmode=\(tls.mode.rawValue) requires it"
            }
            if let info = error.serverInfo {
                return "server said: " + [info[.sqlState], info[.message]].compactMap { $0 }.joined(separator: " ")
            }
            if let underlying = error.underlying { return reason(underlying) }
            return "\(error.code)"
        }
        if let error = error as? NIOSSLExtraError, error == .failedToValidateHostname {
            return "the server's certificate is not valid for host name \(host) (sslmode=verify-full checks the name; "
                + "sslmode=verify-ca only the chain)"
        }
        if let error = error as? NIOSSLError, case .handshakeFailed(let details) = error {
            let text = String(describing: details)
            if text.contains("CERTIFICATE_VERIFY_FAILED") {
                return "the server's certificate is not signed by a trusted root (\(rootsDescription)): \(text)"
            }
            return "TLS handshake failed: \(text)"
        }
        if case .file(let path) = tls.effectiveRootCertificate, error is NIOSSLError || error is BoringSSLError {
            return "cannot load the root certificates from sslrootcert=\(path): \(error)"
        }
        return String(describing: error)
    }
}
