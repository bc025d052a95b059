/// An estimate of the tokens one request puts in a provider's queue: its body bytes / ``bytesPerToken`` (input) plus
/// its output cap (`max_tokens`, `max_completion_tokens` or `max_output_tokens` of the body, else
/// ``defaultMaxOutputTokens``). An upper-leaning estimate for budgets, not a tokenizer.
public struct RequestTokenEstimate: Sendable, Hashable {
    /// Bytes of JSON body counted as one input token (≥ 1).
    public var bytesPerToken: Int
    /// Output tokens assumed when the body names no cap.
    public var defaultMaxOutputTokens: Int

    /// Creates an estimate rule.
    public init(bytesPerToken: Int = 4, defaultMaxOutputTokens: Int = 0) {
        self.bytesPerToken = Swift.max(1, bytesPerToken)
        self.defaultMaxOutputTokens = Swift.max(0, defaultMaxOutputTokens)
    }

    /// The estimated tokens of a request with this JSON `body`.
    public func tokens(body: [UInt8]) -> Int {
        let input = (body.count + bytesPerToken - 1) / bytesPerToken
        return input + (Self.outputCap(body) ?? defaultMaxOutputTokens)
    }

    /// The body's top-level output cap, when it names one as a non-negative integer.
    static func outputCap(_ body: [UInt8]) -> Int? {
        body.withUnsafeBufferPointer { buffer -> Int? in
            guard let members = try? JSONScanner.members(of: buffer, in: 0..<buffer.count) else { return nil }
            for name in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
                guard let range = members.last(where: { $0.key == name })?.value else { continue }
                var value = 0
                for b in UnsafeBufferPointer(rebasing: buffer[range]) {
                    guard b >= UInt8(ascii: "0"), b <= UInt8(ascii: "9"), value < 100_000_000 else { return nil }
                    value = value * 10 + Int(b - UInt8(ascii: "0"))
                }
                return range.isEmpty ? nil : value
            }
            return nil
        }
    }
}

/// How much one compatibility key (one model of one provider and tenant) may have in the provider's queue: requests
/// and estimated tokens in flight (`packed` + `submitted`), so one job cannot clog the provider's enqueued limits.
public struct InFlightBudget: Sendable, Hashable {
    /// Most requests in flight.
    public var maxRequests: Int
    /// Most estimated tokens in flight (``RequestTokenEstimate``); nil for no token limit.
    public var maxTokens: Int?

    /// Creates a budget.
    public init(maxRequests: Int = 2_000_000, maxTokens: Int? = nil) {
        self.maxRequests = maxRequests
        self.maxTokens = maxTokens
    }

    /// How many of `candidates` (estimated tokens each, in packing order) may be enqueued now, given what is in
    /// flight: the longest prefix that stays within both limits. When nothing is in flight, the first candidate is
    /// admitted even if it alone exceeds the token limit, so an oversized request cannot block its key forever.
    public func admit(_ candidates: [Int], inFlightRequests: Int, inFlightTokens: Int) -> Int {
        let byCount = Swift.max(0, Swift.min(candidates.count, maxRequests - inFlightRequests))
        guard let maxTokens else { return byCount }
        var tokens = inFlightTokens
        var admitted = 0
        while admitted < byCount {
            let next = tokens + candidates[admitted]
            if next > maxTokens && !(admitted == 0 && inFlightRequests == 0 && inFlightTokens == 0) { break }
            tokens = next
            admitted += 1
        }
        return admitted
    }
}
