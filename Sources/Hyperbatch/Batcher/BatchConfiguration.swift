/// How a ``Batcher`` forms batches, bounds memory and limits concurrency.
///
/// Every property has a working default; ``validate()`` (called by the batcher's initializer) rejects nonsense
/// such as a zero batch size or a negative wait with a ``BatcherError`` that names the property.
public struct BatchConfiguration: Sendable, Hashable {
    /// When a batch goes.
    public enum FlushPolicy: Sendable, Hashable {
        /// A batch goes as soon as a handler slot of its key is free, taking whatever has accumulated (up to the size
        /// and weight limits). Batches grow by themselves under load and a lone item pays no window. The default.
        case eager
        /// A batch goes when it is full (size or weight) or when `maxWait` has passed since its first item.
        case fillOrWait
    }

    /// What `submit` does when the pending limits are reached.
    public enum Overflow: Sendable, Hashable {
        /// The caller waits (suspended) until there is room. Nothing is dropped.
        case suspend
        /// The caller gets ``BatcherError/Code-swift.enum/overloaded`` at once.
        case reject
    }

    /// Most items in one batch.
    public var maxBatchSize: Int = 256
    /// Most total weight (for example tokens) in one batch; `nil` for no weight limit.
    public var maxBatchWeight: Int? = nil
    /// Longest an item waits for its batch to fill, counted from the batch's first pending item.
    public var maxWait: Duration = .milliseconds(10)
    /// Most items waiting per key (not counting items in running batches).
    public var maxPendingItems: Int = 10_000
    /// Most weight waiting per key; `nil` for no limit.
    public var maxPendingWeight: Int? = nil
    /// Most items waiting over all keys.
    public var maxTotalPendingItems: Int = 100_000
    /// Most weight waiting over all keys; `nil` for no limit.
    public var maxTotalPendingWeight: Int? = nil
    /// What happens when a pending limit is reached.
    public var overflow: Overflow = .suspend
    /// Most batches of one key running at once.
    public var maxConcurrentBatches: Int = 4
    /// Most batches running at once over all keys.
    public var maxTotalConcurrentBatches: Int = 64
    /// When a batch goes: ``FlushPolicy/eager`` (default) or ``FlushPolicy/fillOrWait``.
    public var flushPolicy: FlushPolicy = .eager
    /// Handler latency assumed for the deadline flush until the key has measured its own.
    public var defaultPredictedLatency: Duration = .zero
    /// Per-key AIMD control of the batch-size limit (within `maxBatchSize`); nil (the default) keeps `maxBatchSize`.
    public var adaptiveBatchSize: AdaptiveBatchSizeConfiguration? = nil
    /// Whether each key fits its handler latency against batch weight (``LatencyModel``) and uses the prediction for
    /// the deadline flush instead of `defaultPredictedLatency`. Off by default.
    public var learnsHandlerLatency: Bool = false

    /// Creates the default configuration.
    public init() {}

    /// Creates a configuration, setting the most common properties.
    public init(
        maxBatchSize: Int, maxBatchWeight: Int? = nil, maxWait: Duration,
        flushPolicy: FlushPolicy = .eager, maxConcurrentBatches: Int = 4
    ) {
        self.maxBatchSize = maxBatchSize
        self.maxBatchWeight = maxBatchWeight
        self.maxWait = maxWait
        self.flushPolicy = flushPolicy
        self.maxConcurrentBatches = maxConcurrentBatches
    }

    /// Throws ``BatcherError`` (code `invalidConfiguration`) naming the first property with a nonsensical value.
    public func validate() throws(BatcherError) {
        func fail(_ message: String) -> BatcherError { BatcherError(.invalidConfiguration, message) }
        if maxBatchSize < 1 { throw fail("maxBatchSize must be at least 1, got \(maxBatchSize)") }
        if let w = maxBatchWeight, w < 1 { throw fail("maxBatchWeight must be at least 1 or nil, got \(w)") }
        if maxWait < .zero { throw fail("maxWait must not be negative, got \(maxWait)") }
        if maxPendingItems < 1 { throw fail("maxPendingItems must be at least 1, got \(maxPendingItems)") }
        if let w = maxPendingWeight, w < 1 { throw fail("maxPendingWeight must be at least 1 or nil, got \(w)") }
        if maxTotalPendingItems < maxPendingItems {
            throw fail("maxTotalPendingItems (\(maxTotalPendingItems)) must be at least maxPendingItems (\(maxPendingItems))")
        }
        if let w = maxTotalPendingWeight, w < 1 { throw fail("maxTotalPendingWeight must be at least 1 or nil, got \(w)") }
        if maxConcurrentBatches < 1 { throw fail("maxConcurrentBatches must be at least 1, got \(maxConcurrentBatches)") }
        if maxTotalConcurrentBatches < 1 {
            throw fail("maxTotalConcurrentBatches must be at least 1, got \(maxTotalConcurrentBatches)")
        }
        if defaultPredictedLatency < .zero {
            throw fail("defaultPredictedLatency must not be negative, got \(defaultPredictedLatency)")
        }
        if let adaptive = adaptiveBatchSize {
            if adaptive.minBatchSize < 1 { throw fail("adaptiveBatchSize.minBatchSize must be at least 1, got \(adaptive.minBatchSize)") }
            if !(adaptive.decreaseFactor > 0 && adaptive.decreaseFactor < 1) {
                throw fail("adaptiveBatchSize.decreaseFactor must be in (0, 1), got \(adaptive.decreaseFactor)")
            }
        }
        if let batch = maxBatchWeight, let pending = maxPendingWeight, pending < batch {
            throw fail("maxPendingWeight (\(pending)) must be at least maxBatchWeight (\(batch))")
        }
    }
}
