import HyperbatchJobs
import Logging
import PostgresNIO
import Synchronization
import Testing

@testable import HyperbatchPostgres

/// The bookkeeping of ``ClosedConnectionGuard``: which waiters a closing connection fails.
struct ConnectionWaitersTests {
    final class Connection {}

    @Test func theFirstWaiterOfAConnectionRegistersItsCloseCallbackOnce() {
        let a = Connection(), b = Connection()
        var waiters = ConnectionWaiters<String>()
        #expect(waiters.add("a1", connection: ObjectIdentifier(a)).first)
        #expect(!waiters.add("a2", connection: ObjectIdentifier(a)).first)
        #expect(waiters.add("b1", connection: ObjectIdentifier(b)).first)
        #expect(waiters.connectionCount == 2)
    }

    @Test func closingFailsTheWaitersStillThereInOrderAndForgetsTheConnection() {
        let a = Connection(), b = Connection()
        var waiters = ConnectionWaiters<String>()
        let a1 = waiters.add("a1", connection: ObjectIdentifier(a)).token
        _ = waiters.add("a2", connection: ObjectIdentifier(a))
        _ = waiters.add("b1", connection: ObjectIdentifier(b))
        _ = waiters.add("a3", connection: ObjectIdentifier(a))
        waiters.remove(token: a1, connection: ObjectIdentifier(a))
        #expect(waiters.closed(connection: ObjectIdentifier(a)) == ["a2", "a3"])
        #expect(waiters.closed(connection: ObjectIdentifier(a)) == [])
        #expect(waiters.connectionCount == 1)
        // Known again after its close: the next waiter registers a callback (which runs at once on a closed one).
        #expect(waiters.add("a4", connection: ObjectIdentifier(a)).first)
    }

    @Test func aConnectionWithoutWaitersStaysKnownUntilItCloses() {
        let a = Connection()
        var waiters = ConnectionWaiters<String>()
        let t = waiters.add("a1", connection: ObjectIdentifier(a)).token
        waiters.remove(token: t, connection: ObjectIdentifier(a))
        #expect(waiters.connectionCount == 1)
        #expect(!waiters.add("a2", connection: ObjectIdentifier(a)).first)
        waiters.remove(token: 999, connection: ObjectIdentifier(a))  // unknown token: no-op
        #expect(waiters.closed(connection: ObjectIdentifier(a)) == ["a2"])
    }
}

/// `guardedQuery` against a real server whose backend is terminated (`pg_terminate_backend`).
@Suite(.enabled(if: PostgresTestEnvironment.url != nil, "HYPERBATCH_POSTGRES_URL not set: PostgreSQL tests skipped"))
struct ClosedConnectionGuardTests {
    static let logger = Logger(label: "test.closed-connection")

    /// Terminates the backend of `connection` from another pooled connection and waits until the client saw it close.
    static func terminate(_ connection: PostgresConnection, via client: PostgresClient) async throws {
        var pid = 0
        for try await p in try await connection.guardedQuery("SELECT pg_backend_pid()", logger: logger).decode(Int.self) { pid = p }
        #expect(pid > 0)
        for try await _ in try await client.query("SELECT pg_terminate_backend(\(pid)::int4)", logger: logger) {}
        try await connection.closeFuture.get()
    }

    /// `guarded` (what the batch writer wraps its prepared statements in) fails the same way, and passes results through.
    @Test(.timeLimit(.minutes(1))) func anyCallOnATerminatedConnectionFailsAsTransient() async throws {
        try await PostgresTestEnvironment.withClient { client in
            try await client.withConnection { c in
                var two = 0
                for try await n in try await c.guarded({ try await c.query("SELECT 2", logger: Self.logger) }).decode(Int.self) { two = n }
                #expect(two == 2)
                try await Self.terminate(c, via: client)
                let error = await #expect(throws: PostgresJobStoreError.self) {
                    try await c.guarded { try await c.query("SELECT 3", logger: Self.logger) }
                }
                #expect(error?.code == .connectionClosed)
            }
        }
    }

    /// A plain `PostgresConnection.query` on this connection would never return (postgres-nio drops the write).
    @Test(.timeLimit(.minutes(1))) func aQueryOnATerminatedConnectionFailsAsTransient() async throws {
        try await PostgresTestEnvironment.withClient { client in
            try await client.withConnection { c in
                try await Self.terminate(c, via: client)
                let error = await #expect(throws: PostgresJobStoreError.self) {
                    try await c.guardedQuery("ROLLBACK", logger: Self.logger)
                }
                #expect(error?.code == .connectionClosed)
                #expect(error.map(PostgresStoreErrors.classify) == .transient)
            }
            // The pool replaced the connection: the client still works.
            var one = 0
            for try await n in try await client.query("SELECT 1", logger: Self.logger).decode(Int.self) { one = n }
            #expect(one == 1)
        }
    }

    /// The path for a query already waiting when the connection closes: its waiter is failed, one removed is not.
    @Test(.timeLimit(.minutes(1))) func waitersOfAClosingConnectionAreFailed() async throws {
        try await PostgresTestEnvironment.withClient { client in
            try await client.withConnection { c in
                let (fired, continuation) = AsyncStream<String>.makeStream()
                let removed = ClosedConnectionGuard.shared.watch(c) { continuation.yield("removed") }
                let kept = ClosedConnectionGuard.shared.watch(c) { continuation.yield("kept"); continuation.finish() }
                ClosedConnectionGuard.shared.unwatch(c, token: removed)
                try await Self.terminate(c, via: client)
                var calls: [String] = []
                for await name in fired { calls.append(name) }
                #expect(calls == ["kept"])
                ClosedConnectionGuard.shared.unwatch(c, token: kept)
            }
        }
    }

    /// Transactions keep working through the guard, and a failed body still rolls back.
    @Test(.timeLimit(.minutes(1))) func transactionsCommitAndRollBack() async throws {
        try await PostgresTestEnvironment.withClient { client in
            let table = "hb_guard_\(UInt32.random(in: 0...UInt32.max))"
            try await client.query(PostgresQuery(unsafeSQL: "CREATE TABLE \(table) (v int)"), logger: Self.logger)
            try await PostgresTransaction.run(client, logger: Self.logger) { c in
                _ = try await c.guardedQuery(PostgresQuery(unsafeSQL: "INSERT INTO \(table) VALUES (1)"), logger: Self.logger)
            }
            struct Stop: Error {}
            await #expect(throws: Stop.self) {
                try await PostgresTransaction.run(client, logger: Self.logger) { c in
                    try await c.guardedQuery(PostgresQuery(unsafeSQL: "INSERT INTO \(table) VALUES (2)"), logger: Self.logger)
                    throw Stop()
                }
            }
            var values: [Int] = []
            for try await v in try await client.query(PostgresQuery(unsafeSQL: "SELECT v FROM \(table) ORDER BY v"), logger: Self.logger).decode(Int.self) {
                values.append(v)
            }
            #expect(values == [1])
            try await client.query(PostgresQuery(unsafeSQL: "DROP TABLE \(table)"), logger: Self.logger)
        }
    }
}
