import HyperbatchJobs
import Testing

@Suite struct CostEstimateTests {
    @Test("model lookup: exact, longest dated prefix, unknown")
    func lookup() {
        let p = ModelPricing.standard
        #expect(p.price(of: "gpt-4o-mini") == ModelPrice(inputPerMillion: 0.15, outputPerMillion: 0.60))
        #expect(p.price(of: "gpt-4o-mini-2024-07-18") == ModelPrice(inputPerMillion: 0.15, outputPerMillion: 0.60))
        #expect(p.price(of: "gpt-4o-2024-08-06") == ModelPrice(inputPerMillion: 2.50, outputPerMillion: 10))
        #expect(p.price(of: "claude-3-5-haiku-20241022") == ModelPrice(inputPerMillion: 0.80, outputPerMillion: 4))
        #expect(p.price(of: "gpt-4oX") == nil)
        #expect(p.price(of: "my-finetune") == nil)
    }

    @Test("estimate: batch is half of synchronous; unknown models are listed, not priced")
    func estimate() {
        let e = CostEstimate.estimate(usageByModel: [
            "gpt-4o-mini-2024-07-18": TokenUsage(inputTokens: 2_000_000, outputTokens: 1_000_000),  // 0.30 + 0.60
            "claude-3-5-haiku-20241022": TokenUsage(inputTokens: 1_000_000, outputTokens: 1_000_000),  // 0.80 + 4.00
            "my-finetune": TokenUsage(inputTokens: 500, outputTokens: 500),
            "gpt-4o": TokenUsage(inputTokens: 0, outputTokens: 0),  // no usage: ignored
        ])
        #expect(abs(e.synchronousUSD - 5.70) < 1e-9)
        #expect(abs(e.batchUSD - 2.85) < 1e-9)
        #expect(abs(e.savedUSD - 2.85) < 1e-9)
        #expect(e.pricedUsage == TokenUsage(inputTokens: 3_000_000, outputTokens: 2_000_000))
        #expect(e.unknownModels == ["my-finetune"])
        #expect(e.summary == "est. $2.85 saved vs synchronous ($2.85 batch vs $5.70 sync); unknown price: my-finetune")
    }

    @Test("only unknown models: no dollar figure is invented")
    func onlyUnknown() {
        let e = CostEstimate.estimate(usageByModel: ["emulated-model": TokenUsage(inputTokens: 10, outputTokens: 4)])
        #expect(!e.hasPricedUsage)
        #expect(e.savedUSD == 0)
        #expect(e.summary == "unknown price: emulated-model")
    }

    @Test("small amounts keep 4 decimals")
    func smallAmounts() {
        let e = CostEstimate.estimate(usageByModel: ["gpt-4o-mini": TokenUsage(inputTokens: 40_000, outputTokens: 0)])  // $0.006 sync
        #expect(e.summary == "est. $0.0030 saved vs synchronous ($0.0030 batch vs $0.0060 sync)")
    }
}
