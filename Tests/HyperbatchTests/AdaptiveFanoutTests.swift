import HyperbatchTestKit
import Testing

@testable import Hyperbatch

@Suite struct AdaptiveFanoutTests {
    let choice = AdaptiveFanout(maxFanout: 16)
    let micro = 1e-6

    @Test func unboundedLanesSplitAsWideAsAllowed() {
        // 50 µs per call + 1 µs per item: 16 parts reach a lone item in 2 levels, (50+16) + (50+1) µs.
        #expect(choice.fanout(items: 256, perItem: micro, fixed: 50 * micro, lanes: .max) == 16)
        #expect(AdaptiveFanout(maxFanout: 8).fanout(items: 256, perItem: micro, fixed: 50 * micro, lanes: .max) == 8)
        let path = AdaptiveFanout.criticalPath(items: 256, fanout: 16, perItem: micro, fixed: 50 * micro, lanes: .max)
        #expect(abs(path - 117 * micro) < 1e-12)
    }

    @Test func aMeasuredStartDelayPerPartNarrowsTheSplit() {
        // 10 µs per further part: 16ths start 30 parts late over 2 levels (517 µs), 8ths 17 over 3 levels (507 µs).
        #expect(choice.fanout(items: 256, perItem: micro, fixed: 100 * micro, perPart: 10 * micro, lanes: .max) == 8)
        let eighths = AdaptiveFanout.criticalPath(
            items: 256, fanout: 8, perItem: micro, fixed: 100 * micro, perPart: 10 * micro, lanes: .max)
        #expect(abs(eighths - 507 * micro) < 1e-12)
        #expect(choice.fanout(items: 256, perItem: micro, fixed: 100 * micro, perPart: 0, lanes: .max) == 16)
    }

    @Test func oneLaneSplitsNarrow() {
        // In sequence every part's call adds its fixed cost: quarters (4 levels × 4 calls) beat halves and 16ths.
        #expect(choice.fanout(items: 256, perItem: micro, fixed: 50 * micro, lanes: 1) == 4)
        #expect(choice.fanout(items: 256, perItem: micro, fixed: 100 * micro, lanes: 1) == 4)
    }

    @Test func fewLanesWeighFixedAgainstPerItemCost() {
        // 4 lanes: when the fixed cost dominates, 4 parts (one round per level); when the per-item cost dominates,
        // 16 parts (4 rounds of small calls).
        #expect(choice.fanout(items: 256, perItem: micro, fixed: 100 * micro, lanes: 4) == 4)
        #expect(choice.fanout(items: 256, perItem: micro, fixed: 0, lanes: 4) == 16)
    }

    @Test func smallPartsAndBounds() {
        #expect(choice.fanout(items: 2, perItem: micro, fixed: micro, lanes: .max) == 2)
        #expect(choice.fanout(items: 5, perItem: micro, fixed: micro, lanes: .max) == 5)
        #expect(AdaptiveFanout(maxFanout: 1).maxFanout == 2)
    }
}

/// The executor learns `t ≈ a·items + b` from its own calls (timed on a manual clock the handler advances by a
/// deterministic cost) and splits by it.
@Suite(.timeLimit(.minutes(1))) struct AdaptiveBisectionTests {
    typealias Executor = BatchExecutor<String, Int, Int, ManualClock>

    /// A handler that costs 50 µs + 1 µs per item on `clock` and throws for inputs in `poison`.
    static func costly(_ poison: Set<Int>, clock: ManualClock, log: CallLog) -> Executor.Handler {
        let handle = poisonHandler(poison, log: log)
        return { key, inputs in
            clock.advance(by: .microseconds(50 + inputs.count))
            return try await handle(key, inputs)
        }
    }

    static func train(_ executor: Executor) async {
        for size in [1, 4, 16, 64, 256] { _ = await executor.execute(key: "k", inputs: Array(1000..<1000 + size)) }
    }

    @Test func concurrentPartsSplitInSixteenthsOnceTheCostIsKnown() async throws {
        let clock = ManualClock()
        let log = CallLog()
        let executor = Executor(
            policy: FailurePolicy(retry: .none), clock: clock, handler: Self.costly([137], clock: clock, log: log))
        await Self.train(executor)
        let fit = try #require(executor.latencyCoefficients(for: "k"))
        #expect(abs(fit.perItem - 1e-6) < 1e-9 && abs(fit.fixed - 50e-6) < 1e-9)
        let learned = try #require(executor.learnedCosts(for: "k"))
        #expect(learned.perPart == .zero)  // no split yet
        #expect(abs(learned.perCall.inSeconds - 50e-6) < 1e-9)
        let before = log.count
        let results = await executor.execute(key: "k", inputs: Array(0..<256))
        // 256 → 16 parts of 16 → 16 single items: 1 + 16·log16(256) calls, 2 levels instead of 4 with quarters.
        #expect(log.count - before == 1 + 16 * 2)
        #expect(log.all[before...].filter { $0.count == 16 }.count == 16)
        #expect(results.map(\.isSuccess) == (0..<256).map { $0 != 137 })
        #expect(executor.statistics.bisections == 2)
    }

    @Test func sequentialPartsSplitInQuarters() async {
        let clock = ManualClock()
        let log = CallLog()
        let executor = Executor(
            policy: FailurePolicy(retry: .none, concurrentBisection: false), clock: clock,
            handler: Self.costly([42], clock: clock, log: log))
        await Self.train(executor)
        let before = log.count
        let results = await executor.execute(key: "k", inputs: Array(0..<256))
        #expect(log.count - before == 1 + 4 * 4)
        #expect(results.map(\.isSuccess) == (0..<256).map { $0 != 42 })
    }

    @Test func withoutACostOrWhenFixedTheConfiguredFanoutSplits() async {
        let clock = ManualClock()
        var policy = FailurePolicy(retry: .none, bisectionFanout: 2)
        // A handler that took no time teaches nothing: halves.
        let freeLog = CallLog()
        let free = Executor(policy: policy, clock: clock, handler: poisonHandler([9], log: freeLog))
        _ = await free.execute(key: "k", inputs: Array(0..<256))
        #expect(freeLog.count == 1 + 2 * 8)
        // A key's first batch already splits by its own first call (one sample: all of it taken as fixed cost).
        let firstLog = CallLog()
        let first = Executor(policy: policy, clock: clock, handler: Self.costly([9], clock: clock, log: firstLog))
        _ = await first.execute(key: "k", inputs: Array(0..<256))
        #expect(firstLog.count == 1 + 16 * 2)
        // Fixed: halves however much is learned.
        policy.adaptiveFanout = nil
        let fixedLog = CallLog()
        let fixed = Executor(policy: policy, clock: clock, handler: Self.costly([9], clock: clock, log: fixedLog))
        await Self.train(fixed)
        let before = fixedLog.count
        _ = await fixed.execute(key: "k", inputs: Array(0..<256))
        #expect(fixedLog.count - before == 1 + 2 * 8)
        #expect(fixed.latencyCoefficients(for: "k") == nil)
    }

    @Test(arguments: [2, 4, 8]) func kPoisonStayWithinTheChosenFanoutsBound(k: Int) async {
        let clock = ManualClock()
        let log = CallLog()
        let poison = Set((0..<k).map { ($0 * 97 + 13) % 256 })
        let executor = Executor(
            policy: FailurePolicy(retry: .none), clock: clock, handler: Self.costly(poison, clock: clock, log: log))
        await Self.train(executor)
        let before = log.count
        let results = await executor.execute(key: "k", inputs: Array(0..<256))
        // At most 16·ceil(log16(256)) = 32 extra calls per bad item.
        #expect(log.count - before <= 1 + k * 16 * 2)
        for (i, result) in results.enumerated() { #expect(result.isSuccess == !poison.contains(i)) }
    }
}
