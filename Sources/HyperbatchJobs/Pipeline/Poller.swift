import Foundation
import Logging

/// Polls live provider batches on a ``PollSchedule`` (fast at first, slower for long batches) and records their
/// status; 429/5xx/transport failures only push that batch's next poll back.
public struct Poller<P: BatchProvider>: Sendable {
    public let store: any JobStore
    public let provider: P
    public let schedule: PollSchedule
    public let logger: Logger
    let now: @Sendable () -> Date

    /// Creates a poller.
    public init(store: any JobStore, provider: P, schedule: PollSchedule = .init(), logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.provider = provider
        self.schedule = schedule
        self.logger = logger
        self.now = now
    }

    /// What one poll found.
    public enum Result: Sendable {
        /// The batch is still running.
        case running(ProviderBatchStatus)
        /// The batch ended; its status (with result file ids / URL) is recorded.
        case ended(ProviderBatchStatus)
        /// The poll failed (rate limit, server error, transport); try again later.
        case failed(any Error)
        /// The provider no longer knows the batch (HTTP 404): its requests are treated as expired (retried).
        case gone(ProviderError)
    }

    /// Polls one submitted batch and records its status.
    public func poll(_ batch: ProviderBatchRecord) async throws -> Result {
        guard let id = batch.providerBatchID else { return .failed(ProviderError(type: "internal", message: "batch has no provider id")) }
        let status: ProviderBatchStatus
        do {
            status = try await provider.retrieveBatch(id: id)
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as ProviderError where error.status == 404 {
            logger.warning("provider no longer knows the batch", metadata: ["batch": "\(batch.id)", "provider_batch": "\(id)"])
            return .gone(error)
        } catch {
            logger.debug("poll failed", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
            return .failed(error)
        }
        try await store.recordStatus(batch: batch.id, status: status, at: now())
        return status.phase.isEnded ? .ended(status) : .running(status)
    }
}
