import Foundation
import Synchronization

/// Maps an error thrown by a batch handler to a ``BatchFailureKind``: retry, bisect or fail all.
///
/// Item-level failures (a `Result.failure` the handler returns for one input) are never classified: they are final
/// for that item. The ``default`` classifier says:
/// - ``RetryableError`` with `isRetryable`, `URLError`, POSIX timeouts / connection errors, and errors whose type
///   name contains `Timeout` → ``BatchFailureKind/transient``;
/// - ``BatcherError`` `invalidConfiguration`, `shutDown` and `circuitOpen`, and `CancellationError` →
///   ``BatchFailureKind/fatal``;
/// - anything else → ``BatchFailureKind/poison`` (bisect).
public struct BatchErrorClassifier: Sendable {
    /// The mapping.
    public var classify: @Sendable (any Error) -> BatchFailureKind

    /// Creates a classifier from a closure.
    public init(_ classify: @escaping @Sendable (any Error) -> BatchFailureKind) { self.classify = classify }

    /// Classifies `error`.
    public func callAsFunction(_ error: any Error) -> BatchFailureKind { classify(error) }

    /// Tries `custom` first and falls back to ``default`` when it returns nil.
    public static func overriding(_ custom: @escaping @Sendable (any Error) -> BatchFailureKind?) -> BatchErrorClassifier {
        BatchErrorClassifier { error in custom(error) ?? BatchErrorClassifier.defaultKind(of: error) }
    }

    /// Timeouts, connection errors and ``RetryableError``s retry; cancellation and batcher misuse are fatal;
    /// everything else bisects.
    public static let `default` = BatchErrorClassifier { defaultKind(of: $0) }

    /// Every error is ``BatchFailureKind/poison``: bisect always, never retry.
    public static let alwaysBisect = BatchErrorClassifier { _ in .poison }

    static func defaultKind(of error: any Error) -> BatchFailureKind {
        if let retryable = error as? any RetryableError { return retryable.isRetryable ? .transient : .poison }
        if error is CancellationError { return .fatal }
        if let batcherError = error as? BatcherError {
            switch batcherError.code {
            case .invalidConfiguration, .shutDown, .circuitOpen: return .fatal
            case .deadlineExceeded: return .transient
            default: return .poison
            }
        }
        if error is URLError { return .transient }
        if let posix = error as? POSIXError {
            switch posix.code {
            case .ETIMEDOUT, .ECONNRESET, .ECONNREFUSED, .ECONNABORTED, .EPIPE, .ENETUNREACH, .EHOSTUNREACH, .EAGAIN:
                return .transient
            default: return .poison
            }
        }
        return isTimeoutType(type(of: error)) ? .transient : .poison
    }

    /// Whether an error type's name says timeout, remembered per type (formatting the name costs more than the rest).
    private static func isTimeoutType(_ type: any Error.Type) -> Bool {
        let id = ObjectIdentifier(type)
        if let known = timeoutTypes.withLock({ $0[id] }) { return known }
        let name = String(describing: type)
        let isTimeout = name.contains("Timeout") || name.contains("TimedOut")
        timeoutTypes.withLock { cache in
            if cache.count >= 1024 { cache.removeAll() }
            cache[id] = isTimeout
        }
        return isTimeout
    }

    private static let timeoutTypes = Mutex<[ObjectIdentifier: Bool]>([:])
}
