import Foundation

/// Which provider batch API a request goes to.
public enum ProviderKind: String, Sendable, Codable, Hashable, CaseIterable {
    /// The OpenAI Batch API (`/v1/files` + `/v1/batches`).
    case openai
    /// Anthropic Message Batches (`/v1/messages/batches`).
    case anthropic
}

/// The limits a provider puts on one provider batch; the packer never exceeds any of them.
public struct ProviderLimits: Sendable, Hashable {
    /// Most requests in one provider batch (OpenAI 50,000; Anthropic 100,000).
    public var maxRequests: Int
    /// Most bytes of encoded input in one provider batch (OpenAI 200 MB file; Anthropic 256 MB body).
    public var maxBytes: Int
    /// Whether every request of a provider batch must name the same model (OpenAI: one model per input file).
    public var oneModelPerBatch: Bool
    /// Whether `custom_id` must match `^[a-zA-Z0-9_-]{1,64}$` (Anthropic).
    public var restrictedCustomIDs: Bool

    /// Creates limits.
    public init(maxRequests: Int, maxBytes: Int, oneModelPerBatch: Bool, restrictedCustomIDs: Bool) {
        self.maxRequests = maxRequests
        self.maxBytes = maxBytes
        self.oneModelPerBatch = oneModelPerBatch
        self.restrictedCustomIDs = restrictedCustomIDs
    }

    /// OpenAI Batch API limits: 50,000 requests, 200 MB, one model per file.
    public static let openAI = ProviderLimits(
        maxRequests: 50_000, maxBytes: 200 * 1024 * 1024, oneModelPerBatch: true, restrictedCustomIDs: false)
    /// Anthropic Message Batches limits: 100,000 requests, 256 MB, custom ids `^[a-zA-Z0-9_-]{1,64}$`.
    public static let anthropic = ProviderLimits(
        maxRequests: 100_000, maxBytes: 256 * 1024 * 1024, oneModelPerBatch: false, restrictedCustomIDs: true)
}

/// One request line to send in a provider batch.
public struct ProviderRequestLine: Sendable, Hashable {
    /// The caller's id for this request, unique within the provider batch; results are joined on it.
    public var customID: String
    /// The endpoint path, e.g. `/v1/chat/completions` (OpenAI `url`); Anthropic batches use `/v1/messages`.
    public var endpoint: String
    /// The request parameters as a UTF-8 JSON object (OpenAI `body`, Anthropic `params`), spliced in unparsed.
    public var body: [UInt8]

    /// Creates a request line.
    public init(customID: String, endpoint: String, body: [UInt8]) {
        self.customID = customID
        self.endpoint = endpoint
        self.body = body
    }
}

/// What the pipeline asks for when it creates a provider batch.
public struct ProviderBatchSpec: Sendable, Hashable {
    /// The endpoint every line uses (OpenAI `endpoint`; `/v1/messages` for Anthropic).
    public var endpoint: String
    /// The model every line uses, when the provider needs one model per batch.
    public var model: String?
    /// Our idempotency tag: stored in OpenAI `metadata` so a create whose answer was lost can be found again.
    public var idempotencyTag: String
    /// Number of lines, known before the upload (used to recognise a batch during recovery).
    public var requestCount: Int
    /// Extra metadata (OpenAI only; at most 15 pairs besides the tag).
    public var metadata: [String: String]

    /// Creates a spec.
    public init(endpoint: String, model: String?, idempotencyTag: String, requestCount: Int, metadata: [String: String] = [:]) {
        self.endpoint = endpoint
        self.model = model
        self.idempotencyTag = idempotencyTag
        self.requestCount = requestCount
        self.metadata = metadata
    }
}

/// Where a provider batch is in its lifecycle, normalized across providers.
public enum ProviderBatchPhase: Sendable, Hashable {
    /// OpenAI `validating`.
    case validating
    /// OpenAI `in_progress`; Anthropic `in_progress`.
    case inProgress
    /// OpenAI `finalizing`.
    case finalizing
    /// OpenAI `cancelling`; Anthropic `canceling`.
    case cancelling
    /// A terminal state: results (if any) can be read.
    case ended(ProviderBatchOutcome)

    /// Whether the batch has reached a terminal state.
    public var isEnded: Bool { if case .ended = self { true } else { false } }
}

/// How a provider batch ended.
public enum ProviderBatchOutcome: String, Sendable, Hashable, Codable {
    /// OpenAI `completed`; Anthropic `ended` without cancel (may still hold errored or expired lines).
    case completed
    /// OpenAI `failed`: the input was rejected as a whole (see ``ProviderBatchStatus/errors``).
    case failed
    /// OpenAI `expired`: the 24 h window passed; finished lines are in the output file.
    case expired
    /// OpenAI `cancelled`; Anthropic `ended` after a cancel.
    case cancelled
}

/// Per-line counts of a provider batch. Anthropic keeps every line under `processing` until the batch ends.
public struct ProviderRequestCounts: Sendable, Hashable, Codable {
    public var total: Int
    public var processing: Int
    public var succeeded: Int
    public var errored: Int
    public var expired: Int
    public var canceled: Int

    /// Creates counts.
    public init(total: Int = 0, processing: Int = 0, succeeded: Int = 0, errored: Int = 0, expired: Int = 0, canceled: Int = 0) {
        self.total = total
        self.processing = processing
        self.succeeded = succeeded
        self.errored = errored
        self.expired = expired
        self.canceled = canceled
    }
}

/// Token usage reported by a provider, for cost estimates.
public struct TokenUsage: Sendable, Hashable, Codable {
    public var inputTokens: Int
    public var outputTokens: Int

    /// Creates a usage record.
    public init(inputTokens: Int, outputTokens: Int) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
    }
}

/// A batch-level validation error (OpenAI `errors.data[]`), with the input line it refers to when known.
public struct ProviderBatchError: Sendable, Hashable, Codable {
    public var code: String
    public var message: String
    public var line: Int?

    /// Creates a batch-level error.
    public init(code: String, message: String, line: Int? = nil) {
        self.code = code
        self.message = message
        self.line = line
    }
}

/// The state of one provider batch as the provider reports it, normalized.
public struct ProviderBatchStatus: Sendable, Hashable {
    /// The provider's batch id (`batch_…` or `msgbatch_…`).
    public var id: String
    public var phase: ProviderBatchPhase
    public var counts: ProviderRequestCounts
    public var createdAt: Date
    public var endedAt: Date?
    public var expiresAt: Date?
    /// OpenAI input file id.
    public var inputFileID: String?
    /// OpenAI output file id (successful lines), if any.
    public var outputFileID: String?
    /// OpenAI error file id (failed and expired lines), if any.
    public var errorFileID: String?
    /// Anthropic `results_url`, once ended; follow it as given.
    public var resultsURL: String?
    /// OpenAI batch-level errors (the batch `failed` as a whole).
    public var errors: [ProviderBatchError]
    /// Our idempotency tag, when the provider stores metadata (OpenAI).
    public var idempotencyTag: String?
    /// Token usage, when the provider reports it.
    public var usage: TokenUsage?

    /// Creates a status.
    public init(
        id: String, phase: ProviderBatchPhase, counts: ProviderRequestCounts = .init(), createdAt: Date,
        endedAt: Date? = nil, expiresAt: Date? = nil, inputFileID: String? = nil, outputFileID: String? = nil,
        errorFileID: String? = nil, resultsURL: String? = nil, errors: [ProviderBatchError] = [],
        idempotencyTag: String? = nil, usage: TokenUsage? = nil
    ) {
        self.id = id
        self.phase = phase
        self.counts = counts
        self.createdAt = createdAt
        self.endedAt = endedAt
        self.expiresAt = expiresAt
        self.inputFileID = inputFileID
        self.outputFileID = outputFileID
        self.errorFileID = errorFileID
        self.resultsURL = resultsURL
        self.errors = errors
        self.idempotencyTag = idempotencyTag
        self.usage = usage
    }
}

/// An error as a provider reported it, keeping its type, code and message. Never contains an API key.
public struct ProviderError: Error, Sendable, Hashable, Codable, CustomStringConvertible {
    /// The HTTP status, when the error came from an HTTP answer (or a result line's `status_code`).
    public var status: Int?
    /// The provider's error type, e.g. `invalid_request_error`, `rate_limit_error`, `overloaded_error`.
    public var type: String
    /// The provider's error code, e.g. `batch_expired`, when it gives one.
    public var code: String?
    /// The provider's message.
    public var message: String
    /// The offending parameter, when the provider names one.
    public var param: String?

    /// Creates a provider error.
    public init(status: Int? = nil, type: String, code: String? = nil, message: String, param: String? = nil) {
        self.status = status
        self.type = type
        self.code = code
        self.message = message
        self.param = param
    }

    /// Whether sending the same request again later may succeed (rate limits, overload, 5xx, timeouts).
    public var isRetryable: Bool {
        if let status, status == 408 || status == 409 || status == 429 || status >= 500 { return true }
        return ["rate_limit_error", "overloaded_error", "api_error", "timeout_error", "server_error"].contains(type)
    }

    public var description: String {
        var text = "\(type)"
        if let status { text += " (HTTP \(status))" }
        if let code { text += " [\(code)]" }
        if let param { text += " param=\(param)" }
        return text + ": \(message)"
    }
}

/// The outcome of one request line in a provider batch's results.
public enum ProviderResultOutcome: Sendable, Hashable {
    /// The request ran; `body` is the provider's response body as UTF-8 JSON.
    case succeeded(body: [UInt8], usage: TokenUsage?)
    /// The request ran or was validated and failed with this error.
    case errored(ProviderError)
    /// The batch's window passed before the request ran.
    case expired
    /// The batch was cancelled before the request ran.
    case canceled
}

/// One line of a provider batch's results, normalized.
public struct ProviderResultLine: Sendable, Hashable {
    public var customID: String
    public var outcome: ProviderResultOutcome

    /// Creates a result line.
    public init(customID: String, outcome: ProviderResultOutcome) {
        self.customID = customID
        self.outcome = outcome
    }
}

/// One page of a provider's batch listing, newest first.
public struct ProviderBatchPage: Sendable {
    public var batches: [ProviderBatchStatus]
    /// Pass as `after` to get the next (older) page; nil when there is none.
    public var nextCursor: String?

    /// Creates a page.
    public init(batches: [ProviderBatchStatus], nextCursor: String?) {
        self.batches = batches
        self.nextCursor = nextCursor
    }
}

/// A provider's asynchronous batch API, as the durable pipeline uses it.
///
/// Creating a provider batch is two steps so the pipeline can record each remote id write-ahead:
/// ``uploadInput(_:lines:)`` (OpenAI uploads the JSONL file; Anthropic stages nothing) then
/// ``createBatch(_:inputFileID:lines:)``. A create whose answer was lost is found again with ``findBatch(_:createdAfter:)``.
public protocol BatchProvider: Sendable {
    /// Which provider this is.
    var kind: ProviderKind { get }
    /// The limits the packer must respect.
    var limits: ProviderLimits { get }

    /// The number of bytes `line` takes in this provider's encoded input (for packing within ``ProviderLimits/maxBytes``).
    func encodedSize(of line: ProviderRequestLine) -> Int

    /// Stages the input: OpenAI uploads a JSONL file (`purpose=batch`) and returns its file id; Anthropic returns nil.
    func uploadInput<Lines: AsyncSequence & Sendable>(_ spec: ProviderBatchSpec, lines: Lines) async throws -> String?
    where Lines.Element == ProviderRequestLine

    /// Creates the provider batch. OpenAI uses `inputFileID` (and ignores `lines`); Anthropic streams `lines` in the body.
    func createBatch<Lines: AsyncSequence & Sendable>(
        _ spec: ProviderBatchSpec, inputFileID: String?, lines: Lines
    ) async throws -> ProviderBatchStatus where Lines.Element == ProviderRequestLine

    /// Reads the current status of a provider batch.
    func retrieveBatch(id: String) async throws -> ProviderBatchStatus

    /// Asks the provider to cancel a batch; returns the status after the request (usually `cancelling`).
    func cancelBatch(id: String) async throws -> ProviderBatchStatus

    /// Lists batches, newest first, starting after `cursor`.
    func listBatches(after cursor: String?, limit: Int) async throws -> ProviderBatchPage

    /// Finds a batch created from `spec` whose create answer may have been lost: by tag in metadata (OpenAI), or by
    /// creation time and request count (Anthropic, which has no metadata). Returns nil when none exists.
    func findBatch(_ spec: ProviderBatchSpec, createdAfter: Date) async throws -> ProviderBatchStatus?

    /// Streams an ended batch's results (OpenAI output and error files; Anthropic `results_url`) in chunks of lines,
    /// without holding the whole file in memory. `body` is called once per chunk, in order.
    func streamResults(
        of batch: ProviderBatchStatus, _ body: ([ProviderResultLine]) async throws -> Void
    ) async throws
}
