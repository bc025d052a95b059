import HyperbatchTestKit
import Synchronization
import Testing

@testable import Hyperbatch

@Suite(.timeLimit(.minutes(1))) struct BatcherFailureTests {
    typealias TestBatcher = ClockedBatcher<String, Int, Int, ManualClock>

    @Test func aPoisonItemFailsAloneInTheBatcher() async throws {
        let log = CallLog()
        let sink = InMemoryDeadLetterSink()
        let results = try await TestBatcher.withBatcher(
            configuration: BatchConfiguration(maxBatchSize: 64, maxWait: .milliseconds(10), flushPolicy: .fillOrWait),
            clock: ManualClock(), failurePolicy: FailurePolicy(deadLetters: sink),
            handler: poisonHandler([42], log: log)
        ) { batcher in
            await batcher.submit(contentsOf: Array(0..<64), key: "k")
        }
        for (i, result) in results.enumerated() {
            #expect(result.isSuccess == (i != 42))
        }
        #expect(results[42].failure as? PoisonError == PoisonError(item: 42))
        #expect(log.count == 2 * 6 + 1)
        #expect(sink.deadLetters.map(\.input) == ["42"])
    }

    /// Split calls borrow the key's idle slots: however wide the fanout, the key never has more handler calls in
    /// flight than `maxConcurrentBatches`. `timed`: calls cost time on the clock, so the fanout is chosen from the
    /// latency fit with the lent slots as lanes (surplus slots given back).
    @Test(arguments: [1, 2, 3], [false, true])
    func splitCallsStayWithinTheKeysConcurrencyLimit(limit: Int, timed: Bool) async throws {
        struct Gauge { var now = 0, peak = 0, calls = 0 }
        let gauge = Mutex(Gauge())
        var policy = FailurePolicy()
        policy.bisectionFanout = 4
        var configuration = BatchConfiguration(maxBatchSize: 32, maxWait: .seconds(3600), flushPolicy: .eager)
        configuration.maxConcurrentBatches = limit
        let poison: Set<Int> = [3, 40, 77, 90]
        let clock = ManualClock()
        let results = try await TestBatcher.withBatcher(
            configuration: configuration, clock: clock, failurePolicy: policy,
            handler: { _, inputs in
                if timed { clock.advance(by: .microseconds(50 + inputs.count)) }
                gauge.withLock { g in
                    g.now += 1
                    g.calls += 1
                    g.peak = max(g.peak, g.now)
                }
                for _ in 0..<20 { await Task.yield() }  // let every other runnable call start meanwhile
                gauge.withLock { $0.now -= 1 }
                if let bad = inputs.first(where: { poison.contains($0) }) { throw PoisonError(item: bad) }
                return inputs.map { .success($0 * 10) }
            }
        ) { batcher in
            await batcher.submit(contentsOf: Array(0..<128), key: "k")
        }
        for (i, result) in results.enumerated() { #expect(result.isSuccess == !poison.contains(i), "item \(i)") }
        let g = gauge.withLock { $0 }
        #expect(g.peak <= limit, "\(g.peak) handler calls ran at once; the key allows \(limit)")
        #expect(g.calls > 4, "the poison batches were split")
    }

    @Test func withoutAPolicyAThrowFailsTheWholeBatch() async throws {
        let log = CallLog()
        let results = try await TestBatcher.withBatcher(
            configuration: BatchConfiguration(maxBatchSize: 8, maxWait: .milliseconds(10), flushPolicy: .fillOrWait),
            clock: ManualClock(), handler: poisonHandler([3], log: log)
        ) { batcher in
            await batcher.submit(contentsOf: Array(0..<8), key: "k")
        }
        #expect(results.allSatisfy { !$0.isSuccess })
        #expect(log.count == 1)
    }

    @Test func allOrNothingHandlerWithAPolicyIsolatesThePoisonItem() async throws {
        let results = try await TestBatcher.withBatcher(
            configuration: BatchConfiguration(maxBatchSize: 32, maxWait: .milliseconds(10), flushPolicy: .fillOrWait),
            clock: ManualClock(), failurePolicy: FailurePolicy(),
            allOrNothing: { _, inputs in
                if inputs.contains(7) { throw PoisonError(item: 7) }
                return inputs.map { $0 + 1 }
            }
        ) { batcher in
            await batcher.submit(contentsOf: Array(0..<32), key: "k")
        }
        #expect(results.map(\.isSuccess) == (0..<32).map { $0 != 7 })
        #expect(try results[8].get() == 9)
    }

    @Test func aTransientBatchRetriesOnTheBatchersClock() async throws {
        let clock = ManualClock()
        let log = CallLog()
        let retry = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(100), random: { 1 })
        let value = try await TestBatcher.withBatcher(
            configuration: BatchConfiguration(maxBatchSize: 8, maxWait: .seconds(3600), flushPolicy: .eager),
            clock: clock, failurePolicy: FailurePolicy(retry: retry),
            handler: { _, inputs in
                log.record(inputs)
                if log.count == 1 { throw FlakyError() }
                return inputs.map { .success($0 * 2) }
            }
        ) { batcher in
            async let result = batcher.submit(21, key: "k")
            var wake = await clock.nextSleep()
            while wake != ManualClock.Instant(offset: .milliseconds(100)) { wake = await clock.nextSleep() }
            #expect(log.count == 1)
            clock.advance(to: wake)
            return try await result
        }
        #expect(value == 42)
        #expect(log.count == 2)
    }
}
