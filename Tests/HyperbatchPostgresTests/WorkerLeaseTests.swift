import HyperbatchPostgres
import HyperbatchTestKit
import Logging
import Synchronization
import Testing

/// The lease decisions at explicit instants, and the `WorkerLease` service on a `ManualClock` (no server, no sleeps).
@Suite struct WorkerLeaseTests {
    typealias Instant = ManualClock.Instant
    static func at(_ seconds: Int64) -> Instant { Instant(offset: .seconds(seconds)) }
    // Lease 30 s, renew every 10 s, retry every 2 s, give up 5 s before the leases could lapse.
    static let timing = LeaseKeeper<Instant>.Configuration(
        leaseDuration: .seconds(30), renewInterval: .seconds(10), retryDelay: .seconds(2), safetyMargin: .seconds(5))

    @Test func renewalsExtendTheBoundFromTheirStart() {
        var keeper = LeaseKeeper(startedAt: Self.at(0), configuration: Self.timing)
        #expect(keeper.heldUntil == Self.at(25))
        #expect(keeper.renewed(startedAt: Self.at(0), now: Self.at(1)) == .renew(at: Self.at(10)))
        #expect(keeper.renewed(startedAt: Self.at(10), now: Self.at(12)) == .renew(at: Self.at(20)))
        // The bound counts from when the renewal started, not when its answer came.
        #expect(keeper.heldUntil == Self.at(35))
        #expect(keeper.isHeld(at: Self.at(34)))
        #expect(!keeper.isHeld(at: Self.at(35)))
    }

    @Test func failuresRetryUntilTheBoundThenStop() {
        var keeper = LeaseKeeper(startedAt: Self.at(0), configuration: Self.timing)
        _ = keeper.renewed(startedAt: Self.at(0), now: Self.at(0))
        #expect(keeper.failed(now: Self.at(10)) == .renew(at: Self.at(12)))
        #expect(keeper.failed(now: Self.at(24)) == .renew(at: Self.at(25)))  // never sleeps past the bound
        #expect(keeper.isHeld(at: Self.at(24)))
        #expect(keeper.failed(now: Self.at(25)) == .stop)
        #expect(keeper.isLost)
        // Final: a late success does not revive it.
        #expect(keeper.renewed(startedAt: Self.at(25), now: Self.at(26)) == .stop)
    }

    @Test func aSuccessThatStartedTooLateStillStops() {
        var keeper = LeaseKeeper(startedAt: Self.at(0), configuration: Self.timing)
        // The call hung from 26 s: other workers may already have taken the batches over.
        #expect(keeper.renewed(startedAt: Self.at(26), now: Self.at(40)) == .stop)
        // An answer that arrives after the bound it would set is too late as well.
        var slow = LeaseKeeper(startedAt: Self.at(0), configuration: Self.timing)
        #expect(slow.renewed(startedAt: Self.at(20), now: Self.at(45)) == .stop)
    }

    @Test(.timeLimit(.minutes(1))) func serviceRenewsThenClosesTheGateAndThrowsWhenRenewalKeepsFailing() async throws {
        let clock = ManualClock()
        let gate = LeaseGate()
        // Renewals succeed until t = 20 s, then fail (the database is unreachable).
        let calls = Mutex<[Duration]>([])
        let lease = WorkerLease(
            renew: {
                let now = clock.now.offset
                calls.withLock { $0.append(now) }
                if now > .seconds(20) { throw TestRenewError() }
                return 1
            },
            release: {}, gate: gate, configuration: Self.timing, clock: clock, logger: Logger(label: "test"))
        let task = Task { try await lease.run() }
        var deadlines: [Duration] = []
        var openAt: [Duration: Bool] = [:]
        while deadlines.last != .seconds(45) {
            let deadline = await clock.nextSleep()
            deadlines.append(deadline.offset)
            openAt[clock.now.offset] = gate.isOpen
            clock.advance(to: deadline)
        }
        await #expect(throws: PostgresJobStoreError.self) { try await task.value }
        // Renew at once, every 10 s while it works, every 2 s once it fails, last attempt at the bound (45 s).
        #expect(deadlines == [0, 10, 20, 30, 32, 34, 36, 38, 40, 42, 44, 45].map { Duration.seconds($0) })
        #expect(calls.withLock { $0 } == [0, 10, 20, 30, 32, 34, 36, 38, 40, 42, 44, 45].map { Duration.seconds($0) })
        #expect(openAt[.seconds(44)] == true, "still open before the bound")
        #expect(!gate.isOpen)
    }

    @Test func gateClosesAtTheDeadlineEvenWhileARenewalHangs() async throws {
        let clock = ManualClock()
        let gate = LeaseGate()
        let entered = AsyncStream<Void>.makeStream()
        let lease = WorkerLease(
            renew: {
                entered.continuation.yield()
                try await Task.sleep(for: .seconds(3600))  // hangs until cancelled
                return 0
            },
            release: {}, gate: gate, configuration: Self.timing, clock: clock, logger: Logger(label: "test"))
        let task = Task { try await lease.run() }
        let deadline = await clock.nextSleep()
        clock.advance(to: deadline)
        var iterator = entered.stream.makeAsyncIterator()
        _ = await iterator.next()
        #expect(gate.isOpen)
        clock.advance(to: Self.at(24))
        #expect(gate.isOpen)
        clock.advance(to: Self.at(25))
        #expect(!gate.isOpen, "claims stop at the bound without waiting for the hung call")
        task.cancel()
        _ = try? await task.value
    }
}

private struct TestRenewError: Error {}
