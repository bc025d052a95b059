import CoreMetrics
import Synchronization

/// The swift-metrics names the batcher and the batch executor emit. Every series has the dimension `key` (the key's
/// ``BatchKey/metricsLabel``, a bounded set); `hyperbatch_flushes_total` adds `reason` (a ``FlushReason``) and
/// `hyperbatch_batch_errors_total` adds `kind` (a ``BatchFailureKind``).
public enum HyperbatchMetricNames {
    /// Counter: items that finished (success or failure).
    public static let items = "hyperbatch_items_total"
    /// Counter: batches that finished.
    public static let batches = "hyperbatch_batches_total"
    /// Counter with `reason`: flushes by reason.
    public static let flushes = "hyperbatch_flushes_total"
    /// Counter: items that failed (item-level or batch-level).
    public static let itemErrors = "hyperbatch_item_errors_total"
    /// Counter with `kind`: batch-level failures (handler throws) by classification.
    public static let batchErrors = "hyperbatch_batch_errors_total"
    /// Counter: retries after a backoff.
    public static let retries = "hyperbatch_retries_total"
    /// Counter: batches split in two.
    public static let bisections = "hyperbatch_bisections_total"
    /// Counter: items handed to the dead-letter sink.
    public static let deadLetters = "hyperbatch_dead_letters_total"
    /// Counter: batches rejected or degraded by an open breaker.
    public static let circuitRejections = "hyperbatch_circuit_rejections_total"
    /// Recorder (histogram): items per batch.
    public static let batchSize = "hyperbatch_batch_size"
    /// Recorder (histogram): weight per batch.
    public static let batchWeight = "hyperbatch_batch_weight"
    /// Timer: how long items waited from submit to their batch's start.
    public static let queueTime = "hyperbatch_queue_time"
    /// Timer: submit to result, per item.
    public static let latency = "hyperbatch_latency"
    /// Timer: handler time per batch (with retries and bisection).
    public static let handlerDuration = "hyperbatch_handler_duration"
    /// Gauge: breaker state (0 closed, 1 half-open, 2 open).
    public static let breakerState = "hyperbatch_breaker_state"
    /// Gauge: items waiting for a batch.
    public static let pending = "hyperbatch_pending"
    /// Gauge: the key's current batch-size limit.
    public static let batchSizeLimit = "hyperbatch_batch_size_limit"
    /// Gauge: handler latency in seconds the key's fit predicts for its last batch's weight (`learnsHandlerLatency`).
    public static let predictedLatency = "hyperbatch_predicted_latency_seconds"
}

/// Metric objects per key label, created once from the factory current when the batcher was made.
@usableFromInline final class HyperbatchMetrics: Sendable {
    @usableFromInline final class Key: Sendable {
        let items, batches, itemErrors, retries, bisections, deadLetters, circuitRejections: Counter
        let flushes: Mutex<[FlushReason: Counter]>
        let batchErrors: Mutex<[BatchFailureKind: Counter]>
        let batchSize, batchWeight: Recorder
        let queueTime, latency, handlerDuration: Timer
        let breakerState, pending, batchSizeLimit, predictedLatency: Gauge
        let label: String
        let factory: any MetricsFactory

        init(label: String, factory: any MetricsFactory) {
            let d = [("key", label)]
            typealias N = HyperbatchMetricNames
            self.label = label
            self.factory = factory
            items = Counter(label: N.items, dimensions: d, factory: factory)
            batches = Counter(label: N.batches, dimensions: d, factory: factory)
            itemErrors = Counter(label: N.itemErrors, dimensions: d, factory: factory)
            retries = Counter(label: N.retries, dimensions: d, factory: factory)
            bisections = Counter(label: N.bisections, dimensions: d, factory: factory)
            deadLetters = Counter(label: N.deadLetters, dimensions: d, factory: factory)
            circuitRejections = Counter(label: N.circuitRejections, dimensions: d, factory: factory)
            flushes = Mutex([:])
            batchErrors = Mutex([:])
            batchSize = Recorder(label: N.batchSize, dimensions: d, aggregate: true, factory: factory)
            batchWeight = Recorder(label: N.batchWeight, dimensions: d, aggregate: true, factory: factory)
            queueTime = Timer(label: N.queueTime, dimensions: d, factory: factory)
            latency = Timer(label: N.latency, dimensions: d, factory: factory)
            handlerDuration = Timer(label: N.handlerDuration, dimensions: d, factory: factory)
            breakerState = Gauge(label: N.breakerState, dimensions: d, factory: factory)
            pending = Gauge(label: N.pending, dimensions: d, factory: factory)
            batchSizeLimit = Gauge(label: N.batchSizeLimit, dimensions: d, factory: factory)
            predictedLatency = Gauge(label: N.predictedLatency, dimensions: d, factory: factory)
        }

        func flushed(_ reason: FlushReason) {
            flushes.withLock { cache in
                if let counter = cache[reason] { return counter }
                let counter = Counter(
                    label: HyperbatchMetricNames.flushes, dimensions: [("key", label), ("reason", reason.rawValue)],
                    factory: factory)
                cache[reason] = counter
                return counter
            }.increment()
        }

        func batchFailed(_ kind: BatchFailureKind) {
            batchErrors.withLock { cache in
                if let counter = cache[kind] { return counter }
                let counter = Counter(
                    label: HyperbatchMetricNames.batchErrors, dimensions: [("key", label), ("kind", kind.rawValue)],
                    factory: factory)
                cache[kind] = counter
                return counter
            }.increment()
        }

        func breaker(_ state: CircuitBreakerState) {
            breakerState.record(state == .closed ? 0 : state == .halfOpen ? 1 : 2)
        }
    }

    let factory: any MetricsFactory
    let cache = Mutex<[String: Key]>([:])

    /// Captures the current factory (the task-local one inside `withMetricsFactory`, else the bootstrapped one).
    @usableFromInline init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        self.recordsPerItem = !(factory is NOOPMetricsHandler)
    }

    /// False when metrics go nowhere (no backend bootstrapped): callers then skip computing per-item values.
    @usableFromInline let recordsPerItem: Bool

    /// The metric objects of `label` (at most 1,024 labels are cached; labels are meant to be few).
    func key(_ label: String) -> Key {
        cache.withLock { cache in
            if let key = cache[label] { return key }
            if cache.count >= 1024 { cache.removeAll() }
            let key = Key(label: label, factory: factory)
            cache[label] = key
            return key
        }
    }

    /// Records a finished batch of the batcher.
    ///
    /// Queue time per item is `enqueuedAt` to `started`, latency `enqueuedAt` to `finished`; `queueTimes` may be
    /// empty when ``recordsPerItem`` is false.
    ///
    /// Not generic: the caller (specialized for its clock) computes the per-item queue times, so the per-item loop
    /// here costs no witness-table calls.
    @usableFromInline func batchFinished(
        label: String, reason: FlushReason, size: Int, weight: Int, failed: Int, queueTimes: [Duration],
        handlerDuration: Duration, pending: Int, batchSizeLimit: Int, predictedLatency: Duration? = nil
    ) {
        let m = key(label)
        m.batches.increment()
        m.items.increment(by: size)
        if failed > 0 { m.itemErrors.increment(by: failed) }
        m.flushed(reason)
        m.batchSize.record(size)
        m.batchWeight.record(weight)
        for queueTime in queueTimes {
            m.queueTime.recordNanoseconds(queueTime.nanoseconds)
            m.latency.recordNanoseconds((queueTime + handlerDuration).nanoseconds)
        }
        m.handlerDuration.recordNanoseconds(handlerDuration.nanoseconds)
        m.pending.record(pending)
        m.batchSizeLimit.record(batchSizeLimit)
        if let predictedLatency { m.predictedLatency.record(predictedLatency.inSeconds) }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating.
    @usableFromInline var nanoseconds: Int64 {
        let (s, a) = components
        let (ns, overflow) = s.multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? (s < 0 ? .min : .max) : ns &+ a / 1_000_000_000
    }
}
