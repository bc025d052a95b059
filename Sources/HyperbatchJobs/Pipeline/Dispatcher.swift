import Foundation
import Logging

/// Packs pending requests into provider batches and creates them at the provider, write-ahead.
///
/// Per batch: ``JobStore/claimBatch(_:at:)`` (row + idempotency tag, requests `packed`) before any remote call,
/// ``JobStore/markUploading(batch:at:)``, upload (OpenAI file, streamed from the store), ``JobStore/recordInputFile(batch:fileID:)``,
/// create, ``JobStore/recordSubmitted(batch:providerBatchID:at:)`` right after. A provider refusal that is not
/// retryable abandons the batch (its requests go back to `pending` or `failed`); any other failure leaves it
/// `uploading` for ``Recovery`` to look up by tag before sending anything again.
public struct Dispatcher<P: BatchProvider>: Sendable {
    public let store: any JobStore
    public let provider: P
    public let configuration: PipelineConfiguration
    public let logger: Logger
    let now: @Sendable () -> Date

    /// Creates a dispatcher; `now` stamps store records.
    public init(store: any JobStore, provider: P, configuration: PipelineConfiguration = .init(), logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.provider = provider
        self.configuration = configuration
        self.logger = logger
        self.now = now
    }

    /// One pass: packs and submits the pending requests of `job` (every job when nil) within the per-key budget.
    /// Returns the number of batches claimed.
    @discardableResult
    public func dispatch(job: JobID?) async throws -> Int {
        var claimed = 0
        var inFlight = try await store.inFlightByKey()
        for (jobID, key) in try await store.pendingKeys() where job == nil || jobID == job {
            guard key.provider == provider.kind else { continue }
            let budget = configuration.maxInFlightPerKey - inFlight[key, default: 0]
            guard budget > 0 else {
                logger.debug("in-flight budget reached", metadata: ["key": "\(key)"])
                continue
            }
            let candidates = try await store.pendingCandidates(job: jobID, key: key, limit: min(budget, configuration.candidatesPerPass))
            let packing = BatchPacker.pack(candidates, limits: provider.limits)
            for oversized in packing.oversized {
                try Task.checkCancellation()
                guard let batch = try await store.claimBatch(BatchClaim(jobID: jobID, key: key, requestIDs: [oversized.id]), at: now()) else { continue }
                let error = ProviderError(
                    status: 413, type: "invalid_request_error", code: "request_too_large",
                    message: "request of \(oversized.encodedSize) bytes exceeds the provider batch limit of \(provider.limits.maxBytes) bytes")
                try await store.abandonBatch(batch.id, error: error, at: now())
            }
            for plan in packing.plans {
                try Task.checkCancellation()
                guard let batch = try await store.claimBatch(BatchClaim(jobID: jobID, key: key, requestIDs: plan.requestIDs), at: now()) else { continue }
                claimed += 1
                inFlight[key, default: 0] += batch.requestCount
                logger.debug("claimed batch", metadata: ["batch": "\(batch.id)", "requests": "\(batch.requestCount)", "key": "\(key)"])
                try await configuration.onPhase?(.claimed, batch.id)
                try await submit(batch)
            }
        }
        return claimed
    }

    /// Sends a claimed batch whose create cannot have happened yet (`building`, or `uploading` after a lookup found
    /// nothing): upload when needed, create, record the id. Returns the provider batch id, or nil when the batch was
    /// abandoned or left for recovery.
    @discardableResult
    public func submit(_ batch: ProviderBatchRecord) async throws -> String? {
        let spec = batch.spec
        let lines = StoreRequestLines(store: store, batch: batch.id, pageSize: configuration.uploadPageSize)
        let providerBatchID: String
        do {
            try await store.markUploading(batch: batch.id, at: now())
            var fileID = batch.inputFileID
            if fileID == nil, provider.kind == .openai {
                fileID = try await provider.uploadInput(spec, lines: lines)
                if let fileID { try await store.recordInputFile(batch: batch.id, fileID: fileID) }
                try await configuration.onPhase?(.uploaded, batch.id)
            }
            let status = try await provider.createBatch(spec, inputFileID: fileID, lines: lines)
            try await configuration.onPhase?(.created, batch.id)
            try await store.recordSubmitted(batch: batch.id, providerBatchID: status.id, at: now())
            logger.info("submitted batch", metadata: ["batch": "\(batch.id)", "provider_batch": "\(status.id)", "requests": "\(batch.requestCount)"])
            providerBatchID = status.id
        } catch let error as ProviderError where !error.isRetryable {
            logger.warning("provider refused batch", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
            try await store.abandonBatch(batch.id, error: error, at: now())
            return nil
        } catch is CancellationError {
            throw CancellationError()
        } catch let error as PipelineStop {
            throw error
        } catch {
            if Task.isCancelled { throw CancellationError() }
            logger.warning("batch submit failed; recovery will look it up by tag", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
            return nil
        }
        // Outside the catch above: once recorded, nothing may abandon the batch.
        try await configuration.onPhase?(.submitted, batch.id)
        return providerBatchID
    }
}

/// Thrown from ``PipelineConfiguration/onPhase`` to stop the pipeline at a phase (simulating a crash in tests).
public struct PipelineStop: Error, Sendable, Hashable {
    /// The phase the pipeline stopped after.
    public var phase: PipelinePhase
    /// Creates a stop.
    public init(phase: PipelinePhase) { self.phase = phase }
}
