import Logging
import NIOCore
import PostgresNIO
import Synchronization

extension PostgresConnection {
    /// `query(_:logger:)`, but it fails with ``PostgresJobStoreError/Code/connectionClosed`` (transient) instead of
    /// waiting forever when the server has closed the connection.
    ///
    /// Works around postgres-nio (1.33): `PostgresConnection.query` (and `PostgresClient.query`) writes its request with
    /// `channel.write(_, promise: nil)` and awaits a promise that only the connection's channel handler completes. Once
    /// the server closed the connection (`pg_terminate_backend`, a restart), NIO removes the handlers from the
    /// pipeline; a query written after that is dropped at the pipeline head, its promise is never completed and the
    /// call never returns. A query written while the handler is still in place is failed by it as usual. This stalled
    /// a worker: the `ROLLBACK` after a statement failed with 57P01 (its backend terminated) hung forever when it
    /// reached the channel after the close, and its pass with it.
    ///
    /// The query runs in an unstructured task; the caller stops waiting when the connection was closed before the
    /// call, or ``ClosedConnectionGuard/grace`` after its `closeFuture` completed (a query that the handler answered
    /// or failed has resumed by then), and the dropped call is abandoned. Rows are then read as usual: a stream the
    /// handler started is failed by it when the connection closes.
    @discardableResult
    func guardedQuery(_ query: PostgresQuery, logger: Logger, file: String = #fileID, line: Int = #line) async throws -> PostgresRowSequence {
        try await guarded { try await self.query(query, logger: logger, file: file, line: line) }
    }

    /// Runs `operation` (a call on this connection, such as `execute` of a prepared statement) with the guard of
    /// ``guardedQuery(_:logger:file:line:)``: it fails with `connectionClosed` instead of waiting forever once the
    /// server has closed the connection.
    func guarded<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        if isClosed { throw ClosedConnectionGuard.closedError(self) }
        let slot = Abandonable.Slot<T>()
        let token = ClosedConnectionGuard.shared.watch(self) {
            slot.resume(with: .failure(ClosedConnectionGuard.closedError(self)))
        }
        defer { ClosedConnectionGuard.shared.unwatch(self, token: token) }
        return try await withCheckedThrowingContinuation { continuation in
            slot.set(continuation)
            Task {  // inherits the caller's task-local values
                do {
                    slot.resume(with: .success(try await operation()))
                } catch {
                    slot.resume(with: .failure(error))
                }
            }
        }
    }
}

/// The callers of ``PostgresConnection/guardedQuery(_:logger:file:line:)`` waiting on each live connection, and the
/// one `closeFuture` callback per connection that fails them once it closed (see there for why).
final class ClosedConnectionGuard: Sendable {
    /// The guard of every connection of the process (connections are told apart by object identity).
    static let shared = ClosedConnectionGuard()

    /// How long a waiting query may still finish on its own after its connection closed.
    static let grace: TimeAmount = .seconds(1)

    private let state = Mutex(ConnectionWaiters<@Sendable () -> Void>())

    static func closedError(_ connection: PostgresConnection) -> PostgresJobStoreError {
        PostgresJobStoreError(.connectionClosed, "connection \(connection.id) closed by the server")
    }

    /// Registers `fail` to run (after ``grace``) once `connection` closes; returns the token for ``unwatch(_:token:)``.
    func watch(_ connection: PostgresConnection, fail: @escaping @Sendable () -> Void) -> UInt64 {
        let key = ObjectIdentifier(connection)
        let (token, first) = state.withLock { $0.add(fail, connection: key) }
        if first {
            // Holds only the key: the connection itself is not kept alive by its entry.
            let loop = connection.eventLoop
            connection.closeFuture.whenComplete { [self] _ in
                let waiters = self.state.withLock { $0.closed(connection: key) }
                guard !waiters.isEmpty else { return }
                loop.scheduleTask(in: Self.grace) { for fail in waiters { fail() } }
            }
        }
        return token
    }

    /// Forgets a waiter whose query returned.
    func unwatch(_ connection: PostgresConnection, token: UInt64) {
        state.withLock { $0.remove(token: token, connection: ObjectIdentifier(connection)) }
    }
}

/// Who waits on which connection: pure bookkeeping, events in, the waiters to fail out.
///
/// A connection stays known (with no waiters) until it closes, so its close callback is registered once.
struct ConnectionWaiters<Waiter> {
    private var waiting: [ObjectIdentifier: [UInt64: Waiter]] = [:]
    private var nextToken: UInt64 = 0

    /// No connections.
    init() {}

    /// Connections known (open, as far as this bookkeeping knows).
    var connectionCount: Int { waiting.count }

    /// Adds `waiter` on `connection`; `first` is true when the connection was not known yet (register its close
    /// callback then).
    mutating func add(_ waiter: Waiter, connection: ObjectIdentifier) -> (token: UInt64, first: Bool) {
        nextToken += 1
        let first = waiting[connection] == nil
        waiting[connection, default: [:]][nextToken] = waiter
        return (nextToken, first)
    }

    /// Removes a waiter (its query returned); no-op when the connection already closed.
    mutating func remove(token: UInt64, connection: ObjectIdentifier) {
        waiting[connection]?[token] = nil
    }

    /// The connection closed: forgets it and returns its waiters.
    mutating func closed(connection: ObjectIdentifier) -> [Waiter] {
        guard let waiters = waiting.removeValue(forKey: connection) else { return [] }
        return waiters.sorted { $0.key < $1.key }.map(\.value)
    }
}
