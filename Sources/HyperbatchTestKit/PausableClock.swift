import Synchronization

/// A clock that follows `ContinuousClock` except while paused: time stands still from ``pause()`` until ``resume()``,
/// and afterwards runs on from where it stood.
///
/// For end-to-end tests that must act on a batch in a known phase whatever the machine's load: give the emulator a
/// paused clock, move it to the phase wanted with ``advance(by:)``, act (e.g. cancel a batch with part of its
/// requests done), then resume. Sleeps wake once the clock's
/// own time reaches their deadline (never while paused).
public final class PausableClock: Clock, Sendable {
    public typealias Instant = ContinuousClock.Instant

    private struct State {
        /// Real instant at which the current pause began; nil while running.
        var pausedAt: ContinuousClock.Instant?
        /// Real time spent paused before the current pause.
        var pausedTotal: Duration = .zero
    }

    private let state: Mutex<State>

    /// Creates a running clock, or a paused one with `paused: true`.
    public init(paused: Bool = false) {
        state = Mutex(State(pausedAt: paused ? ContinuousClock.now : nil))
    }

    /// Now: real time less every pause (frozen at the pause's start while paused).
    public var now: Instant {
        state.withLock { s in (s.pausedAt ?? ContinuousClock.now).advanced(by: .zero - s.pausedTotal) }
    }

    /// Always one nanosecond.
    public var minimumResolution: Duration { .nanoseconds(1) }

    /// Whether the clock stands still.
    public var isPaused: Bool { state.withLock { $0.pausedAt != nil } }

    /// Stops the clock (no effect when already paused).
    public func pause() {
        state.withLock { s in if s.pausedAt == nil { s.pausedAt = ContinuousClock.now } }
    }

    /// Lets the clock run again from where it stood (no effect when running).
    public func resume() {
        state.withLock { s in
            guard let pausedAt = s.pausedAt else { return }
            s.pausedTotal += pausedAt.duration(to: ContinuousClock.now)
            s.pausedAt = nil
        }
    }

    /// Moves the clock forward by `duration` at once (paused or running), as if that much time had passed.
    public func advance(by duration: Duration) {
        precondition(duration >= .zero, "a clock does not go back")
        state.withLock { $0.pausedTotal -= duration }
    }

    /// Sleeps until the clock's time reaches `deadline`, in real-time steps of at most 10 ms (so a pause is honoured).
    public func sleep(until deadline: Instant, tolerance: Duration? = nil) async throws {
        while true {
            let left = now.duration(to: deadline)
            if left <= .zero { return }
            try await Task.sleep(for: min(left, .milliseconds(10)), tolerance: tolerance)
        }
    }
}
