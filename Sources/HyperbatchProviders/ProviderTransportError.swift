import HyperbatchJobs

/// A provider call failed below the HTTP level (connection refused, reset, timeout), after every retry.
public struct ProviderTransportError: Error, Sendable, CustomStringConvertible {
    /// The HTTP method and path that failed (never the host's credentials).
    public var request: String
    /// The underlying error's description.
    public var underlying: String

    /// Creates a transport error.
    public init(request: String, underlying: String) {
        self.request = request
        self.underlying = underlying
    }

    public var description: String { "transport error on \(request): \(underlying)" }
}
