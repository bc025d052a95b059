/// A token bucket that bounds retries to a fraction of ordinary calls, so retries cannot amplify an outage.
///
/// Every ordinary (non-retry) handler call deposits `ratio` tokens, up to `capacity`; every retry takes one token and
/// is refused when fewer than one is left. With `ratio` 0.2 retries add at most 20% load once the initial `reserve`
/// is spent. A pure value: the executor keeps it under its lock.
public struct RetryBudget: Sendable, Hashable {
    /// Tokens each ordinary call deposits (0.2 = retries at most 20% of calls).
    public let ratio: Double
    /// Most tokens the bucket holds.
    public let capacity: Double
    /// Tokens available now.
    public private(set) var tokens: Double

    /// Creates a budget holding `reserve` tokens at first (and at most `capacity`, at least `reserve`).
    public init(ratio: Double, reserve: Double, capacity: Double? = nil) {
        self.ratio = max(0, ratio)
        self.capacity = max(capacity ?? reserve, reserve, 1)
        self.tokens = max(0, reserve)
    }

    /// Records an ordinary handler call.
    public mutating func recordCall() { tokens = min(capacity, tokens + ratio) }

    /// Takes one token for a retry; false (and nothing taken) when the budget is spent.
    public mutating func tryRetry() -> Bool {
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
