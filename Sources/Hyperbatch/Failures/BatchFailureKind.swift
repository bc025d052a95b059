/// What a batch-level failure (the handler threw) means, and so what the executor does about it.
public enum BatchFailureKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// The downstream had a passing problem (timeout, connection reset, 503): retry the same batch after a backoff.
    case transient
    /// Some item of the batch is bad: bisect the batch until the bad items are alone, so only they fail.
    case poison
    /// Nothing will help: fail every item of the batch at once.
    case fatal
}
