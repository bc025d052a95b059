import HyperbatchJobs
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
}
