import Synchronization

/// The cost floor of an async batcher, measured in the same run as the `Batcher` so ratios mean something:
/// a `Mutex`-protected buffer, one unsafe continuation per item, one eager flusher, no keys and no policy.
final class FloorBatcher: Sendable {
    private struct State {
        var buffer: [(Int, UnsafeContinuation<Int, Never>)] = []
        var flusher: UnsafeContinuation<Void, Never>?
        var closed = false
    }
    private let state = Mutex(State())
    private let maxBatchSize: Int
    private let batches = Atomic<Int>(0)
    private let items = Atomic<Int>(0)

    init(maxBatchSize: Int) { self.maxBatchSize = maxBatchSize }

    /// Mean items per handler call so far.
    var meanBatchSize: Double {
        let b = batches.load(ordering: .relaxed)
        return b == 0 ? 0 : Double(items.load(ordering: .relaxed)) / Double(b)
    }

    func submit(_ value: Int) async -> Int {
        await withUnsafeContinuation { continuation in
            let wake = state.withLock { state -> UnsafeContinuation<Void, Never>? in
                state.buffer.append((value, continuation))
                defer { state.flusher = nil }
                return state.flusher
            }
            wake?.resume()
        }
    }

    func close() {
        state.withLock { state -> UnsafeContinuation<Void, Never>? in
            state.closed = true
            defer { state.flusher = nil }
            return state.flusher
        }?.resume()
    }

    /// The eager flusher: swaps the whole buffer out under the lock and answers it in slices outside it.
    func run() async {
        while true {
            var drained: [(Int, UnsafeContinuation<Int, Never>)] = []
            var closed = false
            await withUnsafeContinuation { (wait: UnsafeContinuation<Void, Never>) in
                let ready = state.withLock { state -> Bool in
                    if !state.buffer.isEmpty || state.closed {
                        swap(&drained, &state.buffer)
                        closed = state.closed
                        return true
                    }
                    state.flusher = wait
                    return false
                }
                if ready { wait.resume() }
            }
            if drained.isEmpty {
                if closed { return }
                continue
            }
            var start = 0
            while start < drained.count {
                let end = min(start + maxBatchSize, drained.count)
                let slice = drained[start..<end]
                let outputs = slice.map { $0.0 }  // the no-op handler
                batches.add(1, ordering: .relaxed)
                items.add(slice.count, ordering: .relaxed)
                for (item, output) in zip(slice, outputs) { item.1.resume(returning: output) }
                start = end
            }
        }
    }
}
