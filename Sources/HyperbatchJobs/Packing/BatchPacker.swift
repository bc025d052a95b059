/// One provider batch to claim: requests of one key within every limit.
public struct PackPlan: Sendable, Hashable {
    public var key: CompatibilityKey
    /// Request ids in the order given.
    public var requestIDs: [Int64]
    /// Sum of their encoded sizes.
    public var byteCount: Int
    /// Whether another request would break a limit (count or bytes): a dispatcher may hold back plans that are not full.
    public var isFull: Bool

    /// Creates a plan.
    public init(key: CompatibilityKey, requestIDs: [Int64], byteCount: Int, isFull: Bool) {
        self.key = key
        self.requestIDs = requestIDs
        self.byteCount = byteCount
        self.isFull = isFull
    }
}

/// The result of packing: the plans, and the requests that can never fit (larger than ``ProviderLimits/maxBytes``).
public struct BatchPacking: Sendable, Hashable {
    public var plans: [PackPlan]
    public var oversized: [PackCandidate]

    /// Creates a packing.
    public init(plans: [PackPlan], oversized: [PackCandidate]) {
        self.plans = plans
        self.oversized = oversized
    }
}

/// Packs pending requests into provider batches: pure, no I/O.
public enum BatchPacker {
    /// Groups `candidates` by compatibility key (keys in first-seen order, requests in the order given) and cuts each
    /// group greedily into plans of at most `limits.maxRequests` requests and `limits.maxBytes` bytes. Every plan has
    /// one key, so one model (``ProviderLimits/oneModelPerBatch`` holds by construction); a request alone larger
    /// than `maxBytes` goes to ``BatchPacking/oversized``.
    public static func pack(_ candidates: [PackCandidate], limits: ProviderLimits) -> BatchPacking {
        let maxRequests = max(1, limits.maxRequests)
        var order: [CompatibilityKey] = []
        var groups: [CompatibilityKey: [PackCandidate]] = [:]
        var oversized: [PackCandidate] = []
        for c in candidates {
            if c.encodedSize > limits.maxBytes {
                oversized.append(c)
                continue
            }
            if groups[c.key] == nil { order.append(c.key) }
            groups[c.key, default: []].append(c)
        }
        var plans: [PackPlan] = []
        for key in order {
            var ids: [Int64] = []
            var bytes = 0
            for c in groups[key]! {
                if ids.count == maxRequests || bytes + c.encodedSize > limits.maxBytes {
                    plans.append(PackPlan(key: key, requestIDs: ids, byteCount: bytes, isFull: true))
                    ids = []
                    bytes = 0
                }
                ids.append(c.id)
                bytes += c.encodedSize
            }
            if !ids.isEmpty {
                plans.append(PackPlan(key: key, requestIDs: ids, byteCount: bytes, isFull: ids.count == maxRequests || bytes == limits.maxBytes))
            }
        }
        return BatchPacking(plans: plans, oversized: oversized)
    }
}
