/// Requests of a job per state.
public struct RequestStateCounts: Sendable, Hashable {
    /// Count per state; states with no request are absent.
    public var byState: [RequestState: Int]

    /// Creates counts.
    public init(byState: [RequestState: Int] = [:]) { self.byState = byState }

    /// The count in `state` (0 when none).
    public subscript(_ state: RequestState) -> Int { byState[state, default: 0] }
    /// All requests.
    public var total: Int { byState.values.reduce(0, +) }
    /// Requests in a terminal state.
    public var terminal: Int { byState.filter { $0.key.isTerminal }.values.reduce(0, +) }
}

/// What a bulk insert did.
public struct InsertSummary: Sendable, Hashable {
    /// Rows inserted.
    public var inserted: Int
    /// Rows skipped because `(job, custom_id)` existed already.
    public var duplicates: Int

    /// Creates a summary.
    public init(inserted: Int, duplicates: Int) {
        self.inserted = inserted
        self.duplicates = duplicates
    }
}

/// What applying a chunk of results did.
public struct ApplySummary: Sendable, Hashable {
    /// Requests that reached a terminal state (one outcome event each).
    public var finished: Int
    /// Requests sent back to `pending` for another attempt.
    public var retried: Int
    /// Lines ignored: unknown `custom_id`, not in this batch, or already applied.
    public var ignored: Int

    /// Creates a summary.
    public init(finished: Int = 0, retried: Int = 0, ignored: Int = 0) {
        self.finished = finished
        self.retried = retried
        self.ignored = ignored
    }
}
