import Foundation
import HyperbatchJobs
import Logging
import NIOCore
import PostgresNIO

/// The shared ``JobStore`` for several workers: PostgreSQL through postgres-nio.
///
/// The caller runs `client` (a `Service`) and calls ``migrate()`` once before use. Every method is one transaction;
/// all SQL is parameterized. Bulk transitions (``insertRequests(_:into:at:)``, ``applyResults(batch:_:at:)``) send
/// one set-based statement per chunk with `UNNEST` arrays; claims pick rows with `FOR UPDATE SKIP LOCKED`.
///
/// Leases: the store acts for one worker (``Configuration/workerID``). A batch it claims, or takes in
/// ``liveBatches(job:)``, is leased to that worker until `lease_expires_at` (database clock). Other workers skip
/// batches leased by a live worker and take over expired leases; the dispatch transitions (`markUploading`,
/// `recordInputFile`, `recordSubmitted`) refuse a batch leased by another live worker, so a provider batch is sent
/// by one worker at a time. A ``WorkerLease`` service renews the leases; when it cannot, it closes ``gate`` and every
/// claim throws ``PostgresJobStoreError/leaseLost``.
public struct PostgresJobStore: JobStore {
    /// Settings of one store instance (one worker).
    public struct Configuration: Sendable {
        /// This worker's id: recorded as the lease owner of the batches it works on.
        public var workerID: String
        /// How long a lease lasts without renewal.
        public var leaseDuration: Duration
        /// Requests per `INSERT … UNNEST` statement in ``insertRequests(_:into:at:)``.
        public var insertChunkSize: Int

        /// Creates a configuration; the default worker id is `host-pid-random`.
        public init(workerID: String? = nil, leaseDuration: Duration = .seconds(30), insertChunkSize: Int = 5_000) {
            self.workerID = workerID ?? Self.defaultWorkerID()
            self.leaseDuration = leaseDuration
            self.insertChunkSize = max(1, insertChunkSize)
        }

        /// `host-pid-xxxxxx`.
        public static func defaultWorkerID() -> String {
            let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
            return "\(host)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(6).lowercased())"
        }
    }

    private let client: PostgresClient
    /// The store's settings.
    public let configuration: Configuration
    /// Open while this worker's leases are known to be held; ``WorkerLease`` closes it when renewal keeps failing.
    public let gate: LeaseGate
    private let logger: Logger

    /// A store over `client` (which the caller runs) acting as `configuration.workerID`.
    public init(client: PostgresClient, configuration: Configuration = .init(), gate: LeaseGate = LeaseGate(), logger: Logger) {
        self.client = client
        self.configuration = configuration
        self.gate = gate
        self.logger = logger
    }

    /// Creates or upgrades the tables (idempotent; safe when several workers start together).
    @discardableResult
    public func migrate() async throws -> [Int] {
        try await PostgresJobStoreSchema.migrate(client, logger: logger)
    }

    private var worker: String { configuration.workerID }
    private var leaseSeconds: Double { Double(configuration.leaseDuration.components.seconds) + Double(configuration.leaseDuration.components.attoseconds) / 1e18 }

    private func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await PostgresTransaction.run(client, logger: logger, body)
    }

    // MARK: Jobs

    public func createJob(_ job: NewJob, at now: Date) async throws -> JobRecord {
        try await transaction { c in
            try await c.guardedQuery("""
                INSERT INTO hb_job (id, provider, tenant, max_attempts, label, state, created_at)
                VALUES (\(job.id.rawValue), \(job.provider.rawValue), \(job.tenant), \(job.maxAttempts), \(job.label), 'active', \(now))
                ON CONFLICT (id) DO NOTHING
                """, logger: logger)
            return try await Self.fetchJob(c, job.id, logger: logger)!
        }
    }

    public func job(_ id: JobID) async throws -> JobRecord? {
        try await client.withConnection { c in try await Self.fetchJob(c, id, logger: logger) }
    }

    public func listJobs() async throws -> [JobRecord] {
        try await client.withConnection { c in
            try await Self.rows(c.guardedQuery("SELECT * FROM hb_job ORDER BY created_at, id", logger: logger)).map(Self.jobRecord)
        }
    }

    public func cancelJob(_ id: JobID, at now: Date) async throws -> [ProviderBatchRecord] {
        try await transaction { c in
            guard try await Self.lockJob(c, id, logger: logger) != nil else { throw JobStoreError(.unknownJob, id.rawValue) }
            try await Self.lockOutcomes(c, logger: logger)
            try await c.guardedQuery("""
                WITH canceled AS (
                    UPDATE hb_request SET state = 'canceled', updated_at = \(now)
                    WHERE job_id = \(id.rawValue) AND state = 'pending' RETURNING id)
                INSERT INTO hb_outcome (request_id, job_id, created_at)
                SELECT id, \(id.rawValue), \(now) FROM canceled ORDER BY id
                """, logger: logger)
            try await c.guardedQuery(
                "UPDATE hb_job SET state = 'canceled', finished_at = COALESCE(finished_at, \(now)) WHERE id = \(id.rawValue)",
                logger: logger)
            return try await Self.rows(c.guardedQuery("""
                SELECT * FROM hb_batch WHERE job_id = \(id.rawValue) AND state IN ('building','uploading','submitted','ended') ORDER BY id
                """, logger: logger)).map(Self.batchRecord)
        }
    }

    // MARK: Requests

    public func insertRequests(_ requests: [NewRequest], into job: JobID, at now: Date) async throws -> InsertSummary {
        guard !requests.isEmpty else { return InsertSummary(inserted: 0, duplicates: 0) }
        return try await transaction { c in
            guard let record = try await Self.lockJob(c, job, logger: logger) else { throw JobStoreError(.unknownJob, job.rawValue) }
            if record.state == .canceled { throw JobStoreError(.jobCanceled, job.rawValue) }
            var inserted = 0
            var start = 0
            while start < requests.count {
                let chunk = requests[start..<min(requests.count, start + configuration.insertChunkSize)]
                start += chunk.count
                let ids = chunk.map(\.customID)
                let providers = chunk.map(\.key.provider.rawValue)
                let endpoints = chunk.map(\.key.endpoint)
                let models = chunk.map(\.key.model)
                let tenants = chunk.map(\.key.tenant)
                let bodies = chunk.map { ByteBuffer(bytes: $0.body) }
                let sizes = chunk.map(\.encodedSize)
                let hasRef = chunk.map { $0.appReference != nil }
                let refs = chunk.map { $0.appReference ?? "" }
                let rows = try await c.guardedQuery("""
                    WITH ins AS (
                        INSERT INTO hb_request (job_id, custom_id, provider, endpoint, model, tenant, body, encoded_size,
                            app_reference, state, attempts, updated_at)
                        SELECT \(job.rawValue), u.cid, u.provider, u.endpoint, u.model, u.tenant, u.body, u.size,
                            CASE WHEN u.has_ref THEN u.ref END, 'pending', 0, \(now)
                        FROM UNNEST(\(ids)::text[], \(providers)::text[], \(endpoints)::text[], \(models)::text[],
                            \(tenants)::text[], \(bodies)::bytea[], \(sizes)::int8[], \(hasRef)::bool[], \(refs)::text[])
                            WITH ORDINALITY AS u(cid, provider, endpoint, model, tenant, body, size, has_ref, ref, ord)
                        ORDER BY u.ord
                        ON CONFLICT (job_id, custom_id) DO NOTHING
                        RETURNING 1)
                    SELECT count(*) FROM ins
                    """, logger: logger)
                for try await n in rows.decode(Int.self) { inserted += n }
            }
            if inserted > 0, record.state == .finished {
                try await c.guardedQuery("UPDATE hb_job SET state = 'active', finished_at = NULL WHERE id = \(job.rawValue)", logger: logger)
            }
            return InsertSummary(inserted: inserted, duplicates: requests.count - inserted)
        }
    }

    public func requestCounts(job: JobID) async throws -> RequestStateCounts {
        try await client.withConnection { c in
            var counts = RequestStateCounts()
            let rows = try await c.guardedQuery("SELECT state, count(*)::int8 FROM hb_request WHERE job_id = \(job.rawValue) GROUP BY state", logger: logger)
            for try await (state, n) in rows.decode((String, Int).self) {
                if let s = RequestState(rawValue: state) { counts.byState[s] = n }
            }
            return counts
        }
    }

    public func request(job: JobID, customID: String) async throws -> RequestRecord? {
        try await client.withConnection { c in
            try await Self.rows(c.guardedQuery("""
                SELECT r.*, s.body AS response, s.input_tokens, s.output_tokens
                FROM hb_request r LEFT JOIN hb_response s ON s.request_id = r.id
                WHERE r.job_id = \(job.rawValue) AND r.custom_id = \(customID)
                """, logger: logger)).first.map(Self.requestRecord)
        }
    }

    public func requests(job: JobID, afterID: Int64?, limit: Int) async throws -> [RequestRecord] {
        try await client.withConnection { c in
            try await Self.rows(c.guardedQuery("""
                SELECT r.*, s.body AS response, s.input_tokens, s.output_tokens
                FROM hb_request r LEFT JOIN hb_response s ON s.request_id = r.id
                WHERE r.job_id = \(job.rawValue) AND r.id > \(afterID ?? 0) ORDER BY r.id LIMIT \(limit)
                """, logger: logger)).map(Self.requestRecord)
        }
    }

    public func tokenUsage(job: JobID) async throws -> TokenUsage {
        try await client.withConnection { c in
            let rows = try await c.guardedQuery("""
                SELECT COALESCE(SUM(s.input_tokens), 0)::int8, COALESCE(SUM(s.output_tokens), 0)::int8
                FROM hb_response s JOIN hb_request r ON r.id = s.request_id WHERE r.job_id = \(job.rawValue)
                """, logger: logger)
            for try await (i, o) in rows.decode((Int, Int).self) { return TokenUsage(inputTokens: i, outputTokens: o) }
            return TokenUsage(inputTokens: 0, outputTokens: 0)
        }
    }

    // MARK: Dispatch

    public func inFlightByKey() async throws -> [CompatibilityKey: Int] {
        try await client.withConnection { c in
            var result: [CompatibilityKey: Int] = [:]
            let rows = try await c.guardedQuery("""
                SELECT provider, endpoint, model, tenant, count(*)::int8 FROM hb_request
                WHERE state IN ('packed','submitted') GROUP BY provider, endpoint, model, tenant
                """, logger: logger)
            for try await (p, e, m, t, n) in rows.decode((String, String, String, String, Int).self) {
                result[Self.key(p, e, m, t)] = n
            }
            return result
        }
    }

    public func pendingKeys() async throws -> [(job: JobID, key: CompatibilityKey)] {
        try await client.withConnection { c in
            let rows = try await c.guardedQuery("""
                SELECT r.job_id, r.provider, r.endpoint, r.model, r.tenant
                FROM hb_request r JOIN hb_job j ON j.id = r.job_id
                WHERE r.state = 'pending' AND j.state <> 'canceled'
                GROUP BY r.job_id, r.provider, r.endpoint, r.model, r.tenant
                ORDER BY MIN(j.created_at), MIN(r.id)
                """, logger: logger)
            var result: [(job: JobID, key: CompatibilityKey)] = []
            for try await (j, p, e, m, t) in rows.decode((String, String, String, String, String).self) {
                result.append((JobID(rawValue: j), Self.key(p, e, m, t)))
            }
            return result
        }
    }

    public func pendingCandidates(job: JobID, key: CompatibilityKey, limit: Int) async throws -> [PackCandidate] {
        try await client.withConnection { c in
            let rows = try await c.guardedQuery("""
                SELECT id, encoded_size FROM hb_request
                WHERE job_id = \(job.rawValue) AND state = 'pending' AND provider = \(key.provider.rawValue)
                  AND endpoint = \(key.endpoint) AND model = \(key.model) AND tenant = \(key.tenant)
                ORDER BY id LIMIT \(limit)
                """, logger: logger)
            var result: [PackCandidate] = []
            for try await (id, size) in rows.decode((Int64, Int).self) { result.append(PackCandidate(id: id, key: key, encodedSize: size)) }
            return result
        }
    }

    public func claimBatch(_ claim: BatchClaim, at now: Date) async throws -> ProviderBatchRecord? {
        try await client.withConnection { c in
            guard !claim.requestIDs.isEmpty else { return nil }
            try gate.check(worker)
            let k = claim.key
            // One statement: lock the still-pending requests (skipping rows another claim holds), insert the batch leased
            // to this worker only when some were found, and pack them into it.
            let rows = try await Self.rows(c.guardedQuery("""
                WITH picked AS (
                    SELECT id, encoded_size FROM hb_request
                    WHERE id = ANY(\(claim.requestIDs)::int8[]) AND state = 'pending' AND job_id = \(claim.jobID.rawValue)
                      AND provider = \(k.provider.rawValue) AND endpoint = \(k.endpoint) AND model = \(k.model) AND tenant = \(k.tenant)
                    ORDER BY id FOR UPDATE SKIP LOCKED),
                b AS (
                    INSERT INTO hb_batch (job_id, provider, endpoint, model, tenant, state, idempotency_tag, request_count,
                        byte_count, created_at, claimed_by, lease_owner, lease_expires_at)
                    SELECT \(claim.jobID.rawValue), \(k.provider.rawValue), \(k.endpoint), \(k.model), \(k.tenant), 'building',
                        \(claim.idempotencyTag), count(*), COALESCE(sum(encoded_size), 0), \(now), \(worker), \(worker),
                        clock_timestamp() + make_interval(secs => \(leaseSeconds))
                    FROM picked HAVING count(*) > 0
                    RETURNING *),
                packed AS (
                    UPDATE hb_request r SET state = 'packed', batch_id = b.id, attempts = r.attempts + 1, updated_at = \(now)
                    FROM b, picked WHERE r.id = picked.id RETURNING r.id)
                SELECT b.* FROM b
                """, logger: logger))
            return try rows.first.map(Self.batchRecord)
        }
    }

    public func requestLines(inBatch batch: Int64, afterID: Int64?, limit: Int) async throws -> [(id: Int64, line: ProviderRequestLine)] {
        try await client.withConnection { c in
            let rows = try await c.guardedQuery("""
                SELECT id, custom_id, endpoint, body FROM hb_request
                WHERE batch_id = \(batch) AND id > \(afterID ?? 0) AND state IN ('packed','submitted') ORDER BY id LIMIT \(limit)
                """, logger: logger)
            var result: [(id: Int64, line: ProviderRequestLine)] = []
            for try await (id, cid, endpoint, body) in rows.decode((Int64, String, String, ByteBuffer).self) {
                result.append((id, ProviderRequestLine(customID: cid, endpoint: endpoint, body: Array(body.readableBytesView))))
            }
            return result
        }
    }

    public func markUploading(batch: Int64, at now: Date) async throws {
        try gate.check(worker)
        try await transaction { c in
            let b = try await self.lockLeasedBatch(c, batch)
            switch b.state {
            case .building:
                try await c.guardedQuery("UPDATE hb_batch SET state = 'uploading' WHERE id = \(batch)", logger: logger)
            case .uploading: break
            default: throw JobStoreError(.invalidTransition, "batch \(batch): \(b.state.rawValue) → uploading")
            }
        }
    }

    public func recordInputFile(batch: Int64, fileID: String) async throws {
        try await transaction { c in
            _ = try await self.lockLeasedBatch(c, batch)
            try await c.guardedQuery("UPDATE hb_batch SET input_file_id = \(fileID) WHERE id = \(batch)", logger: logger)
        }
    }

    public func recordSubmitted(batch: Int64, providerBatchID: String, at now: Date) async throws {
        try await transaction { c in
            let b = try await self.lockLeasedBatch(c, batch)
            if let existing = b.providerBatchID {
                if existing == providerBatchID { return }
                throw JobStoreError(.invalidTransition, "batch \(batch) already has provider id \(existing)")
            }
            guard b.state == .building || b.state == .uploading else {
                throw JobStoreError(.invalidTransition, "batch \(batch): \(b.state.rawValue) → submitted")
            }
            try await c.guardedQuery("""
                UPDATE hb_batch SET state = 'submitted', provider_batch_id = \(providerBatchID), submitted_at = \(now) WHERE id = \(batch)
                """, logger: logger)
            try await c.guardedQuery("""
                UPDATE hb_request SET state = 'submitted', updated_at = \(now) WHERE batch_id = \(batch) AND state = 'packed'
                """, logger: logger)
        }
    }

    public func abandonBatch(_ batch: Int64, error: ProviderError, at now: Date) async throws {
        try await transaction { c in
            let b0 = try await Self.requireBatch(c, batch, logger: logger)
            let job = try await Self.lockJob(c, b0.jobID, logger: logger)
            let b = try await Self.requireBatch(c, batch, lock: true, logger: logger)
            guard b.state == .building || b.state == .uploading else {
                throw JobStoreError(.invalidTransition, "batch \(batch): \(b.state.rawValue) → abandoned")
            }
            _ = try await self.apply(c, batch: b, job: job, states: ["packed"], now: now) { _ in .errored(error) }
            try await c.guardedQuery("UPDATE hb_batch SET state = 'abandoned', reconciled_at = \(now) WHERE id = \(batch)", logger: logger)
            try await Self.refreshJob(c, b.jobID, now: now, logger: logger)
        }
    }

    // MARK: Poll

    /// Live batches this worker may work on: its own, unleased ones and those whose lease expired (taken over);
    /// each returned batch is (re)leased to this worker. Batches leased by another live worker are left out.
    public func liveBatches(job: JobID?) async throws -> [ProviderBatchRecord] {
        try await client.withConnection { c in
            try gate.check(worker)
            let rows = try await Self.rows(c.guardedQuery("""
                WITH take AS (
                    SELECT id FROM hb_batch
                    WHERE state IN ('building','uploading','submitted','ended')
                      AND (\(job?.rawValue)::text IS NULL OR job_id = \(job?.rawValue))
                      AND (lease_owner IS NULL OR lease_owner = \(worker) OR lease_expires_at < clock_timestamp())
                    ORDER BY id FOR UPDATE SKIP LOCKED)
                UPDATE hb_batch b SET lease_owner = \(worker),
                    lease_expires_at = clock_timestamp() + make_interval(secs => \(leaseSeconds)),
                    lease_takeovers = b.lease_takeovers + CASE WHEN b.lease_owner IS NOT NULL AND b.lease_owner <> \(worker) THEN 1 ELSE 0 END
                FROM take WHERE b.id = take.id
                RETURNING b.*
                """, logger: logger))
            return try rows.map(Self.batchRecord).sorted { $0.id < $1.id }
        }
    }

    public func batches(job: JobID) async throws -> [ProviderBatchRecord] {
        try await client.withConnection { c in
            try await Self.rows(c.guardedQuery("SELECT * FROM hb_batch WHERE job_id = \(job.rawValue) ORDER BY id", logger: logger)).map(Self.batchRecord)
        }
    }

    public func batch(_ id: Int64) async throws -> ProviderBatchRecord? {
        try await client.withConnection { c in try await Self.fetchBatch(c, id, logger: logger) }
    }

    public func recordStatus(batch: Int64, status: ProviderBatchStatus, at now: Date) async throws {
        let counts = String(decoding: try JSONEncoder().encode(status.counts), as: UTF8.self)
        var ended: String? = nil
        if case let .ended(outcome) = status.phase { ended = outcome.rawValue }
        let endedAt = status.endedAt ?? now
        try await transaction { c in
            _ = try await Self.requireBatch(c, batch, lock: true, logger: logger)
            try await c.guardedQuery("""
                UPDATE hb_batch SET counts = \(counts), output_file_id = COALESCE(\(status.outputFileID), output_file_id),
                    error_file_id = COALESCE(\(status.errorFileID), error_file_id), results_url = COALESCE(\(status.resultsURL), results_url),
                    input_file_id = COALESCE(input_file_id, \(status.inputFileID)), last_polled_at = \(now)
                WHERE id = \(batch)
                """, logger: logger)
            if let ended {
                try await c.guardedQuery("""
                    UPDATE hb_batch SET state = 'ended', outcome = \(ended), ended_at = \(endedAt) WHERE id = \(batch) AND state = 'submitted'
                    """, logger: logger)
            }
        }
    }

    // MARK: Reconcile

    public func applyResults(batch: Int64, _ results: [ProviderResultLine], at now: Date) async throws -> ApplySummary {
        guard !results.isEmpty else { return ApplySummary() }
        return try await transaction { c in
            let b = try await Self.requireBatch(c, batch, logger: logger)
            let maxAttempts = try await Self.maxAttempts(c, b.jobID, logger: logger)
            // One read (locking the batch's open requests named in the chunk, in id order), the rule in Swift
            // (ResultDisposition), one write statement for the whole chunk.
            let customIDs = results.map(\.customID)
            let rows = try await c.guardedQuery("""
                SELECT r.id, r.attempts, u.ord FROM UNNEST(\(customIDs)::text[]) WITH ORDINALITY AS u(cid, ord)
                JOIN hb_request r ON r.batch_id = \(batch) AND r.custom_id = u.cid AND r.state IN ('packed','submitted')
                ORDER BY r.id FOR UPDATE OF r
                """, logger: logger)
            var found: [Int: (id: Int64, attempts: Int)] = [:]
            var seen: Set<Int64> = []
            var byOrdinal: [(ord: Int, id: Int64, attempts: Int)] = []
            for try await (id, attempts, ord) in rows.decode((Int64, Int, Int).self) { byOrdinal.append((ord, id, attempts)) }
            // A custom_id repeated in the chunk applies once (its first line), like the row-by-row stores.
            for entry in byOrdinal.sorted(by: { $0.ord < $1.ord }) where seen.insert(entry.id).inserted {
                found[entry.ord - 1] = (entry.id, entry.attempts)
            }
            var updates = DispositionColumns()
            var summary = ApplySummary()
            for (index, line) in results.enumerated() {
                guard let request = found[index] else {
                    summary.ignored += 1
                    continue
                }
                let d = ResultDisposition.decide(line.outcome, attempts: request.attempts, maxAttempts: maxAttempts)
                try updates.append(request.id, d)
                if d.state == .pending { summary.retried += 1 } else { summary.finished += 1 }
            }
            if !updates.ids.isEmpty { try await self.write(c, updates, job: b.jobID, now: now) }
            return summary
        }
    }

    public func finishReconcile(batch: Int64, missing: ProviderResultOutcome, at now: Date) async throws -> ApplySummary {
        try await transaction { c in
            let b0 = try await Self.requireBatch(c, batch, logger: logger)
            let job = try await Self.lockJob(c, b0.jobID, logger: logger)
            let b = try await Self.requireBatch(c, batch, lock: true, logger: logger)
            if b.state == .reconciled || b.state == .abandoned { return ApplySummary() }
            let summary = try await self.apply(c, batch: b, job: job, states: ["packed", "submitted"], now: now) { _ in missing }
            try await c.guardedQuery("UPDATE hb_batch SET state = 'reconciled', reconciled_at = \(now) WHERE id = \(batch)", logger: logger)
            try await Self.refreshJob(c, b.jobID, now: now, logger: logger)
            return summary
        }
    }

    // MARK: Outcomes

    public func outcomes(after sequence: Int64, job: JobID?, limit: Int) async throws -> [OutcomeEvent] {
        try await client.withConnection { c in
            let rows = try await Self.rows(c.guardedQuery("""
                SELECT o.seq, o.job_id, o.created_at AS event_at, r.custom_id, r.app_reference, r.state, s.body AS response,
                    r.last_error, b.provider_batch_id
                FROM hb_outcome o JOIN hb_request r ON r.id = o.request_id LEFT JOIN hb_batch b ON b.id = r.batch_id
                LEFT JOIN hb_response s ON s.request_id = r.id
                WHERE o.seq > \(sequence) AND (\(job?.rawValue)::text IS NULL OR o.job_id = \(job?.rawValue))
                ORDER BY o.seq LIMIT \(limit)
                """, logger: logger))
            return try rows.map { row in
                let r = row.makeRandomAccess()
                let response = try r["response"].decode(ByteBuffer?.self)
                return OutcomeEvent(
                    sequence: try r["seq"].decode(Int64.self), jobID: JobID(rawValue: try r["job_id"].decode(String.self)),
                    customID: try r["custom_id"].decode(String.self), appReference: try r["app_reference"].decode(String?.self),
                    state: RequestState(rawValue: try r["state"].decode(String.self)) ?? .failed,
                    response: response.map { Array($0.readableBytesView) },
                    error: try Self.decodeError(try r["last_error"].decode(String?.self)),
                    providerBatchID: try r["provider_batch_id"].decode(String?.self),
                    createdAt: try r["event_at"].decode(Date.self))
            }
        }
    }

    public func checkpoint(consumer: String) async throws -> Int64 {
        try await client.withConnection { c in
            for try await seq in try await c.guardedQuery("SELECT seq FROM hb_checkpoint WHERE consumer = \(consumer)", logger: logger).decode(Int64.self) {
                return seq
            }
            return 0
        }
    }

    public func saveCheckpoint(consumer: String, sequence: Int64) async throws {
        try await client.withConnection { c in
            _ = try await c.guardedQuery("""
                INSERT INTO hb_checkpoint (consumer, seq) VALUES (\(consumer), \(sequence))
                ON CONFLICT (consumer) DO UPDATE SET seq = GREATEST(hb_checkpoint.seq, excluded.seq)
                """, logger: logger)
        }
    }

    // MARK: Leases

    /// Extends every lease this worker holds on a live batch and records its heartbeat. Returns the batches renewed.
    /// The server gives up on it after a third of the lease (`statement_timeout`, `lock_timeout`), so a renewal stuck
    /// behind a lock fails in time for the ``WorkerLease`` to decide.
    @discardableResult
    public func renewLeases() async throws -> Int {
        let timeout = "\(max(1, Int(leaseSeconds * 1000 / 3)))ms"
        return try await transaction { c in
            try await c.guardedQuery(
                "SELECT set_config('statement_timeout', \(timeout), true), set_config('lock_timeout', \(timeout), true)", logger: logger)
            try await c.guardedQuery("""
                INSERT INTO hb_worker (id, started_at, heartbeat_at, expires_at)
                VALUES (\(worker), clock_timestamp(), clock_timestamp(), clock_timestamp() + make_interval(secs => \(leaseSeconds)))
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at
                """, logger: logger)
            let rows = try await c.guardedQuery("""
                WITH renewed AS (
                    UPDATE hb_batch SET lease_expires_at = clock_timestamp() + make_interval(secs => \(leaseSeconds))
                    WHERE lease_owner = \(worker) AND state IN ('building','uploading','submitted','ended') RETURNING 1)
                SELECT count(*)::int8 FROM renewed
                """, logger: logger)
            var n = 0
            for try await count in rows.decode(Int.self) { n = count }
            return n
        }
    }

    /// Ends this worker's leases at once (graceful shutdown), so other workers take its batches without waiting.
    public func releaseLeases() async throws {
        try await client.withConnection { c in
            try await c.guardedQuery("""
                UPDATE hb_batch SET lease_expires_at = clock_timestamp()
                WHERE lease_owner = \(worker) AND state IN ('building','uploading','submitted','ended')
                """, logger: logger)
            try await c.guardedQuery("UPDATE hb_worker SET expires_at = clock_timestamp() WHERE id = \(worker)", logger: logger)
        }
    }

    /// Who holds each batch of `job`: the worker that claimed it, the current lease owner, and how often its lease
    /// was taken over from another worker (for operators and tests).
    public func batchLeases(job: JobID) async throws -> [BatchLease] {
        try await client.withConnection { c in
            let rows = try await c.guardedQuery("""
                SELECT id, claimed_by, lease_owner, lease_takeovers FROM hb_batch WHERE job_id = \(job.rawValue) ORDER BY id
                """, logger: logger)
            var result: [BatchLease] = []
            for try await (id, claimedBy, owner, takeovers) in rows.decode((Int64, String, String?, Int).self) {
                result.append(BatchLease(batch: id, claimedBy: claimedBy, owner: owner, takeovers: takeovers))
            }
            return result
        }
    }

    // MARK: Helpers (inside a transaction)

    /// Locks the batch; throws when another live worker holds its lease; otherwise (re)takes the lease.
    private func lockLeasedBatch(_ c: PostgresConnection, _ id: Int64) async throws -> ProviderBatchRecord {
        let rows = try await Self.rows(c.guardedQuery("""
            SELECT *, (lease_owner IS NOT NULL AND lease_owner <> \(worker) AND lease_expires_at >= clock_timestamp()) AS held_elsewhere
            FROM hb_batch WHERE id = \(id) FOR UPDATE
            """, logger: logger))
        guard let row = rows.first else { throw JobStoreError(.unknownBatch, "batch \(id)") }
        let r = row.makeRandomAccess()
        if try r["held_elsewhere"].decode(Bool.self) {
            let owner = try r["lease_owner"].decode(String?.self) ?? "?"
            throw JobStoreError(.invalidTransition, "batch \(id) is leased by worker \(owner)")
        }
        try await c.guardedQuery("""
            UPDATE hb_batch SET lease_owner = \(worker), lease_expires_at = clock_timestamp() + make_interval(secs => \(leaseSeconds))
            WHERE id = \(id)
            """, logger: logger)
        return try Self.batchRecord(row)
    }

    /// Applies `outcome(requestID)` to every request of `batch` in `states` (one read, one write).
    private func apply(
        _ c: PostgresConnection, batch: ProviderBatchRecord, job: JobRecord?, states: [String], now: Date,
        outcome: (Int64) -> ProviderResultOutcome
    ) async throws -> ApplySummary {
        let maxAttempts = job.map { $0.state == .canceled ? 0 : $0.maxAttempts } ?? 0
        let rows = try await c.guardedQuery("""
            SELECT id, attempts FROM hb_request WHERE batch_id = \(batch.id) AND state = ANY(\(states)::text[]) ORDER BY id FOR UPDATE
            """, logger: logger)
        var updates = DispositionColumns()
        var summary = ApplySummary()
        for try await (id, attempts) in rows.decode((Int64, Int).self) {
            let d = ResultDisposition.decide(outcome(id), attempts: attempts, maxAttempts: maxAttempts)
            try updates.append(id, d)
            if d.state == .pending { summary.retried += 1 } else { summary.finished += 1 }
        }
        if !updates.ids.isEmpty { try await write(c, updates, job: batch.jobID, now: now) }
        return summary
    }

    /// One statement: new states and errors, responses (upsert), and an outcome event per terminal request in input
    /// order. Takes the outcome lock first, so event sequences are allocated in commit order.
    private func write(_ c: PostgresConnection, _ u: DispositionColumns, job: JobID, now: Date) async throws {
        try await Self.lockOutcomes(c, logger: logger)
        try await c.guardedQuery("""
            WITH u AS (
                SELECT * FROM UNNEST(\(u.ids)::int8[], \(u.states)::text[], \(u.errors)::text[], \(u.hasResponse)::bool[],
                    \(u.responses)::bytea[], \(u.inputTokens)::int8[], \(u.outputTokens)::int8[], \(u.terminal)::bool[])
                    WITH ORDINALITY AS t(id, state, err, has_response, response, input_tokens, output_tokens, terminal, ord)),
            upd AS (
                UPDATE hb_request r SET state = u.state, last_error = COALESCE(NULLIF(u.err, ''), r.last_error), updated_at = \(now)
                FROM u WHERE r.id = u.id RETURNING r.id),
            resp AS (
                INSERT INTO hb_response (request_id, body, input_tokens, output_tokens)
                SELECT u.id, u.response, NULLIF(u.input_tokens, -1), NULLIF(u.output_tokens, -1) FROM u WHERE u.has_response
                ON CONFLICT (request_id) DO UPDATE SET body = excluded.body, input_tokens = excluded.input_tokens,
                    output_tokens = excluded.output_tokens
                RETURNING 1)
            INSERT INTO hb_outcome (request_id, job_id, created_at)
            SELECT u.id, \(job.rawValue), \(now) FROM u WHERE u.terminal ORDER BY u.ord
            """, logger: logger)
    }

    /// Serializes transactions that append outcome events, so `seq` order is commit order (a consumer paging by
    /// sequence never skips an event committed late). Held until commit.
    private static func lockOutcomes(_ c: PostgresConnection, logger: Logger) async throws {
        try await c.guardedQuery("SELECT pg_advisory_xact_lock(hashtext('hyperbatch.jobs.outcomes:' || current_schema()))", logger: logger)
    }

    /// Marks the job finished when every request is terminal (and it is active). Callers hold the job row lock.
    private static func refreshJob(_ c: PostgresConnection, _ job: JobID, now: Date, logger: Logger) async throws {
        try await c.guardedQuery("""
            UPDATE hb_job SET state = 'finished', finished_at = \(now)
            WHERE id = \(job.rawValue) AND state = 'active'
              AND NOT EXISTS (SELECT 1 FROM hb_request WHERE job_id = \(job.rawValue) AND state IN ('pending','packed','submitted'))
            """, logger: logger)
    }

    /// The job's max attempts; 0 for a cancelled job, so nothing of it goes back to `pending`.
    private static func maxAttempts(_ c: PostgresConnection, _ job: JobID, logger: Logger) async throws -> Int {
        guard let record = try await fetchJob(c, job, logger: logger) else { return 0 }
        return record.state == .canceled ? 0 : record.maxAttempts
    }

    private static func fetchJob(_ c: PostgresConnection, _ id: JobID, logger: Logger) async throws -> JobRecord? {
        try await rows(c.guardedQuery("SELECT * FROM hb_job WHERE id = \(id.rawValue)", logger: logger)).first.map(jobRecord)
    }

    /// The job row, locked until commit (serializes the transactions that may finish or reopen the job).
    private static func lockJob(_ c: PostgresConnection, _ id: JobID, logger: Logger) async throws -> JobRecord? {
        try await rows(c.guardedQuery("SELECT * FROM hb_job WHERE id = \(id.rawValue) FOR UPDATE", logger: logger)).first.map(jobRecord)
    }

    private static func fetchBatch(_ c: PostgresConnection, _ id: Int64, lock: Bool = false, logger: Logger) async throws -> ProviderBatchRecord? {
        let query: PostgresQuery = lock
            ? "SELECT * FROM hb_batch WHERE id = \(id) FOR UPDATE"
            : "SELECT * FROM hb_batch WHERE id = \(id)"
        return try await rows(c.guardedQuery(query, logger: logger)).first.map(batchRecord)
    }

    private static func requireBatch(_ c: PostgresConnection, _ id: Int64, lock: Bool = false, logger: Logger) async throws -> ProviderBatchRecord {
        guard let b = try await fetchBatch(c, id, lock: lock, logger: logger) else { throw JobStoreError(.unknownBatch, "batch \(id)") }
        return b
    }

    private static func rows(_ sequence: PostgresRowSequence) async throws -> [PostgresRow] {
        try await sequence.collect()
    }

    private static func key(_ provider: String, _ endpoint: String, _ model: String, _ tenant: String) -> CompatibilityKey {
        CompatibilityKey(provider: ProviderKind(rawValue: provider) ?? .openai, endpoint: endpoint, model: model, tenant: tenant)
    }

    private static func decodeError(_ text: String?) throws -> ProviderError? {
        guard let text else { return nil }
        return try JSONDecoder().decode(ProviderError.self, from: Data(text.utf8))
    }

    private static func jobRecord(_ row: PostgresRow) throws -> JobRecord {
        let r = row.makeRandomAccess()
        return JobRecord(
            id: JobID(rawValue: try r["id"].decode(String.self)),
            provider: ProviderKind(rawValue: try r["provider"].decode(String.self)) ?? .openai, tenant: try r["tenant"].decode(String.self),
            maxAttempts: try r["max_attempts"].decode(Int.self), label: try r["label"].decode(String?.self),
            state: JobState(rawValue: try r["state"].decode(String.self)) ?? .active,
            createdAt: try r["created_at"].decode(Date.self), finishedAt: try r["finished_at"].decode(Date?.self))
    }

    private static func requestRecord(_ row: PostgresRow) throws -> RequestRecord {
        let r = row.makeRandomAccess()
        let response = try r["response"].decode(ByteBuffer?.self)
        let input = try r["input_tokens"].decode(Int?.self)
        let output = try r["output_tokens"].decode(Int?.self)
        return RequestRecord(
            id: try r["id"].decode(Int64.self), jobID: JobID(rawValue: try r["job_id"].decode(String.self)),
            customID: try r["custom_id"].decode(String.self),
            key: key(try r["provider"].decode(String.self), try r["endpoint"].decode(String.self), try r["model"].decode(String.self),
                     try r["tenant"].decode(String.self)),
            body: Array(try r["body"].decode(ByteBuffer.self).readableBytesView), encodedSize: try r["encoded_size"].decode(Int.self),
            appReference: try r["app_reference"].decode(String?.self),
            state: RequestState(rawValue: try r["state"].decode(String.self)) ?? .pending, attempts: try r["attempts"].decode(Int.self),
            lastError: try decodeError(try r["last_error"].decode(String?.self)), response: response.map { Array($0.readableBytesView) },
            usage: input.map { TokenUsage(inputTokens: $0, outputTokens: output ?? 0) }, batchID: try r["batch_id"].decode(Int64?.self),
            updatedAt: try r["updated_at"].decode(Date.self))
    }

    private static func batchRecord(_ row: PostgresRow) throws -> ProviderBatchRecord {
        let r = row.makeRandomAccess()
        let countsText = try r["counts"].decode(String?.self)
        let counts = try countsText.map { try JSONDecoder().decode(ProviderRequestCounts.self, from: Data($0.utf8)) } ?? .init()
        let outcome = try r["outcome"].decode(String?.self)
        return ProviderBatchRecord(
            id: try r["id"].decode(Int64.self), jobID: JobID(rawValue: try r["job_id"].decode(String.self)),
            key: key(try r["provider"].decode(String.self), try r["endpoint"].decode(String.self), try r["model"].decode(String.self),
                     try r["tenant"].decode(String.self)),
            state: ProviderBatchState(rawValue: try r["state"].decode(String.self)) ?? .building,
            idempotencyTag: try r["idempotency_tag"].decode(String.self),
            requestCount: try r["request_count"].decode(Int.self), byteCount: try r["byte_count"].decode(Int.self),
            inputFileID: try r["input_file_id"].decode(String?.self), providerBatchID: try r["provider_batch_id"].decode(String?.self),
            outcome: outcome.flatMap(ProviderBatchOutcome.init(rawValue:)), counts: counts,
            outputFileID: try r["output_file_id"].decode(String?.self), errorFileID: try r["error_file_id"].decode(String?.self),
            resultsURL: try r["results_url"].decode(String?.self), createdAt: try r["created_at"].decode(Date.self),
            submittedAt: try r["submitted_at"].decode(Date?.self), endedAt: try r["ended_at"].decode(Date?.self),
            reconciledAt: try r["reconciled_at"].decode(Date?.self), lastPolledAt: try r["last_polled_at"].decode(Date?.self))
    }
}

/// Column arrays of one bulk request transition (the binds of one `UNNEST` statement). Absent values use
/// sentinels the SQL maps back to NULL: `''` for no error, `-1` for no token count.
struct DispositionColumns {
    var ids: [Int64] = []
    var states: [String] = []
    var errors: [String] = []
    var hasResponse: [Bool] = []
    var responses: [ByteBuffer] = []
    var inputTokens: [Int] = []
    var outputTokens: [Int] = []
    var terminal: [Bool] = []

    mutating func append(_ id: Int64, _ d: ResultDisposition) throws {
        ids.append(id)
        states.append(d.state.rawValue)
        errors.append(try d.error.map { String(decoding: try JSONEncoder().encode($0), as: UTF8.self) } ?? "")
        hasResponse.append(d.response != nil)
        responses.append(ByteBuffer(bytes: d.response ?? []))
        inputTokens.append(d.usage?.inputTokens ?? -1)
        outputTokens.append(d.usage?.outputTokens ?? -1)
        terminal.append(d.state.isTerminal)
    }
}

/// Who holds one batch (see ``PostgresJobStore/batchLeases(job:)``).
public struct BatchLease: Sendable, Hashable {
    /// The store's batch id.
    public var batch: Int64
    /// The worker that claimed (created) the batch.
    public var claimedBy: String
    /// The worker holding (or last holding) its lease.
    public var owner: String?
    /// How many times another worker took the batch over after a lease expired.
    public var takeovers: Int

    /// Creates a lease description.
    public init(batch: Int64, claimedBy: String, owner: String?, takeovers: Int) {
        self.batch = batch
        self.claimedBy = claimedBy
        self.owner = owner
        self.takeovers = takeovers
    }
}

/// Errors of ``PostgresJobStore`` beyond ``JobStoreError``.
public struct PostgresJobStoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public enum Code: String, Sendable, Hashable {
        /// This worker's leases could not be renewed in time: it must stop claiming (and exit).
        case leaseLost
        /// The server closed the connection a statement was sent on (transient: the pass is retried).
        case connectionClosed
    }

    public var code: Code
    /// Which worker.
    public var context: String

    /// Creates an error.
    public init(_ code: Code, _ context: String) {
        self.code = code
        self.context = context
    }

    public var description: String { "\(code.rawValue): \(context)" }
}
