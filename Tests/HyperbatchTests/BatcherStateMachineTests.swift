import HyperbatchTestKit
import Testing

@testable import Hyperbatch

/// Step-by-step tests of the pure batching logic: explicit instants in, actions out, no concurrency.
@Suite struct BatcherStateMachineTests {
    typealias Instant = ManualClock.Instant
    typealias Machine = BatcherStateMachine<String, Int, Int, Instant>

    static func t(_ ms: Int) -> Instant { Instant(offset: .milliseconds(ms)) }

    static func config(
        size: Int = 3, weight: Int? = nil, wait: Duration = .milliseconds(10),
        policy: BatchConfiguration.FlushPolicy = .fillOrWait, concurrent: Int = 4
    ) -> BatchConfiguration {
        var c = BatchConfiguration(maxBatchSize: size, maxBatchWeight: weight, maxWait: wait, flushPolicy: policy)
        c.maxConcurrentBatches = concurrent
        return c
    }

    /// A machine plus a counter for item ids; the waiter is the input itself, so tests can follow each item.
    struct Harness {
        var machine: Machine
        var nextID: UInt64 = 0

        init(_ configuration: BatchConfiguration) { machine = Machine(configuration: configuration) }

        mutating func submit(
            _ input: Int, key: String = "k", weight: Int = 1, deadline: Instant? = nil, at now: Instant
        ) -> (Machine.SubmitOutcome, Machine.Actions) {
            nextID += 1
            let item = Machine.Item(
                id: nextID, input: input, weight: weight, deadline: deadline, enqueuedAt: now, waiter: input)
            return machine.submit(key: key, item: item, now: now)
        }
    }

    @Test func sizeFlushAfterTheLastItemAndTimerFromTheFirst() {
        var h = Harness(Self.config(size: 3))
        let (_, a1) = h.submit(1, at: Self.t(0))
        #expect(a1.dispatch.isEmpty)
        #expect(a1.timers.map(\.at) == [Self.t(10)])
        let (_, a2) = h.submit(2, at: Self.t(4))
        #expect(a2.isEmpty, "the second item must not arm another timer: max wait counts from the first")
        let (_, a3) = h.submit(3, at: Self.t(5))
        #expect(a3.dispatch.map(\.inputs) == [[1, 2, 3]])
        #expect(a3.dispatch.first?.reason == .size)
    }

    @Test func timeFlushCountsFromTheFirstPendingItem() {
        var h = Harness(Self.config(size: 10))
        _ = h.submit(1, at: Self.t(0))
        _ = h.submit(2, at: Self.t(7))
        let early = h.machine.timerFired(key: "k", at: Self.t(10), now: Self.t(9))
        #expect(early.dispatch.isEmpty, "nothing is due before max wait")
        let due = h.machine.timerFired(key: "k", at: Self.t(10), now: Self.t(10))
        #expect(due.dispatch.map(\.inputs) == [[1, 2]])
        #expect(due.dispatch.first?.reason == .time)
    }

    @Test func weightFlushTakesWhatFitsAndKeepsTheRest() {
        var h = Harness(Self.config(size: 10, weight: 10))
        _ = h.submit(1, weight: 4, at: Self.t(0))
        _ = h.submit(2, weight: 4, at: Self.t(0))
        let (_, a) = h.submit(3, weight: 4, at: Self.t(0))
        #expect(a.dispatch.map(\.inputs) == [[1, 2]])
        #expect(a.dispatch.first?.reason == .weight)
        #expect(a.dispatch.first?.weight == 8)
        #expect(h.machine.pendingCount(key: "k") == 1)
    }

    @Test func overweightItemIsRejectedAtSubmit() {
        var h = Harness(Self.config(weight: 10))
        let (outcome, _) = h.submit(1, weight: 11, at: Self.t(0))
        guard case .rejected(let error) = outcome else { Issue.record("expected a rejection"); return }
        #expect(error.code == .overweight)
        #expect(error.message.contains("11") && error.message.contains("10"))
    }

    @Test func deadlineFlushSubtractsThePredictedLatency() {
        var h = Harness(Self.config(size: 10, wait: .milliseconds(100)))
        _ = h.machine.setPredictedLatency(key: "k", .milliseconds(3), now: Self.t(0))
        let (_, a) = h.submit(1, deadline: Self.t(20), at: Self.t(0))
        #expect(a.timers.map(\.at) == [Self.t(17)])
        let fired = h.machine.timerFired(key: "k", at: Self.t(17), now: Self.t(17))
        #expect(fired.dispatch.first?.reason == .deadline)
        #expect(fired.dispatch.first?.deadlines == [Self.t(20)])
    }

    @Test func passedDeadlineIsRejectedAtSubmitAndFailedAtFlush() {
        var h = Harness(Self.config(size: 10))
        let (late, _) = h.submit(1, deadline: Self.t(5), at: Self.t(5))
        guard case .rejected(let error) = late else { Issue.record("expected a rejection"); return }
        #expect(error.code == .deadlineExceeded)

        _ = h.submit(2, deadline: Self.t(3), at: Self.t(0))
        _ = h.submit(3, at: Self.t(0))
        // Both become due at t=3 (deadline, no predicted latency); firing late at t=4 the first has expired.
        let fired = h.machine.timerFired(key: "k", at: Self.t(3), now: Self.t(4))
        #expect(fired.dispatch.map(\.inputs) == [[3]], "the expired item is not sent")
        #expect(fired.failed.map(\.waiter) == [2])
        #expect((fired.failed.first?.error as? BatcherError)?.code == .deadlineExceeded)
    }

    @Test func eagerDispatchesAtOnceThenAccumulatesWhileSlotsAreBusy() {
        var h = Harness(Self.config(size: 256, policy: .eager, concurrent: 1))
        let (_, a1) = h.submit(1, at: Self.t(0))
        #expect(a1.claims == ["k"], "a lone item pays no window: its slot is reserved at once")
        #expect(a1.dispatch.isEmpty && a1.timers.isEmpty)
        let (first, _) = h.machine.claim(key: "k", now: Self.t(0))
        #expect(first?.inputs == [1])
        #expect(first?.reason == .eager)
        for i in 2...5 { #expect(h.submit(i, at: Self.t(0)).1.isEmpty, "the only slot is busy") }
        let (waiters, next) = h.machine.batchFinished(key: "k", batchID: first!.id, now: Self.t(1))
        #expect(waiters == [1])
        #expect(next.claims == ["k"])
        let (second, _) = h.machine.claim(key: "k", now: Self.t(1))
        #expect(second?.inputs == [2, 3, 4, 5], "the batch grew by itself under load")
    }

    @Test func onlyItemsJoiningAnEagerBatchWithoutDeadlinesSkipTheClock() {
        var h = Harness(Self.config(size: 256, policy: .eager, concurrent: 1))
        #expect(h.machine.submitNeedsCurrentInstant(key: "k", hasDeadline: false), "a key without a queue")
        _ = h.submit(1, at: Self.t(0))
        #expect(!h.machine.submitNeedsCurrentInstant(key: "k", hasDeadline: false), "it joins a pending item")
        let (batch, _) = h.machine.claim(key: "k", now: Self.t(1))
        #expect(batch?.inputs == [1])
        #expect(h.machine.submitNeedsCurrentInstant(key: "k", hasDeadline: false), "nothing pending: it starts a batch")
        _ = h.submit(2, at: Self.t(1))
        #expect(!h.machine.submitNeedsCurrentInstant(key: "k", hasDeadline: false))
        #expect(h.machine.submitNeedsCurrentInstant(key: "k", hasDeadline: true), "its own deadline is checked")
        #expect(h.machine.submitNeedsCurrentInstant(key: "other", hasDeadline: false), "another key's queue is empty")
        _ = h.submit(3, deadline: Self.t(50), at: Self.t(2))
        #expect(h.machine.submitNeedsCurrentInstant(key: "k", hasDeadline: false), "a pending deadline is checked")

        var f = Harness(Self.config(size: 256, policy: .fillOrWait))
        _ = f.submit(1, at: Self.t(0))
        #expect(f.machine.submitNeedsCurrentInstant(key: "k", hasDeadline: false), "fill-or-wait times every item")
    }

    @Test func itemsJoiningAReservedEagerSlotStillFlushOnSizeAndWeight() {
        var h = Harness(Self.config(size: 3, weight: 10, policy: .eager, concurrent: 2))
        let (_, a1) = h.submit(1, at: Self.t(0))
        #expect(a1.claims == ["k"])
        let (_, a2) = h.submit(2, at: Self.t(1))
        #expect(a2.isEmpty, "it joins the reserved slot")
        let (_, a3) = h.submit(3, at: Self.t(2))
        #expect(a3.dispatch.map(\.inputs) == [[1, 2, 3]], "the full batch goes on the second slot")
        #expect(a3.dispatch.first?.reason == .size)
        let (_, a4) = h.submit(4, weight: 4, at: Self.t(3))
        #expect(a4.isEmpty, "the slot is still reserved")
        let (_, a5) = h.submit(5, weight: 6, at: Self.t(4))
        #expect(a5.isEmpty, "weight 10 is due, but both slots are busy")
        let (batch, _) = h.machine.claim(key: "k", now: Self.t(5))
        #expect(batch?.inputs == [4, 5])
        #expect(batch?.enqueuedAt == [Self.t(3), Self.t(4)])
        #expect(h.machine.pendingCount(key: "k") == 0)
    }

    @Test func eagerBatchTakesItemsSubmittedBetweenReservationAndClaim() {
        var h = Harness(Self.config(size: 4, policy: .eager, concurrent: 2))
        let (_, a1) = h.submit(1, at: Self.t(0))
        #expect(a1.claims == ["k"])
        for i in 2...3 {
            let (_, a) = h.submit(i, at: Self.t(0))
            #expect(a.isEmpty, "one reserved slot takes everything up to the limit: no second reservation")
        }
        #expect(h.machine.runningCount(key: "k") == 1, "the reserved slot counts against the concurrency limit")
        let (batch, after) = h.machine.claim(key: "k", now: Self.t(0))
        #expect(batch?.inputs == [1, 2, 3])
        #expect(after.isEmpty)
        // A full batch is cut at once even while a reservation is outstanding; the reservation then takes the rest.
        let (_, r) = h.submit(10, at: Self.t(1))
        #expect(r.claims == ["k"])
        var full: [Machine.Batch] = []
        for i in 11...13 { full += h.submit(i, at: Self.t(1)).1.dispatch }
        #expect(full.isEmpty, "the second slot is reserved; the key has no third")
        let (late, _) = h.machine.claim(key: "k", now: Self.t(1))
        #expect(late?.inputs == [10, 11, 12, 13])
    }

    @Test func aFullReservedBatchKeepsCollectingWhenTheKeyHasNoOtherSlot() {
        var h = Harness(Self.config(size: 2, policy: .eager, concurrent: 1))
        #expect(h.submit(1, at: Self.t(0)).1.claims == ["k"])
        for i in 2...5 {
            let (_, a) = h.submit(i, at: Self.t(0))
            #expect(a.isEmpty, "item \(i): the batch is full but the key's only slot is reserved: it waits in the queue")
        }
        #expect(h.machine.pendingCount(key: "k") == 5)
        let (first, _) = h.machine.claim(key: "k", now: Self.t(0))
        #expect(first?.inputs == [1, 2], "the reserved slot takes one batch of the size limit")
        #expect(h.machine.pendingCount(key: "k") == 3)
        let (waiters, next) = h.machine.batchFinished(key: "k", batchID: first!.id, now: Self.t(1))
        #expect(waiters == [1, 2])
        #expect(next.claims == ["k"] || next.dispatch.map(\.inputs) == [[3, 4]], "the freed slot takes the next batch")
        var sent: [[Int]] = next.dispatch.map(\.inputs)
        if next.claims == ["k"], let b = h.machine.claim(key: "k", now: Self.t(1)).0 { sent.append(b.inputs) }
        #expect(sent == [[3, 4]])
        #expect(h.machine.pendingCount(key: "k") == 1)
    }

    @Test func adaptiveLimitAppliesToTheKeysFirstBatch() {
        var c = Self.config(size: 256, wait: .seconds(1))
        c.adaptiveBatchSize = AdaptiveBatchSizeConfiguration(maxBatchSize: 64, initialBatchSize: 2)
        var h = Harness(c)
        #expect(h.machine.batchSizeLimit(key: "k") == 2)
        _ = h.submit(1, at: Self.t(0))
        let (_, a) = h.submit(2, at: Self.t(0))
        #expect(a.dispatch.map(\.inputs) == [[1, 2]], "the first batch is cut at the controller's limit, not at 256")
        #expect(a.dispatch.first?.reason == .size)

        var d = Self.config(size: 256, wait: .seconds(1))
        d.adaptiveBatchSize = AdaptiveBatchSizeConfiguration(maxBatchSize: 3)
        var g = Harness(d)
        for i in 1...2 { #expect(g.submit(i, at: Self.t(0)).1.dispatch.isEmpty) }
        #expect(g.submit(3, at: Self.t(0)).1.dispatch.map(\.inputs) == [[1, 2, 3]], "the controller's upper bound holds from the start")
    }

    @Test func splitCallsBorrowOnlyIdleSlots() {
        var c = Self.config(size: 2, concurrent: 3)
        c.maxTotalConcurrentBatches = 10
        var h = Harness(c)
        let (_, a) = h.submit(1, at: Self.t(0))
        let (_, b) = h.submit(2, at: Self.t(0))
        #expect(a.dispatch.isEmpty && b.dispatch.count == 1)
        #expect(h.machine.lendSlots(key: "k", wanted: 3) == 2, "3 slots, 1 running: 2 idle")
        #expect(h.machine.lendSlots(key: "k", wanted: 1) == 0, "none left")
        #expect(h.machine.runningCount(key: "k") == 3)
        // A full batch waits while its slots are lent, and goes when one comes back.
        _ = h.submit(3, at: Self.t(0))
        #expect(h.submit(4, at: Self.t(0)).1.dispatch.isEmpty)
        let back = h.machine.returnSlot(key: "k", now: Self.t(1))
        #expect(back.dispatch.map(\.inputs) == [[3, 4]])
        _ = h.machine.returnSlot(key: "k", now: Self.t(1))
        #expect(h.machine.runningCount(key: "k") == 2)
        // The overall limit bounds lending too.
        var d = Self.config(size: 1, concurrent: 4)
        d.maxTotalConcurrentBatches = 2
        var g = Harness(d)
        _ = g.submit(1, at: Self.t(0))
        #expect(g.machine.lendSlots(key: "k", wanted: 3) == 1)
    }

    @Test func claimAfterEveryItemWasCancelledReleasesTheSlot() {
        var h = Harness(Self.config(size: 4, policy: .eager, concurrent: 1))
        let (_, a1) = h.submit(1, at: Self.t(0))
        #expect(a1.claims == ["k"])
        let (waiter, _) = h.machine.cancel(key: "k", id: 1, now: Self.t(0))
        #expect(waiter == 1)
        let (batch, _) = h.machine.claim(key: "k", now: Self.t(0))
        #expect(batch == nil)
        #expect(h.machine.runningCount(key: "k") == 0)
        #expect(h.machine.isIdle)
    }

    @Test func concurrencyLimitsPerKeyAndOverall() {
        var c = Self.config(size: 1, concurrent: 2)
        c.maxTotalConcurrentBatches = 3
        var h = Harness(c)
        var dispatched: [Machine.Batch] = []
        for i in 0..<4 { dispatched += h.submit(i, key: "a", at: Self.t(0)).1.dispatch }
        #expect(dispatched.count == 2)
        #expect(h.machine.runningCount(key: "a") == 2)
        for i in 10..<12 { dispatched += h.submit(i, key: "b", at: Self.t(0)).1.dispatch }
        #expect(dispatched.count == 3, "the overall limit holds b's second batch back")
        // a finishes one: the slot goes to b, which waited for an overall slot first? Either is fine, but the count holds.
        let (_, next) = h.machine.batchFinished(key: "a", batchID: dispatched[0].id, now: Self.t(1))
        #expect(next.dispatch.count == 1)
        #expect(h.machine.totalRunning == 3)
    }

    @Test func rejectOverflowReportsTheLimit() {
        var c = Self.config(size: 10)
        c.maxPendingItems = 2
        c.overflow = .reject
        var h = Harness(c)
        _ = h.submit(1, at: Self.t(0))
        _ = h.submit(2, at: Self.t(0))
        let (outcome, _) = h.submit(3, at: Self.t(0))
        guard case .rejected(let error) = outcome else { Issue.record("expected a rejection"); return }
        #expect(error.code == .overloaded)
        #expect(error.message.contains("maxPendingItems"))
    }

    @Test func suspendOverflowWaitsForRoomAndKeepsOrder() {
        var c = Self.config(size: 2)
        c.maxPendingItems = 2
        c.maxConcurrentBatches = 1
        var h = Harness(c)
        let first = h.submit(1, at: Self.t(0)).1
        let second = h.submit(2, at: Self.t(0)).1
        #expect(first.dispatch.isEmpty)
        #expect(second.dispatch.map(\.inputs) == [[1, 2]])
        _ = h.submit(3, at: Self.t(1))
        _ = h.submit(4, at: Self.t(1))
        let (outcome, _) = h.submit(5, at: Self.t(1))
        guard case .suspended = outcome else { Issue.record("expected a suspension"); return }
        #expect(h.machine.suspendedCount(key: "k") == 1)
        // [3, 4] is full but the only slot is busy; when it frees, [3, 4] goes and 5 gets room.
        let (_, next) = h.machine.batchFinished(key: "k", batchID: second.dispatch[0].id, now: Self.t(2))
        #expect(next.dispatch.map(\.inputs) == [[3, 4]])
        #expect(h.machine.suspendedCount(key: "k") == 0)
        #expect(h.machine.pendingCount(key: "k") == 1)
    }

    @Test func cancelWhilePendingReturnsTheWaiterAndItsWeight() {
        var h = Harness(Self.config(size: 10, weight: 10))
        _ = h.submit(1, weight: 6, at: Self.t(0))
        let id = h.nextID
        _ = h.submit(2, weight: 3, at: Self.t(0))
        let (waiter, _) = h.machine.cancel(key: "k", id: id, now: Self.t(1))
        #expect(waiter == 1)
        #expect(h.machine.pendingCount(key: "k") == 1)
        let (_, a) = h.submit(3, weight: 7, at: Self.t(1))
        #expect(a.dispatch.map(\.inputs) == [[2, 3]], "the cancelled item's weight was returned")
    }

    @Test func cancelWhileRunningDropsOnlyThatResult() {
        var h = Harness(Self.config(size: 2))
        _ = h.submit(1, at: Self.t(0))
        let cancelledID = h.nextID
        let batch = h.submit(2, at: Self.t(0)).1.dispatch[0]
        let (waiter, _) = h.machine.cancel(key: "k", id: cancelledID, now: Self.t(1))
        #expect(waiter == 1)
        let (again, _) = h.machine.cancel(key: "k", id: cancelledID, now: Self.t(1))
        #expect(again == nil, "a waiter comes out exactly once")
        let (waiters, _) = h.machine.batchFinished(key: "k", batchID: batch.id, now: Self.t(2))
        #expect(waiters == [nil, 2])
    }

    @Test func shutdownFlushesEverythingAndRefusesNewItems() {
        var h = Harness(Self.config(size: 2, concurrent: 1))
        _ = h.submit(1, at: Self.t(0))
        let running = h.submit(2, at: Self.t(0)).1.dispatch[0]
        _ = h.submit(3, at: Self.t(0))
        let drain = h.machine.shutdown(now: Self.t(1))
        #expect(drain.dispatch.isEmpty, "the only slot is busy")
        guard case .rejected(let error) = h.submit(4, at: Self.t(1)).0 else { Issue.record("expected a rejection"); return }
        #expect(error.code == .shutDown)
        let (_, next) = h.machine.batchFinished(key: "k", batchID: running.id, now: Self.t(2))
        #expect(next.dispatch.map(\.inputs) == [[3]])
        #expect(next.dispatch.first?.reason == .shutdown)
        #expect(!h.machine.isFinished)
        _ = h.machine.batchFinished(key: "k", batchID: next.dispatch[0].id, now: Self.t(3))
        #expect(h.machine.isFinished)
    }

    @Test func manualFlushSendsAPartialBatch() {
        var h = Harness(Self.config(size: 10))
        _ = h.submit(1, at: Self.t(0))
        _ = h.submit(2, key: "other", at: Self.t(0))
        let a = h.machine.flush(key: "k", now: Self.t(1))
        #expect(a.dispatch.map(\.inputs) == [[1]])
        #expect(a.dispatch.first?.reason == .manual)
        #expect(h.machine.pendingCount(key: "other") == 1)
    }

    @Test func adaptiveLimitShrinksTheBatch() {
        var h = Harness(Self.config(size: 8))
        _ = h.machine.setBatchSizeLimit(key: "k", 2, now: Self.t(0))
        _ = h.submit(1, at: Self.t(0))
        let (_, a) = h.submit(2, at: Self.t(0))
        #expect(a.dispatch.map(\.inputs) == [[1, 2]])
        #expect(h.machine.batchSizeLimit(key: "k") == 2)
    }

    @Test func forceShutdownFailsPendingAndSuspendedItems() {
        var c = Self.config(size: 10)
        c.maxPendingItems = 1
        var h = Harness(c)
        _ = h.submit(1, at: Self.t(0))
        _ = h.submit(2, at: Self.t(0))  // suspended
        let a = h.machine.forceShutdown(error: CancellationError())
        #expect(Set(a.failed.map(\.waiter)) == [1, 2])
        #expect(h.machine.isFinished)
    }

    /// Random submits, timers, completions and cancellations over several keys: no batch ever mixes keys, and every
    /// item comes out exactly once (in a batch, failed, or cancelled).
    @Test(arguments: [1, 2, 3, 4, 5, 6, 7, 8])
    func randomizedKeyIsolationAndExactlyOnce(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        var c = Self.config(size: 5, weight: 12, policy: seed % 2 == 0 ? .eager : .fillOrWait, concurrent: 2)
        c.maxPendingItems = 8
        c.maxTotalConcurrentBatches = 3
        var h = Harness(c)
        let keys = ["a", "b", "c", "d"]
        var keyOf: [Int: String] = [:]
        var outcomes: [Int: Int] = [:]  // input -> times it came out
        var running: [(String, UInt64)] = []
        var claims: [String] = []
        var timers: [(String, Instant)] = []
        var live: [(String, UInt64)] = []
        var now = 0
        func absorb(_ a: Machine.Actions) {
            for batch in a.dispatch {
                for input in batch.inputs {
                    #expect(keyOf[input] == batch.key, "batch of \(batch.key) carries an item of \(keyOf[input] ?? "?")")
                }
                #expect(batch.inputs.count <= 5)
                #expect(batch.weight <= 12)
                running.append((batch.key, batch.id))
            }
            timers += a.timers.map { ($0.key, $0.at) }
            claims += a.claims
            for f in a.failed { outcomes[f.waiter, default: 0] += 1 }
        }
        func claimOne(_ index: Int) {
            let key = claims.remove(at: index)
            let (batch, a) = h.machine.claim(key: key, now: Self.t(now))
            if let batch { var only = Machine.Actions(); only.dispatch = [batch]; absorb(only) }
            absorb(a)
        }
        for input in 0..<400 {
            now += Int(rng.next() % 3)
            let key = keys[Int(rng.next() % 4)]
            keyOf[input] = key
            let (outcome, a) = h.submit(input, key: key, weight: 1 + Int(rng.next() % 5), at: Self.t(now))
            if case .rejected = outcome { outcomes[input, default: 0] += 1 }
            live.append((key, h.nextID))
            absorb(a)
            switch rng.next() % 4 {
            case 0 where !running.isEmpty:
                let (key, id) = running.remove(at: Int(rng.next() % UInt64(running.count)))
                let (waiters, a) = h.machine.batchFinished(key: key, batchID: id, now: Self.t(now))
                for w in waiters.compactMap({ $0 }) { outcomes[w, default: 0] += 1 }
                absorb(a)
            case 1 where !timers.isEmpty:
                let (key, at) = timers.removeFirst()
                now = max(now, Int(at.offset / .milliseconds(1)))
                absorb(h.machine.timerFired(key: key, at: at, now: Self.t(now)))
            case 2 where !live.isEmpty && rng.next() % 3 == 0:
                let (key, id) = live.remove(at: Int(rng.next() % UInt64(live.count)))
                let (waiter, a) = h.machine.cancel(key: key, id: id, now: Self.t(now))
                if let waiter { outcomes[waiter, default: 0] += 1 }
                absorb(a)
            case 3 where !claims.isEmpty:
                claimOne(Int(rng.next() % UInt64(claims.count)))
            default: break
            }
        }
        absorb(h.machine.shutdown(now: Self.t(now)))
        while !running.isEmpty || !claims.isEmpty {
            if !claims.isEmpty { claimOne(0); continue }
            let (key, id) = running.removeFirst()
            let (waiters, a) = h.machine.batchFinished(key: key, batchID: id, now: Self.t(now))
            for w in waiters.compactMap({ $0 }) { outcomes[w, default: 0] += 1 }
            absorb(a)
        }
        #expect(h.machine.isFinished)
        #expect(outcomes.count == 400, "every item came out")
        #expect(outcomes.values.allSatisfy { $0 == 1 }, "no item came out twice")
    }
}

/// A small deterministic random number generator for reproducible randomized tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
