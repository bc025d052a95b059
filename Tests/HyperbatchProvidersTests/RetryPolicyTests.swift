import Foundation
import Testing

@testable import HyperbatchProviders

@Suite struct RetryPolicyTests {
    let policy = RetryPolicy(maxRetries: 5, initialDelay: .milliseconds(500), maxDelay: .seconds(8), maxServerDelay: .seconds(60), jitter: 0.25)

    @Test func retryAfterMsWinsOverRetryAfter() {
        #expect(policy.serverDelay(retryAfterMs: "1500", retryAfter: "30") == .milliseconds(1500))
        #expect(policy.serverDelay(retryAfterMs: "nonsense", retryAfter: "2") == .seconds(2))
        #expect(policy.serverDelay(retryAfterMs: nil, retryAfter: "0.25") == .milliseconds(250))
    }

    @Test func retryAfterHTTPDate() {
        let now = Date(timeIntervalSince1970: 1_445_412_480)  // Wed, 21 Oct 2015 07:28:00 GMT
        #expect(policy.serverDelay(retryAfterMs: nil, retryAfter: "Wed, 21 Oct 2015 07:28:10 GMT", now: now) == .seconds(10))
    }

    @Test func unusableServerDelaysFallBackToBackoff() {
        #expect(policy.serverDelay(retryAfterMs: nil, retryAfter: "3600") == nil)
        #expect(policy.serverDelay(retryAfterMs: "-5", retryAfter: nil) == nil)
        #expect(policy.serverDelay(retryAfterMs: nil, retryAfter: nil) == nil)
        #expect(policy.delay(retry: 1, retryAfterMs: nil, retryAfter: "3600", random: 0) == .seconds(1))
    }

    @Test func backoffDoublesCapsAndJitters() {
        #expect(policy.backoff(retry: 0, random: 0) == .milliseconds(500))
        #expect(policy.backoff(retry: 1, random: 0) == .seconds(1))
        #expect(policy.backoff(retry: 3, random: 0) == .seconds(4))
        #expect(policy.backoff(retry: 10, random: 0) == .seconds(8))
        #expect(policy.backoff(retry: 10, random: 1) == .seconds(6))
        #expect(policy.backoff(retry: 0, random: 0.5) == .milliseconds(437.5))
    }

    @Test func statusesAndShouldRetryHeader() {
        for status in [408, 409, 429, 500, 502, 503, 529] {
            #expect(RetryPolicy.shouldRetry(status: status, shouldRetryHeader: nil), "\(status)")
        }
        for status in [400, 401, 403, 404, 413, 422] {
            #expect(!RetryPolicy.shouldRetry(status: status, shouldRetryHeader: nil), "\(status)")
        }
        #expect(RetryPolicy.shouldRetry(status: 400, shouldRetryHeader: "true"))
        #expect(!RetryPolicy.shouldRetry(status: 503, shouldRetryHeader: "false"))
    }
}
