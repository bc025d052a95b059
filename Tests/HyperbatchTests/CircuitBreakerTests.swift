import Synchronization
import HyperbatchTestKit
import Testing

@testable import Hyperbatch

@Suite struct CircuitBreakerTests {
    typealias Breaker = CircuitBreaker<ManualClock.Instant>
    static func at(_ ms: Int) -> ManualClock.Instant { .init(offset: .milliseconds(ms)) }

    @Test func opensAfterFiveConsecutiveFailuresAndRecoversThroughThreeProbes() {
        var breaker = Breaker()
        for i in 0..<4 {
            #expect(breaker.acquire(now: Self.at(i)) == .allow)
            breaker.record(.failure, permission: .allow, now: Self.at(i))
            #expect(breaker.state == .closed)
        }
        #expect(breaker.acquire(now: Self.at(4)) == .allow)
        breaker.record(.failure, permission: .allow, now: Self.at(4))
        #expect(breaker.state == .open)
        #expect(breaker.acquire(now: Self.at(29_000)) == .reject)
        // 30 s after opening: three probes, no fourth.
        #expect(breaker.acquire(now: Self.at(30_004)) == .probe)
        #expect(breaker.state == .halfOpen)
        #expect(breaker.acquire(now: Self.at(30_004)) == .probe)
        #expect(breaker.acquire(now: Self.at(30_004)) == .probe)
        #expect(breaker.acquire(now: Self.at(30_004)) == .reject)
        breaker.record(.success, permission: .probe, now: Self.at(30_010))
        breaker.record(.success, permission: .probe, now: Self.at(30_010))
        #expect(breaker.state == .halfOpen)
        breaker.record(.success, permission: .probe, now: Self.at(30_010))
        #expect(breaker.state == .closed)
        #expect(breaker.acquire(now: Self.at(30_011)) == .allow)
    }

    @Test func aFailedProbeReopensForAnotherRecoveryTimeout() {
        var breaker = Breaker(configuration: .init(consecutiveFailures: 1, recoveryTimeout: .seconds(10)))
        breaker.record(.failure, permission: breaker.acquire(now: Self.at(0)), now: Self.at(0))
        #expect(breaker.state == .open)
        #expect(breaker.acquire(now: Self.at(10_000)) == .probe)
        breaker.record(.failure, permission: .probe, now: Self.at(10_500))
        #expect(breaker.state == .open)
        #expect(breaker.openUntil == Self.at(20_500))
        #expect(breaker.acquire(now: Self.at(20_000)) == .reject)
        #expect(breaker.acquire(now: Self.at(20_500)) == .probe)
    }

    @Test func aNeutralProbeGivesItsSlotBack() {
        var breaker = Breaker(configuration: .init(consecutiveFailures: 1, halfOpenProbes: 1))
        breaker.record(.failure, permission: breaker.acquire(now: Self.at(0)), now: Self.at(0))
        #expect(breaker.acquire(now: Self.at(30_000)) == .probe)
        #expect(breaker.acquire(now: Self.at(30_000)) == .reject)
        breaker.record(.neutral, permission: .probe, now: Self.at(30_001))
        #expect(breaker.acquire(now: Self.at(30_002)) == .probe)
    }

    @Test func failureRateOverTheWindowNeedsMinimumVolume() {
        var configuration = CircuitBreakerConfiguration()
        configuration.consecutiveFailures = 100
        configuration.windowSize = 10
        configuration.minimumVolume = 6
        configuration.failureRateThreshold = 0.5
        var breaker = Breaker(configuration: configuration)
        // failure, success alternating: 50%, but below the minimum volume for the first 5.
        for i in 0..<5 {
            breaker.record(i % 2 == 0 ? .failure : .success, permission: .allow, now: Self.at(i))
            #expect(breaker.state == .closed)
        }
        breaker.record(.success, permission: .allow, now: Self.at(5))  // 3 of 6 failed = 50%
        #expect(breaker.state == .open)
    }

    @Test func successesResetTheConsecutiveCountAndNeutralsAreIgnored() {
        var breaker = Breaker()
        for i in 0..<20 {
            breaker.record(i % 4 == 3 ? .success : .failure, permission: .allow, now: Self.at(i))
            if i == 3 { #expect(breaker.consecutiveFailures == 0) }
        }
        #expect(breaker.state == .open)  // 8 of the first 10 failed: the rate opens it without 5 in a row
        var other = Breaker()
        for i in 0..<50 { other.record(.neutral, permission: .allow, now: Self.at(i)) }
        #expect(other.state == .closed && other.failureRate == 0)
    }
}

@Suite(.timeLimit(.minutes(1))) struct ExecutorBreakerTests {
    typealias Executor = BatchExecutor<String, Int, Int, ManualClock>

    @Test func openBreakerFailsFastWithoutCallingTheHandler() async {
        let log = CallLog()
        var policy = FailurePolicy(retry: .none, circuitBreaker: CircuitBreakerConfiguration())
        policy.classifier = .overriding { $0 is BrokenError ? .fatal : nil }
        let clock = ManualClock()
        let executor = Executor(policy: policy, clock: clock) { _, inputs in
            log.record(inputs)
            throw BrokenError()
        }
        for _ in 0..<5 { _ = await executor.execute(key: "k", inputs: [1, 2]) }
        #expect(executor.breakerState(for: "k") == .open)
        #expect(executor.breakerState(for: "other") == .closed)
        let results = await executor.execute(key: "k", inputs: [1, 2])
        #expect(log.count == 5)
        #expect(results.allSatisfy { ($0.failure as? BatcherError)?.code == .circuitOpen })
        #expect(executor.statistics.circuitRejections == 1)
        clock.advance(by: .seconds(30))
        _ = await executor.execute(key: "k", inputs: [1, 2])  // a probe, fails: open again
        #expect(log.count == 6)
        #expect(executor.breakerState(for: "k") == .open)
    }

    @Test func openBreakerCanDegradeToSingleItemCalls() async throws {
        let log = CallLog()
        let healthy = Mutex(false)
        var policy = FailurePolicy(
            retry: .none, circuitBreaker: CircuitBreakerConfiguration(consecutiveFailures: 2, whenOpen: .degradeToSingleItems))
        policy.classifier = .overriding { $0 is BrokenError ? .fatal : nil }
        let executor = Executor(policy: policy, clock: ManualClock()) { _, inputs in
            log.record(inputs)
            if inputs.count > 1, !healthy.withLock({ $0 }) { throw BrokenError() }
            return inputs.map { .success($0) }
        }
        for _ in 0..<2 { _ = await executor.execute(key: "k", inputs: [1, 2, 3]) }
        #expect(executor.breakerState(for: "k") == .open)
        let results = await executor.execute(key: "k", inputs: [1, 2, 3])
        #expect(try results.map { try $0.get() } == [1, 2, 3])
        #expect(Array(log.all.suffix(3)) == [[1], [2], [3]])
    }

    @Test func poisonIsolatedByBisectionDoesNotOpenTheBreaker() async {
        let log = CallLog()
        let policy = FailurePolicy(retry: .none, circuitBreaker: CircuitBreakerConfiguration(consecutiveFailures: 1))
        let executor = Executor(policy: policy, clock: ManualClock(), handler: poisonHandler([3], log: log))
        for _ in 0..<5 { _ = await executor.execute(key: "k", inputs: Array(0..<8)) }
        _ = await executor.execute(key: "k", inputs: [3])  // a lone poison item: neutral
        #expect(executor.breakerState(for: "k") == .closed)
    }
}
