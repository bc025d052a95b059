/// A store's outcome events as an `AsyncSequence`, starting after a consumer's durable checkpoint.
///
/// At-least-once: the feed starts after ``JobStore/checkpoint(consumer:)``; the application applies each event
/// idempotently and then acknowledges it with ``acknowledge(_:)`` (or ``JobStore/saveCheckpoint(consumer:sequence:)``),
/// so after a restart it resumes after the last acknowledged event. When no event is waiting the iterator sleeps
/// `pollInterval` on `clock` and asks again; it ends (returns nil) when its task is cancelled.
public struct OutcomeFeed<C: Clock>: AsyncSequence, Sendable where C.Duration == Duration {
    public typealias Element = OutcomeEvent

    public let store: any JobStore
    /// The consumer whose checkpoint is used.
    public let consumer: String
    /// Only this job's events, when set.
    public let job: JobID?
    /// Events fetched per store read.
    public let pageSize: Int
    /// Wait between reads when caught up.
    public let pollInterval: Duration
    public let clock: C

    /// Creates a feed.
    public init(store: any JobStore, consumer: String, job: JobID? = nil, pageSize: Int = 1_000, pollInterval: Duration = .seconds(1), clock: C) {
        self.store = store
        self.consumer = consumer
        self.job = job
        self.pageSize = Swift.max(1, pageSize)
        self.pollInterval = pollInterval
        self.clock = clock
    }

    /// Acknowledges every event up to `event` for this consumer (durably).
    public func acknowledge(_ event: OutcomeEvent) async throws {
        try await store.saveCheckpoint(consumer: consumer, sequence: event.sequence)
    }

    public func makeAsyncIterator() -> Iterator { Iterator(feed: self) }

    /// Reads pages of events from the store.
    public struct Iterator: AsyncIteratorProtocol, Sendable {
        let feed: OutcomeFeed
        var cursor: Int64?
        var buffer: [OutcomeEvent] = []
        var index = 0

        init(feed: OutcomeFeed) { self.feed = feed }

        public mutating func next() async throws -> OutcomeEvent? {
            while index >= buffer.count {
                if Task.isCancelled { return nil }
                let after: Int64
                if let cursor { after = cursor } else { after = try await feed.store.checkpoint(consumer: feed.consumer) }
                cursor = after
                buffer = try await feed.store.outcomes(after: after, job: feed.job, limit: feed.pageSize)
                index = 0
                if buffer.isEmpty {
                    do { try await feed.clock.sleep(for: feed.pollInterval) } catch { return nil }
                }
            }
            let event = buffer[index]
            index += 1
            cursor = event.sequence
            return event
        }
    }
}

extension OutcomeFeed where C == ContinuousClock {
    /// Creates a feed on the continuous clock.
    public init(store: any JobStore, consumer: String, job: JobID? = nil, pageSize: Int = 1_000, pollInterval: Duration = .seconds(1)) {
        self.init(store: store, consumer: consumer, job: job, pageSize: pageSize, pollInterval: pollInterval, clock: ContinuousClock())
    }
}
