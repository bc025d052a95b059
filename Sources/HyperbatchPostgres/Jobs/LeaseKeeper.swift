/// The lease decisions of one worker as a pure value (no clock, no I/O): when to renew, and when to give up.
///
/// A renewal that *starts* at instant `s` and succeeds extends every lease of the worker to at least `s + leaseDuration`
/// on the database's clock. The keeper therefore knows the leases are held until `s + leaseDuration - safetyMargin`
/// (``heldUntil``); the margin covers clock-rate differences and a remote call already in flight. Past that instant
/// without a newer success the worker must stop claiming and exit, so another worker taking its batches over never
/// overlaps with it.
public struct LeaseKeeper<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// Timing of the leases.
    public struct Configuration: Sendable, Hashable {
        /// How long the store keeps a lease without renewal.
        public var leaseDuration: Duration
        /// Time between two successful renewals.
        public var renewInterval: Duration
        /// Time between attempts after a failed renewal.
        public var retryDelay: Duration
        /// How long before the leases could lapse the worker gives up.
        public var safetyMargin: Duration

        /// Creates a configuration; by default renewals every third of the lease, retries every 1/15, margin 1/6.
        public init(leaseDuration: Duration = .seconds(30), renewInterval: Duration? = nil, retryDelay: Duration? = nil, safetyMargin: Duration? = nil) {
            self.leaseDuration = leaseDuration
            self.renewInterval = renewInterval ?? leaseDuration / 3
            self.retryDelay = retryDelay ?? leaseDuration / 15
            self.safetyMargin = safetyMargin ?? leaseDuration / 6
        }
    }

    /// What to do next.
    public enum Action: Sendable, Hashable {
        /// Renew (again) at this instant.
        case renew(at: Instant)
        /// The leases may have lapsed: stop claiming and exit.
        case stop
    }

    /// The timing.
    public let configuration: Configuration
    /// Until when the worker's leases are certainly held.
    public private(set) var heldUntil: Instant
    /// Whether the keeper gave up (final).
    public private(set) var isLost = false

    /// A keeper for a worker starting at `start` (holding nothing yet; its claims lease for `leaseDuration` from
    /// their own time, so the first bound is `start + leaseDuration - safetyMargin`). Renew at once.
    public init(startedAt start: Instant, configuration: Configuration) {
        self.configuration = configuration
        self.heldUntil = start.advanced(by: configuration.leaseDuration - configuration.safetyMargin)
    }

    /// Whether the leases are still certainly held at `now`.
    public func isHeld(at now: Instant) -> Bool { !isLost && now < heldUntil }

    /// A renewal that started at `start` succeeded (reported at `now`).
    public mutating func renewed(startedAt start: Instant, now: Instant) -> Action {
        // A renewal that started after the bound may have found some leases already taken over: too late.
        guard isHeld(at: start) else { return lose() }
        let bound = start.advanced(by: configuration.leaseDuration - configuration.safetyMargin)
        if bound > heldUntil { heldUntil = bound }
        guard now < heldUntil else { return lose() }
        return .renew(at: start.advanced(by: configuration.renewInterval))
    }

    /// A renewal failed (reported at `now`): retry soon, or stop once the bound is reached.
    public mutating func failed(now: Instant) -> Action {
        guard isHeld(at: now) else { return lose() }
        let retry = now.advanced(by: configuration.retryDelay)
        return .renew(at: retry < heldUntil ? retry : heldUntil)
    }

    private mutating func lose() -> Action {
        isLost = true
        return .stop
    }
}
