import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import Testing

/// Usage per model from a real run, and the estimate `hyperbatch status` prints from it.
@Suite struct PipelineCostTests {
    typealias H = PipelineHarness

    @Test("usage per model sums to the job's usage; the estimate prices both models", .timeLimit(.minutes(1)))
    func usagePerModel() async throws {
        try await Emulator.withEmulator(configuration: H.emulatorConfiguration()) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("cost")
            try await H.makeJob(store: store, job: job, count: 40)
            let counts = try await H.runner(store: store, provider: H.provider(endpoint)).runUntilDone(job: job)
            #expect(counts[.succeeded] == 40)
            let total = try await store.tokenUsage(job: job)
            #expect(total.outputTokens > 0)
            let byModel = try await JobUsageByModel.usage(store: store, job: job, pageSize: 7)
            #expect(Set(byModel.keys) == ["gpt-4o-mini", "gpt-4o"])
            #expect(byModel.values.reduce(0) { $0 + $1.inputTokens } == total.inputTokens)
            #expect(byModel.values.reduce(0) { $0 + $1.outputTokens } == total.outputTokens)
            let estimate = CostEstimate.estimate(usageByModel: byModel)
            #expect(estimate.unknownModels.isEmpty)
            #expect(estimate.pricedUsage == total)
            let mini = try #require(byModel["gpt-4o-mini"]), big = try #require(byModel["gpt-4o"])
            let expected = (Double(mini.inputTokens) * 0.15 + Double(mini.outputTokens) * 0.60
                + Double(big.inputTokens) * 2.50 + Double(big.outputTokens) * 10) / 1_000_000
            #expect(abs(estimate.synchronousUSD - expected) < 1e-12)
            #expect(abs(estimate.savedUSD - expected / 2) < 1e-12)
        }
    }
}
