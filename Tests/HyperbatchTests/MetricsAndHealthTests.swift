import HyperbatchTestKit
import Metrics
import MetricsTestKit
import Testing

@testable import Hyperbatch

@Suite(.timeLimit(.minutes(1))) struct MetricsAndHealthTests {
    struct EmbedKey: BatchKey {
        var tenant: String
        var metricsLabel: String { "embed" }
    }

    @Test func countersHistogramsAndGaugesMove() async throws {
        let metrics = TestMetrics()
        let sink = InMemoryDeadLetterSink()
        var configuration = BatchConfiguration(maxBatchSize: 16, maxWait: .milliseconds(10), flushPolicy: .fillOrWait)
        configuration.adaptiveBatchSize = .init()
        configuration.learnsHandlerLatency = true
        let log = CallLog()
        let retried = CallLog()
        try await withMetricsFactory(metrics) {
            try await ClockedBatcher<EmbedKey, Int, Int, ManualClock>.withBatcher(
                configuration: configuration, clock: ManualClock(),
                failurePolicy: FailurePolicy(
                    retry: RetryPolicy(maxAttempts: 2, random: { 0 }), bisectionFanout: 2, deadLetters: sink),
                handler: { key, inputs in
                    log.record(inputs)
                    if inputs.contains(-1), retried.count == 0 {
                        retried.record(inputs)
                        throw FlakyError()
                    }
                    if inputs.contains(3) { throw PoisonError(item: 3) }
                    return inputs.map { .success($0) }
                }
            ) { batcher in
                let a = await batcher.submit(contentsOf: Array(0..<16), key: EmbedKey(tenant: "t1"))
                #expect(a.filter(\.isSuccess).count == 15)
                let b = await batcher.submit(contentsOf: [-1] + Array(100..<115), key: EmbedKey(tenant: "t2"))
                #expect(b.allSatisfy { $0.isSuccess })
                let health = batcher.health()
                #expect(health.isHealthy)
                #expect(health.keys.count == 2)
                let t1 = try #require(health.keys[EmbedKey(tenant: "t1")])
                #expect(t1.breakerState == .closed && t1.lastSuccessfulFlush != nil)
                #expect(abs(t1.errorRate - 0.2 / 16) < 1e-9)
            }
        }
        let d = [("key", "embed")]
        #expect(try metrics.expectCounter("hyperbatch_items_total", d).totalValue == 32)
        #expect(try metrics.expectCounter("hyperbatch_batches_total", d).totalValue == 2)
        #expect(try metrics.expectCounter("hyperbatch_item_errors_total", d).totalValue == 1)
        #expect(try metrics.expectCounter("hyperbatch_flushes_total", d + [("reason", "size")]).totalValue == 2)
        #expect(try metrics.expectCounter("hyperbatch_bisections_total", d).totalValue == 4)
        #expect(try metrics.expectCounter("hyperbatch_retries_total", d).totalValue == 1)
        #expect(try metrics.expectCounter("hyperbatch_dead_letters_total", d).totalValue == 1)
        #expect(try metrics.expectCounter("hyperbatch_batch_errors_total", d + [("kind", "poison")]).totalValue == 5)
        #expect(try metrics.expectCounter("hyperbatch_batch_errors_total", d + [("kind", "transient")]).totalValue == 1)
        #expect(try metrics.expectRecorder("hyperbatch_batch_size", d).values == [16, 16])
        #expect(try metrics.expectRecorder("hyperbatch_batch_weight", d).values == [16, 16])
        #expect(try metrics.expectTimer("hyperbatch_queue_time", d).values.count == 32)
        #expect(try metrics.expectTimer("hyperbatch_latency", d).values.count == 32)
        #expect(try metrics.expectTimer("hyperbatch_handler_duration", d).values.count == 2)
        #expect(try metrics.expectGauge("hyperbatch_pending", d).lastValue == 0)
        #expect(try metrics.expectGauge("hyperbatch_batch_size_limit", d).values.count == 2)
        #expect(try metrics.expectGauge("hyperbatch_predicted_latency_seconds", d).lastValue == 0)  // manual clock
    }

    @Test func breakerStateGaugeAndUnhealthyKey() async throws {
        let metrics = TestMetrics()
        var policy = FailurePolicy(retry: .none, circuitBreaker: .init(consecutiveFailures: 1))
        policy.classifier = .overriding { $0 is BrokenError ? .fatal : nil }
        try await withMetricsFactory(metrics) {
            try await ClockedBatcher<EmbedKey, Int, Int, ManualClock>.withBatcher(
                configuration: BatchConfiguration(maxBatchSize: 2, maxWait: .milliseconds(10), flushPolicy: .fillOrWait),
                clock: ManualClock(), failurePolicy: policy,
                handler: { _, _ in throw BrokenError() }
            ) { batcher in
                _ = await batcher.submit(contentsOf: [1, 2], key: EmbedKey(tenant: "t"))
                let rejected = await batcher.submit(contentsOf: [3, 4], key: EmbedKey(tenant: "t"))
                #expect(rejected.allSatisfy { ($0.failure as? BatcherError)?.code == .circuitOpen })
                let health = batcher.health()
                #expect(!health.isHealthy)
                #expect(health.keys[EmbedKey(tenant: "t")]?.breakerState == .open)
            }
        }
        let d = [("key", "embed")]
        #expect(try metrics.expectGauge("hyperbatch_breaker_state", d).lastValue == 2)
        #expect(try metrics.expectCounter("hyperbatch_circuit_rejections_total", d).totalValue == 1)
    }
}
