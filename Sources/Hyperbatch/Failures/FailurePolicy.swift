/// How a batcher handles batch-level failures: classification, retry, bisection, circuit breaker, dead letters.
///
/// ```swift
/// var policy = FailurePolicy()
/// policy.retry = RetryPolicy(maxAttempts: 4, initialBackoff: .milliseconds(20))
/// policy.circuitBreaker = CircuitBreakerConfiguration(whenOpen: .degradeToSingleItems)
/// policy.deadLetters = InMemoryDeadLetterSink(capacity: 500)
/// ```
public struct FailurePolicy: Sendable {
    /// Maps a thrown error to retry / bisect / fail all.
    public var classifier: BatchErrorClassifier = .default
    /// Retries of transient failures.
    public var retry: RetryPolicy = .init()
    /// Whether poison failures bisect (otherwise they fail the whole batch).
    public var bisect: Bool = true
    /// Whether the parts of a split batch run concurrently (otherwise one after the other).
    public var concurrentBisection: Bool = true
    /// Parts a poison batch is split into when ``adaptiveFanout`` is nil, or before the key's latency fit exists
    /// (2 = bisect; 4, the default, splits in quarters). With one bad item among n a split costs at most
    /// `1 + fanout·ceil(log_fanout(n))` calls: 17 for n = 256 with fanout 2 or 4; a wider split has fewer rounds, so
    /// with concurrent parts a remote handler isolates the item sooner. Inside a ``Batcher`` the parts run
    /// concurrently only on idle slots of the key (`maxConcurrentBatches`).
    public var bisectionFanout: Int = 4
    /// Chooses each split's fanout from the key's fitted handler latency `t ≈ a·items + b` and the lanes free for the
    /// parts (see ``AdaptiveFanout``): with a fixed cost per call that dominates and parts running concurrently it
    /// splits wider (up to 16 parts, 2 levels for 256 items instead of 4), trading more calls (at most
    /// `maxFanout·ceil(log_maxFanout(n))` per bad item, 32 for n = 256) for a shorter wait. nil: always
    /// `bisectionFanout`, the fewest calls.
    public var adaptiveFanout: AdaptiveFanout? = AdaptiveFanout()
    /// Most handler calls splits may make for one batch; a part that would exceed it fails whole with its error.
    /// Bounds the cost when a downstream outage throws errors the classifier calls poison (every part fails, so a
    /// batch of n would otherwise cost 2n - 1 calls). nil (the default): no bound.
    public var maxSplitCallsPerBatch: Int? = nil
    /// A per-key circuit breaker; nil for none.
    public var circuitBreaker: CircuitBreakerConfiguration? = nil
    /// Where finally failed items go; nil to drop them (their callers still get the error).
    public var deadLetters: (any DeadLetterSink)? = nil

    /// The default: default classifier, 3 attempts with a 20% budget, concurrent bisection with an adaptive fanout
    /// (quarters until the key's latency is known), no breaker, no sink.
    public init() {}

    /// Creates a policy, setting every property.
    public init(
        classifier: BatchErrorClassifier = .default, retry: RetryPolicy = .init(), bisect: Bool = true,
        concurrentBisection: Bool = true, bisectionFanout: Int = 4, circuitBreaker: CircuitBreakerConfiguration? = nil,
        deadLetters: (any DeadLetterSink)? = nil, adaptiveFanout: AdaptiveFanout? = AdaptiveFanout()
    ) {
        self.adaptiveFanout = adaptiveFanout
        self.classifier = classifier
        self.retry = retry
        self.bisect = bisect
        self.concurrentBisection = concurrentBisection
        self.bisectionFanout = bisectionFanout
        self.circuitBreaker = circuitBreaker
        self.deadLetters = deadLetters
    }
}
