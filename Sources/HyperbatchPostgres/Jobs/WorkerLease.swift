import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Keeps one worker's leases alive: renews them every ``LeaseKeeper/Configuration/renewInterval`` (the first
/// renewal at once also records the worker's heartbeat).
///
/// When renewals keep failing until the leases could lapse (``LeaseKeeper``), it closes the store's ``LeaseGate`` (no
/// more claims, no more sends) and throws ``PostgresJobStoreError/Code/leaseLost``, so the `ServiceGroup` stops and the
/// process exits: a live worker is never mistaken for a dead one. The gate also closes by itself at the deadline while a
/// renewal call hangs. On graceful shutdown it releases the worker's leases so other workers take over at once; list
/// it after the `PostgresClient` and before the runner in the group (the runner stops first).
///
/// Metrics: `hyperbatch_worker_lease_renewals_total{result="ok"|"failed"}`, `hyperbatch_worker_leased_batches`
/// (batches renewed by the last successful renewal), `hyperbatch_worker_lease_lost_total`.
public final class WorkerLease<C: Clock>: Service, Sendable where C.Duration == Duration {
    private let renew: @Sendable () async throws -> Int
    private let release: @Sendable () async throws -> Void
    private let gate: LeaseGate
    private let configuration: LeaseKeeper<C.Instant>.Configuration
    private let clock: C
    private let logger: Logger
    private let heldUntil: Mutex<C.Instant?> = Mutex(nil)
    private let renewedOK = Counter(label: "hyperbatch_worker_lease_renewals_total", dimensions: [("result", "ok")])
    private let renewFailed = Counter(label: "hyperbatch_worker_lease_renewals_total", dimensions: [("result", "failed")])
    private let leased = Gauge(label: "hyperbatch_worker_leased_batches")
    private let lost = Counter(label: "hyperbatch_worker_lease_lost_total")

    /// A lease keeper for `store`'s worker.
    public convenience init(store: PostgresJobStore, configuration: LeaseKeeper<C.Instant>.Configuration, clock: C, logger: Logger) {
        self.init(
            renew: { try await store.renewLeases() }, release: { try await store.releaseLeases() }, gate: store.gate,
            configuration: configuration, clock: clock, logger: logger)
    }

    /// A lease keeper over explicit operations (tests): `renew` extends the leases and returns how many.
    public init(
        renew: @escaping @Sendable () async throws -> Int, release: @escaping @Sendable () async throws -> Void, gate: LeaseGate,
        configuration: LeaseKeeper<C.Instant>.Configuration, clock: C, logger: Logger
    ) {
        self.renew = renew
        self.release = release
        self.gate = gate
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
    }

    public func run() async throws {
        let clock = self.clock, configuration = self.configuration
        let first = LeaseKeeper(startedAt: clock.now, configuration: configuration)
        heldUntil.withLock { $0 = first.heldUntil }
        gate.setDeadline { [self] in self.heldUntil.withLock { deadline in deadline.map { clock.now >= $0 } ?? false } }
        do {
            try await cancelWhenGracefulShutdown {
                var keeper = first
                var next = clock.now
                var failures = 0
                while true {
                    try await clock.sleep(until: next, tolerance: nil)
                    let start = clock.now
                    let action: LeaseKeeper<C.Instant>.Action
                    do {
                        let renewed = try await Abandonable.run(self.renew)
                        action = keeper.renewed(startedAt: start, now: clock.now)
                        self.renewedOK.increment()
                        self.leased.record(renewed)
                        if failures > 0 { self.logger.info("lease renewal recovered", metadata: ["failures": "\(failures)"]) }
                        failures = 0
                        self.logger.debug("leases renewed", metadata: ["batches": "\(renewed)"])
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        failures += 1
                        self.renewFailed.increment()
                        action = keeper.failed(now: clock.now)
                        self.logger.warning("lease renewal failed", metadata: ["failures": "\(failures)", "error": "\(error)"])
                    }
                    let bound = keeper.heldUntil
                    self.heldUntil.withLock { $0 = bound }
                    switch action {
                    case .renew(let at): next = at
                    case .stop:
                        let reason = "lease renewal failed for longer than the lease allows (\(failures) attempts)"
                        self.gate.close(reason: reason)
                        self.lost.increment()
                        self.logger.error("worker lease lost; stopping", metadata: ["reason": "\(reason)"])
                        throw PostgresJobStoreError(.leaseLost, reason)
                    }
                }
            }
        } catch is CancellationError {
            // Graceful shutdown (or the group stopping): hand the batches over at once, unless the leases are already
            // lost (the database is then not answering in time; they expire on their own).
            guard gate.isOpen else { return }
            do { try await Abandonable.run(release) } catch {
                logger.warning("releasing leases failed; they expire on their own", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Awaits an operation but stops waiting when the caller is cancelled, even if the operation ignores cancellation
/// (a database call blocked on a lock or a dead connection): the operation then finishes or fails on its own in an
/// unstructured task, and its result is dropped. This is what lets a worker whose renewal hangs still shut down.
enum Abandonable {
    static func run<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let slot = Slot<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                slot.set(continuation)
                if Task.isCancelled {
                    slot.resume(with: .failure(CancellationError()))
                    return
                }
                Task {
                    do { slot.resume(with: .success(try await operation())) } catch { slot.resume(with: .failure(error)) }
                }
            }
        } onCancel: {
            slot.resume(with: .failure(CancellationError()))
        }
    }

    /// The continuation, resumed once by whichever comes first: the result or the cancellation.
    final class Slot<T: Sendable>: Sendable {
        private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, early: Result<T, any Error>?, done: Bool)>((nil, nil, false))

        func set(_ continuation: CheckedContinuation<T, any Error>) {
            let early = state.withLock { s -> Result<T, any Error>? in
                if s.done, let early = s.early { return early }
                s.continuation = continuation
                return nil
            }
            if let early { continuation.resume(with: early) }
        }

        func resume(with result: Result<T, any Error>) {
            let continuation = state.withLock { s -> CheckedContinuation<T, any Error>? in
                if s.done { return nil }
                s.done = true
                guard let c = s.continuation else {
                    s.early = result
                    return nil
                }
                s.continuation = nil
                return c
            }
            continuation?.resume(with: result)
        }
    }
}
