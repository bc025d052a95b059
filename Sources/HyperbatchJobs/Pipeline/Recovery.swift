import Foundation
import Logging

/// Resumes batches whose create is unfinished: `building` ones are sent (nothing went out yet); `uploading` ones may
/// have been created, so they are first looked up at the provider by their idempotency tag
/// (``BatchProvider/findBatch(_:createdAfter:)``) and only sent again when the lookup finds nothing.
public struct Recovery<P: BatchProvider>: Sendable {
    public let dispatcher: Dispatcher<P>

    /// Creates recovery over the dispatcher that sends batches.
    public init(dispatcher: Dispatcher<P>) { self.dispatcher = dispatcher }

    /// Resumes every `building`/`uploading` batch of `job` (all jobs when nil). Returns the number resumed.
    @discardableResult
    public func resume(job: JobID?) async throws -> Int {
        var resumed = 0
        for batch in try await dispatcher.store.liveBatches(job: job)
        where batch.key.provider == dispatcher.provider.kind && (batch.state == .building || batch.state == .uploading) {
            try Task.checkCancellation()
            try await resume(batch)
            resumed += 1
        }
        return resumed
    }

    /// Resumes one batch: look up by tag when the create may have happened, else send.
    public func resume(_ batch: ProviderBatchRecord) async throws {
        let store = dispatcher.store
        let logger = dispatcher.logger
        if batch.state == .uploading {
            let since = batch.createdAt.addingTimeInterval(-dispatcher.configuration.lookupSkew)
            let found: ProviderBatchStatus?
            do {
                found = try await dispatcher.provider.findBatch(batch.spec, createdAfter: since)
            } catch let error as PipelineStop {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                logger.warning("lookup by tag failed; will retry", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
                return
            }
            if let found {
                logger.info("found batch created before a restart", metadata: ["batch": "\(batch.id)", "provider_batch": "\(found.id)"])
                try await store.recordSubmitted(batch: batch.id, providerBatchID: found.id, at: dispatcher.now())
                try await dispatcher.configuration.onPhase?(.submitted, batch.id)
                return
            }
        }
        try await dispatcher.submit(batch)
    }
}
