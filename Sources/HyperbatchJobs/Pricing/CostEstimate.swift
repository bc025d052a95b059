/// An *estimate* of what a job's known token usage costs at batch pricing and what it saves against synchronous
/// pricing, from a ``ModelPricing`` table. Models without a price are listed in ``unknownModels`` and left out of
/// the dollar figures (never guessed).
public struct CostEstimate: Sendable, Hashable, Codable {
    /// Cost of the priced usage at synchronous prices, in dollars.
    public var synchronousUSD: Double
    /// Cost of the priced usage at batch prices, in dollars.
    public var batchUSD: Double
    /// Tokens that were priced.
    public var pricedUsage: TokenUsage
    /// Models that reported usage but have no price ("unknown price"), sorted.
    public var unknownModels: [String]

    /// Synchronous minus batch cost, in dollars.
    public var savedUSD: Double { synchronousUSD - batchUSD }
    /// Whether any usage was priced.
    public var hasPricedUsage: Bool { pricedUsage.inputTokens + pricedUsage.outputTokens > 0 }

    /// Creates an estimate.
    public init(synchronousUSD: Double, batchUSD: Double, pricedUsage: TokenUsage, unknownModels: [String]) {
        self.synchronousUSD = synchronousUSD
        self.batchUSD = batchUSD
        self.pricedUsage = pricedUsage
        self.unknownModels = unknownModels
    }

    /// Estimates from token usage per model (models with zero usage are ignored).
    public static func estimate(usageByModel: [String: TokenUsage], pricing: ModelPricing = .standard) -> CostEstimate {
        var sync = 0.0
        var priced = TokenUsage(inputTokens: 0, outputTokens: 0)
        var unknown: [String] = []
        for (model, usage) in usageByModel where usage.inputTokens + usage.outputTokens > 0 {
            guard let price = pricing.price(of: model) else {
                unknown.append(model)
                continue
            }
            sync += price.cost(of: usage)
            priced.inputTokens += usage.inputTokens
            priced.outputTokens += usage.outputTokens
        }
        return CostEstimate(synchronousUSD: sync, batchUSD: sync * pricing.batchDiscount, pricedUsage: priced, unknownModels: unknown.sorted())
    }

    /// A one-line description, e.g. `est. $1.23 saved vs synchronous ($1.23 batch vs $2.46 sync)`.
    public var summary: String {
        var parts: [String] = []
        if hasPricedUsage {
            parts.append("est. \(Self.dollars(savedUSD)) saved vs synchronous (\(Self.dollars(batchUSD)) batch vs \(Self.dollars(synchronousUSD)) sync)")
        }
        if !unknownModels.isEmpty { parts.append("unknown price: " + unknownModels.joined(separator: ", ")) }
        return parts.isEmpty ? "no token usage yet" : parts.joined(separator: "; ")
    }

    /// Dollars with 2 decimals, or 4 below one cent.
    static func dollars(_ value: Double) -> String {
        let digits = value != 0 && abs(value) < 0.01 ? 4 : 2
        var scaled = (abs(value) * pow10(digits)).rounded()
        let whole = Int(scaled / pow10(digits))
        scaled -= Double(whole) * pow10(digits)
        var fraction = String(Int(scaled))
        while fraction.count < digits { fraction = "0" + fraction }
        return (value < 0 ? "-$" : "$") + "\(whole).\(fraction)"
    }

    private static func pow10(_ n: Int) -> Double { (0..<n).reduce(1.0) { r, _ in r * 10 } }
}
