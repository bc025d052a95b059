import HyperbatchTestKit
import Testing

@testable import Hyperbatch

@Suite struct AdaptiveBatchSizeTests {
    @Test func growsAdditivelyAndHalvesOnBreachWithinBounds() {
        var aimd = AdaptiveBatchSize(
            configuration: .init(minBatchSize: 4, maxBatchSize: 64, increase: 8, maxErrorRate: 0.1,
                                 maxLatency: .milliseconds(100)),
            upperBound: 256)
        #expect(aimd.limit == 64)
        #expect(aimd.record(size: 64, failedItems: 0, latency: .milliseconds(200)) == 32)  // latency breach
        #expect(aimd.record(size: 32, failedItems: 10, latency: .milliseconds(1)) == 16)  // 31% failed
        #expect(aimd.record(size: 16, failedItems: 1, latency: .milliseconds(1)) == 24)  // 6% failed: healthy, grows
        #expect(aimd.record(size: 10, failedItems: 0, latency: .milliseconds(1)) == 24)  // not full: no news
        #expect(aimd.record(size: 24, failedItems: 0, latency: .milliseconds(1)) == 32)
        for _ in 0..<10 { aimd.record(size: aimd.limit, failedItems: 0, latency: .zero) }
        #expect(aimd.limit == 64)  // capped
        for _ in 0..<10 { aimd.record(size: aimd.limit, failedItems: aimd.limit, latency: .zero) }
        #expect(aimd.limit == 4)  // floored
    }

    @Test func latencyModelFitsFixedPlusPerWeightCost() throws {
        var model = LatencyModel(decay: 1)
        #expect(model.predict(weight: 10) == nil)
        for w in [1, 10, 50, 100, 200] {
            model.record(weight: w, latency: .microseconds(50 + w))  // 50 µs + 1 µs per unit
        }
        let (a, b) = try #require(model.coefficients)
        #expect(abs(a - 1e-6) < 1e-9)
        #expect(abs(b - 50e-6) < 1e-8)
        let predicted = try #require(model.predict(weight: 256))
        #expect(abs(predicted.inSeconds - 306e-6) < 1e-7)
    }

    @Test func latencyModelWithOneWeightPredictsTheMean() throws {
        var model = LatencyModel()
        model.record(weight: 8, latency: .milliseconds(2))
        model.record(weight: 8, latency: .milliseconds(4))
        let predicted = try #require(model.predict(weight: 100))
        #expect(abs(predicted.inSeconds - 0.003) < 1e-4)  // no spread: the (decayed) mean
    }
}

@Suite(.timeLimit(.minutes(1))) struct BatcherAdaptiveTests {
    @Test func aimdShrinksTheBatcherLimitOnFailuresAndGrowsItBack() async throws {
        var configuration = BatchConfiguration(maxBatchSize: 16, maxWait: .milliseconds(10), flushPolicy: .fillOrWait)
        configuration.adaptiveBatchSize = AdaptiveBatchSizeConfiguration(minBatchSize: 2, increase: 4, maxErrorRate: 0.1)
        let log = CallLog()
        try await ClockedBatcher<String, Int, Int, ManualClock>.withBatcher(
            configuration: configuration, clock: ManualClock(),
            handler: { _, inputs in
                log.record(inputs)
                return inputs.map { $0 < 0 ? .failure(PoisonError(item: $0)) : .success($0) }
            }
        ) { batcher in
            #expect(batcher.batchSizeLimit(for: "k") == 16)
            _ = await batcher.submit(contentsOf: Array(-8..<8), key: "k")  // half fail
            #expect(batcher.batchSizeLimit(for: "k") == 8)
            _ = await batcher.submit(contentsOf: Array(100..<108), key: "k")  // healthy and full
            #expect(batcher.batchSizeLimit(for: "k") == 12)
            _ = await batcher.submit(contentsOf: Array(200..<212), key: "k")
            #expect(batcher.batchSizeLimit(for: "k") == 16)
        }
        #expect(log.all.map(\.count) == [16, 8, 12])
    }

    @Test func theFirstBatchOfAKeyAlreadyUsesTheControllersLimit() async throws {
        var configuration = BatchConfiguration(maxBatchSize: 16, maxWait: .milliseconds(10), flushPolicy: .fillOrWait)
        configuration.adaptiveBatchSize = AdaptiveBatchSizeConfiguration(initialBatchSize: 4, increase: 4)
        let log = CallLog()
        try await ClockedBatcher<String, Int, Int, ManualClock>.withBatcher(
            configuration: configuration, clock: ManualClock(),
            handler: { _, inputs in
                log.record(inputs)
                return inputs.map { .success($0) }
            }
        ) { batcher in
            #expect(batcher.batchSizeLimit(for: "k") == 4)
            _ = await batcher.submit(contentsOf: Array(0..<12), key: "k")
            #expect(batcher.batchSizeLimit(for: "k") == 8, "+4 after the first healthy full batch; the others were below the new limit")
        }
        #expect(log.all.map(\.count) == [4, 4, 4], "cut at the controller's starting limit, not at maxBatchSize 16")
    }

    @Test func learnedLatencyIsReported() async throws {
        var configuration = BatchConfiguration(maxBatchSize: 4, maxWait: .milliseconds(10), flushPolicy: .fillOrWait)
        configuration.learnsHandlerLatency = true
        let clock = ManualClock()
        try await ClockedBatcher<String, Int, Int, ManualClock>.withBatcher(
            configuration: configuration, clock: clock, handler: { _, inputs in inputs.map { .success($0) } }
        ) { batcher in
            #expect(batcher.predictedLatency(for: "k", weight: 4) == nil)
            _ = await batcher.submit(contentsOf: [1, 2, 3, 4], key: "k")
            #expect(batcher.predictedLatency(for: "k", weight: 4) == .zero)  // the manual clock did not move
        }
    }
}
