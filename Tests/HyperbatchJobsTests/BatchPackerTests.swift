import HyperbatchJobs
import Testing

@Suite("BatchPacker")
struct BatchPackerTests {
    let chat = CompatibilityKey(provider: .openai, endpoint: "/v1/chat/completions", model: "gpt-4o-mini")
    let chat2 = CompatibilityKey(provider: .openai, endpoint: "/v1/chat/completions", model: "gpt-4o")
    let claude = CompatibilityKey(provider: .anthropic, endpoint: "/v1/messages", model: "claude-haiku")

    func candidates(_ n: Int, _ key: CompatibilityKey, size: Int = 10, from: Int64 = 0) -> [PackCandidate] {
        (0..<n).map { PackCandidate(id: from + Int64($0), key: key, encodedSize: size) }
    }

    @Test("cuts at the request count limit")
    func countLimit() {
        let limits = ProviderLimits(maxRequests: 4, maxBytes: 1_000, oneModelPerBatch: true, restrictedCustomIDs: false)
        let packing = BatchPacker.pack(candidates(10, chat), limits: limits)
        #expect(packing.plans.map(\.requestIDs.count) == [4, 4, 2])
        #expect(packing.plans.map(\.isFull) == [true, true, false])
        #expect(packing.plans.flatMap(\.requestIDs) == Array(0..<10))
        #expect(packing.oversized.isEmpty)
    }

    @Test("cuts at the byte limit, never above it")
    func byteLimit() {
        let limits = ProviderLimits(maxRequests: 100, maxBytes: 25, oneModelPerBatch: true, restrictedCustomIDs: false)
        let sizes = [10, 10, 10, 5, 20, 25, 1]
        let input = sizes.enumerated().map { PackCandidate(id: Int64($0.offset), key: chat, encodedSize: $0.element) }
        let packing = BatchPacker.pack(input, limits: limits)
        #expect(packing.plans.map(\.requestIDs) == [[0, 1], [2, 3], [4], [5], [6]])
        #expect(packing.plans.map(\.byteCount) == [20, 15, 20, 25, 1])
        #expect(packing.plans.allSatisfy { $0.byteCount <= 25 })
    }

    @Test("one model per OpenAI batch: keys never mix")
    func oneModelPerBatch() {
        let limits = ProviderLimits(maxRequests: 3, maxBytes: 1_000, oneModelPerBatch: true, restrictedCustomIDs: false)
        var input: [PackCandidate] = []
        for i in 0..<8 { input.append(PackCandidate(id: Int64(i), key: i % 2 == 0 ? chat : chat2, encodedSize: 1)) }
        let packing = BatchPacker.pack(input, limits: limits)
        #expect(packing.plans.map(\.key) == [chat, chat, chat2, chat2])
        #expect(packing.plans.map(\.requestIDs) == [[0, 2, 4], [6], [1, 3, 5], [7]])
        for plan in packing.plans {
            let models = Set(plan.requestIDs.map { input[Int($0)].key.model })
            #expect(models.count == 1)
        }
    }

    @Test("a request larger than the byte limit is set aside")
    func oversized() {
        let limits = ProviderLimits(maxRequests: 10, maxBytes: 50, oneModelPerBatch: false, restrictedCustomIDs: true)
        let input = [
            PackCandidate(id: 1, key: claude, encodedSize: 30), PackCandidate(id: 2, key: claude, encodedSize: 51),
            PackCandidate(id: 3, key: claude, encodedSize: 20),
        ]
        let packing = BatchPacker.pack(input, limits: limits)
        #expect(packing.plans.map(\.requestIDs) == [[1, 3]])
        #expect(packing.plans.first?.isFull == true)
        #expect(packing.oversized.map(\.id) == [2])
    }

    @Test("the real limits hold: 50,000 for OpenAI, 100,000 for Anthropic")
    func realLimits() {
        let openAI = BatchPacker.pack(candidates(120_001, chat, size: 100), limits: .openAI)
        #expect(openAI.plans.map(\.requestIDs.count) == [50_000, 50_000, 20_001])
        let anthropic = BatchPacker.pack(candidates(120_001, claude, size: 100), limits: .anthropic)
        #expect(anthropic.plans.map(\.requestIDs.count) == [100_000, 20_001])
        let bigLines = BatchPacker.pack(candidates(5, chat, size: 60 * 1024 * 1024), limits: .openAI)
        #expect(bigLines.plans.map(\.requestIDs.count) == [3, 2])
    }

    @Test("empty input, no plans")
    func empty() {
        #expect(BatchPacker.pack([], limits: .openAI) == BatchPacking(plans: [], oversized: []))
    }
}
