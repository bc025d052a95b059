import Foundation

/// How a provider client retries failed HTTP calls: exponential backoff with jitter, honouring the server's
/// `retry-after-ms`, `retry-after` and `x-should-retry` headers (the official SDKs' rules).
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts after the first one.
    public var maxRetries: Int
    /// The delay before the first retry when the server gives none.
    public var initialDelay: Duration
    /// The longest computed backoff delay.
    public var maxDelay: Duration
    /// A server-requested delay above this is ignored in favour of backoff (as the SDKs do above 60 s).
    public var maxServerDelay: Duration
    /// Fraction of the delay removed at random (0 = no jitter, 0.25 = up to 25% shorter).
    public var jitter: Double

    /// Creates a policy; the defaults follow openai-python (0.5 s doubling to 8 s, 25% jitter) with more retries.
    public init(
        maxRetries: Int = 5, initialDelay: Duration = .milliseconds(500), maxDelay: Duration = .seconds(8),
        maxServerDelay: Duration = .seconds(60), jitter: Double = 0.25
    ) {
        self.maxRetries = maxRetries
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.maxServerDelay = maxServerDelay
        self.jitter = jitter
    }

    /// Whether an HTTP status is worth retrying (408, 409, 429, 5xx), unless `x-should-retry` says otherwise.
    public static func shouldRetry(status: Int, shouldRetryHeader: String?) -> Bool {
        switch shouldRetryHeader?.lowercased() {
        case "true": return true
        case "false": return false
        default: return status == 408 || status == 409 || status == 429 || status >= 500
        }
    }

    /// The delay a server asked for: `retry-after-ms` (milliseconds), else `retry-after` (seconds or an HTTP date,
    /// relative to `now`). Nil when absent, unparsable, negative or above ``maxServerDelay``.
    public func serverDelay(retryAfterMs: String?, retryAfter: String?, now: Date = Date()) -> Duration? {
        var delay: Duration?
        if let text = retryAfterMs?.trimmingCharacters(in: .whitespaces), let ms = Double(text), ms.isFinite {
            delay = .milliseconds(ms)
        } else if let text = retryAfter?.trimmingCharacters(in: .whitespaces), !text.isEmpty {
            if let seconds = Double(text), seconds.isFinite {
                delay = .milliseconds(seconds * 1000)
            } else if let date = Self.parseHTTPDate(text) {
                delay = .milliseconds(date.timeIntervalSince(now) * 1000)
            }
        }
        guard let delay, delay >= .zero, delay <= maxServerDelay else { return nil }
        return delay
    }

    /// The backoff delay before retry number `retry` (0 = first retry), with `random` in 0..<1 choosing the jitter.
    public func backoff(retry: Int, random: Double) -> Duration {
        let exponent = min(max(retry, 0), 30)
        let base = min(initialDelay * (1 << exponent), maxDelay)
        return base * (1 - jitter * min(max(random, 0), 1))
    }

    /// The delay before retry number `retry`: the server's, if it gave a usable one, else backoff.
    public func delay(retry: Int, retryAfterMs: String?, retryAfter: String?, now: Date = Date(), random: Double) -> Duration {
        serverDelay(retryAfterMs: retryAfterMs, retryAfter: retryAfter, now: now) ?? backoff(retry: retry, random: random)
    }

    static func parseHTTPDate(_ text: String) -> Date? {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return formatter.date(from: text)
    }
}
