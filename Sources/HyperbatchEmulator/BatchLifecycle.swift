/// Pure derivation of a batch's lifecycle from emulated time: no state changes, no clocks.
///
/// All times are emulated seconds since the Unix epoch. Requests are processed at `rate` per second
/// starting at `startAt`; a cancel freezes the work done; expiry cuts it at the window or at a fault fraction.
public struct BatchLifecycle: Sendable, Equatable {
    /// Where a batch is, provider-neutral.
    public enum Phase: String, Sendable, Equatable {
        case validating, failed, inProgress, finalizing, completed, cancelling, cancelled, expired
    }

    /// Emulated creation time.
    public var createdAt: Double
    /// Number of requests.
    public var total: Int
    /// Requests per emulated second.
    public var rate: Double
    /// Seconds of validation before processing (0 for Anthropic).
    public var validationSeconds: Double
    /// Seconds of finalizing (and of cancelling).
    public var finalizingSeconds: Double
    /// Completion window length in seconds.
    public var windowSeconds: Double
    /// Whether validation fails.
    public var validationFails: Bool = false
    /// Fraction of work after which the batch expires (fault), if any.
    public var expireAfterFraction: Double? = nil
    /// When a cancel was requested, if ever.
    public var cancelRequestedAt: Double? = nil

    /// Creates a lifecycle.
    public init(createdAt: Double, total: Int, rate: Double, validationSeconds: Double, finalizingSeconds: Double, windowSeconds: Double) {
        self.createdAt = createdAt
        self.total = total
        self.rate = rate
        self.validationSeconds = validationSeconds
        self.finalizingSeconds = finalizingSeconds
        self.windowSeconds = windowSeconds
    }

    /// Time processing starts.
    public var startAt: Double { createdAt + validationSeconds }
    /// Time processing of all requests would end.
    public var workEndAt: Double { startAt + Double(total) / max(rate, 1e-9) }
    /// Time the batch expires, if before its work ends.
    public var expiresAt: Double? {
        var e = createdAt + windowSeconds
        if let f = expireAfterFraction, f < 1 { e = min(e, startAt + Double(total) * max(0, f) / max(rate, 1e-9)) }
        return e < workEndAt ? e : nil
    }

    /// Requests finished at time `t`.
    public func processed(at t: Double) -> Int {
        if validationFails { return 0 }
        var end = t
        if let c = cancelRequestedAt { end = min(end, c) }
        if let e = expiresAt { end = min(end, e) }
        let n = Int(((end - startAt) * rate).rounded(.down))
        return min(total, max(0, n))
    }

    /// The phase and the time it was entered, at time `t`.
    public func phase(at t: Double) -> (phase: Phase, since: Double) {
        if validationFails {
            return t < startAt ? (.validating, createdAt) : (.failed, startAt)
        }
        if t < startAt && cancelRequestedAt == nil { return (.validating, createdAt) }
        if let c = cancelRequestedAt, c < workEndAt, expiresAt.map({ c < $0 }) ?? true {
            return t < c + finalizingSeconds ? (.cancelling, c) : (.cancelled, c + finalizingSeconds)
        }
        if let e = expiresAt {
            return t < e ? (.inProgress, startAt) : (.expired, e)
        }
        if t < workEndAt { return (.inProgress, startAt) }
        if t < workEndAt + finalizingSeconds { return (.finalizing, workEndAt) }
        return (.completed, workEndAt + finalizingSeconds)
    }
}
