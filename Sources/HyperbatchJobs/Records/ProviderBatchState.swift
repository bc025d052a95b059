/// Where one provider batch is in its lifecycle, as this pipeline records it.
///
/// `building → uploading → submitted → ended → reconciled`; `building`/`uploading → abandoned` when the provider
/// definitively refused the batch before creating it (its requests go back to `pending`).
public enum ProviderBatchState: String, Sendable, Codable, Hashable, CaseIterable {
    /// Claimed and tagged; nothing sent yet. Recovery may send it.
    case building
    /// The upload and/or create may have happened: recovery looks it up by tag before sending anything again.
    case uploading
    /// The provider returned its batch id; polling.
    case submitted
    /// The provider reported a terminal state; results not yet applied.
    case ended
    /// Results applied to every request of the batch. Terminal.
    case reconciled
    /// Never created at the provider; requests released to `pending`. Terminal.
    case abandoned

    /// Whether the batch still needs work (upload, create, poll or reconcile).
    public var isLive: Bool {
        switch self {
        case .building, .uploading, .submitted, .ended: true
        case .reconciled, .abandoned: false
        }
    }
}
