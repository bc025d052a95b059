import Foundation

/// An item that finally failed after retry and bisection, as handed to a ``DeadLetterSink``.
public struct DeadLetter: Sendable, Hashable, Codable {
    /// The key's ``BatchKey/metricsLabel`` (never the raw key: it may hold tenant ids).
    public var key: String
    /// `String(describing:)` of the input.
    public var input: String
    /// `String(describing:)` of the error the item failed with.
    public var error: String
    /// How the last batch-level failure was classified.
    public var failure: BatchFailureKind
    /// Handler calls this item took part in (first call, retries and bisection calls).
    public var attempts: Int
    /// Wall-clock time of the item's first handler call.
    public var firstAttemptAt: Date
    /// Wall-clock time the item was given up.
    public var failedAt: Date

    /// Creates a record.
    public init(
        key: String, input: String, error: String, failure: BatchFailureKind, attempts: Int, firstAttemptAt: Date,
        failedAt: Date
    ) {
        self.key = key
        self.input = input
        self.error = error
        self.failure = failure
        self.attempts = attempts
        self.firstAttemptAt = firstAttemptAt
        self.failedAt = failedAt
    }
}
