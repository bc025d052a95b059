import Synchronization

/// Whether a worker may still claim work: open until its ``WorkerLease`` can no longer prove its leases are held.
///
/// Shared by the ``PostgresJobStore`` (which checks it before every claim and before sending a batch) and the
/// ``WorkerLease`` (which installs its deadline and closes it). The deadline is checked at every claim, so the gate
/// closes on time even while a renewal call hangs. Once closed it stays closed: the worker is expected to exit, and a
/// new process starts with a new worker id.
public final class LeaseGate: Sendable {
    private struct State {
        var reason: String?
        var deadlinePassed: (@Sendable () -> Bool)?
    }

    private let state = Mutex(State())

    /// An open gate with no deadline (a store used without a ``WorkerLease``, e.g. in a one-shot command).
    public init() {}

    /// Whether claims are still allowed.
    public var isOpen: Bool { closedReason == nil }

    /// Why the gate is closed, or nil when open.
    public var closedReason: String? {
        let (reason, deadlinePassed) = state.withLock { ($0.reason, $0.deadlinePassed) }
        if let reason { return reason }
        if deadlinePassed?() == true {
            close(reason: "no lease renewal succeeded before the deadline")
            return closedReason
        }
        return nil
    }

    /// Closes the gate with the reason given (idempotent; the first reason is kept).
    public func close(reason: String) {
        state.withLock { if $0.reason == nil { $0.reason = reason } }
    }

    /// Installs the check telling whether the lease deadline has passed (``WorkerLease`` does this).
    public func setDeadline(_ passed: @escaping @Sendable () -> Bool) {
        state.withLock { $0.deadlinePassed = passed }
    }

    /// Throws ``PostgresJobStoreError/Code/leaseLost`` when closed.
    func check(_ worker: String) throws {
        if let reason = closedReason {
            throw PostgresJobStoreError(.leaseLost, "worker \(worker): \(reason)")
        }
    }
}
