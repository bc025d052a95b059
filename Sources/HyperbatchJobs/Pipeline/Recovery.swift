import Foundation
import Logging

/// Resumes batches whose create is unfinished: `building` ones are sent (nothing went out yet); `uploading` ones may
/// have been created, so they are first looked up at the provider by their idempotency tag
/// (``BatchProvider/findBatch(_:createdAfter:)``) and only sent again when the lookup finds nothing. Batches of a
/// cancelled job are never sent: one found by its tag is cancelled at the provider, the others are abandoned with
/// ``ProviderError/jobCanceled`` so their requests end `canceled`.
public struct Recovery<P: BatchProvider>: Sendable {
    public let dispatcher: Dispatcher<P>

    /// Creates recovery over the dispatcher that sends batches.
    public init(dispatcher: Dispatcher<P>) { self.dispatcher = dispatcher }

    /// Resumes every `building`/`uploading` batch of `job` (all jobs when nil). Returns the number resumed.
    @discardableResult
    public func resume(job: JobID?) async throws -> Int {
        var resumed = 0
        var canceledJobs: [JobID: Bool] = [:]
        for batch in try await dispatcher.store.liveBatches(job: job)
        where batch.key.provider == dispatcher.provider.kind && (batch.state == .building || batch.state == .uploading) {
            try Task.checkCancellation()
            if canceledJobs[batch.jobID] == nil {
                canceledJobs[batch.jobID] = try await dispatcher.store.job(batch.jobID)?.state == .canceled
            }
            if canceledJobs[batch.jobID] == true {
                try await settleCanceled(batch)
            } else {
                try await resume(batch)
            }
            resumed += 1
        }
        return resumed
    }

    /// Settles an unsent (`building`/`uploading`, no provider id) batch of a cancelled job without sending it: an
    /// `uploading` one is first looked up by tag and, when found, recorded and cancelled at the provider (its results
    /// are applied later); otherwise the batch is abandoned with ``ProviderError/jobCanceled``. A failed lookup
    /// leaves the batch for the next pass.
    public func settleCanceled(_ batch: ProviderBatchRecord) async throws {
        guard batch.providerBatchID == nil, batch.state == .building || batch.state == .uploading else { return }
        let store = dispatcher.store
        if batch.state == .uploading {
            guard let lookup = try await lookUp(batch) else { return }
            if let found = lookup {
                try await store.recordSubmitted(batch: batch.id, providerBatchID: found.id, at: dispatcher.now())
                do {
                    _ = try await dispatcher.provider.cancelBatch(id: found.id)
                } catch {
                    dispatcher.logger.warning("provider cancel failed", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
                }
                return
            }
        }
        try await store.abandonBatch(batch.id, error: .jobCanceled, at: dispatcher.now())
    }

    /// Looks the batch up by tag: `.some(status or nil)` when the lookup answered, nil when it failed (retry later).
    ///
    /// A provider without tags (Anthropic: found by creation time and request count) may answer with a batch this
    /// store already recorded for another of its batches; then the oldest matching batch not recorded anywhere in
    /// the store is taken instead (the dispatcher sends such batches one at a time, so that one is ours).
    private func lookUp(_ batch: ProviderBatchRecord) async throws -> ProviderBatchStatus?? {
        let since = batch.createdAt.addingTimeInterval(-dispatcher.configuration.lookupSkew)
        do {
            guard let found = try await dispatcher.provider.findBatch(batch.spec, createdAfter: since) else { return .some(nil) }
            let recorded = try await recordedProviderIDs()
            if !recorded.contains(found.id) { return .some(found) }
            return .some(try await oldestUnrecorded(batch.spec, since: since, excluding: recorded))
        } catch let error as PipelineStop {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            dispatcher.logger.warning("lookup by tag failed; will retry", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
            return nil
        }
    }

    /// Every provider batch id recorded in the store, across jobs.
    private func recordedProviderIDs() async throws -> Set<String> {
        var ids = Set<String>()
        for job in try await dispatcher.store.listJobs() {
            for b in try await dispatcher.store.batches(job: job.id) { if let id = b.providerBatchID { ids.insert(id) } }
        }
        return ids
    }

    /// The oldest provider batch created since `since` with the spec's request count (and tag, when the provider
    /// keeps one) that is not in `excluding`.
    private func oldestUnrecorded(_ spec: ProviderBatchSpec, since: Date, excluding: Set<String>) async throws -> ProviderBatchStatus? {
        var oldest: ProviderBatchStatus?
        var cursor: String?
        pages: repeat {
            let page = try await dispatcher.provider.listBatches(after: cursor, limit: 100)
            for b in page.batches {
                if b.createdAt < since { break pages }
                guard b.counts.total == spec.requestCount, !excluding.contains(b.id) else { continue }
                if let tag = b.idempotencyTag, tag != spec.idempotencyTag { continue }
                oldest = b
            }
            cursor = page.nextCursor
        } while cursor != nil
        return oldest
    }

    /// Resumes one batch: look up by tag when the create may have happened, else send.
    public func resume(_ batch: ProviderBatchRecord) async throws {
        if batch.state == .uploading {
            guard let lookup = try await lookUp(batch) else { return }
            if let found = lookup {
                dispatcher.logger.info("found batch created before a restart", metadata: ["batch": "\(batch.id)", "provider_batch": "\(found.id)"])
                try await dispatcher.store.recordSubmitted(batch: batch.id, providerBatchID: found.id, at: dispatcher.now())
                try await dispatcher.configuration.onPhase?(.submitted, batch.id)
                return
            }
        }
        try await dispatcher.submit(batch)
    }
}
