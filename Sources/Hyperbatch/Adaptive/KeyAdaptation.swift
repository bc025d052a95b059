/// One key's AIMD controller, latency fit and health figures, kept by the batcher under its lock.
@usableFromInline struct KeyAdaptation<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    @usableFromInline var size: AdaptiveBatchSize?
    @usableFromInline var latency = LatencyModel()
    /// Moving average (α = 0.2) of the failed-item fraction per batch.
    @usableFromInline var errorRate = 0.0
    /// Moving average (α = 0.2) of handler latency.
    @usableFromInline var averageLatency: Duration?
    /// When a batch last finished with at least one successful item.
    @usableFromInline var lastSuccess: Instant?

    @inlinable init(configuration: BatchConfiguration) {
        size = configuration.adaptiveBatchSize.map {
            AdaptiveBatchSize(configuration: $0, upperBound: configuration.maxBatchSize)
        }
    }

    @usableFromInline mutating func recordHealth(size: Int, failed: Int, latency: Duration, now: Instant) {
        guard size > 0 else { return }
        let alpha = 0.2
        errorRate = errorRate * (1 - alpha) + alpha * Double(failed) / Double(size)
        averageLatency = averageLatency.map { .seconds($0.inSeconds * (1 - alpha) + latency.inSeconds * alpha) } ?? latency
        if failed < size { lastSuccess = now }
    }
}
