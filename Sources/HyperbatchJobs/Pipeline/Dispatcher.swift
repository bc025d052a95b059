import Foundation
import Logging

/// Packs pending requests into provider batches and creates them at the provider, write-ahead.
///
/// Per batch: ``JobStore/claimBatch(_:at:)`` (row + idempotency tag, requests `packed`) before any remote call,
/// ``JobStore/markUploading(batch:at:)``, upload (OpenAI file, streamed from the store), ``JobStore/recordInputFile(batch:fileID:)``,
/// create, ``JobStore/recordSubmitted(batch:providerBatchID:at:)`` right after. A provider refusal that is not
/// retryable abandons the batch (its requests go back to `pending` or `failed`); any other failure leaves it
/// `uploading` for ``Recovery`` to look up by tag before sending anything again.
///
/// Claims are made one after another; up to ``PipelineConfiguration/maxConcurrentBatches`` claimed batches are sent
/// at once, each in its own write-ahead order. Batches of a provider that cannot store our tag (Anthropic, found
/// again by creation time and request count) are sent one at a time, so a create whose answer was lost is
/// unambiguous for ``Recovery``. Each compatibility key stays within its ``InFlightBudget`` of
/// requests and estimated tokens in flight (``RequestTokenEstimate``; the tokens of live batches are read from the
/// store once per batch and remembered).
public struct Dispatcher<P: BatchProvider>: Sendable {
    public let store: any JobStore
    public let provider: P
    public let configuration: PipelineConfiguration
    public let logger: Logger
    let now: @Sendable () -> Date
    let ledger = InFlightTokenLedger()

    /// Creates a dispatcher; `now` stamps store records.
    public init(store: any JobStore, provider: P, configuration: PipelineConfiguration = .init(), logger: Logger, now: @escaping @Sendable () -> Date = { Date() }) {
        self.store = store
        self.provider = provider
        self.configuration = configuration
        self.logger = logger
        self.now = now
    }

    /// How many batches are sent at once: ``PipelineConfiguration/maxConcurrentBatches`` when the provider keeps our
    /// idempotency tag (OpenAI metadata), else 1.
    var sendWidth: Int { provider.kind == .openai ? max(1, configuration.maxConcurrentBatches) : 1 }

    /// Whether any budget limits tokens (only then are bodies read to estimate them).
    var limitsTokens: Bool {
        configuration.inFlightBudget.maxTokens != nil || configuration.inFlightBudgetByModel.values.contains { $0.maxTokens != nil }
    }

    /// One pass: packs and submits the pending requests of `job` (every job when nil) within the per-key budgets.
    /// Returns the number of batches claimed.
    @discardableResult
    public func dispatch(job: JobID?) async throws -> Int {
        var claimed = 0
        var inFlight = try await store.inFlightByKey()
        var inFlightTokens = limitsTokens ? try await tokensInFlight() : [:]
        let width = sendWidth
        try await withThrowingTaskGroup(of: Void.self) { group in
            var sending = 0
            for (jobID, key) in try await store.pendingKeys() where job == nil || jobID == job {
                guard key.provider == provider.kind else { continue }
                let budget = configuration.budget(for: key)
                let room = budget.maxRequests - inFlight[key, default: 0]
                guard room > 0 else {
                    logger.debug("in-flight request budget reached", metadata: ["key": "\(key)"])
                    continue
                }
                if let maxTokens = budget.maxTokens, inFlight[key, default: 0] > 0, inFlightTokens[key, default: 0] >= maxTokens {
                    logger.debug("in-flight token budget reached", metadata: ["key": "\(key)"])
                    continue
                }
                var candidates = try await store.pendingCandidates(job: jobID, key: key, limit: min(room, configuration.candidatesPerPass))
                var tokens: [Int64: Int] = [:]
                if let maxTokens = budget.maxTokens {
                    let estimates = try await candidateTokens(job: jobID, candidates, until: maxTokens - inFlightTokens[key, default: 0])
                    let admitted = budget.admit(
                        estimates, inFlightRequests: inFlight[key, default: 0], inFlightTokens: inFlightTokens[key, default: 0])
                    for (c, t) in zip(candidates, estimates) { tokens[c.id] = t }
                    if admitted < candidates.count {
                        logger.debug("in-flight token budget reached", metadata: ["key": "\(key)", "admitted": "\(admitted)"])
                    }
                    candidates = Array(candidates.prefix(admitted))
                }
                guard !candidates.isEmpty else { continue }
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
                    if limitsTokens {
                        let t = plan.requestIDs.reduce(0) { $0 + tokens[$1, default: 0] }
                        inFlightTokens[key, default: 0] += t
                        ledger.record(batch: batch.id, tokens: t)
                    }
                    logger.debug("claimed batch", metadata: ["batch": "\(batch.id)", "requests": "\(batch.requestCount)", "key": "\(key)"])
                    try await configuration.onPhase?(.claimed, batch.id)
                    if sending == width {
                        try await group.next()
                        sending -= 1
                    }
                    group.addTask { _ = try await submit(batch) }
                    sending += 1
                }
            }
            try await group.waitForAll()
        }
        return claimed
    }

    /// Estimated tokens in flight per key: the live batches of this provider, each estimated once from its lines.
    func tokensInFlight() async throws -> [CompatibilityKey: Int] {
        let live = try await store.liveBatches(job: nil).filter { $0.key.provider == provider.kind }
        ledger.retain(Set(live.map(\.id)))
        var result: [CompatibilityKey: Int] = [:]
        for batch in live {
            let tokens: Int
            if let known = ledger.tokens(batch: batch.id) {
                tokens = known
            } else {
                var sum = 0
                for try await line in StoreRequestLines(store: store, batch: batch.id, pageSize: configuration.uploadPageSize) {
                    sum += configuration.tokenEstimate.tokens(body: line.body)
                }
                ledger.record(batch: batch.id, tokens: sum)
                tokens = sum
            }
            result[batch.key, default: 0] += tokens
        }
        return result
    }

    /// Estimated tokens of `candidates` (in order), reading their bodies from the store; stops once the running sum
    /// exceeds `room`, so the result may be a prefix (the rest cannot be admitted anyway).
    func candidateTokens(job: JobID, _ candidates: [PackCandidate], until room: Int) async throws -> [Int] {
        guard let first = candidates.first else { return [] }
        var position: [Int64: Int] = [:]
        for (i, c) in candidates.enumerated() { position[c.id] = i }
        var estimates = [Int?](repeating: nil, count: candidates.count)
        let lastID = candidates.map(\.id).max() ?? first.id
        var after: Int64? = candidates.map(\.id).min().map { $0 - 1 }
        var found = 0
        var prefix = 0, prefixSum = 0
        while found < candidates.count {
            let page = try await store.requests(job: job, afterID: after, limit: min(configuration.uploadPageSize, max(64, candidates.count)))
            guard let last = page.last else { break }
            after = last.id
            for r in page {
                guard let i = position[r.id] else { continue }
                estimates[i] = configuration.tokenEstimate.tokens(body: r.body)
                found += 1
            }
            while prefix < estimates.count, let t = estimates[prefix] {
                prefixSum += t
                prefix += 1
            }
            if prefixSum > room || last.id >= lastID { break }
        }
        return estimates.prefix(prefix).map { $0 ?? 0 }
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
