import Logging

/// Whether a store error may go away when the same work is tried again.
public enum StoreErrorKind: String, Sendable, Hashable {
    /// A passing failure (connection reset, server restart, serialization failure, deadlock): retry after a delay.
    case transient
    /// Anything else (bad state, lost lease, programming error): the runner stops and rethrows.
    case permanent
}

/// How the long-running runner retries work after a transient store error: a capped exponential backoff.
///
/// The n-th consecutive transient failure (n = 1, 2, …) waits `min(maximumDelay, initialDelay × 2^(n-1))`.
/// A success resets the count. ``maximumAttempts`` bounds consecutive retries (nil: retry as long as errors are
/// transient; a PostgreSQL worker is still bounded by its lease, which ends the worker when it cannot be renewed).
public struct StoreRetryPolicy: Sendable {
    /// Delay after the first transient failure.
    public var initialDelay: Duration
    /// Longest delay between two attempts.
    public var maximumDelay: Duration
    /// Most consecutive transient failures retried before the error is rethrown; nil for no limit.
    public var maximumAttempts: Int?
    /// Sorts an error thrown by a pass into transient or permanent. The default treats every error as permanent
    /// (no retry); `HyperbatchPostgres` provides `PostgresStoreErrors.classify` for PostgreSQL stores.
    public var classify: @Sendable (any Error) -> StoreErrorKind

    /// Creates a policy.
    public init(
        initialDelay: Duration = .milliseconds(200), maximumDelay: Duration = .seconds(30), maximumAttempts: Int? = nil,
        classify: @escaping @Sendable (any Error) -> StoreErrorKind = { _ in .permanent }
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = max(initialDelay, maximumDelay)
        self.maximumAttempts = maximumAttempts
        self.classify = classify
    }

    /// The delay after `failures` consecutive transient failures (≥ 1).
    public func delay(failures: Int) -> Duration {
        var d = initialDelay
        for _ in 1..<max(1, failures) {
            d = d * 2
            if d >= maximumDelay { return maximumDelay }
        }
        return min(d, maximumDelay)
    }
}

/// The retry decisions of one runner loop: errors in, actions out (no clock, no I/O).
public struct StoreRetryState: Sendable {
    /// What the loop does after an error.
    public enum Action: Sendable, Hashable {
        /// Wait `delay` on the clock, then run the work again; `attempt` counts consecutive transient failures.
        case retry(after: Duration, attempt: Int)
        /// Rethrow the error.
        case stop
    }

    /// The policy applied.
    public let policy: StoreRetryPolicy
    /// Consecutive transient failures since the last success.
    public private(set) var consecutiveFailures = 0

    /// A state with no failures yet.
    public init(policy: StoreRetryPolicy) {
        self.policy = policy
    }

    /// Records a failure of kind `kind` and says what to do.
    public mutating func failed(_ kind: StoreErrorKind) -> Action {
        guard kind == .transient else { return .stop }
        if let limit = policy.maximumAttempts, consecutiveFailures >= limit { return .stop }
        consecutiveFailures += 1
        return .retry(after: policy.delay(failures: consecutiveFailures), attempt: consecutiveFailures)
    }

    /// Records a success; returns how many consecutive failures it ended (0 when there were none).
    @discardableResult
    public mutating func succeeded() -> Int {
        defer { consecutiveFailures = 0 }
        return consecutiveFailures
    }
}

extension StoreRetryPolicy {
    /// Runs `operation` until it succeeds, waiting on `clock` after each error this policy calls transient (its
    /// backoff, at most ``maximumAttempts`` retries); any other error, or cancellation, is rethrown at once.
    /// For one-off steps outside the runner's loop, such as a worker's first connection or its schema migration.
    public func run<T, C: Clock>(
        clock: C, logger: Logger, _ what: String, _ operation: () async throws -> T
    ) async throws -> T where C.Duration == Duration {
        var state = StoreRetryState(policy: self)
        while true {
            do {
                return try await operation()
            } catch {
                if error is CancellationError || Task.isCancelled { throw error }
                switch state.failed(classify(error)) {
                case .stop:
                    throw error
                case .retry(let delay, let attempt):
                    logger.warning(
                        "\(what): transient store error; retrying",
                        metadata: ["attempt": "\(attempt)", "delay": "\(delay)", "error": "\(error)"])
                    try await clock.sleep(for: delay)
                }
            }
        }
    }
}
