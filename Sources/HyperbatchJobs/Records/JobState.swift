/// Where a job is.
public enum JobState: String, Sendable, Codable, Hashable, CaseIterable {
    /// Some requests are not terminal yet.
    case active
    /// Every request is terminal.
    case finished
    /// Cancelled: pending requests were cancelled; live provider batches should be cancelled remotely.
    case canceled
}
