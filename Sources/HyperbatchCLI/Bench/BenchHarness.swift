import Foundation

/// Throughput of one benchmark case.
struct ThroughputFigures: Codable, Sendable {
    var name: String
    var submitters: Int
    var items: Int
    var seconds: Double
    var itemsPerSecond: Double { Double(items) / seconds }
    var nanosecondsPerItem: Double { seconds * 1e9 / Double(items) }
    var meanBatchSize: Double?

    enum CodingKeys: String, CodingKey { case name, submitters, items, seconds, items_per_second, ns_per_item, mean_batch_size }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(submitters, forKey: .submitters)
        try c.encode(items, forKey: .items)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(itemsPerSecond.rounded(), forKey: .items_per_second)
        try c.encode((nanosecondsPerItem * 10).rounded() / 10, forKey: .ns_per_item)
        try c.encodeIfPresent(meanBatchSize.map { ($0 * 10).rounded() / 10 }, forKey: .mean_batch_size)
    }

    init(name: String, submitters: Int, items: Int, seconds: Double, meanBatchSize: Double? = nil) {
        self.name = name
        self.submitters = submitters
        self.items = items
        self.seconds = seconds
        self.meanBatchSize = meanBatchSize
    }

    init(from decoder: any Decoder) throws { fatalError("not decoded") }
}

/// Added latency of a lone item (sequential submits), in microseconds.
struct LatencyFigures: Codable, Sendable {
    var maxWaitMilliseconds: Int
    var samples: Int
    var p50Microseconds: Double
    var p99Microseconds: Double
    var maxMicroseconds: Double

    enum CodingKeys: String, CodingKey {
        case maxWaitMilliseconds = "max_wait_ms", samples, p50Microseconds = "added_p50_us",
            p99Microseconds = "added_p99_us", maxMicroseconds = "added_max_us"
    }
}

enum BenchHarness {
    /// Runs `submitters` tasks, each awaiting `submit` in a loop, until `totalItems` items are answered.
    static func measure(
        name: String, submitters: Int, totalItems: Int, submit: @escaping @Sendable (Int) async throws -> Void
    ) async throws -> ThroughputFigures {
        let perTask = max(1, totalItems / submitters)
        let clock = ContinuousClock()
        let start = clock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<submitters {
                group.addTask {
                    for i in 0..<perTask { try await submit(t &* perTask &+ i) }
                }
            }
            try await group.waitForAll()
        }
        let elapsed = clock.now - start
        return ThroughputFigures(name: name, submitters: submitters, items: perTask * submitters, seconds: elapsed.seconds)
    }

    /// Submits one item at a time and reports how much longer than `maxWait` each took.
    static func loneItemLatency(
        maxWait: Duration, samples: Int, submit: @Sendable (Int) async throws -> Void
    ) async throws -> LatencyFigures {
        let clock = ContinuousClock()
        var added: [Double] = []
        added.reserveCapacity(samples)
        // Warm-up: the first timers of a process start threads and fill caches; they are not what is measured.
        for i in 0..<min(20, samples) { try await submit(-1 - i) }
        for i in 0..<samples {
            let start = clock.now
            try await submit(i)
            added.append(max(0, (clock.now - start - maxWait).seconds * 1e6))
        }
        added.sort()
        func percentile(_ p: Double) -> Double { added[min(added.count - 1, Int(Double(added.count) * p))] }
        return LatencyFigures(
            maxWaitMilliseconds: Int(maxWait.seconds * 1000), samples: samples,
            p50Microseconds: (percentile(0.50) * 10).rounded() / 10, p99Microseconds: (percentile(0.99) * 10).rounded() / 10,
            maxMicroseconds: ((added.last ?? 0) * 10).rounded() / 10)
    }
}

extension Duration {
    /// This duration in seconds, as a `Double`.
    var seconds: Double {
        let (s, attoseconds) = components
        return Double(s) + Double(attoseconds) / 1e18
    }
}
