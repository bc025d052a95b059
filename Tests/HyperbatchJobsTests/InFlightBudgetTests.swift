import HyperbatchJobs
import Testing

@Suite struct InFlightBudgetTests {
    @Test("token estimate: bytes/4 rounded up plus the body's output cap, else the default")
    func tokenEstimate() {
        let e = RequestTokenEstimate(bytesPerToken: 4, defaultMaxOutputTokens: 7)
        let withCap = Array(#"{"model":"m","max_tokens":120}"#.utf8)  // 30 bytes → 8 tokens
        #expect(withCap.count == 30)
        #expect(e.tokens(body: withCap) == 8 + 120)
        let completion = Array(#"{"model":"m","max_completion_tokens":5}"#.utf8)  // 39 bytes → 10
        #expect(e.tokens(body: completion) == 10 + 5)
        let output = Array(#"{"max_output_tokens":9,"model":"m"}"#.utf8)  // 35 bytes → 9
        #expect(e.tokens(body: output) == 9 + 9)
        let none = Array(#"{"model":"m"}"#.utf8)  // 13 bytes → 4
        #expect(e.tokens(body: none) == 4 + 7)
        let nested = Array(#"{"model":"m","x":{"max_tokens":99}}"#.utf8)  // only top-level caps count; 35 bytes → 9
        #expect(e.tokens(body: nested) == 9 + 7)
        let notNumber = Array(#"{"model":"m","max_tokens":"lots"}"#.utf8)  // 33 bytes → 9
        #expect(e.tokens(body: notNumber) == 9 + 7)
    }

    @Test("admit: the longest prefix within both limits")
    func admit() {
        let b = InFlightBudget(maxRequests: 5, maxTokens: 100)
        #expect(b.admit([30, 30, 30, 30], inFlightRequests: 0, inFlightTokens: 0) == 3)
        #expect(b.admit([30, 30, 30, 30], inFlightRequests: 1, inFlightTokens: 40) == 2)
        #expect(b.admit([10, 10, 10, 10, 10, 10], inFlightRequests: 2, inFlightTokens: 0) == 3)  // request limit
        #expect(b.admit([30, 80, 10], inFlightRequests: 0, inFlightTokens: 0) == 1)  // stops at the first that does not fit
        #expect(b.admit([10], inFlightRequests: 5, inFlightTokens: 0) == 0)
        #expect(b.admit([10], inFlightRequests: 1, inFlightTokens: 100) == 0)
        #expect(b.admit([], inFlightRequests: 0, inFlightTokens: 0) == 0)
    }

    @Test("admit: one over-budget request goes alone when nothing is in flight, never beside others")
    func oversized() {
        let b = InFlightBudget(maxRequests: 10, maxTokens: 100)
        #expect(b.admit([500, 10], inFlightRequests: 0, inFlightTokens: 0) == 1)
        #expect(b.admit([500], inFlightRequests: 1, inFlightTokens: 1) == 0)
        #expect(b.admit([10, 500], inFlightRequests: 0, inFlightTokens: 0) == 1)
    }

    @Test("no token limit: only the request count matters")
    func requestsOnly() {
        let b = InFlightBudget(maxRequests: 3)
        #expect(b.admit([1_000_000, 1_000_000, 1_000_000, 1], inFlightRequests: 0, inFlightTokens: 0) == 3)
        #expect(b.admit([1], inFlightRequests: 4, inFlightTokens: 0) == 0)
    }

    @Test("per-model budgets override the default")
    func perModel() {
        var c = PipelineConfiguration()
        c.inFlightBudget = InFlightBudget(maxRequests: 10)
        c.inFlightBudgetByModel["gpt-4o"] = InFlightBudget(maxRequests: 2, maxTokens: 50)
        #expect(c.budget(for: CompatibilityKey(provider: .openai, endpoint: "/v1/chat/completions", model: "gpt-4o")) == InFlightBudget(maxRequests: 2, maxTokens: 50))
        #expect(c.budget(for: CompatibilityKey(provider: .openai, endpoint: "/v1/chat/completions", model: "gpt-4o-mini")).maxRequests == 10)
        c.maxInFlightPerKey = 7
        #expect(c.inFlightBudget.maxRequests == 7)
    }
}
