/// The identity of one job (one submission), chosen by the caller or generated; stable across restarts.
public struct JobID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// The id as stored.
    public var rawValue: String

    /// Wraps an existing id.
    public init(rawValue: String) { self.rawValue = rawValue }

    /// Wraps an existing id.
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public var description: String { rawValue }
}
