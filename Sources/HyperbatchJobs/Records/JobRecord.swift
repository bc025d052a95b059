import Foundation

/// What the caller gives to create a job.
public struct NewJob: Sendable, Hashable {
    /// The job's id; creating a job whose id exists returns the existing job (resume).
    public var id: JobID
    /// The provider every request of the job goes to.
    public var provider: ProviderKind
    /// The tenant used for requests that name none.
    public var tenant: String
    /// Attempts per request before an expired/canceled/retryable outcome becomes terminal (at least 1).
    public var maxAttempts: Int
    /// Free-form label (e.g. the input file path).
    public var label: String?

    /// Creates a job description.
    public init(id: JobID, provider: ProviderKind, tenant: String = "", maxAttempts: Int = 3, label: String? = nil) {
        self.id = id
        self.provider = provider
        self.tenant = tenant
        self.maxAttempts = max(1, maxAttempts)
        self.label = label
    }
}

/// A stored job: one submission of requests to one provider.
public struct JobRecord: Sendable, Hashable {
    public var id: JobID
    public var provider: ProviderKind
    public var tenant: String
    public var maxAttempts: Int
    public var label: String?
    public var state: JobState
    public var createdAt: Date
    /// Set when every request became terminal or the job was cancelled; cleared when requests are added again.
    public var finishedAt: Date?

    /// Creates a record (stores build these from rows).
    public init(
        id: JobID, provider: ProviderKind, tenant: String, maxAttempts: Int, label: String?, state: JobState,
        createdAt: Date, finishedAt: Date?
    ) {
        self.id = id
        self.provider = provider
        self.tenant = tenant
        self.maxAttempts = maxAttempts
        self.label = label
        self.state = state
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }
}
