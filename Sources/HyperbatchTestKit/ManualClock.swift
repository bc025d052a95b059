import Synchronization

/// A clock that moves only when a test tells it to, with a handshake so the test never races the code under test.
///
/// Code under test calls `sleep(until:)`; the test calls ``nextSleep()`` to wait until something is asleep and learn
/// its deadline, then ``advance(to:)`` or ``advance(by:)`` to wake every sleeper whose deadline has passed.
/// This is the pattern of postgres-nio's `MockClock`: the test never guesses whether the code has reached its sleep.
public final class ManualClock: Clock, Sendable {
    /// An instant of a ``ManualClock``: a duration since the clock's zero.
    public struct Instant: InstantProtocol, Hashable, Sendable, CustomStringConvertible {
        /// Time since the clock's zero.
        public var offset: Swift.Duration

        /// Creates an instant `offset` after the clock's zero.
        public init(offset: Swift.Duration) { self.offset = offset }

        public func advanced(by duration: Swift.Duration) -> Instant { Instant(offset: offset + duration) }
        public func duration(to other: Instant) -> Swift.Duration { other.offset - offset }
        public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
        public var description: String { "t+\(offset)" }
    }

    private struct Sleeper {
        var id: UInt64
        var deadline: Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now = Instant(offset: .zero)
        var sleepers: [Sleeper] = []
        var nextID: UInt64 = 0
        /// Deadlines of sleeps begun but not yet reported to a test through `nextSleep()`.
        var unreported: [Instant] = []
        var waiters: [CheckedContinuation<Instant, Never>] = []
    }

    private let state = Mutex(State())

    /// Creates a clock at instant zero.
    public init() {}

    public var now: Instant { state.withLock { $0.now } }
    public var minimumResolution: Swift.Duration { .nanoseconds(1) }

    /// The number of tasks currently asleep on this clock.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    public func sleep(until deadline: Instant, tolerance: Swift.Duration?) async throws {
        let id = state.withLock { state -> UInt64 in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Action { case sleep, resume, cancel }
                let (action, waiter) = state.withLock { state -> (Action, CheckedContinuation<Instant, Never>?) in
                    let waiter: CheckedContinuation<Instant, Never>?
                    if state.waiters.isEmpty {
                        state.unreported.append(deadline)
                        waiter = nil
                    } else {
                        waiter = state.waiters.removeFirst()
                    }
                    if Task.isCancelled { return (.cancel, waiter) }
                    if deadline <= state.now { return (.resume, waiter) }
                    state.sleepers.append(Sleeper(id: id, deadline: deadline, continuation: continuation))
                    return (.sleep, waiter)
                }
                switch action {
                case .sleep: break
                case .resume: continuation.resume()
                case .cancel: continuation.resume(throwing: CancellationError())
                }
                waiter?.resume(returning: deadline)
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                guard let index = state.sleepers.firstIndex(where: { $0.id == id }) else { return nil }
                return state.sleepers.remove(at: index)
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Waits until some task has begun a sleep on this clock that no earlier call reported, and returns its deadline.
    @discardableResult
    public func nextSleep() async -> Instant {
        await withCheckedContinuation { (continuation: CheckedContinuation<Instant, Never>) in
            let deadline = state.withLock { state -> Instant? in
                if state.unreported.isEmpty {
                    state.waiters.append(continuation)
                    return nil
                }
                return state.unreported.removeFirst()
            }
            if let deadline { continuation.resume(returning: deadline) }
        }
    }

    /// Moves the clock to `instant` (never backwards) and wakes every sleeper whose deadline has been reached.
    public func advance(to instant: Instant) {
        let woken = state.withLock { state -> [Sleeper] in
            if instant > state.now { state.now = instant }
            let now = state.now
            let due = state.sleepers.filter { $0.deadline <= now }
            state.sleepers.removeAll { $0.deadline <= now }
            return due
        }
        for sleeper in woken { sleeper.continuation.resume() }
    }

    /// Moves the clock forward by `duration`.
    public func advance(by duration: Swift.Duration) {
        advance(to: now.advanced(by: duration))
    }
}
