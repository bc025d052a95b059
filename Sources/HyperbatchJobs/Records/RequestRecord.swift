import Foundation

/// One request to enqueue into a job.
public struct NewRequest: Sendable, Hashable {
    /// Unique within the job; results are joined on it. Inserting an existing one is a no-op (idempotent).
    public var customID: String
    /// Provider, endpoint, model, tenant: requests only share a provider batch when these match.
    public var key: CompatibilityKey
    /// The request parameters as UTF-8 JSON (OpenAI `body`, Anthropic `params`).
    public var body: [UInt8]
    /// Bytes this request takes in the provider's encoded input (for packing within ``ProviderLimits/maxBytes``).
    public var encodedSize: Int
    /// The application's own reference (e.g. a record id), handed back with the outcome.
    public var appReference: String?

    /// Creates a request; `encodedSize` defaults to ``RequestSizeEstimate/estimate(customID:endpoint:body:)``.
    public init(customID: String, key: CompatibilityKey, body: [UInt8], encodedSize: Int? = nil, appReference: String? = nil) {
        self.customID = customID
        self.key = key
        self.body = body
        self.encodedSize = encodedSize ?? RequestSizeEstimate.estimate(customID: customID, endpoint: key.endpoint, body: body)
        self.appReference = appReference
    }
}

/// A stored request and where it is.
public struct RequestRecord: Sendable, Hashable {
    /// The store's id for the request (ascending in insertion order).
    public var id: Int64
    public var jobID: JobID
    public var customID: String
    public var key: CompatibilityKey
    public var body: [UInt8]
    public var encodedSize: Int
    public var appReference: String?
    public var state: RequestState
    /// How many times the request was packed into a provider batch.
    public var attempts: Int
    /// The last error the provider reported for it (also set for `expired`/`canceled` retries when given).
    public var lastError: ProviderError?
    /// The provider's response body, once `succeeded`.
    public var response: [UInt8]?
    /// Token usage of the response, when the provider reported it.
    public var usage: TokenUsage?
    /// The local provider batch it is (or was last) in.
    public var batchID: Int64?
    public var updatedAt: Date

    /// Creates a record (stores build these from rows).
    public init(
        id: Int64, jobID: JobID, customID: String, key: CompatibilityKey, body: [UInt8], encodedSize: Int,
        appReference: String?, state: RequestState, attempts: Int, lastError: ProviderError?, response: [UInt8]?,
        usage: TokenUsage? = nil, batchID: Int64?, updatedAt: Date
    ) {
        self.id = id
        self.jobID = jobID
        self.customID = customID
        self.key = key
        self.body = body
        self.encodedSize = encodedSize
        self.appReference = appReference
        self.state = state
        self.attempts = attempts
        self.lastError = lastError
        self.response = response
        self.usage = usage
        self.batchID = batchID
        self.updatedAt = updatedAt
    }

    /// The line to send to the provider.
    public var line: ProviderRequestLine { ProviderRequestLine(customID: customID, endpoint: key.endpoint, body: body) }
}

/// A pending request as the packer sees it (no body).
public struct PackCandidate: Sendable, Hashable {
    public var id: Int64
    public var key: CompatibilityKey
    public var encodedSize: Int

    /// Creates a candidate.
    public init(id: Int64, key: CompatibilityKey, encodedSize: Int) {
        self.id = id
        self.key = key
        self.encodedSize = encodedSize
    }
}

/// A provider-independent upper estimate of a request's encoded line size (the OpenAI JSONL line, which is the
/// larger of the two encodings), used when the caller does not pass the provider's own figure.
public enum RequestSizeEstimate {
    /// `{"custom_id":…,"method":"POST","url":…,"body":…}\n` with every id/url byte counted twice for escaping.
    public static func estimate(customID: String, endpoint: String, body: [UInt8]) -> Int {
        48 + 2 * customID.utf8.count + 2 * endpoint.utf8.count + body.count
    }
}
