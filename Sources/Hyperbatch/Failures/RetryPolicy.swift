import Foundation

/// How transient batch failures are retried: attempts, exponential backoff with full jitter, a cap, and a budget.
///
/// The n-th retry sleeps a uniformly random duration in `[0, min(maxBackoff, initialBackoff · multiplier^(n-1))]`
/// ("full jitter") on the batcher's clock. A retry never happens past an item's deadline: items whose deadline comes
/// before the retry would run fail with the handler's error instead.
public struct RetryPolicy: Sendable {
    /// Most handler calls for one batch, the first included; 1 disables retries.
    public var maxAttempts: Int = 3
    /// Backoff ceiling of the first retry.
    public var initialBackoff: Duration = .milliseconds(50)
    /// Growth of the backoff ceiling per retry.
    public var multiplier: Double = 2
    /// Largest backoff ceiling.
    public var maxBackoff: Duration = .seconds(10)
    /// Retry tokens each ordinary call earns (0.2 = retries add at most 20% load); see ``RetryBudget``.
    public var budgetRatio: Double = 0.2
    /// Retries allowed before ordinary calls have earned any (the bucket's initial fill and capacity).
    public var budgetReserve: Double = 10
    /// A random number in `[0, 1)` for the jitter; inject a fixed source in tests.
    public var random: @Sendable () -> Double = { Double.random(in: 0..<1) }

    /// Creates the default policy: 3 attempts, 50 ms doubling to at most 10 s, 20% budget with a reserve of 10.
    public init() {}

    /// Creates a policy, setting the common properties.
    public init(
        maxAttempts: Int, initialBackoff: Duration = .milliseconds(50), multiplier: Double = 2,
        maxBackoff: Duration = .seconds(10), budgetRatio: Double = 0.2, budgetReserve: Double = 10,
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.maxAttempts = maxAttempts
        self.initialBackoff = initialBackoff
        self.multiplier = multiplier
        self.maxBackoff = maxBackoff
        self.budgetRatio = budgetRatio
        self.budgetReserve = budgetReserve
        self.random = random
    }

    /// No retries at all.
    public static var none: RetryPolicy { RetryPolicy(maxAttempts: 1) }

    /// The backoff ceiling before retry number `retry` (1 for the first retry).
    public func backoffCeiling(retry: Int) -> Duration {
        let base = initialBackoff.inSeconds * pow(multiplier, Double(max(0, retry - 1)))
        return .seconds(min(maxBackoff.inSeconds, base))
    }

    /// The jittered backoff before retry number `retry` (1 for the first retry).
    public func backoff(retry: Int) -> Duration {
        let r = min(max(random(), 0), 1)
        return .seconds(backoffCeiling(retry: retry).inSeconds * r)
    }

    /// A fresh budget for this policy.
    public func makeBudget() -> RetryBudget { RetryBudget(ratio: budgetRatio, reserve: budgetReserve) }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    @usableFromInline var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) * 1e-18
    }
}
