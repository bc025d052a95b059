import Foundation
import HyperbatchJobs

/// The behaviour every ``JobStore`` must have, as named cases any test target can run against its own store:
///
/// ```swift
/// @Test(arguments: JobStoreContract.names)
/// func contract(_ name: String) async throws {
///     try await JobStoreContract.run(name, on: makeFreshStore())
/// }
/// ```
/// Each case needs a fresh, empty store. Failures throw ``JobStoreContractFailure``.
public enum JobStoreContract {
    /// Every case name, in a stable order.
    public static var names: [String] { cases.map(\.0) }

    /// Runs the case `name` against `store` (which must be empty).
    public static func run(_ name: String, on store: any JobStore) async throws {
        guard let body = cases.first(where: { $0.0 == name })?.1 else {
            throw JobStoreContractFailure(message: "no contract case named \(name)", line: #line)
        }
        try await body(store)
    }

    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    static let chat = CompatibilityKey(provider: .openai, endpoint: "/v1/chat/completions", model: "gpt-4o-mini")
    static let embed = CompatibilityKey(provider: .openai, endpoint: "/v1/embeddings", model: "text-embedding-3-small")

    static func request(_ id: String, _ key: CompatibilityKey = chat, ref: String? = nil) -> NewRequest {
        NewRequest(customID: id, key: key, body: Array("{\"model\":\"\(key.model)\",\"n\":\"\(id)\"}".utf8), appReference: ref)
    }

    static func check(_ condition: Bool, _ message: @autoclosure () -> String, line: Int = #line) throws {
        if !condition { throw JobStoreContractFailure(message: message(), line: line) }
    }

    static func checkThrows(_ code: JobStoreError.Code, line: Int = #line, _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let error as JobStoreError {
            try check(error.code == code, "expected \(code), got \(error)", line: line)
            return
        }
        throw JobStoreContractFailure(message: "expected \(code), nothing thrown", line: line)
    }

    /// A job with `ids` inserted (key `chat`), maxAttempts as given.
    static func seeded(_ store: any JobStore, _ ids: [String], maxAttempts: Int = 2, job: String = "j1") async throws -> JobID {
        let id = JobID(job)
        _ = try await store.createJob(NewJob(id: id, provider: .openai, maxAttempts: maxAttempts), at: t0)
        _ = try await store.insertRequests(ids.map { request($0, ref: "ref-\($0)") }, into: id, at: t0)
        return id
    }

    /// Claims all pending of `chat` in `job` and submits the batch as `pid`.
    static func submitAll(_ store: any JobStore, _ job: JobID, pid: String) async throws -> ProviderBatchRecord {
        let candidates = try await store.pendingCandidates(job: job, key: chat, limit: 1_000_000)
        guard let batch = try await store.claimBatch(BatchClaim(jobID: job, key: chat, requestIDs: candidates.map(\.id)), at: t0) else {
            throw JobStoreContractFailure(message: "nothing claimed", line: #line)
        }
        try await store.markUploading(batch: batch.id, at: t0)
        try await store.recordSubmitted(batch: batch.id, providerBatchID: pid, at: t0)
        return batch
    }

    static let cases: [(String, @Sendable (any JobStore) async throws -> Void)] = [
        ("createJobIsIdempotent", { store in
            let a = try await store.createJob(NewJob(id: JobID("a"), provider: .anthropic, tenant: "t", maxAttempts: 4, label: "f.jsonl"), at: t0)
            let b = try await store.createJob(NewJob(id: JobID("a"), provider: .openai, maxAttempts: 9), at: t0.addingTimeInterval(60))
            try check(a == b, "second create must return the first job unchanged: \(a) vs \(b)")
            try check(a.provider == .anthropic && a.tenant == "t" && a.maxAttempts == 4 && a.label == "f.jsonl" && a.state == .active, "fields kept: \(a)")
            try check(a.createdAt == t0, "createdAt \(a.createdAt)")
            let all = try await store.listJobs()
            try check(all.map(\.id) == [JobID("a")], "one job listed: \(all.map(\.id))")
            let missing = try await store.job(JobID("zz"))
            try check(missing == nil, "unknown job is nil")
        }),
        ("insertIsIdempotentOnJobAndCustomID", { store in
            let job = try await seeded(store, ["r1", "r2", "r3"])
            let again = try await store.insertRequests(["r1", "r2", "r3", "r4"].map { request($0) }, into: job, at: t0)
            try check(again == InsertSummary(inserted: 1, duplicates: 3), "summary \(again)")
            let counts = try await store.requestCounts(job: job)
            try check(counts[.pending] == 4 && counts.total == 4, "counts \(counts)")
            // The same custom_id in another job is a different request.
            let other = try await seeded(store, ["r1"], job: "j2")
            let otherCounts = try await store.requestCounts(job: other)
            try check(otherCounts[.pending] == 1, "other job counts \(otherCounts)")
            let r = try await store.request(job: job, customID: "r2")
            try check(r?.state == .pending && r?.attempts == 0 && r?.appReference == "ref-r2" && r?.key == chat, "stored request \(String(describing: r))")
            try check(r?.body == request("r2").body && r?.encodedSize == request("r2").encodedSize, "body and size kept")
        }),
        ("insertIntoUnknownJobThrows", { store in
            try await checkThrows(.unknownJob) { _ = try await store.insertRequests([request("x")], into: JobID("nope"), at: t0) }
        }),
        ("claimPacksOnlyPendingRequestsOfTheKey", { store in
            let job = try await seeded(store, ["a1", "a2", "a3"])
            _ = try await store.insertRequests([request("e1", embed), request("e2", embed)], into: job, at: t0)
            let keys = try await store.pendingKeys()
            try check(Set(keys.map(\.key)) == [chat, embed] && keys.allSatisfy { $0.job == job }, "pending keys \(keys)")
            let chatCandidates = try await store.pendingCandidates(job: job, key: chat, limit: 10)
            let embedCandidates = try await store.pendingCandidates(job: job, key: embed, limit: 10)
            try check(chatCandidates.count == 3 && embedCandidates.count == 2, "candidates by key")
            try check(chatCandidates.map(\.id) == chatCandidates.map(\.id).sorted(), "oldest first")
            let limited = try await store.pendingCandidates(job: job, key: chat, limit: 2)
            try check(limited.count == 2, "limit respected")
            // Claim two chat requests plus one embed id: the embed one is skipped (other key).
            let claim = BatchClaim(jobID: job, key: chat, requestIDs: [chatCandidates[0].id, chatCandidates[1].id, embedCandidates[0].id], idempotencyTag: "tag-1")
            guard let batch = try await store.claimBatch(claim, at: t0) else { throw JobStoreContractFailure(message: "claim returned nil", line: #line) }
            try check(batch.state == .building && batch.idempotencyTag == "tag-1" && batch.requestCount == 2 && batch.key == chat, "batch \(batch)")
            try check(batch.byteCount == chatCandidates[0].encodedSize + chatCandidates[1].encodedSize, "bytes \(batch.byteCount)")
            try check(batch.providerBatchID == nil && batch.jobID == job, "no provider id yet")
            let counts = try await store.requestCounts(job: job)
            try check(counts[.packed] == 2 && counts[.pending] == 3, "counts \(counts)")
            let a1 = try await store.request(job: job, customID: "a1")
            try check(a1?.state == .packed && a1?.attempts == 1 && a1?.batchID == batch.id, "a1 \(String(describing: a1))")
            // Claiming the same ids again claims nothing and leaves no batch behind.
            let second = try await store.claimBatch(BatchClaim(jobID: job, key: chat, requestIDs: [chatCandidates[0].id]), at: t0)
            try check(second == nil, "re-claim must be nil")
            let all = try await store.batches(job: job)
            try check(all.count == 1, "one batch row: \(all.count)")
            let live = try await store.liveBatches(job: nil)
            try check(live.map(\.id) == [batch.id], "live \(live.map(\.id))")
        }),
        ("submitRecordsProviderIDsWriteAhead", { store in
            let job = try await seeded(store, ["a", "b"])
            let ids = try await store.pendingCandidates(job: job, key: chat, limit: 10).map(\.id)
            let batch = try await store.claimBatch(BatchClaim(jobID: job, key: chat, requestIDs: ids, idempotencyTag: "tag-x"), at: t0)!
            let lines = try await store.requestLines(inBatch: batch.id, afterID: nil, limit: 1)
            try check(lines.count == 1 && lines[0].line.customID == "a" && lines[0].line.endpoint == chat.endpoint, "first page \(lines.map(\.line.customID))")
            let rest = try await store.requestLines(inBatch: batch.id, afterID: lines[0].id, limit: 10)
            try check(rest.map(\.line.customID) == ["b"] && rest[0].line.body == request("b").body, "second page")
            try await store.markUploading(batch: batch.id, at: t0)
            try await store.markUploading(batch: batch.id, at: t0)  // idempotent
            try await store.recordInputFile(batch: batch.id, fileID: "file-1")
            let uploading = try await store.batch(batch.id)
            try check(uploading?.state == .uploading && uploading?.inputFileID == "file-1", "uploading \(String(describing: uploading))")
            try await store.recordSubmitted(batch: batch.id, providerBatchID: "batch_1", at: t0.addingTimeInterval(5))
            try await store.recordSubmitted(batch: batch.id, providerBatchID: "batch_1", at: t0.addingTimeInterval(6))  // no-op
            let submitted = try await store.batch(batch.id)
            try check(submitted?.state == .submitted && submitted?.providerBatchID == "batch_1", "submitted \(String(describing: submitted))")
            try check(submitted?.submittedAt == t0.addingTimeInterval(5), "submittedAt kept from the first record")
            let counts = try await store.requestCounts(job: job)
            try check(counts[.submitted] == 2, "requests submitted: \(counts)")
            try await checkThrows(.invalidTransition) { try await store.recordSubmitted(batch: batch.id, providerBatchID: "batch_2", at: t0) }
            try await checkThrows(.invalidTransition) { try await store.markUploading(batch: batch.id, at: t0) }
            try await checkThrows(.unknownBatch) { try await store.markUploading(batch: 999_999, at: t0) }
        }),
        ("pollRecordsStatusAndEnd", { store in
            let job = try await seeded(store, ["a", "b"])
            let batch = try await submitAll(store, job, pid: "batch_p")
            let running = ProviderBatchStatus(id: "batch_p", phase: .inProgress, counts: .init(total: 2, processing: 1, succeeded: 1), createdAt: t0)
            try await store.recordStatus(batch: batch.id, status: running, at: t0.addingTimeInterval(10))
            let polled = try await store.batch(batch.id)
            try check(polled?.state == .submitted && polled?.counts.succeeded == 1 && polled?.lastPolledAt == t0.addingTimeInterval(10), "polled \(String(describing: polled))")
            let ended = ProviderBatchStatus(
                id: "batch_p", phase: .ended(.completed), counts: .init(total: 2, succeeded: 2), createdAt: t0,
                endedAt: t0.addingTimeInterval(20), outputFileID: "file-out", errorFileID: "file-err")
            try await store.recordStatus(batch: batch.id, status: ended, at: t0.addingTimeInterval(30))
            let done = try await store.batch(batch.id)
            try check(done?.state == .ended && done?.outcome == .completed && done?.endedAt == t0.addingTimeInterval(20), "ended \(String(describing: done))")
            try check(done?.outputFileID == "file-out" && done?.errorFileID == "file-err" && done?.counts.succeeded == 2, "files and counts")
            let live = try await store.liveBatches(job: job)
            try check(live.map(\.id) == [batch.id], "ended batches are still live until reconciled")
        }),
        ("applyResultsIsIdempotentByCustomID", { store in
            let job = try await seeded(store, ["ok", "bad", "late", "slow", "gone"], maxAttempts: 2)
            let batch = try await submitAll(store, job, pid: "batch_r")
            let permanent = ProviderError(status: 400, type: "invalid_request_error", message: "bad model")
            let retryable = ProviderError(status: 429, type: "rate_limit_error", message: "slow down")
            let chunk = [
                ProviderResultLine(customID: "ok", outcome: .succeeded(body: Array("{\"r\":1}".utf8), usage: nil)),
                ProviderResultLine(customID: "bad", outcome: .errored(permanent)),
                ProviderResultLine(customID: "late", outcome: .expired),
                ProviderResultLine(customID: "slow", outcome: .errored(retryable)),
                ProviderResultLine(customID: "stranger", outcome: .expired),
            ]
            let first = try await store.applyResults(batch: batch.id, chunk, at: t0)
            try check(first == ApplySummary(finished: 2, retried: 2, ignored: 1), "first apply \(first)")
            let again = try await store.applyResults(batch: batch.id, chunk, at: t0)
            try check(again == ApplySummary(finished: 0, retried: 0, ignored: 5), "second apply changes nothing: \(again)")
            let ok = try await store.request(job: job, customID: "ok")
            try check(ok?.state == .succeeded && ok?.response == Array("{\"r\":1}".utf8), "ok \(String(describing: ok))")
            let bad = try await store.request(job: job, customID: "bad")
            try check(bad?.state == .failed && bad?.lastError == permanent, "bad \(String(describing: bad))")
            let slow = try await store.request(job: job, customID: "slow")
            try check(slow?.state == .pending && slow?.lastError == retryable && slow?.attempts == 1, "slow \(String(describing: slow))")
            let late = try await store.request(job: job, customID: "late")
            try check(late?.state == .pending, "late back to pending")
            // "gone" had no result line: finishing the batch applies `missing`.
            let finish = try await store.finishReconcile(batch: batch.id, missing: .expired, at: t0)
            try check(finish == ApplySummary(finished: 0, retried: 1, ignored: 0), "finish \(finish)")
            let reconciled = try await store.batch(batch.id)
            try check(reconciled?.state == .reconciled && reconciled?.reconciledAt == t0, "batch reconciled")
            let finishAgain = try await store.finishReconcile(batch: batch.id, missing: .expired, at: t0)
            try check(finishAgain == ApplySummary(), "finish again is a no-op")
            let live = try await store.liveBatches(job: nil)
            try check(live.isEmpty, "reconciled batch not live")
            let counts = try await store.requestCounts(job: job)
            try check(counts[.pending] == 3 && counts[.succeeded] == 1 && counts[.failed] == 1, "counts \(counts)")
        }),
        ("retriesStopAtMaxAttempts", { store in
            let job = try await seeded(store, ["x", "y", "z"], maxAttempts: 2)
            let first = try await submitAll(store, job, pid: "b1")
            _ = try await store.applyResults(batch: first.id, [
                ProviderResultLine(customID: "x", outcome: .expired), ProviderResultLine(customID: "y", outcome: .canceled),
                ProviderResultLine(customID: "z", outcome: .errored(ProviderError(status: 500, type: "server_error", message: "boom"))),
            ], at: t0)
            _ = try await store.finishReconcile(batch: first.id, missing: .expired, at: t0)
            let second = try await submitAll(store, job, pid: "b2")
            try check(second.requestCount == 3, "all three resubmitted")
            let x = try await store.request(job: job, customID: "x")
            try check(x?.attempts == 2 && x?.batchID == second.id, "second attempt \(String(describing: x))")
            // A late duplicate of the first batch's results must not touch requests now in the second batch.
            let stale = try await store.applyResults(batch: first.id, [ProviderResultLine(customID: "x", outcome: .succeeded(body: [], usage: nil))], at: t0)
            try check(stale.ignored == 1, "stale result ignored: \(stale)")
            _ = try await store.applyResults(batch: second.id, [
                ProviderResultLine(customID: "x", outcome: .expired), ProviderResultLine(customID: "y", outcome: .canceled),
                ProviderResultLine(customID: "z", outcome: .errored(ProviderError(status: 500, type: "server_error", message: "boom"))),
            ], at: t0)
            let counts = try await store.requestCounts(job: job)
            try check(counts[.expired] == 1 && counts[.canceled] == 1 && counts[.errored] == 1 && counts.terminal == 3, "terminal after max attempts: \(counts)")
            _ = try await store.finishReconcile(batch: second.id, missing: .expired, at: t0.addingTimeInterval(1))
            let record = try await store.job(job)
            try check(record?.state == .finished && record?.finishedAt == t0.addingTimeInterval(1), "job finished: \(String(describing: record))")
            // New requests reopen the job.
            _ = try await store.insertRequests([request("w")], into: job, at: t0)
            let reopened = try await store.job(job)
            try check(reopened?.state == .active && reopened?.finishedAt == nil, "job reopened")
        }),
        ("failedBatchAppliesMissingOutcome", { store in
            let job = try await seeded(store, ["p", "q"], maxAttempts: 3)
            let batch = try await submitAll(store, job, pid: "bf")
            let error = ProviderError(type: "invalid_request_error", code: "model_mismatch", message: "one model per file")
            let summary = try await store.finishReconcile(batch: batch.id, missing: .errored(error), at: t0)
            try check(summary == ApplySummary(finished: 2, retried: 0, ignored: 0), "summary \(summary)")
            let p = try await store.request(job: job, customID: "p")
            try check(p?.state == .failed && p?.lastError == error, "p failed with the batch error")
        }),
        ("abandonReleasesOrFailsPackedRequests", { store in
            let job = try await seeded(store, ["m", "n"], maxAttempts: 3)
            let ids = try await store.pendingCandidates(job: job, key: chat, limit: 10).map(\.id)
            let b1 = try await store.claimBatch(BatchClaim(jobID: job, key: chat, requestIDs: ids), at: t0)!
            try await store.markUploading(batch: b1.id, at: t0)
            try await store.abandonBatch(b1.id, error: ProviderError(status: 503, type: "overloaded_error", message: "later"), at: t0)
            let after1 = try await store.requestCounts(job: job)
            try check(after1[.pending] == 2, "retryable refusal releases: \(after1)")
            let abandoned = try await store.batch(b1.id)
            try check(abandoned?.state == .abandoned, "batch abandoned")
            try await checkThrows(.invalidTransition) { try await store.recordSubmitted(batch: b1.id, providerBatchID: "late", at: t0) }
            let b2 = try await store.claimBatch(BatchClaim(jobID: job, key: chat, requestIDs: ids), at: t0)!
            try await store.abandonBatch(b2.id, error: ProviderError(status: 400, type: "invalid_request_error", message: "no"), at: t0)
            let after2 = try await store.requestCounts(job: job)
            try check(after2[.failed] == 2, "permanent refusal fails: \(after2)")
            let live = try await store.liveBatches(job: job)
            try check(live.isEmpty, "abandoned batches are not live")
        }),
        ("abandonUnsentBatchOfCancelledJobCancels", { store in
            let job = try await seeded(store, ["u", "v", "w"], maxAttempts: 3)
            let ids = try await store.pendingCandidates(job: job, key: chat, limit: 2).map(\.id)
            let batch = try await store.claimBatch(BatchClaim(jobID: job, key: chat, requestIDs: ids), at: t0)!
            let live = try await store.cancelJob(job, at: t0)
            try check(live.map(\.id) == [batch.id], "the unsent batch is returned to settle")
            try await store.abandonBatch(batch.id, error: .jobCanceled, at: t0)
            let counts = try await store.requestCounts(job: job)
            try check(counts[.canceled] == 3 && counts.total == 3, "unsent and pending requests end canceled, not failed: \(counts)")
            let events = try await store.outcomes(after: 0, job: job, limit: 10)
            try check(events.count == 3 && events.allSatisfy { $0.state == .canceled }, "one canceled outcome each: \(events.map(\.state))")
        }),
        ("outcomesAndCheckpoints", { store in
            let job = try await seeded(store, ["a", "b", "c"], maxAttempts: 1)
            let batch = try await submitAll(store, job, pid: "bo")
            _ = try await store.applyResults(batch: batch.id, [
                ProviderResultLine(customID: "b", outcome: .succeeded(body: Array("{}".utf8), usage: nil)),
                ProviderResultLine(customID: "a", outcome: .errored(ProviderError(status: 400, type: "invalid_request_error", message: "x"))),
            ], at: t0)
            let events = try await store.outcomes(after: 0, job: nil, limit: 10)
            try check(events.map(\.customID) == ["b", "a"], "events in apply order: \(events.map(\.customID))")
            try check(events[0].state == .succeeded && events[0].response == Array("{}".utf8) && events[0].appReference == "ref-b", "event b \(events[0])")
            try check(events[0].providerBatchID == "bo" && events[0].jobID == job, "event b batch")
            try check(events[1].state == .failed && events[1].error?.type == "invalid_request_error", "event a")
            try check(events[0].sequence < events[1].sequence, "sequence increases")
            let page = try await store.outcomes(after: events[0].sequence, job: job, limit: 10)
            try check(page.map(\.customID) == ["a"], "after cursor")
            let none = try await store.outcomes(after: 0, job: JobID("other"), limit: 10)
            try check(none.isEmpty, "job filter")
            let start = try await store.checkpoint(consumer: "app")
            try check(start == 0, "checkpoint starts at 0")
            try await store.saveCheckpoint(consumer: "app", sequence: events[1].sequence)
            try await store.saveCheckpoint(consumer: "app", sequence: events[0].sequence)  // never backwards
            let saved = try await store.checkpoint(consumer: "app")
            try check(saved == events[1].sequence, "checkpoint \(saved)")
            let other = try await store.checkpoint(consumer: "other")
            try check(other == 0, "checkpoints are per consumer")
            _ = try await store.finishReconcile(batch: batch.id, missing: .expired, at: t0)
            let rest = try await store.outcomes(after: saved, job: job, limit: 10)
            try check(rest.map(\.customID) == ["c"] && rest[0].state == .expired, "c expired on its only attempt: \(rest.map(\.customID))")
        }),
        ("cancelJobCancelsPendingAndReturnsLiveBatches", { store in
            let job = try await seeded(store, ["s1", "s2", "p1", "p2"])
            let ids = try await store.pendingCandidates(job: job, key: chat, limit: 2).map(\.id)
            let batch = try await store.claimBatch(BatchClaim(jobID: job, key: chat, requestIDs: ids), at: t0)!
            try await store.recordSubmitted(batch: batch.id, providerBatchID: "bc", at: t0)
            let live = try await store.cancelJob(job, at: t0)
            try check(live.map(\.id) == [batch.id] && live[0].providerBatchID == "bc", "live batches returned")
            let counts = try await store.requestCounts(job: job)
            try check(counts[.canceled] == 2 && counts[.submitted] == 2, "counts \(counts)")
            let record = try await store.job(job)
            try check(record?.state == .canceled, "job canceled")
            let events = try await store.outcomes(after: 0, job: job, limit: 10)
            try check(Set(events.map(\.customID)) == ["p1", "p2"] && events.allSatisfy { $0.state == .canceled }, "cancel events")
            let keys = try await store.pendingKeys()
            try check(keys.isEmpty, "no pending keys")
            try await checkThrows(.jobCanceled) { _ = try await store.insertRequests([request("new")], into: job, at: t0) }
            // Results of the live batch are still applied.
            let applied = try await store.applyResults(batch: batch.id, [ProviderResultLine(customID: "s1", outcome: .canceled)], at: t0)
            try check(applied == ApplySummary(finished: 1, retried: 0, ignored: 0), "no retry in a cancelled job: \(applied)")
            _ = try await store.finishReconcile(batch: batch.id, missing: .canceled, at: t0)
            let final = try await store.requestCounts(job: job)
            try check(final[.canceled] == 4 && final.terminal == 4, "all canceled: \(final)")
        }),
        ("usageAndInFlightByKey", { store in
            let job = try await seeded(store, ["u1", "u2", "u3"])
            _ = try await store.insertRequests([request("e1", embed)], into: job, at: t0)
            let none = try await store.inFlightByKey()
            try check(none.isEmpty, "nothing in flight: \(none)")
            let batch = try await submitAll(store, job, pid: "bu")
            let flying = try await store.inFlightByKey()
            try check(flying == [chat: 3], "in flight \(flying)")
            _ = try await store.applyResults(batch: batch.id, [
                ProviderResultLine(customID: "u1", outcome: .succeeded(body: [], usage: TokenUsage(inputTokens: 10, outputTokens: 3))),
                ProviderResultLine(customID: "u2", outcome: .succeeded(body: [], usage: TokenUsage(inputTokens: 5, outputTokens: 1))),
                ProviderResultLine(customID: "u3", outcome: .succeeded(body: [], usage: nil)),
            ], at: t0)
            let usage = try await store.tokenUsage(job: job)
            try check(usage == TokenUsage(inputTokens: 15, outputTokens: 4), "usage \(usage)")
            let u1 = try await store.request(job: job, customID: "u1")
            try check(u1?.usage == TokenUsage(inputTokens: 10, outputTokens: 3), "u1 usage")
            let after = try await store.inFlightByKey()
            try check(after.isEmpty, "nothing in flight after results: \(after)")
        }),
        ("bulkInsertAndClaimInChunks", { store in
            let job = JobID("bulk")
            _ = try await store.createJob(NewJob(id: job, provider: .openai), at: t0)
            var inserted = 0
            for chunk in stride(from: 0, to: 20_000, by: 5_000) {
                let rows = (chunk..<chunk + 5_000).map { request("r\($0)", $0 % 2 == 0 ? chat : embed) }
                inserted += try await store.insertRequests(rows, into: job, at: t0).inserted
            }
            try check(inserted == 20_000, "inserted \(inserted)")
            let candidates = try await store.pendingCandidates(job: job, key: chat, limit: 7_000)
            try check(candidates.count == 7_000, "candidates \(candidates.count)")
            let batch = try await store.claimBatch(BatchClaim(jobID: job, key: chat, requestIDs: candidates.map(\.id)), at: t0)
            try check(batch?.requestCount == 7_000, "claimed \(String(describing: batch?.requestCount))")
            var seen = 0
            var after: Int64? = nil
            while true {
                let page = try await store.requestLines(inBatch: batch!.id, afterID: after, limit: 2_000)
                if page.isEmpty { break }
                seen += page.count
                after = page.last!.id
            }
            try check(seen == 7_000, "paged lines \(seen)")
            let counts = try await store.requestCounts(job: job)
            try check(counts[.packed] == 7_000 && counts[.pending] == 13_000, "counts \(counts)")
        }),
    ]
}

/// A contract case failed: what was expected, and the line in ``JobStoreContract`` that checked it.
public struct JobStoreContractFailure: Error, CustomStringConvertible {
    public var message: String
    public var line: Int
    public var description: String { "JobStoreContract line \(line): \(message)" }
}
