import Foundation

/// The durable state of jobs, requests and provider batches. Every method is one transaction.
///
/// The pipeline:
/// 1. ``createJob(_:at:)``, ``insertRequests(_:into:at:)`` (idempotent on `(job, custom_id)`).
/// 2. Dispatcher: ``pendingKeys()``, ``pendingCandidates(job:key:limit:)``, pack (``BatchPacker``), then
///    ``claimBatch(_:at:)`` (batch row + tag + requests `packed`, before any remote call), ``requestLines(inBatch:afterID:limit:)``,
///    ``markUploading(batch:at:)``, ``recordInputFile(batch:fileID:)``, ``recordSubmitted(batch:providerBatchID:at:)``
///    or ``abandonBatch(_:error:at:)``.
/// 3. Poller: ``liveBatches(job:)``, ``recordStatus(batch:status:at:)``.
/// 4. Reconciler: ``applyResults(batch:_:at:)`` per chunk, then ``finishReconcile(batch:missing:at:)``.
/// 5. Applications: ``outcomes(after:job:limit:)``, ``checkpoint(consumer:)``, ``saveCheckpoint(consumer:sequence:)``.
public protocol JobStore: Sendable {
    // MARK: Jobs

    /// Creates the job, or returns the existing one with the same id unchanged (so a rerun resumes it).
    func createJob(_ job: NewJob, at now: Date) async throws -> JobRecord
    /// The job, or nil.
    func job(_ id: JobID) async throws -> JobRecord?
    /// Every job, oldest first.
    func listJobs() async throws -> [JobRecord]
    /// Cancels the job: its `pending` requests become `canceled` (with an outcome event each), the job `canceled`.
    /// Returns the job's live batches so the caller can cancel them at the provider; their results are still applied.
    func cancelJob(_ id: JobID, at now: Date) async throws -> [ProviderBatchRecord]

    // MARK: Requests

    /// Inserts requests into an existing job, skipping any whose `(job, custom_id)` exists. One transaction.
    func insertRequests(_ requests: [NewRequest], into job: JobID, at now: Date) async throws -> InsertSummary
    /// Requests of the job per state.
    func requestCounts(job: JobID) async throws -> RequestStateCounts
    /// One request, or nil.
    func request(job: JobID, customID: String) async throws -> RequestRecord?
    /// Requests of the job in id order, after `afterID` (exclusive), at most `limit`: for paging results out.
    func requests(job: JobID, afterID: Int64?, limit: Int) async throws -> [RequestRecord]

    /// Token usage summed over the job's succeeded requests that reported it (for cost estimates).
    func tokenUsage(job: JobID) async throws -> TokenUsage

    // MARK: Dispatch

    /// Requests in flight (`packed` or `submitted`) per compatibility key, across jobs: for per-model queue budgets.
    func inFlightByKey() async throws -> [CompatibilityKey: Int]

    /// `(job, key)` pairs that have `pending` requests, jobs oldest first; cancelled jobs excluded.
    func pendingKeys() async throws -> [(job: JobID, key: CompatibilityKey)]
    /// The oldest `pending` requests of `(job, key)`, at most `limit`, without bodies.
    func pendingCandidates(job: JobID, key: CompatibilityKey, limit: Int) async throws -> [PackCandidate]
    /// Write-ahead claim: inserts a `building` batch with the tag and moves the listed requests that are still
    /// `pending` (and of this job and key) to `packed` in it, counting an attempt. Returns nil when none was pending.
    func claimBatch(_ claim: BatchClaim, at now: Date) async throws -> ProviderBatchRecord?
    /// The lines of a batch in id order, after `afterID`, at most `limit` (to stream the upload without holding it all).
    func requestLines(inBatch batch: Int64, afterID: Int64?, limit: Int) async throws -> [(id: Int64, line: ProviderRequestLine)]
    /// `building → uploading`, recorded just before the first remote call for the batch (no-op when already uploading).
    func markUploading(batch: Int64, at now: Date) async throws
    /// Records the uploaded input file id (OpenAI), right after the upload.
    func recordInputFile(batch: Int64, fileID: String) async throws
    /// Records the provider batch id right after the create (or a successful lookup by tag): batch `submitted`,
    /// its requests `packed → submitted`. Recording the same id again is a no-op.
    func recordSubmitted(batch: Int64, providerBatchID: String, at now: Date) async throws
    /// The provider definitively refused the batch before creating it: batch `abandoned`, its `packed` requests back
    /// to `pending` (or `failed` with `error` when their attempts are used up or `error` is permanent).
    func abandonBatch(_ batch: Int64, error: ProviderError, at now: Date) async throws

    // MARK: Poll

    /// Batches that still need work (`building`, `uploading`, `submitted`, `ended`), oldest first; all jobs when nil.
    func liveBatches(job: JobID?) async throws -> [ProviderBatchRecord]
    /// Batches of a job, oldest first.
    func batches(job: JobID) async throws -> [ProviderBatchRecord]
    /// One batch, or nil.
    func batch(_ id: Int64) async throws -> ProviderBatchRecord?
    /// Records a polled status: counts, file ids, poll time; `submitted → ended` with the outcome when it ended.
    func recordStatus(batch: Int64, status: ProviderBatchStatus, at now: Date) async throws

    // MARK: Reconcile

    /// Applies a chunk of result lines of `batch` by `custom_id` (``ResultDisposition``; no retries in a cancelled job); lines for requests not
    /// in this batch or already applied are ignored, so applying a chunk twice changes nothing.
    func applyResults(batch: Int64, _ results: [ProviderResultLine], at now: Date) async throws -> ApplySummary
    /// Ends reconciliation: requests of the batch with no result yet get `missing` (e.g. `.expired` to retry, or the
    /// batch-level error of a failed batch); batch `reconciled`; the job `finished` when every request is terminal.
    func finishReconcile(batch: Int64, missing: ProviderResultOutcome, at now: Date) async throws -> ApplySummary

    // MARK: Outcomes

    /// Outcome events with `sequence > after`, oldest first, at most `limit`; one job when given.
    func outcomes(after sequence: Int64, job: JobID?, limit: Int) async throws -> [OutcomeEvent]
    /// The last sequence `consumer` acknowledged (0 when none).
    func checkpoint(consumer: String) async throws -> Int64
    /// Acknowledges every event up to `sequence` for `consumer`; never moves a checkpoint backwards.
    func saveCheckpoint(consumer: String, sequence: Int64) async throws
}
