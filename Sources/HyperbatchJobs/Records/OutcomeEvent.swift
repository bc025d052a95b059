import Foundation

/// A request reached its final state: what an application consumes to update its own records.
///
/// Delivered at least once; `sequence` increases strictly, so an application that stores the last applied sequence
/// (or acknowledges it with ``JobStore/saveCheckpoint(consumer:sequence:)``) never applies one twice.
public struct OutcomeEvent: Sendable, Hashable {
    /// Position in the store's outcome log (strictly increasing).
    public var sequence: Int64
    public var jobID: JobID
    public var customID: String
    public var appReference: String?
    /// The terminal state.
    public var state: RequestState
    /// The response body when `succeeded`.
    public var response: [UInt8]?
    /// The error for `failed`/`errored` (and `expired`/`canceled` when given).
    public var error: ProviderError?
    /// The provider's batch id the result came from, when any.
    public var providerBatchID: String?
    public var createdAt: Date

    /// Creates an event (stores build these from rows).
    public init(
        sequence: Int64, jobID: JobID, customID: String, appReference: String?, state: RequestState, response: [UInt8]?,
        error: ProviderError?, providerBatchID: String?, createdAt: Date
    ) {
        self.sequence = sequence
        self.jobID = jobID
        self.customID = customID
        self.appReference = appReference
        self.state = state
        self.response = response
        self.error = error
        self.providerBatchID = providerBatchID
        self.createdAt = createdAt
    }
}
