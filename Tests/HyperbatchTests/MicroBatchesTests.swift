import HyperbatchTestKit
import Synchronization
import Testing

@testable import Hyperbatch

@Suite struct MicroBatchesTests {
    struct Boom: Error {}

    /// A finished stream of `values`.
    func finite<T: Sendable>(_ values: [T]) -> AsyncStream<T> {
        let (stream, input) = AsyncStream.makeStream(of: T.self, bufferingPolicy: .unbounded)
        for value in values { input.yield(value) }
        input.finish()
        return stream
    }

    @Test(.timeLimit(.minutes(1)))
    func countFlushesAndTheLastPartialBatchIsEmittedAtTheEnd() async throws {
        let clock = ManualClock()
        var batches: [[Int]] = []
        for try await batch in finite(Array(1...10)).microBatches(maxCount: 4, maxWait: .seconds(1), clock: clock) {
            batches.append(batch)
        }
        #expect(batches == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]])
    }

    @Test(.timeLimit(.minutes(1)))
    func maxWaitSinceTheFirstElementFlushesAPartialBatch() async throws {
        let clock = ManualClock()
        let (stream, input) = AsyncStream.makeStream(of: Int.self)
        let (batches, output) = AsyncThrowingStream.makeStream(of: [Int].self)
        let batched = stream.microBatches(maxCount: 100, maxWait: .milliseconds(5), clock: clock)
        let consumer = Task {
            do {
                for try await batch in batched { output.yield(batch) }
                output.finish()
            } catch { output.finish(throwing: error) }
        }
        var received = batches.makeAsyncIterator()
        input.yield(1)
        let deadline = await clock.nextSleep()
        #expect(deadline.offset == .milliseconds(5))  // max wait counted from the first element
        clock.advance(to: deadline)
        do { let got = try await received.next(); #expect(got == [1]) }
        input.yield(2)
        input.yield(3)
        input.finish()
        do { let got = try await received.next(); #expect(got == [2, 3]) }
        do { let got = try await received.next(); #expect(got == nil) }
        await consumer.value
    }

    @Test(.timeLimit(.minutes(1)))
    func weightFlushesUseTheWeigher() async throws {
        let clock = ManualClock()
        let words = ["aaaa", "bbbb", "cc", "dddddddddd", "e"]
        var batches: [[String]] = []
        for try await batch in finite(words).microBatches(
            maxCount: 100, maxWeight: 8, maxWait: .seconds(1), clock: clock, weigh: { $0.count })
        {
            batches.append(batch)
        }
        #expect(batches == [["aaaa", "bbbb"], ["cc"], ["dddddddddd"], ["e"]])
    }

    @Test(.timeLimit(.minutes(1)))
    func aBaseErrorIsThrownAfterThePendingBatch() async throws {
        let clock = ManualClock()
        let (stream, input) = AsyncThrowingStream.makeStream(of: Int.self)
        var iterator = stream.microBatches(maxCount: 100, maxWait: .seconds(1), clock: clock).makeAsyncIterator()
        input.yield(1)
        input.yield(2)
        input.finish(throwing: Boom())
        do { let got = try await iterator.next(); #expect(got == [1, 2]) }
        do {
            _ = try await iterator.next()
            Issue.record("expected the base's error")
        } catch {
            #expect(error is Boom)
        }
        do { let got = try await iterator.next(); #expect(got == nil) }
    }

    @Test(.timeLimit(.minutes(1)))
    func aSlowConsumerHoldsTheBaseBack() async throws {
        let clock = ManualClock()
        let produced = Atomic<Int>(0)
        let (stream, input) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .unbounded)
        let counted = stream.map { value -> Int in
            produced.add(1, ordering: .relaxed)
            return value
        }
        for i in 0..<1_000 { input.yield(i) }
        input.finish()
        var iterator = counted.microBatches(maxCount: 10, maxWait: .seconds(1), clock: clock).makeAsyncIterator()
        do { let got = try await iterator.next(); #expect(got == Array(0..<10)) }
        // The producer may read ahead by one closed batch plus the element that closes the next one, never the rest.
        for _ in 0..<100 { await Task.yield() }
        #expect(produced.load(ordering: .relaxed) <= 31)
        var total = 10
        while let batch = try await iterator.next() { total += batch.count }
        #expect(total == 1_000)
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellingTheConsumerEndsTheSequenceAndStopsTheTimer() async throws {
        let clock = ManualClock()
        let (stream, input) = AsyncStream.makeStream(of: Int.self)
        let consumer = Task {
            var count = 0
            for try await batch in stream.microBatches(maxCount: 100, maxWait: .seconds(1), clock: clock) {
                count += batch.count
            }
            return count
        }
        input.yield(1)
        _ = await clock.nextSleep()  // the batch's timer is armed: element 1 was read
        consumer.cancel()
        #expect(try await consumer.value == 0)
        input.finish()
    }
}
