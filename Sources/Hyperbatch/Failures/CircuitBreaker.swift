import DequeModule

/// The state of a key's ``CircuitBreaker``.
public enum CircuitBreakerState: String, Sendable, Hashable, Codable {
    /// Batches run normally; failures are counted.
    case closed
    /// Too many failures: batches fail fast (or degrade to single-item calls) until the recovery timeout passes.
    case open
    /// After the recovery timeout: a few probe batches run; all succeeding closes the breaker, one failing reopens it.
    case halfOpen
}

/// When a key's breaker opens, and what happens while it is open.
///
/// Opens after `consecutiveFailures` failed batches in a row, or when at least `minimumVolume` of the last
/// `windowSize` batches were recorded and `failureRateThreshold` of them failed. A batch fails for the breaker when it
/// ended with an unresolved batch-level failure (transient after retries, fatal, result-count mismatch, or every call
/// failing); items the handler failed one by one and poison items isolated by bisection never count.
public struct CircuitBreakerConfiguration: Sendable, Hashable {
    /// What a batch of an open key does.
    public enum OpenBehavior: Sendable, Hashable {
        /// Every item fails at once with ``BatcherError`` `circuitOpen`; the handler is not called.
        case failFast
        /// Each item is sent alone (one handler call per item, one after another, no retry or bisection).
        case degradeToSingleItems
    }

    /// Failed batches in a row that open the breaker.
    public var consecutiveFailures: Int = 5
    /// Recent batches the failure rate is computed over.
    public var windowSize: Int = 20
    /// Batches the window must hold before the failure rate can open the breaker.
    public var minimumVolume: Int = 10
    /// Failure rate (0...1) over the window that opens the breaker.
    public var failureRateThreshold: Double = 0.5
    /// How long the breaker stays open before letting probes through.
    public var recoveryTimeout: Duration = .seconds(30)
    /// Probe batches let through when half-open; all must succeed to close.
    public var halfOpenProbes: Int = 3
    /// What a batch does while the breaker is open.
    public var whenOpen: OpenBehavior = .failFast

    /// The defaults: 5 consecutive failures or 50% of the last 20 (at least 10), 30 s recovery, 3 probes, fail fast.
    public init() {}

    /// Creates a configuration, setting the common properties.
    public init(
        consecutiveFailures: Int = 5, recoveryTimeout: Duration = .seconds(30), halfOpenProbes: Int = 3,
        whenOpen: OpenBehavior = .failFast
    ) {
        self.consecutiveFailures = consecutiveFailures
        self.recoveryTimeout = recoveryTimeout
        self.halfOpenProbes = halfOpenProbes
        self.whenOpen = whenOpen
    }
}

/// A pure per-key circuit breaker: events in (``acquire(now:)``, ``record(_:permission:now:)``), decisions out.
/// No clock, lock or task inside; the executor keeps one per key under its lock.
public struct CircuitBreaker<Instant: InstantProtocol>: Sendable where Instant.Duration == Duration {
    /// What a batch may do.
    public enum Permission: Sendable, Hashable {
        /// Run normally (breaker closed).
        case allow
        /// Run as one of the half-open probes.
        case probe
        /// Do not call the downstream normally (breaker open, or half-open with every probe slot taken).
        case reject
    }

    /// How a batch ended, for the breaker.
    public enum Outcome: Sendable, Hashable {
        /// The downstream answered (some call succeeded).
        case success
        /// An unresolved batch-level failure.
        case failure
        /// Says nothing about the downstream (a lone poison item, cancellation).
        case neutral
    }

    /// The thresholds.
    public let configuration: CircuitBreakerConfiguration
    /// The current state (an open breaker reports `open` until the next ``acquire(now:)`` after its timeout).
    public private(set) var state: CircuitBreakerState = .closed
    /// When an open breaker starts letting probes through.
    public private(set) var openUntil: Instant?
    private var window: Deque<Bool> = []
    private var windowFailures = 0
    /// Failed batches in a row.
    public private(set) var consecutiveFailures = 0
    private var probesAdmitted = 0
    private var probeSuccesses = 0

    /// Creates a closed breaker.
    public init(configuration: CircuitBreakerConfiguration = .init()) { self.configuration = configuration }

    /// Failure rate over the window (0 when empty).
    public var failureRate: Double { window.isEmpty ? 0 : Double(windowFailures) / Double(window.count) }

    /// Asks whether a batch may run now.
    public mutating func acquire(now: Instant) -> Permission {
        if state == .open {
            guard let until = openUntil, now >= until else { return .reject }
            state = .halfOpen
            probesAdmitted = 0
            probeSuccesses = 0
        }
        switch state {
        case .closed: return .allow
        case .halfOpen:
            guard probesAdmitted < max(1, configuration.halfOpenProbes) else { return .reject }
            probesAdmitted += 1
            return .probe
        case .open: return .reject
        }
    }

    /// Records how a batch that was given `permission` ended.
    public mutating func record(_ outcome: Outcome, permission: Permission, now: Instant) {
        switch (state, permission) {
        case (.closed, .allow):
            guard outcome != .neutral else { return }
            let failed = outcome == .failure
            window.append(failed)
            if failed { windowFailures += 1 }
            while window.count > max(1, configuration.windowSize) {
                if window.removeFirst() { windowFailures -= 1 }
            }
            consecutiveFailures = failed ? consecutiveFailures + 1 : 0
            if consecutiveFailures >= configuration.consecutiveFailures
                || (window.count >= configuration.minimumVolume && failureRate >= configuration.failureRateThreshold)
            {
                trip(now: now)
            }
        case (.halfOpen, .probe):
            switch outcome {
            case .success:
                probeSuccesses += 1
                if probeSuccesses >= max(1, configuration.halfOpenProbes) { close() }
            case .failure: trip(now: now)
            case .neutral: probesAdmitted -= 1
            }
        default:
            return  // a late result from another state, or a rejected batch: says nothing new
        }
    }

    private mutating func trip(now: Instant) {
        state = .open
        openUntil = now.advanced(by: configuration.recoveryTimeout)
        consecutiveFailures = 0
    }

    private mutating func close() {
        state = .closed
        openUntil = nil
        window = []
        windowFailures = 0
        consecutiveFailures = 0
    }
}
