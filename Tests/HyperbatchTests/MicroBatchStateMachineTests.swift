import Testing

@testable import Hyperbatch

@Suite struct MicroBatchStateMachineTests {
    typealias Machine = MicroBatchStateMachine<Int, Int>

    func batch(_ resume: Machine.ConsumerResume?) -> [Int]? {
        if case .batch(let b)? = resume { return b }
        return nil
    }

    @Test func closesOnCountAndStartsOneTimerPerBatch() {
        var m = Machine(maxCount: 3, maxWeight: .max)
        let a1 = m.element(1, weight: 1, deadline: 10)
        #expect(a1.startTimer?.deadline == 10)
        let a2 = m.element(2, weight: 1, deadline: 11)
        #expect(a2.startTimer == nil)
        let a3 = m.element(3, weight: 1, deadline: 12)
        #expect(a3.cancelTimer)
        #expect(m.ready.count == 1)
        guard case .resume(let r, _) = m.next() else { Issue.record("expected a batch"); return }
        #expect(batch(r) == [1, 2, 3])
        let a4 = m.element(4, weight: 1, deadline: 20)
        #expect(a4.startTimer?.deadline == 20)
    }

    @Test func weightOverflowClosesTheBatchBeforeTheHeavyElementAndAHeavyElementTravelsAlone() {
        var m = Machine(maxCount: 100, maxWeight: 10, bufferedBatches: 5)
        _ = m.element(1, weight: 4, deadline: 0)
        _ = m.element(2, weight: 4, deadline: 0)
        _ = m.element(3, weight: 4, deadline: 0)  // 12 > 10: [1, 2] closes first
        _ = m.element(4, weight: 50, deadline: 0)  // [3] closes, then [4] alone
        #expect(Array(m.ready) == [[1, 2], [3], [4]])
        #expect(m.current.isEmpty)
    }

    @Test func exactWeightClosesAtOnceWithoutATimer() {
        var m = Machine(maxCount: 100, maxWeight: 10)
        let a = m.element(7, weight: 10, deadline: 5)
        #expect(a.startTimer == nil)
        #expect(Array(m.ready) == [[7]])
    }

    @Test func timerClosesOnlyItsOwnGeneration() {
        var m = Machine(maxCount: 2, maxWeight: .max, bufferedBatches: 4)
        let first = m.element(1, weight: 1, deadline: 10)
        _ = m.element(2, weight: 1, deadline: 11)  // closes by count
        _ = m.element(3, weight: 1, deadline: 12)  // new batch, new generation
        let stale = m.timerFired(generation: first.startTimer!.generation)
        #expect(stale.resumeConsumer == nil)
        #expect(m.current == [3])
        let fresh = m.timerFired(generation: first.startTimer!.generation + 1)
        _ = fresh
        #expect(Array(m.ready) == [[1, 2], [3]])
    }

    @Test func waitingConsumerIsResumedByTheTimer() {
        var m = Machine(maxCount: 10, maxWeight: .max)
        guard case .suspend = m.next() else { Issue.record("expected suspend"); return }
        let a = m.element(1, weight: 1, deadline: 10)
        #expect(a.resumeConsumer == nil)
        let t = m.timerFired(generation: a.startTimer!.generation)
        #expect(batch(t.resumeConsumer) == [1])
    }

    @Test func baseEndEmitsThePartialBatchThenTheErrorThenEnd() {
        struct Boom: Error {}
        var m = Machine(maxCount: 10, maxWeight: .max)
        _ = m.element(1, weight: 1, deadline: 0)
        _ = m.element(2, weight: 1, deadline: 0)
        let end = m.baseFinished(error: Boom())
        #expect(end.cancelTimer)
        guard case .resume(let r1, _) = m.next() else { Issue.record("expected batch"); return }
        #expect(batch(r1) == [1, 2])
        guard case .resume(.failure(let e), _) = m.next() else { Issue.record("expected failure"); return }
        #expect(e is Boom)
        guard case .resume(.end, _) = m.next() else { Issue.record("expected end"); return }
    }

    @Test func producerSuspendsWhenTheBufferIsFullAndWakesWhenTheConsumerTakesABatch() {
        var m = Machine(maxCount: 1, maxWeight: .max, bufferedBatches: 1)
        _ = m.element(1, weight: 1, deadline: 0)
        #expect(m.producerShouldSuspend)
        let suspended = m.producerWillSuspend()
        #expect(suspended)
        guard case .resume(let r, let wake) = m.next() else { Issue.record("expected batch"); return }
        #expect(batch(r) == [1])
        #expect(wake)
        #expect(!m.producerShouldSuspend)
    }

    @Test func cancelEndsTheConsumerAndReleasesTheProducer() {
        var m = Machine(maxCount: 1, maxWeight: .max)
        _ = m.element(1, weight: 1, deadline: 0)
        let suspended = m.producerWillSuspend()
        #expect(suspended)
        var m2 = Machine(maxCount: 5, maxWeight: .max)
        guard case .suspend = m2.next() else { Issue.record("expected suspend"); return }
        let c2 = m2.cancel()
        guard case .end? = c2.resumeConsumer else { Issue.record("expected end"); return }
        let c = m.cancel()
        #expect(c.resumeProducer)
        #expect(m.isTerminated)
        let after = m.element(9, weight: 1, deadline: 0)
        #expect(after.startTimer == nil)
    }
}
