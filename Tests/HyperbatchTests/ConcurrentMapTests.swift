import Hyperbatch
import Synchronization
import Testing

@Suite struct ConcurrentMapTests {
    struct Boom: Error, Equatable { let value: Int }

    @Test(.timeLimit(.minutes(1)))
    func preservesInputOrderWithUnevenDurations() async {
        let results = await (0..<50).concurrentMap(maxConcurrency: 8) { i in
            for _ in 0..<((i * 7) % 13) { await Task.yield() }
            return i * 2
        }
        #expect(results.map { try? $0.get() } == (0..<50).map { $0 * 2 })
    }

    @Test(.timeLimit(.minutes(1)))
    func neverExceedsTheConcurrencyLimit() async {
        let state = Mutex((current: 0, peak: 0))
        _ = await (0..<200).concurrentForEach(maxConcurrency: 3) { _ in
            state.withLock { s in s.current += 1; s.peak = max(s.peak, s.current) }
            for _ in 0..<5 { await Task.yield() }
            state.withLock { $0.current -= 1 }
        }
        let peak = state.withLock { $0.peak }
        #expect(peak <= 3)
        #expect(peak >= 1)
    }

    @Test(.timeLimit(.minutes(1)))
    func perItemErrorsAreIsolated() async {
        let results = await (0..<10).concurrentMap(maxConcurrency: 4) { i -> Int in
            if i % 3 == 0 { throw Boom(value: i) }
            return i
        }
        for (i, r) in results.enumerated() {
            switch r {
            case .success(let v): #expect(i % 3 != 0 && v == i)
            case .failure(let e): #expect(i % 3 == 0 && (e as? Boom) == Boom(value: i))
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func cancellationFailsRemainingItems() async {
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }  // deterministic: cancelled before any item starts
            return await (0..<100).concurrentMap(maxConcurrency: 2) { i -> Int in
                try Task.checkCancellation()
                return i
            }
        }
        let results = await task.value
        #expect(results.count == 100)
        #expect(results.allSatisfy { if case .failure(let e) = $0 { e is CancellationError } else { false } })
    }

    @Test(.timeLimit(.minutes(1)))
    func emptyInputGivesEmptyResult() async {
        let results = await [Int]().concurrentMap(maxConcurrency: 1) { $0 }
        #expect(results.isEmpty)
    }
}
