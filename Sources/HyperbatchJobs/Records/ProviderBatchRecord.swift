import Foundation

/// A stored provider batch: a group of requests of one job and one key, sent as one provider batch.
public struct ProviderBatchRecord: Sendable, Hashable {
    /// The store's id for the batch.
    public var id: Int64
    public var jobID: JobID
    public var key: CompatibilityKey
    public var state: ProviderBatchState
    /// Our idempotency tag, recorded before any remote call (OpenAI metadata; Anthropic lookup by time and count).
    public var idempotencyTag: String
    /// Requests claimed into the batch.
    public var requestCount: Int
    /// Sum of the requests' encoded sizes.
    public var byteCount: Int
    /// OpenAI input file id, once uploaded.
    public var inputFileID: String?
    /// The provider's batch id, once created.
    public var providerBatchID: String?
    /// How the provider batch ended, once ended.
    public var outcome: ProviderBatchOutcome?
    /// The provider's last reported counts.
    public var counts: ProviderRequestCounts
    /// OpenAI output/error file ids and Anthropic results URL, once known.
    public var outputFileID: String?
    public var errorFileID: String?
    public var resultsURL: String?
    public var createdAt: Date
    public var submittedAt: Date?
    public var endedAt: Date?
    public var reconciledAt: Date?
    /// When the batch was last polled.
    public var lastPolledAt: Date?

    /// Creates a record (stores build these from rows).
    public init(
        id: Int64, jobID: JobID, key: CompatibilityKey, state: ProviderBatchState, idempotencyTag: String,
        requestCount: Int, byteCount: Int, inputFileID: String? = nil, providerBatchID: String? = nil,
        outcome: ProviderBatchOutcome? = nil, counts: ProviderRequestCounts = .init(), outputFileID: String? = nil,
        errorFileID: String? = nil, resultsURL: String? = nil, createdAt: Date, submittedAt: Date? = nil,
        endedAt: Date? = nil, reconciledAt: Date? = nil, lastPolledAt: Date? = nil
    ) {
        self.id = id
        self.jobID = jobID
        self.key = key
        self.state = state
        self.idempotencyTag = idempotencyTag
        self.requestCount = requestCount
        self.byteCount = byteCount
        self.inputFileID = inputFileID
        self.providerBatchID = providerBatchID
        self.outcome = outcome
        self.counts = counts
        self.outputFileID = outputFileID
        self.errorFileID = errorFileID
        self.resultsURL = resultsURL
        self.createdAt = createdAt
        self.submittedAt = submittedAt
        self.endedAt = endedAt
        self.reconciledAt = reconciledAt
        self.lastPolledAt = lastPolledAt
    }

    /// The spec to create (or find) this batch at the provider.
    public var spec: ProviderBatchSpec {
        ProviderBatchSpec(
            endpoint: key.endpoint, model: key.provider == .openai ? key.model : nil, idempotencyTag: idempotencyTag,
            requestCount: requestCount)
    }
}

/// What the dispatcher asks the store to claim as one new provider batch (usually one ``PackPlan``).
public struct BatchClaim: Sendable, Hashable {
    public var jobID: JobID
    public var key: CompatibilityKey
    /// The idempotency tag to record with the batch row before anything is sent.
    public var idempotencyTag: String
    /// The pending requests to move into the batch; those no longer pending are skipped.
    public var requestIDs: [Int64]

    /// Creates a claim; `idempotencyTag` defaults to a fresh `hb-<uuid>`.
    public init(jobID: JobID, key: CompatibilityKey, requestIDs: [Int64], idempotencyTag: String = "hb-" + UUID().uuidString.lowercased()) {
        self.jobID = jobID
        self.key = key
        self.idempotencyTag = idempotencyTag
        self.requestIDs = requestIDs
    }
}
