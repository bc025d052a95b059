/// Where one request is in the durable pipeline.
///
/// `pending → packed → submitted → succeeded | errored | expired | canceled | failed`; `expired`, `canceled` and
/// retryable errors go back to `pending` while attempts remain.
public enum RequestState: String, Sendable, Codable, Hashable, CaseIterable {
    /// Waiting to be packed into a provider batch.
    case pending
    /// Claimed into a provider batch that has not been created at the provider yet.
    case packed
    /// In a provider batch the provider accepted.
    case submitted
    /// Terminal: the provider returned a response.
    case succeeded
    /// Terminal: a retryable error, after the last attempt.
    case errored
    /// Terminal: the batch window passed before the request ran, after the last attempt.
    case expired
    /// Terminal: cancelled (the job was cancelled, or the batch was cancelled after the last attempt).
    case canceled
    /// Terminal: a permanent error (e.g. `invalid_request_error`); sending it again would fail the same way.
    case failed

    /// Whether the request has its final result.
    public var isTerminal: Bool {
        switch self {
        case .pending, .packed, .submitted: false
        case .succeeded, .errored, .expired, .canceled, .failed: true
        }
    }
}
