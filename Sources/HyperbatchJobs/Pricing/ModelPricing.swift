/// Synchronous list prices of one model, in US dollars per million tokens.
public struct ModelPrice: Sendable, Hashable, Codable {
    /// $ per 1M input (prompt) tokens at synchronous pricing.
    public var inputPerMillion: Double
    /// $ per 1M output (completion) tokens at synchronous pricing.
    public var outputPerMillion: Double

    /// Creates a price.
    public init(inputPerMillion: Double, outputPerMillion: Double) {
        self.inputPerMillion = inputPerMillion
        self.outputPerMillion = outputPerMillion
    }

    /// The synchronous cost of `usage`, in dollars.
    public func cost(of usage: TokenUsage) -> Double {
        (Double(usage.inputTokens) * inputPerMillion + Double(usage.outputTokens) * outputPerMillion) / 1_000_000
    }
}

/// A small table of synchronous list prices per model, for *estimates* of what batch pricing saves.
///
/// The built-in ``standard`` table holds public list prices as of 2025 (they change; cached-input discounts, long
/// context tiers and regional prices are ignored). Batch APIs bill ``batchDiscount`` (50%) of the synchronous price.
/// A model is matched exactly or by its longest listed prefix followed by `-` (so `gpt-4o-mini-2024-07-18` is
/// priced as `gpt-4o-mini`); a model not in the table has no price, and estimates report it instead of guessing.
public struct ModelPricing: Sendable, Hashable {
    /// Prices by model name (or model family prefix).
    public var prices: [String: ModelPrice]
    /// Fraction of the synchronous price that batch requests cost (0.5 for both OpenAI and Anthropic).
    public var batchDiscount: Double

    /// Creates a table.
    public init(prices: [String: ModelPrice], batchDiscount: Double = 0.5) {
        self.prices = prices
        self.batchDiscount = batchDiscount
    }

    /// The price of `model`: exact match, else the longest listed prefix that is followed by `-`; nil when unknown.
    public func price(of model: String) -> ModelPrice? {
        if let exact = prices[model] { return exact }
        var best: (name: String, price: ModelPrice)?
        for (name, price) in prices where model.hasPrefix(name + "-") {
            if best == nil || name.count > best!.name.count { best = (name, price) }
        }
        return best?.price
    }

    /// Public synchronous list prices (USD per 1M tokens, input/output) of common OpenAI and Anthropic models, 2025.
    public static let standard = ModelPricing(prices: [
        // OpenAI
        "gpt-5": .init(inputPerMillion: 1.25, outputPerMillion: 10),
        "gpt-5-mini": .init(inputPerMillion: 0.25, outputPerMillion: 2),
        "gpt-5-nano": .init(inputPerMillion: 0.05, outputPerMillion: 0.40),
        "gpt-4.1": .init(inputPerMillion: 2, outputPerMillion: 8),
        "gpt-4.1-mini": .init(inputPerMillion: 0.40, outputPerMillion: 1.60),
        "gpt-4.1-nano": .init(inputPerMillion: 0.10, outputPerMillion: 0.40),
        "gpt-4o": .init(inputPerMillion: 2.50, outputPerMillion: 10),
        "gpt-4o-mini": .init(inputPerMillion: 0.15, outputPerMillion: 0.60),
        "o3": .init(inputPerMillion: 2, outputPerMillion: 8),
        "o3-mini": .init(inputPerMillion: 1.10, outputPerMillion: 4.40),
        "o4-mini": .init(inputPerMillion: 1.10, outputPerMillion: 4.40),
        "text-embedding-3-small": .init(inputPerMillion: 0.02, outputPerMillion: 0),
        "text-embedding-3-large": .init(inputPerMillion: 0.13, outputPerMillion: 0),
        // Anthropic
        "claude-opus-4": .init(inputPerMillion: 15, outputPerMillion: 75),
        "claude-opus-4-1": .init(inputPerMillion: 15, outputPerMillion: 75),
        "claude-sonnet-4": .init(inputPerMillion: 3, outputPerMillion: 15),
        "claude-sonnet-4-5": .init(inputPerMillion: 3, outputPerMillion: 15),
        "claude-haiku-4-5": .init(inputPerMillion: 1, outputPerMillion: 5),
        "claude-3-7-sonnet": .init(inputPerMillion: 3, outputPerMillion: 15),
        "claude-3-5-sonnet": .init(inputPerMillion: 3, outputPerMillion: 15),
        "claude-3-5-haiku": .init(inputPerMillion: 0.80, outputPerMillion: 4),
        "claude-3-haiku": .init(inputPerMillion: 0.25, outputPerMillion: 1.25),
    ])
}
