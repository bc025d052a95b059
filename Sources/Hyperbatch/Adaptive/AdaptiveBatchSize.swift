/// Settings of the per-key AIMD batch-size controller (``AdaptiveBatchSize``).
public struct AdaptiveBatchSizeConfiguration: Sendable, Hashable {
    /// Smallest batch-size limit.
    public var minBatchSize: Int = 1
    /// Largest batch-size limit; nil for the batcher's `maxBatchSize`.
    public var maxBatchSize: Int? = nil
    /// The limit of a key's first batch (clamped to the bounds); nil to start at the largest.
    public var initialBatchSize: Int? = nil
    /// Added to the limit after each healthy full batch.
    public var increase: Int = 8
    /// The limit is multiplied by this on a breach (0.5 halves it).
    public var decreaseFactor: Double = 0.5
    /// Failed items per batch (0...1) above which the batch is a breach.
    public var maxErrorRate: Double = 0.1
    /// Handler latency above which the batch is a breach.
    public var maxLatency: Duration = .seconds(1)

    /// The defaults: limit in [1, maxBatchSize], +8 per healthy full batch, halved above 10% failed items or 1 s.
    public init() {}

    /// Creates a configuration, setting the common properties.
    public init(
        minBatchSize: Int = 1, maxBatchSize: Int? = nil, initialBatchSize: Int? = nil, increase: Int = 8,
        maxErrorRate: Double = 0.1, maxLatency: Duration = .seconds(1)
    ) {
        self.minBatchSize = minBatchSize
        self.maxBatchSize = maxBatchSize
        self.initialBatchSize = initialBatchSize
        self.increase = increase
        self.maxErrorRate = maxErrorRate
        self.maxLatency = maxLatency
    }
}

/// A pure additive-increase / multiplicative-decrease controller of one key's batch-size limit.
///
/// After each batch: a breach (failed-item rate above `maxErrorRate`, or latency above `maxLatency`) multiplies the
/// limit by `decreaseFactor`; a healthy batch that filled the limit adds `increase`. The limit stays in
/// `[minBatchSize, maxBatchSize]`. Batches smaller than the limit say nothing about a larger one and leave it alone.
public struct AdaptiveBatchSize: Sendable, Hashable {
    /// The settings, with `maxBatchSize` resolved.
    public let configuration: AdaptiveBatchSizeConfiguration
    /// The current limit.
    public private(set) var limit: Int
    private let lower: Int
    private let upper: Int

    /// Creates a controller; `upperBound` is used when the configuration has no `maxBatchSize`.
    public init(configuration: AdaptiveBatchSizeConfiguration = .init(), upperBound: Int) {
        self.configuration = configuration
        let upper = max(1, configuration.maxBatchSize ?? upperBound)
        let lower = min(max(1, configuration.minBatchSize), upper)
        self.upper = upper
        self.lower = lower
        self.limit = min(upper, max(lower, configuration.initialBatchSize ?? upper))
    }

    /// Records one batch and returns the new limit.
    ///
    /// - Parameters:
    ///   - size: items in the batch.
    ///   - failedItems: items that failed (batch-level or item-level).
    ///   - latency: how long the handler (with retries and bisection) took.
    @discardableResult
    public mutating func record(size: Int, failedItems: Int, latency: Duration) -> Int {
        guard size > 0 else { return limit }
        let errorRate = Double(failedItems) / Double(size)
        if errorRate > configuration.maxErrorRate || latency > configuration.maxLatency {
            limit = max(lower, min(upper, Int(Double(limit) * configuration.decreaseFactor)))
        } else if size >= limit {
            limit = min(upper, limit + max(1, configuration.increase))
        }
        return limit
    }
}
