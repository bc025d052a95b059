/// Why one input line was not accepted.
public enum IngestLineProblem: Sendable, Hashable, CustomStringConvertible {
    /// The line is not one well-formed JSON object.
    case invalidJSON
    /// No `custom_id` string, or an empty one.
    case missingCustomID
    /// The `custom_id` appeared on an earlier line of the same input (`firstLine`).
    case duplicateCustomID(firstLine: Int?)
    /// The `custom_id` does not match `^[a-zA-Z0-9_-]{1,64}$` (Anthropic).
    case invalidCustomID
    /// `method` is not `POST` (OpenAI).
    case invalidMethod(String)
    /// `url` is missing or not a batch endpoint of the provider (OpenAI).
    case unknownEndpoint(String)
    /// No `body` (OpenAI) / `params` (Anthropic) object.
    case missingBody
    /// The body names no `model` string.
    case missingModel
    /// The encoded request is larger than the per-request limit.
    case tooLarge(bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case .invalidJSON: "invalid JSON"
        case .missingCustomID: "missing custom_id"
        case let .duplicateCustomID(first): "duplicate custom_id" + (first.map { " (first on line \($0))" } ?? "")
        case .invalidCustomID: "custom_id must match ^[a-zA-Z0-9_-]{1,64}$"
        case let .invalidMethod(m): "method must be POST, not \(m)"
        case let .unknownEndpoint(u): u.isEmpty ? "missing url" : "unknown endpoint \(u)"
        case .missingBody: "missing body/params object"
        case .missingModel: "missing model"
        case let .tooLarge(bytes, limit): "request is \(bytes) bytes, over the \(limit)-byte limit"
        }
    }
}

/// One rejected input line.
public struct IngestLineError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 1-based line number in the input.
    public var line: Int
    public var problem: IngestLineProblem
    /// The line's `custom_id`, when it could be read.
    public var customID: String?

    /// Creates a line error.
    public init(line: Int, problem: IngestLineProblem, customID: String? = nil) {
        self.line = line
        self.problem = problem
        self.customID = customID
    }

    public var description: String { "line \(line)" + (customID.map { " (\($0))" } ?? "") + ": \(problem)" }
}
