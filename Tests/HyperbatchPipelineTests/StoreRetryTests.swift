import HyperbatchJobs
import HyperbatchTestKit
import Logging
import Synchronization
import Testing

@Suite struct StoreRetryTests {
    struct Hiccup: Error {}
    struct Broken: Error {}

    static let policy = StoreRetryPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1)) { error in
        error is Hiccup ? .transient : .permanent
    }

    @Test func transientFailuresBackOffExponentiallyUpToTheCap() {
        var state = StoreRetryState(policy: Self.policy)
        let delays = (1...6).map { _ in state.failed(.transient) }
        #expect(delays == [
            .retry(after: .milliseconds(100), attempt: 1), .retry(after: .milliseconds(200), attempt: 2),
            .retry(after: .milliseconds(400), attempt: 3), .retry(after: .milliseconds(800), attempt: 4),
            .retry(after: .seconds(1), attempt: 5), .retry(after: .seconds(1), attempt: 6),
        ])
        #expect(state.consecutiveFailures == 6)
    }

    @Test func aSuccessResetsTheBackoff() {
        var state = StoreRetryState(policy: Self.policy)
        _ = state.failed(.transient)
        _ = state.failed(.transient)
        #expect(state.succeeded() == 2)
        #expect(state.succeeded() == 0)
        #expect(state.failed(.transient) == .retry(after: .milliseconds(100), attempt: 1))
    }

    @Test func permanentErrorsStopAtOnceEvenAfterTransientOnes() {
        var state = StoreRetryState(policy: Self.policy)
        #expect(state.failed(.permanent) == .stop)
        _ = state.failed(.transient)
        #expect(state.failed(.permanent) == .stop)
    }

    @Test func maximumAttemptsBoundsConsecutiveRetries() {
        var policy = Self.policy
        policy.maximumAttempts = 2
        var state = StoreRetryState(policy: policy)
        #expect(state.failed(.transient) == .retry(after: .milliseconds(100), attempt: 1))
        #expect(state.failed(.transient) == .retry(after: .milliseconds(200), attempt: 2))
        #expect(state.failed(.transient) == .stop)
        state.succeeded()
        #expect(state.failed(.transient) == .retry(after: .milliseconds(100), attempt: 1))
    }

    @Test func theDefaultPolicyRetriesNothing() {
        let policy = StoreRetryPolicy()
        #expect(policy.classify(Hiccup()) == .permanent)
        var state = StoreRetryState(policy: policy)
        #expect(state.failed(policy.classify(Hiccup())) == .stop)
        #expect(Self.policy.classify(Hiccup()) == .transient)
        #expect(Self.policy.classify(Broken()) == .permanent)
    }

    @Test func runRetriesTransientErrorsWithTheBackoffOnTheClockThenReturns() async throws {
        let clock = ManualClock()
        let calls = Mutex(0)
        let task = Task {
            try await Self.policy.run(clock: clock, logger: Logger(label: "test"), "step") { () throws -> String in
                let n = calls.withLock { n in n += 1; return n }
                if n < 3 { throw Hiccup() }
                return "done after \(n)"
            }
        }
        // The handshake: wait until the step sleeps, check the backoff, wake it.
        let first = await clock.nextSleep()
        #expect(first == ManualClock.Instant(offset: .milliseconds(100)))
        clock.advance(to: first)
        let second = await clock.nextSleep()
        #expect(second == first.advanced(by: .milliseconds(200)), "the second delay doubles")
        clock.advance(to: second)
        #expect(try await task.value == "done after 3")
        #expect(calls.withLock { $0 } == 3)
    }

    @Test func runRethrowsAPermanentErrorAtOnceAndStopsAtMaximumAttempts() async throws {
        let clock = ManualClock()
        await #expect(throws: Broken.self) {
            try await Self.policy.run(clock: clock, logger: Logger(label: "test"), "step") { () throws -> Int in throw Broken() }
        }
        var limited = Self.policy
        limited.maximumAttempts = 1
        let calls = Mutex(0)
        let task = Task {
            try await limited.run(clock: clock, logger: Logger(label: "test"), "step") { () throws -> Int in
                calls.withLock { $0 += 1 }
                throw Hiccup()
            }
        }
        clock.advance(to: await clock.nextSleep())
        await #expect(throws: Hiccup.self) { try await task.value }
        #expect(calls.withLock { $0 } == 2, "one try and one retry")
    }
}
