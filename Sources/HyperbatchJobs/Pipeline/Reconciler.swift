import Foundation
import Logging

/// Streams an ended provider batch's results into request states in chunks (``JobStore/applyResults(batch:_:at:)``,
/// idempotent by `custom_id`), then ``JobStore/finishReconcile(batch:missing:at:)`` for requests without a line.
public struct Reconciler<P: BatchProvider>: Sendable {
    public let store: any JobStore
    public let provider: P
    public let logger: Logger
    let onPhase: (@Sendable (PipelinePhase, Int64) async throws -> Void)?
    let now: @Sendable () -> Date
    /// Most result lines per ``JobStore/applyResults(batch:_:at:)`` transaction. Providers return results in their own
    /// order, so each line updates a different stored page; large transactions write each page once for many lines.
    public let applyChunkSize: Int
    /// Most response bytes held for one transaction (bounds memory when responses are large).
    public let applyChunkBytes: Int

    /// Creates a reconciler.
    public init(
        store: any JobStore, provider: P, logger: Logger,
        onPhase: (@Sendable (PipelinePhase, Int64) async throws -> Void)? = nil, now: @escaping @Sendable () -> Date = { Date() },
        applyChunkSize: Int = 50_000, applyChunkBytes: Int = 32 << 20
    ) {
        self.applyChunkSize = Swift.max(1, applyChunkSize)
        self.applyChunkBytes = Swift.max(1, applyChunkBytes)
        self.store = store
        self.provider = provider
        self.logger = logger
        self.onPhase = onPhase
        self.now = now
    }

    /// The outcome given to requests of an ended batch that have no result line.
    public static func missingOutcome(for status: ProviderBatchStatus) -> ProviderResultOutcome {
        guard case .ended(let outcome) = status.phase else { return .expired }
        switch outcome {
        case .expired: return .expired
        case .cancelled: return .canceled
        case .failed:
            let first = status.errors.first
            return .errored(ProviderError(
                status: 400, type: "invalid_request_error", code: first?.code ?? "batch_failed",
                message: first?.message ?? "the provider batch failed validation"))
        case .completed:
            return .errored(ProviderError(type: "api_error", code: "missing_result", message: "the provider returned no result line for this request"))
        }
    }

    /// Applies every result of an ended batch. `status` is the ended status when the caller has it (else retrieved).
    /// Returns the total of what was applied.
    @discardableResult
    public func reconcile(_ batch: ProviderBatchRecord, status known: ProviderBatchStatus? = nil) async throws -> ApplySummary {
        guard let id = batch.providerBatchID else { return ApplySummary() }
        let status: ProviderBatchStatus
        if let known { status = known } else { status = try await provider.retrieveBatch(id: id) }
        guard status.phase.isEnded else { return ApplySummary() }
        var total = ApplySummary()
        let store = self.store, now = self.now, onPhase = self.onPhase, applyChunkSize = self.applyChunkSize, applyChunkBytes = self.applyChunkBytes
        var pending: [ProviderResultLine] = []
        var pendingBytes = 0
        // One chunk ahead: while a chunk's transaction runs, the next chunk is downloaded and decoded. Applies stay
        // serial (the previous one is awaited before the next starts), so at most two chunks are held at once.
        var inFlight: Task<ApplySummary, any Error>?
        func settle() async throws {
            guard let task = inFlight else { return }
            inFlight = nil
            let s = try await task.value
            total.finished += s.finished
            total.retried += s.retried
            total.ignored += s.ignored
            try await onPhase?(.appliedChunk, batch.id)
        }
        func dispatch() async throws {
            try await settle()
            let lines = pending, batchID = batch.id
            pending = []
            pendingBytes = 0
            inFlight = Task { try await store.applyResults(batch: batchID, lines, at: now()) }
        }
        do {
            try await provider.streamResults(of: status) { chunk in
                pending.append(contentsOf: chunk)
                for line in chunk {
                    pendingBytes += line.customID.utf8.count
                    if case let .succeeded(body, _) = line.outcome { pendingBytes += body.count }
                }
                if pending.count >= applyChunkSize || pendingBytes >= applyChunkBytes { try await dispatch() }
            }
            if !pending.isEmpty { try await dispatch() }
            try await settle()
        } catch {
            // Never leave a transaction running behind a failure: wait for it (its outcome is kept, applies are idempotent).
            if let task = inFlight { _ = try? await task.value }
            throw error
        }
        let s = try await store.finishReconcile(batch: batch.id, missing: Self.missingOutcome(for: status), at: now())
        total.finished += s.finished
        total.retried += s.retried
        total.ignored += s.ignored
        logger.info("reconciled batch", metadata: [
            "batch": "\(batch.id)", "provider_batch": "\(id)", "finished": "\(total.finished)", "retried": "\(total.retried)",
        ])
        try await onPhase?(.reconciled, batch.id)
        return total
    }
}
