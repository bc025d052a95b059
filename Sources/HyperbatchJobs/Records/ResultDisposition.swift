/// What one provider result does to its request: the single rule every ``JobStore`` applies.
public struct ResultDisposition: Sendable, Hashable {
    /// The request's next state (`pending` for a retry, else terminal).
    public var state: RequestState
    /// The response body to store (`succeeded` only).
    public var response: [UInt8]?
    /// The error to store as `lastError`.
    public var error: ProviderError?
    /// Token usage to store (`succeeded` only, when reported).
    public var usage: TokenUsage?

    /// Creates a disposition.
    public init(state: RequestState, response: [UInt8]? = nil, error: ProviderError? = nil, usage: TokenUsage? = nil) {
        self.state = state
        self.response = response
        self.error = error
        self.usage = usage
    }

    /// Decides: success is final; ``ProviderError/jobCanceled`` (a batch of a cancelled job that was never sent) is
    /// `canceled`; a permanent error is `failed`; expired, canceled and retryable errors go back to `pending` while
    /// `attempts < maxAttempts`, otherwise stay `expired`/`canceled`/`errored`.
    public static func decide(_ outcome: ProviderResultOutcome, attempts: Int, maxAttempts: Int) -> ResultDisposition {
        let more = attempts < maxAttempts
        switch outcome {
        case let .succeeded(body, usage):
            return ResultDisposition(state: .succeeded, response: body, usage: usage)
        case let .errored(error) where error.isJobCancellation:
            return ResultDisposition(state: .canceled, error: error)
        case let .errored(error):
            if !error.isRetryable { return ResultDisposition(state: .failed, error: error) }
            return ResultDisposition(state: more ? .pending : .errored, error: error)
        case .expired:
            return ResultDisposition(state: more ? .pending : .expired, error: nil)
        case .canceled:
            return ResultDisposition(state: more ? .pending : .canceled, error: nil)
        }
    }
}

extension ProviderError {
    /// Our own error for the requests of a batch that was claimed but never sent when its job was cancelled: passed
    /// to ``JobStore/abandonBatch(_:error:at:)``, it ends them `canceled` (not `failed`).
    public static let jobCanceled = ProviderError(
        type: "canceled", code: "job_canceled", message: "the job was cancelled before the batch was sent")

    /// Whether this is ``jobCanceled``.
    public var isJobCancellation: Bool { type == "canceled" && code == "job_canceled" && status == nil }
}
