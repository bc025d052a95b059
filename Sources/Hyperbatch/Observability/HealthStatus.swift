/// A snapshot of a batcher's health, per key and overall, from ``ClockedBatcher/health()``.
public struct HealthStatus<Key: BatchKey, Instant: InstantProtocol>: Sendable {
    /// The health of one key.
    public struct KeyStatus: Sendable {
        /// Breaker closed and fewer than half of recent items failing.
        public var isHealthy: Bool
        /// The key's circuit breaker (`closed` without a breaker).
        public var breakerState: CircuitBreakerState
        /// The current batch-size limit (below `maxBatchSize` when the AIMD controller shrank it).
        public var batchSizeLimit: Int
        /// Moving average of the failed-item fraction per batch (0...1).
        public var errorRate: Double
        /// Moving average of handler latency per batch; nil before the first batch.
        public var averageLatency: Duration?
        /// When a batch of this key last had a successful item.
        public var lastSuccessfulFlush: Instant?
        /// Items waiting for a batch.
        public var pending: Int

        /// Creates a key status.
        public init(
            isHealthy: Bool, breakerState: CircuitBreakerState, batchSizeLimit: Int, errorRate: Double,
            averageLatency: Duration?, lastSuccessfulFlush: Instant?, pending: Int
        ) {
            self.isHealthy = isHealthy
            self.breakerState = breakerState
            self.batchSizeLimit = batchSizeLimit
            self.errorRate = errorRate
            self.averageLatency = averageLatency
            self.lastSuccessfulFlush = lastSuccessfulFlush
            self.pending = pending
        }
    }

    /// Running (not shut down) and every key healthy.
    public var isHealthy: Bool
    /// Keys that have finished at least one batch.
    public var keys: [Key: KeyStatus]

    /// Creates a snapshot.
    public init(isHealthy: Bool, keys: [Key: KeyStatus]) {
        self.isHealthy = isHealthy
        self.keys = keys
    }
}
