/// Errors a ``JobStore`` throws for calls that do not fit the stored state.
public struct JobStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// No job with that id.
        case unknownJob
        /// No batch with that id.
        case unknownBatch
        /// Requests cannot be added to a cancelled job.
        case jobCanceled
        /// The batch is not in a state that allows the call (e.g. recording a different provider id).
        case invalidTransition
    }

    public var code: Code
    /// Which job or batch, and what was attempted.
    public var context: String

    /// Creates an error.
    public init(_ code: Code, _ context: String) {
        self.code = code
        self.context = context
    }

    public var description: String { "\(code.rawValue): \(context)" }
}
