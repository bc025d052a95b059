import Foundation
import HyperbatchTestKit
import Synchronization
import Testing

@testable import Hyperbatch

@Suite(.timeLimit(.minutes(1))) struct BatchExecutorTests {
    typealias Executor = BatchExecutor<String, Int, Int, ManualClock>

    static func policy(
        concurrent: Bool = true, retry: RetryPolicy = RetryPolicy(maxAttempts: 1), sink: (any DeadLetterSink)? = nil
    ) -> FailurePolicy {
        FailurePolicy(
            retry: retry, concurrentBisection: concurrent, bisectionFanout: 2, deadLetters: sink, adaptiveFanout: nil)
    }

    @Test(arguments: [true, false]) func onePoisonIn256FailsAloneWithinTwoLogNPlusOneCalls(concurrent: Bool) async throws {
        let log = CallLog()
        let executor = Executor(
            policy: Self.policy(concurrent: concurrent), clock: ManualClock(), handler: poisonHandler([137], log: log))
        let results = await executor.execute(key: "k", inputs: Array(0..<256))
        #expect(log.count <= 2 * 8 + 1)
        #expect(log.count == 17)
        for (i, result) in results.enumerated() {
            if i == 137 {
                #expect(result.failure as? PoisonError == PoisonError(item: 137))
            } else {
                #expect(try result.get() == i * 10)
            }
        }
        #expect(executor.statistics.bisections == 8)
        #expect(executor.statistics.failedItems == 1)
    }

    @Test(arguments: [2, 4, 8, 16]) func kPoisonCostOKLogN(k: Int) async {
        let log = CallLog()
        let poison = Set((0..<k).map { ($0 * 97 + 13) % 256 })
        let executor = Executor(policy: Self.policy(), clock: ManualClock(), handler: poisonHandler(poison, log: log))
        let results = await executor.execute(key: "k", inputs: Array(0..<256))
        #expect(log.count <= k * 2 * 8 + 1)
        #expect(log.count < 256)
        for (i, result) in results.enumerated() {
            #expect(result.isSuccess == !poison.contains(i))
        }
    }

    @Test func fatalFailsEveryItemAtOnce() async {
        let log = CallLog()
        var policy = Self.policy(retry: RetryPolicy(maxAttempts: 5))
        policy.classifier = .overriding { $0 is BrokenError ? .fatal : nil }
        let executor = Executor(policy: policy, clock: ManualClock()) { _, inputs in
            log.record(inputs)
            throw BrokenError()
        }
        let results = await executor.execute(key: "k", inputs: [1, 2, 3, 4])
        #expect(log.count == 1)
        #expect(results.allSatisfy { $0.failure is BrokenError })
    }

    @Test func itemLevelFailuresAreFinalAndNotDeadLettered() async {
        let log = CallLog()
        let sink = InMemoryDeadLetterSink()
        let executor = Executor(policy: Self.policy(retry: RetryPolicy(maxAttempts: 3), sink: sink), clock: ManualClock()) {
            _, inputs in
            log.record(inputs)
            return inputs.map { $0 == 2 ? .failure(PoisonError(item: 2)) : .success($0) }
        }
        let results = await executor.execute(key: "k", inputs: [1, 2, 3])
        #expect(log.count == 1)
        #expect(results[1].failure as? PoisonError == PoisonError(item: 2))
        #expect(results[0].isSuccess && results[2].isSuccess)
        #expect(sink.deadLetters.isEmpty)
        #expect(executor.statistics.itemErrors == 1)
    }

    @Test func resultCountMismatchFailsTheBatch() async {
        let executor = Executor(policy: Self.policy(), clock: ManualClock()) { _, _ in [.success(1)] }
        let results = await executor.execute(key: "k", inputs: [1, 2])
        #expect(results.allSatisfy { ($0.failure as? BatcherError)?.code == .resultCountMismatch })
    }

    @Test func retrySucceedsAfterBackoffOnTheClock() async throws {
        let clock = ManualClock()
        let log = CallLog()
        let retry = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(100), random: { 0.5 })
        let executor = Executor(policy: Self.policy(retry: retry), clock: clock) { _, inputs in
            log.record(inputs)
            if log.count == 1 { throw FlakyError() }
            return inputs.map { .success($0) }
        }
        let task = Task { await executor.execute(key: "k", inputs: [1, 2]) }
        let wake = await clock.nextSleep()
        #expect(wake == ManualClock.Instant(offset: .milliseconds(50)))  // full jitter: 0.5 × 100 ms
        clock.advance(to: wake)
        let results = await task.value
        #expect(try results.map { try $0.get() } == [1, 2])
        #expect(log.count == 2)
        #expect(executor.statistics.retries == 1)
    }

    @Test func retryStopsAtTheBudget() async throws {
        let clock = ManualClock()
        let log = CallLog()
        let retry = RetryPolicy(maxAttempts: 10, budgetRatio: 0, budgetReserve: 2, random: { 0.5 })
        let sink = InMemoryDeadLetterSink()
        let executor = Executor(policy: Self.policy(retry: retry, sink: sink), clock: clock) { _, inputs in
            log.record(inputs)
            throw FlakyError()
        }
        let task = Task { await executor.execute(key: "k", inputs: [7]) }
        for _ in 0..<2 {
            let wake = await clock.nextSleep()
            clock.advance(to: wake)
        }
        let results = await task.value
        #expect(results[0].failure is FlakyError)
        #expect(log.count == 3)  // first call + the 2 retries the budget held
        #expect(executor.statistics.retriesDenied == 1)
        #expect(sink.deadLetters.map(\.attempts) == [3])
        #expect(sink.deadLetters.map(\.failure) == [.transient])
    }

    @Test func retryNeverRunsAnItemPastItsDeadline() async {
        let clock = ManualClock()
        let log = CallLog()
        let retry = RetryPolicy(maxAttempts: 5, initialBackoff: .milliseconds(100), budgetReserve: 100, random: { 1 })
        let sink = InMemoryDeadLetterSink()
        let executor = Executor(policy: Self.policy(retry: retry, sink: sink), clock: clock) { _, inputs in
            log.record(inputs)
            throw FlakyError()
        }
        let deadline = ManualClock.Instant(offset: .milliseconds(250))
        let task = Task { await executor.execute(key: "k", inputs: [1, 2], deadlines: [deadline, nil]) }
        var wakes: [ManualClock.Instant] = []
        for _ in 0..<4 {
            let wake = await clock.nextSleep()
            wakes.append(wake)
            clock.advance(to: wake)
        }
        let results = await task.value
        #expect(wakes.map(\.offset) == [.milliseconds(100), .milliseconds(300), .milliseconds(700), .milliseconds(1500)])
        #expect(log.all == [[1, 2], [1, 2], [2], [2], [2]])  // item 1 is not retried at 300 ms, past its 250 ms deadline
        #expect(results.allSatisfy { $0.failure is FlakyError })
        #expect(Dictionary(uniqueKeysWithValues: sink.deadLetters.map { ($0.input, $0.attempts) }) == ["1": 2, "2": 5])
    }

    @Test func anItemDroppedFromTheMiddleKeepsEveryResultInItsPlace() async throws {
        let clock = ManualClock()
        let log = CallLog()
        let retry = RetryPolicy(maxAttempts: 3, initialBackoff: .milliseconds(100), budgetReserve: 10, random: { 1 })
        let executor = Executor(policy: Self.policy(retry: retry), clock: clock) { _, inputs in
            log.record(inputs)
            if log.count == 1 { throw FlakyError() }
            return inputs.map { .success($0 * 10) }
        }
        let deadline = ManualClock.Instant(offset: .milliseconds(50))
        let task = Task { await executor.execute(key: "k", inputs: [1, 2, 3, 4], deadlines: [nil, deadline, nil, nil]) }
        clock.advance(to: await clock.nextSleep())
        let results = await task.value
        #expect(log.all == [[1, 2, 3, 4], [1, 3, 4]])
        #expect(try results[0].get() == 10 && results[1].failure is FlakyError)
        #expect(try results[2].get() == 30 && results[3].get() == 40)
    }

    @Test func backoffIsExponentialWithFullJitterAndACap() {
        var policy = RetryPolicy(maxAttempts: 10, initialBackoff: .milliseconds(10), maxBackoff: .milliseconds(50))
        #expect(policy.backoffCeiling(retry: 1) == .milliseconds(10))
        #expect(policy.backoffCeiling(retry: 2) == .milliseconds(20))
        #expect(policy.backoffCeiling(retry: 3) == .milliseconds(40))
        #expect(policy.backoffCeiling(retry: 4) == .milliseconds(50))
        policy.random = { 0.25 }
        #expect(policy.backoff(retry: 3) == .milliseconds(10))
        policy.random = { 0 }
        #expect(policy.backoff(retry: 3) == .zero)
    }

    @Test func retryBudgetIsATokenBucket() {
        var budget = RetryBudget(ratio: 0.5, reserve: 2)
        var granted: [Bool] = []
        for _ in 0..<3 { granted.append(budget.tryRetry()) }
        #expect(granted == [true, true, false])
        budget.recordCall()
        let halfToken = budget.tryRetry()
        #expect(!halfToken)  // 0.5 tokens
        budget.recordCall()
        let oneToken = budget.tryRetry()
        #expect(oneToken)
        for _ in 0..<100 { budget.recordCall() }
        #expect(budget.tokens == 2)  // capped at the reserve
    }

    @Test func defaultClassifier() {
        let c = BatchErrorClassifier.default
        struct ReadTimeout: Error {}
        struct Other: Error {}
        struct NotRetryable: RetryableError { var isRetryable: Bool { false } }
        #expect(c(FlakyError()) == .transient)
        #expect(c(RetryableFailure(Other())) == .transient)
        #expect(c(URLError(.timedOut)) == .transient)
        #expect(c(ReadTimeout()) == .transient)
        #expect(c(CancellationError()) == .fatal)
        #expect(c(Other()) == .poison)
        #expect(c(NotRetryable()) == .poison)
        #expect(BatchErrorClassifier.overriding { $0 is Other ? .fatal : nil }(Other()) == .fatal)
    }

    @Test func deadLetterRecordsAreComplete() async throws {
        let sink = InMemoryDeadLetterSink()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("dl-\(UUID().uuidString).jsonl").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = JSONLDeadLetterSink(path: path)
        struct Both: DeadLetterSink {
            let a: any DeadLetterSink, b: any DeadLetterSink
            func record(_ d: [DeadLetter]) async {
                await a.record(d)
                await b.record(d)
            }
        }
        let executor = Executor(
            policy: Self.policy(sink: Both(a: sink, b: file)), clock: ManualClock(),
            handler: poisonHandler([5], log: CallLog()))
        _ = await executor.execute(key: "k", inputs: Array(0..<16))
        let letters = sink.deadLetters
        try #require(letters.count == 1)
        let letter = letters[0]
        #expect(letter.key == "string")
        #expect(letter.input == "5")
        #expect(letter.error == String(describing: PoisonError(item: 5)))
        #expect(letter.failure == .poison)
        #expect(letter.attempts == 5)  // 16 → 8 → 4 → 2 → 1
        #expect(letter.firstAttemptAt <= letter.failedAt)
        _ = await executor.execute(key: "k", inputs: [5])
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 2)
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let decoded = try decoder.decode(DeadLetter.self, from: Data(lines[0].utf8))
        #expect(decoded.input == "5" && decoded.attempts == 5 && decoded.failure == .poison && decoded.key == "string")
        #expect(file.writeFailures == 0)
    }

    @Test func inMemorySinkIsBounded() async {
        let sink = InMemoryDeadLetterSink(capacity: 2)
        let letters = (0..<5).map {
            DeadLetter(
                key: "k", input: "\($0)", error: "e", failure: .fatal, attempts: 1, firstAttemptAt: Date(),
                failedAt: Date())
        }
        await sink.record(letters)
        #expect(sink.deadLetters.map(\.input) == ["3", "4"])
        #expect(sink.droppedCount == 3)
    }
}

@Suite(.timeLimit(.minutes(1))) struct BisectionFanoutTests {
    @Test(arguments: [true, false]) func fourWaySplitIsolatesOnePoisonIn256WithinSeventeenCalls(concurrent: Bool) async {
        let log = CallLog()
        var policy = FailurePolicy(retry: .none, concurrentBisection: concurrent)
        policy.bisectionFanout = 4
        let executor = BatchExecutor<String, Int, Int, ManualClock>(
            policy: policy, clock: ManualClock(), handler: poisonHandler([200], log: log))
        let results = await executor.execute(key: "k", inputs: Array(0..<256))
        #expect(log.count == 1 + 4 * 4)
        #expect(executor.statistics.bisections == 4)
        for (i, result) in results.enumerated() { #expect(result.isSuccess == (i != 200)) }
    }

    @Test func unevenSplitsCoverEveryItemOnce() async {
        let log = CallLog()
        var policy = FailurePolicy(retry: .none)
        policy.bisectionFanout = 3
        let executor = BatchExecutor<String, Int, Int, ManualClock>(
            policy: policy, clock: ManualClock(), handler: poisonHandler([0, 9], log: log))
        let results = await executor.execute(key: "k", inputs: Array(0..<10))
        #expect(results.map(\.isSuccess) == (0..<10).map { $0 != 0 && $0 != 9 })
        #expect(log.all.filter { $0.count == 1 }.flatMap { $0 }.contains(0))
    }
}

@Suite(.timeLimit(.minutes(1))) struct SplitCallBoundTests {
    @Test func anOutageOfPoisonErrorsIsBoundedBySplitCalls() async {
        let log = CallLog()
        var policy = FailurePolicy(retry: .none)
        policy.maxSplitCallsPerBatch = 20
        let executor = BatchExecutor<String, Int, Int, ManualClock>(policy: policy, clock: ManualClock()) { _, inputs in
            log.record(inputs)
            throw PoisonError(item: inputs[0])
        }
        let results = await executor.execute(key: "k", inputs: Array(0..<256))
        #expect(log.count == 1 + 20)  // without the bound: 511
        #expect(results.allSatisfy { $0.failure is PoisonError })
    }

    @Test func theBoundLeavesOnePoisonIn256Alone() async {
        let log = CallLog()
        var policy = FailurePolicy(retry: .none)
        policy.maxSplitCallsPerBatch = 16
        let executor = BatchExecutor<String, Int, Int, ManualClock>(
            policy: policy, clock: ManualClock(), handler: poisonHandler([77], log: log))
        let results = await executor.execute(key: "k", inputs: Array(0..<256))
        #expect(log.count == 17)
        #expect(results.map(\.isSuccess) == (0..<256).map { $0 != 77 })
    }
}
