/// An error from the ``Batcher`` itself (not from the handler), with a code to match on and a message that says what
/// was wrong.
public struct BatcherError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// The batcher is shutting down or has shut down; it accepts no new items.
        case shutDown
        /// A pending limit was reached and the overflow policy is `reject`.
        case overloaded
        /// The item's deadline passed before it could be sent; it was not sent.
        case deadlineExceeded
        /// The item alone weighs more than `maxBatchWeight`.
        case overweight
        /// The handler returned a different number of results than it was given inputs.
        case resultCountMismatch
        /// A configuration value is nonsensical.
        case invalidConfiguration
        /// The key's circuit breaker is open and its policy is to fail fast.
        case circuitOpen
    }

    /// What went wrong.
    public var code: Code
    /// A sentence that says what was wrong, with the values involved.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "BatcherError.\(code.rawValue): \(message)" }

    @usableFromInline static let shutDown = BatcherError(.shutDown, "the batcher is shut down and accepts no new items")
}
