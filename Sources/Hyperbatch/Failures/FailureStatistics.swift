/// Counters of a ``BatchExecutor`` since it was created.
public struct FailureStatistics: Sendable, Hashable {
    /// Batches given to the executor.
    public var batches = 0
    /// Handler calls made (first calls, retries, bisection halves, single-item calls).
    public var handlerCalls = 0
    /// Retries made (after a backoff).
    public var retries = 0
    /// Retries refused because the retry budget was spent.
    public var retriesDenied = 0
    /// Splits made (a batch or part split into 2 or more parts).
    public var bisections = 0
    /// Items that failed with a batch-level error (after retry and bisection).
    public var failedItems = 0
    /// Items the handler failed one by one (`Result.failure`).
    public var itemErrors = 0
    /// Batches rejected or degraded because the key's breaker was open.
    public var circuitRejections = 0
    /// Items handed to the dead-letter sink.
    public var deadLetters = 0

    /// All zero.
    public init() {}
}
