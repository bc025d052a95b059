import HyperbatchTestKit
import Logging
import ServiceLifecycle
import ServiceLifecycleTestKit
import Synchronization
import Testing

@testable import Hyperbatch

/// Records every batch a handler sees.
final class BatchLog<Key: Sendable, Input: Sendable>: Sendable {
    private let batches = Mutex<[(Key, [Input])]>([])
    func record(_ key: Key, _ inputs: [Input]) { batches.withLock { $0.append((key, inputs)) } }
    var all: [(Key, [Input])] { batches.withLock { $0 } }
    var count: Int { batches.withLock { $0.count } }
}

/// A gate a handler waits on until the test opens it.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>], arrived: Int)>((false, [], 0))
    func wait() async {
        await withCheckedContinuation { c in
            let resume = state.withLock { s -> Bool in
                s.arrived += 1
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if resume { c.resume() }
        }
    }
    var arrived: Int { state.withLock { $0.arrived } }
    func open() {
        let waiters = state.withLock { s in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }
}

/// Yields until `condition` holds (no sleeping: the test never guesses a duration).
func eventually(_ condition: () -> Bool) async {
    while !condition() { await Task.yield() }
}

@Suite(.timeLimit(.minutes(1))) struct BatcherTests {
    typealias TestBatcher = ClockedBatcher<String, Int, Int, ManualClock>

    static func config(size: Int = 4, wait: Duration = .milliseconds(10), policy: BatchConfiguration.FlushPolicy = .fillOrWait)
        -> BatchConfiguration
    {
        BatchConfiguration(maxBatchSize: size, maxWait: wait, flushPolicy: policy)
    }

    @Test func eachCallerGetsItsOwnResultFromOneBatch() async throws {
        let log = BatchLog<String, Int>()
        let results = try await TestBatcher.withBatcher(
            configuration: Self.config(size: 4), clock: ManualClock(),
            allOrNothing: { key, inputs in
                log.record(key, inputs)
                return inputs.map { $0 * 10 }
            }
        ) { batcher in
            try await withThrowingTaskGroup(of: (Int, Int).self) { group in
                for i in 1...4 { group.addTask { (i, try await batcher.submit(i, key: "k")) } }
                return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
            }
        }
        #expect(results == [1: 10, 2: 20, 3: 30, 4: 40])
        #expect(log.count == 1, "four items of one key and a size of four make one batch")
    }

    @Test func timeFlushWaitsForTheClockHandshake() async throws {
        let clock = ManualClock()
        let log = BatchLog<String, Int>()
        try await TestBatcher.withBatcher(
            configuration: Self.config(size: 100, wait: .milliseconds(10)), clock: clock,
            allOrNothing: { key, inputs in
                log.record(key, inputs)
                return inputs
            }
        ) { batcher in
            async let a = batcher.submit(1, key: "k")
            let deadline = await clock.nextSleep()  // the first item armed the max-wait timer
            #expect(deadline == ManualClock.Instant(offset: .milliseconds(10)))
            async let b = batcher.submit(2, key: "k")
            await eventually { batcher.pendingCount(for: "k") == 2 }
            #expect(log.count == 0, "nothing is sent before max wait")
            clock.advance(to: deadline)
            let (ra, rb) = try await (a, b)
            #expect([ra, rb] == [1, 2])
            #expect(log.all.map(\.1) == [[1, 2]])
        }
    }

    @Test func keysNeverShareABatch() async throws {
        let log = BatchLog<String, Int>()
        try await TestBatcher.withBatcher(
            configuration: Self.config(size: 3, policy: .eager), clock: ManualClock(),
            allOrNothing: { key, inputs in
                log.record(key, inputs)
                return inputs
            }
        ) { batcher in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<300 {
                    group.addTask {
                        let key = "tenant-\(i % 7)"
                        let out = try await batcher.submit(i, key: key)
                        #expect(out == i)
                    }
                }
                try await group.waitForAll()
            }
        }
        for (key, inputs) in log.all {
            #expect(inputs.allSatisfy { "tenant-\($0 % 7)" == key })
        }
        #expect(log.all.flatMap(\.1).sorted() == Array(0..<300))
    }

    @Test func wrongResultCountFailsEveryItemNamingBothCounts() async throws {
        try await TestBatcher.withBatcher(
            configuration: Self.config(size: 2), clock: ManualClock(),
            allOrNothing: { _, inputs in Array(inputs.dropLast()) }
        ) { batcher in
            async let a = Result { try await batcher.submit(1, key: "k") }
            async let b = Result { try await batcher.submit(2, key: "k") }
            for result in await [a, b] {
                let error = try #require(result.failureValue as? BatcherError)
                #expect(error.code == .resultCountMismatch)
                #expect(error.message.contains("1 results for 2 inputs"))
            }
        }
    }

    @Test func overweightItemFailsAtSubmitAndOthersProceed() async throws {
        var config = Self.config(size: 1)
        config.maxBatchWeight = 10
        try await TestBatcher.withBatcher(
            configuration: config, clock: ManualClock(), weigh: { $0 }, allOrNothing: { _, inputs in inputs }
        ) { batcher in
            await #expect(throws: BatcherError.self) { try await batcher.submit(11, key: "k") }
            let value1 = try await batcher.submit(10, key: "k")
            #expect(value1 == 10)
        }
    }

    @Test func partialFailureReachesOnlyItsCaller() async throws {
        struct Bad: Error {}
        try await TestBatcher.withBatcher(
            configuration: Self.config(size: 3), clock: ManualClock(),
            handler: { _, inputs in inputs.map { $0 == 2 ? .failure(Bad()) : .success($0) } }
        ) { batcher in
            let results = await batcher.submit(contentsOf: [1, 2, 3], key: "k")
            #expect(results.map { try? $0.get() } == [1, nil, 3])
            #expect(results[1].failureValue is Bad)
        }
    }

    @Test func cancelledWhileQueuedIsRemovedAndNeverSent() async throws {
        let clock = ManualClock()
        let log = BatchLog<String, Int>()
        try await TestBatcher.withBatcher(
            configuration: Self.config(size: 100), clock: clock,
            allOrNothing: { key, inputs in
                log.record(key, inputs)
                return inputs
            }
        ) { batcher in
            let doomed = Task { try await batcher.submit(1, key: "k") }
            let deadline = await clock.nextSleep()
            doomed.cancel()
            await #expect(throws: CancellationError.self) { try await doomed.value }
            #expect(batcher.pendingCount(for: "k") == 0)
            async let kept = batcher.submit(2, key: "k")
            await eventually { batcher.pendingCount(for: "k") == 1 }
            // The timer armed for the cancelled item still fires and flushes the item that took its place.
            clock.advance(to: deadline)
            let value2 = try await kept
            #expect(value2 == 2)
        }
        #expect(log.all.map(\.1) == [[2]])
    }

    @Test func cancelledBeforeSubmittingFailsAtOnceAndIsNeverSent() async throws {
        let log = BatchLog<String, Int>()
        try await TestBatcher.withBatcher(
            configuration: Self.config(size: 1), clock: ManualClock(),
            allOrNothing: { key, inputs in
                log.record(key, inputs)
                return inputs
            }
        ) { batcher in
            let started = Gate()
            let doomed = Task {
                await started.wait()  // opened after the cancel below: the task is cancelled before it submits
                return try await batcher.submit(1, key: "k")
            }
            doomed.cancel()
            started.open()
            await #expect(throws: CancellationError.self) { try await doomed.value }
            #expect(batcher.pendingCount(for: "k") == 0)
            // The cancelled submit left nothing behind: a later submit runs normally.
            let value = try await batcher.submit(2, key: "k")
            #expect(value == 2)
        }
        #expect(log.all.map(\.1) == [[2]])
    }

    @Test func cancelledWhileRunningReturnsAtOnce() async throws {
        let gate = Gate()
        try await TestBatcher.withBatcher(
            configuration: Self.config(size: 2), clock: ManualClock(),
            allOrNothing: { _, inputs in
                await gate.wait()
                return inputs
            }
        ) { batcher in
            let doomed = Task { try await batcher.submit(1, key: "k") }
            async let other = batcher.submit(2, key: "k")
            await eventually { gate.arrived == 1 }
            doomed.cancel()
            await #expect(throws: CancellationError.self) { try await doomed.value }
            gate.open()
            let value3 = try await other
            #expect(value3 == 2)
        }
    }

    @Test func rejectOverflowFailsFastWithOverloaded() async throws {
        var config = Self.config(size: 100)
        config.maxPendingItems = 1
        config.overflow = .reject
        let clock = ManualClock()
        try await TestBatcher.withBatcher(configuration: config, clock: clock, allOrNothing: { _, i in i }) { batcher in
            async let first = batcher.submit(1, key: "k")
            await eventually { batcher.pendingCount(for: "k") == 1 }
            let error = await #expect(throws: BatcherError.self) { try await batcher.submit(2, key: "k") }
            #expect(error?.code == .overloaded)
            batcher.flush()
            let value4 = try await first
            #expect(value4 == 1)
        }
    }

    @Test func suspendOverflowWaitsForRoom() async throws {
        var config = Self.config(size: 1)
        config.maxPendingItems = 1
        config.maxConcurrentBatches = 1
        let gate = Gate()
        try await TestBatcher.withBatcher(
            configuration: config, clock: ManualClock(),
            allOrNothing: { _, inputs in
                await gate.wait()
                return inputs
            }
        ) { batcher in
            async let a = batcher.submit(1, key: "k")  // runs, blocked on the gate
            await eventually { gate.arrived == 1 }
            async let b = batcher.submit(2, key: "k")  // pending (the only slot is busy)
            await eventually { batcher.pendingCount(for: "k") == 1 }
            async let c = batcher.submit(3, key: "k")  // suspended: no room
            await eventually { batcher.suspendedCount(for: "k") == 1 }
            gate.open()
            let value5 = try await [a, b, c]
            #expect(value5 == [1, 2, 3])
        }
    }

    @Test func deadlinePassedAtSubmitFailsClearly() async throws {
        let clock = ManualClock()
        clock.advance(by: .seconds(1))
        try await TestBatcher.withBatcher(configuration: Self.config(), clock: clock, allOrNothing: { _, i in i }) { batcher in
            let error = await #expect(throws: BatcherError.self) {
                try await batcher.submit(1, key: "k", deadline: ManualClock.Instant(offset: .milliseconds(500)))
            }
            #expect(error?.code == .deadlineExceeded)
        }
    }

    @Test func shutdownFlushesPendingThenRefusesNewItems() async throws {
        let log = BatchLog<String, Int>()
        let batcher = try TestBatcher(
            configuration: Self.config(size: 100, wait: .seconds(3600)), clock: ManualClock(),
            allOrNothing: { key, inputs in
                log.record(key, inputs)
                return inputs
            })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await batcher.run() }
            async let a = batcher.submit(1, key: "a")
            async let b = batcher.submit(2, key: "b")
            await eventually { batcher.pendingCount(for: "a") == 1 && batcher.pendingCount(for: "b") == 1 }
            batcher.shutdown()
            let value6 = try await [a, b]
            #expect(value6 == [1, 2], "nothing accepted is lost, even with a one-hour max wait")
            try await group.waitForAll()  // run() returned
        }
        let error = await #expect(throws: BatcherError.self) { try await batcher.submit(3, key: "a") }
        #expect(error?.code == .shutDown)
        #expect(log.count == 2)
    }

    @Test func gracefulShutdownThroughServiceLifecycle() async throws {
        let batcher = try TestBatcher(
            configuration: Self.config(size: 100, wait: .seconds(3600)), clock: ManualClock(),
            allOrNothing: { _, inputs in inputs })
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await batcher.run() }
                async let a = batcher.submit(7, key: "k")
                await eventually { batcher.pendingCount(for: "k") == 1 }
                trigger.triggerGracefulShutdown()
                let value7 = try await a
                #expect(value7 == 7)
                try await group.waitForAll()
            }
        }
    }

    @Test func invalidConfigurationIsAClearError() {
        var config = BatchConfiguration()
        config.maxBatchSize = 0
        #expect(throws: BatcherError(.invalidConfiguration, "maxBatchSize must be at least 1, got 0")) {
            _ = try TestBatcher(configuration: config, clock: ManualClock(), allOrNothing: { _, i in i })
        }
        config = BatchConfiguration()
        config.maxWait = .milliseconds(-1)
        let error = #expect(throws: BatcherError.self) { try config.validate() }
        #expect(error?.message.contains("maxWait") == true)
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }

    init(catching body: () async throws(Failure) -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}
