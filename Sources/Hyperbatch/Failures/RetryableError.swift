/// An error that says whether retrying the same batch may succeed; the default ``BatchErrorClassifier`` treats a
/// retryable error as ``BatchFailureKind/transient``.
///
/// ```swift
/// struct RateLimited: RetryableError {}   // isRetryable defaults to true
/// ```
public protocol RetryableError: Error {
    /// Whether retrying may succeed; `true` unless the conforming type says otherwise.
    var isRetryable: Bool { get }
}

extension RetryableError {
    public var isRetryable: Bool { true }
}

/// Wraps any error to mark it retryable (``BatchFailureKind/transient`` for the default classifier).
///
/// ```swift
/// throw RetryableFailure(underlying)
/// ```
public struct RetryableFailure: RetryableError, CustomStringConvertible {
    /// The error that caused the failure.
    public var underlying: any Error

    /// Marks `underlying` as retryable.
    public init(_ underlying: any Error) { self.underlying = underlying }

    public var description: String { "retryable: \(underlying)" }
}
