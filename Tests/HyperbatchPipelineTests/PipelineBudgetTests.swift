import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import Synchronization
import Testing

/// The per-model in-flight budget: packing stops at the budget (requests and estimated tokens) and resumes as
/// batches end.
@Suite struct PipelineBudgetTests {
    typealias H = PipelineHarness

    /// Requests and estimated tokens in flight (`packed` + `submitted`) per model, read from the store.
    static func inFlight(store: SQLiteJobStore, job: JobID, estimate: RequestTokenEstimate) async throws -> [String: (requests: Int, tokens: Int)] {
        var result: [String: (requests: Int, tokens: Int)] = [:]
        for batch in try await store.liveBatches(job: job) {
            for line in try await store.requestLines(inBatch: batch.id, afterID: nil, limit: 10_000) {
                let tokens = estimate.tokens(body: line.line.body)
                let r = try #require(try await store.request(job: job, customID: line.line.customID))
                guard r.state == .packed || r.state == .submitted else { continue }
                result[batch.key.model, default: (0, 0)].requests += 1
                result[batch.key.model, default: (0, 0)].tokens += tokens
            }
        }
        return result
    }

    @Test("token and request budgets per model hold at every claim; the job still finishes", .timeLimit(.minutes(1)))
    func budgetsHoldAndResume() async throws {
        try await Emulator.withEmulator(configuration: H.emulatorConfiguration()) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("budget")
            try await H.makeJob(store: store, job: job, count: 120, maxAttempts: 1)  // 60 gpt-4o-mini, 60 gpt-4o
            let estimate = RequestTokenEstimate(bytesPerToken: 4, defaultMaxOutputTokens: 100)
            let perRequest = estimate.tokens(body: try #require(try await store.request(job: job, customID: "req-0")).body)
            #expect(perRequest > 100)
            // gpt-4o-mini: about 25 requests' worth of tokens; gpt-4o: 15 requests, any tokens.
            let tokenBudget = perRequest * 25 + perRequest / 2
            let peaks = Mutex<[String: (requests: Int, tokens: Int)]>([:])
            let violations = Mutex<[String]>([])
            let runner = H.runner(store: store, provider: H.provider(endpoint, maxRequests: 10), onPhase: { phase, _ in
                guard phase == .claimed else { return }
                let now = try await Self.inFlight(store: store, job: job, estimate: estimate)
                peaks.withLock { p in
                    for (model, v) in now {
                        p[model] = (max(p[model]?.requests ?? 0, v.requests), max(p[model]?.tokens ?? 0, v.tokens))
                    }
                }
                if let mini = now["gpt-4o-mini"], mini.tokens > tokenBudget { violations.withLock { $0.append("mini tokens \(mini.tokens)") } }
                if let big = now["gpt-4o"], big.requests > 15 { violations.withLock { $0.append("gpt-4o requests \(big.requests)") } }
            }) {
                $0.tokenEstimate = estimate
                $0.inFlightBudgetByModel["gpt-4o-mini"] = InFlightBudget(maxRequests: 1_000, maxTokens: tokenBudget)
                $0.inFlightBudgetByModel["gpt-4o"] = InFlightBudget(maxRequests: 15)
            }
            let counts = try await runner.runUntilDone(job: job)
            #expect(counts[.succeeded] == 120, "packing resumed as batches ended")
            #expect(violations.withLock { $0 }.isEmpty, "\(violations.withLock { $0 })")
            let peak = peaks.withLock { $0 }
            // The budgets were used, not just respected: 25 mini requests (3 batches: 10 + 10 + 5), 15 gpt-4o (10 + 5).
            #expect(peak["gpt-4o-mini"]?.requests == 25)
            #expect(peak["gpt-4o"]?.requests == 15)
            let batches = try await store.batches(job: job)
            #expect(batches.filter { $0.key.model == "gpt-4o-mini" }.allSatisfy { $0.requestCount <= 10 })
            #expect(batches.filter { $0.key.model == "gpt-4o-mini" }.contains { $0.requestCount == 5 }, "a batch was cut at the token budget")
        }
    }

    @Test("an over-budget request alone still goes when nothing is in flight", .timeLimit(.minutes(1)))
    func oversizedRequestIsNotStarved() async throws {
        try await Emulator.withEmulator(configuration: H.emulatorConfiguration()) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("budget-tiny")
            try await H.makeJob(store: store, job: job, count: 6, maxAttempts: 1)
            let runner = H.runner(store: store, provider: H.provider(endpoint, maxRequests: 10)) {
                $0.inFlightBudget = InFlightBudget(maxRequests: 100, maxTokens: 1)
            }
            #expect(try await runner.runUntilDone(job: job)[.succeeded] == 6)
            #expect(try await store.batches(job: job).allSatisfy { $0.requestCount == 1 })
        }
    }
}
