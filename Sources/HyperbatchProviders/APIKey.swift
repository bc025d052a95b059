import Foundation

/// A provider API key. Its `description` and `debugDescription` are redacted so it never reaches a log or an error.
public struct APIKey: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// The secret itself; only the HTTP layer reads it, to set the auth header.
    let secret: String

    /// Creates a key from its value (surrounding whitespace and newlines are trimmed).
    public init(_ secret: String) {
        self.secret = secret.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Reads a key from environment variable `name`; nil when unset or empty.
    public static func environment(_ name: String, _ environment: [String: String] = ProcessInfo.processInfo.environment) -> APIKey? {
        guard let value = environment[name], !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return nil }
        return APIKey(value)
    }

    /// Reads a key from the file at `path` (its whole content, trimmed). Throws if the file cannot be read or is empty.
    public static func file(_ path: String) throws -> APIKey {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let key = APIKey(text)
        guard !key.secret.isEmpty else { throw ProviderConfigurationError.emptyKeyFile(path: path) }
        return key
    }

    public var description: String { "APIKey(<redacted>)" }
    public var debugDescription: String { description }
}

/// A provider client could not be configured.
public enum ProviderConfigurationError: Error, Sendable, Hashable {
    /// The key file at `path` was empty.
    case emptyKeyFile(path: String)
    /// No key in environment variable `variable`.
    case missingKey(variable: String)
    /// The base URL is not a valid absolute URL.
    case invalidBaseURL(String)
}
