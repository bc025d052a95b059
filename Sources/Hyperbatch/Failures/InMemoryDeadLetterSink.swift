import Synchronization

/// A ``DeadLetterSink`` that keeps the most recent `capacity` dead letters in memory and counts the ones it dropped.
public final class InMemoryDeadLetterSink: DeadLetterSink {
    private struct State {
        var letters: [DeadLetter] = []
        var dropped = 0
    }

    /// Most dead letters kept; older ones are dropped first.
    public let capacity: Int
    private let state = Mutex(State())

    /// Creates a sink keeping at most `capacity` records (at least 1).
    public init(capacity: Int = 1_000) { self.capacity = max(1, capacity) }

    public func record(_ deadLetters: [DeadLetter]) async {
        state.withLock { state in
            state.letters.append(contentsOf: deadLetters)
            let excess = state.letters.count - capacity
            if excess > 0 {
                state.letters.removeFirst(excess)
                state.dropped += excess
            }
        }
    }

    /// The dead letters kept, oldest first.
    public var deadLetters: [DeadLetter] { state.withLock { $0.letters } }

    /// Dead letters dropped because the sink was full.
    public var droppedCount: Int { state.withLock { $0.dropped } }
}
