/// Why a batch was flushed (sent to the handler).
public enum FlushReason: String, Sendable, Hashable, CaseIterable {
    /// The batch reached `maxBatchSize` items (or the key's adaptive size).
    case size
    /// The batch reached `maxBatchWeight`.
    case weight
    /// `maxWait` passed since the batch's first pending item.
    case time
    /// The earliest caller deadline minus the key's predicted handler latency was reached.
    case deadline
    /// Eager policy: a handler slot of the key was free, so whatever had accumulated went at once.
    case eager
    /// `flush()` was called.
    case manual
    /// The batcher is shutting down and drains every key.
    case shutdown
}
