import ArgumentParser
import Foundation
import Hyperbatch
import Synchronization

/// `hyperbatch bench failures`: bisection with k poison items per batch vs a clean run vs a linear fallback, same run.
struct BenchFailuresCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failures",
        abstract: "Items/s and extra handler calls with k poison items per batch: bisect vs clean vs linear fallback.",
        discussion: """
            The handler sleeps 50 µs + 1 µs per item per call, as a remote call would (--spin burns the time on the CPU \
            instead). By default each split's fanout is chosen from the executor's latency fit (FailurePolicy's \
            adaptiveFanout, at most --max-fanout parts); --fanout F splits in F parts always. Build in release: swift run -c release hyperbatch bench failures [--poison K] [--json]
            """)

    @Option(help: "Poison items per batch.") var poison: Int = 1
    @Option(help: "Batches per case.") var batches: Int = 200
    @Option(help: "Items per batch.") var batchSize: Int = 256
    @Option(help: "Fixed handler cost per call, µs.") var callMicroseconds: Int = 50
    @Option(help: "Handler cost per item, µs.") var itemMicroseconds: Int = 1
    @Flag(help: "Run the parts of a split batch one after the other.") var sequentialBisection = false
    @Option(help: "Split a poison batch in this many parts always (default: chosen from the latency fit).") var fanout: Int?
    @Option(help: "The widest split the latency fit may choose.") var maxFanout: Int = AdaptiveFanout().maxFanout
    @Flag(help: "The handler spins its cost (CPU work) instead of sleeping (a remote call).") var spin = false

    var sleep: Bool { !spin }
    var effectiveFanout: Int { fanout ?? FailurePolicy().bisectionFanout }
    @Flag(help: "Print one JSON object.") var json = false

    struct CaseFigures: Encodable {
        var name: String
        var items: Int
        var seconds: Double
        var items_per_second: Double
        var handler_calls: Int
        var extra_calls_per_batch: Double
        var failed_items: Int
        /// Handler cost summed over every call (µs per batch): what one core spends, independent of machine load.
        var handler_us_per_batch: Double
        /// CPU time of the process (all threads, user + system) per batch: what the executor and runtime spend.
        var cpu_us_per_batch: Double
        /// What the executor learned (adaptive fanout): µs per item, per call, per further concurrent part.
        var learned_us: [String: Double]? = nil
    }

    /// Handler cost (µs) summed over calls since the last reset.
    static let handlerMicroseconds = Atomic<Int>(0)

    func run() async throws {
        guard poison >= 0, poison < batchSize, batches > 0, effectiveFanout >= 2, maxFanout >= 2 else {
            throw ValidationError("need 0 <= poison < batch-size, batches > 0, fanout >= 2 and max-fanout >= 2")
        }
        let inputs = Self.makeBatches(batches: batches, size: batchSize, poison: poison)
        let cost = (call: Duration.microseconds(callMicroseconds), item: Duration.microseconds(itemMicroseconds))
        let cleanInputs = inputs.map { $0.map { abs($0) } }
        let clean = await bisect(name: "clean", inputs: cleanInputs, cost: cost)
        let poisoned = await bisect(name: "bisect", inputs: inputs, cost: cost)
        let linear = await Self.linear(inputs: inputs, cost: cost, sleep: sleep)
        let vsClean = (poisoned.items_per_second / clean.items_per_second * 1000).rounded() / 1000
        let vsLinear = (poisoned.items_per_second / linear.items_per_second * 100).rounded() / 100
        if json {
            struct Report: Encodable {
                var batch_size, batches, poison_per_batch: Int
                var concurrent_bisection: Bool
                /// The fixed fanout (with adaptive_fanout: the one used until the latency fit exists).
                var fanout: Int
                var adaptive_fanout: Bool
                var max_fanout: Int
                var handler: String
                var clean, bisect, linear: CaseFigures
                var poison_vs_clean, poison_vs_linear: Double
                /// The same ratios from summed handler cost (one core, no load noise).
                var handler_cost_poison_vs_clean, handler_cost_poison_vs_linear: Double
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let report = Report(
                batch_size: batchSize, batches: batches, poison_per_batch: poison,
                concurrent_bisection: !sequentialBisection, fanout: effectiveFanout, adaptive_fanout: fanout == nil,
                max_fanout: maxFanout, handler: sleep ? "sleep" : "spin", clean: clean, bisect: poisoned, linear: linear,
                poison_vs_clean: vsClean, poison_vs_linear: vsLinear,
                handler_cost_poison_vs_clean: (clean.handler_us_per_batch / poisoned.handler_us_per_batch * 1000).rounded() / 1000,
                handler_cost_poison_vs_linear: (linear.handler_us_per_batch / poisoned.handler_us_per_batch * 100).rounded() / 100)
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            for f in [clean, poisoned, linear] {
                print(String(
                    format: "%-7@ %10.0f items/s  %6d calls  %6.1f extra calls/batch  %5d failed items  %8.1f handler µs/batch  %8.1f wall µs/batch  %8.1f cpu µs/batch",
                    f.name as NSString, f.items_per_second, f.handler_calls, f.extra_calls_per_batch, f.failed_items,
                    f.handler_us_per_batch, f.seconds * 1e6 / Double(batches), f.cpu_us_per_batch))
            }
            let split = fanout.map { "fanout \($0)" } ?? "adaptive fanout (2...\(maxFanout), \(effectiveFanout) until fitted)"
            print("handler \(sleep ? "sleep" : "spin"), \(split), \(sequentialBisection ? "sequential" : "concurrent") parts")
            print("poison_vs_clean: \(vsClean)  poison_vs_linear: \(vsLinear)")
        }
    }

    /// Batches of distinct positive ids; `poison` of each batch negated (positions from a fixed seed).
    static func makeBatches(batches: Int, size: Int, poison: Int) -> [[Int]] {
        var rng = SplitMix64(seed: 42)
        return (0..<batches).map { b in
            var batch = (0..<size).map { b * size + $0 + 1 }
            var positions = Set<Int>()
            while positions.count < poison { positions.insert(Int(rng.next() % UInt64(size))) }
            for p in positions { batch[p] = -batch[p] }
            return batch
        }
    }

    /// Spins for the handler's cost and throws when any input is poison (negative).
    static func handle(_ inputs: [Int], cost: (call: Duration, item: Duration), sleep: Bool) async throws -> [Result<
        Int, any Error
    >] {
        let clock = ContinuousClock()
        let total = cost.call + cost.item * inputs.count
        handlerMicroseconds.add(Int(total.components.seconds * 1_000_000 + total.components.attoseconds / 1_000_000_000_000), ordering: .relaxed)
        let end = clock.now.advanced(by: total)
        if sleep {
            try await clock.sleep(until: end, tolerance: .zero)
        } else {
            while clock.now < end {}
        }
        if let bad = inputs.first(where: { $0 < 0 }) { throw PoisonItem(id: bad) }
        return inputs.map { .success($0) }
    }

    struct PoisonItem: Error { var id: Int }

    func bisect(name: String, inputs: [[Int]], cost: (call: Duration, item: Duration)) async -> CaseFigures {
        var policy = FailurePolicy(retry: .none)
        policy.concurrentBisection = !sequentialBisection
        policy.bisectionFanout = effectiveFanout
        policy.adaptiveFanout = fanout == nil ? AdaptiveFanout(maxFanout: maxFanout) : nil
        let sleep = sleep
        let executor = BatchExecutor<String, Int, Int, ContinuousClock>(policy: policy, clock: ContinuousClock()) {
            _, batch in try await Self.handle(batch, cost: cost, sleep: sleep)
        }
        let clock = ContinuousClock()
        Self.handlerMicroseconds.store(0, ordering: .relaxed)
        let cpu = Self.cpuMicroseconds()
        let start = clock.now
        var failed = 0
        for batch in inputs {
            for result in await executor.execute(key: "bench", inputs: batch) {
                if case .failure = result { failed += 1 }
            }
        }
        let seconds = (clock.now - start).seconds
        let calls = executor.statistics.handlerCalls
        var figures = Self.figures(
            name: name, inputs: inputs, seconds: seconds, cpu: Self.cpuMicroseconds() - cpu, calls: calls, failed: failed)
        if fanout == nil, let costs = executor.learnedCosts(for: "bench") {
            let us = { (d: Duration) in (d.seconds * 1e7).rounded() / 10 }
            figures.learned_us = ["per_item": us(costs.perItem), "per_call": us(costs.perCall), "per_part": us(costs.perPart)]
        }
        return figures
    }

    /// One call per batch; when it throws, one call per item (tower-batch's fallback).
    static func linear(inputs: [[Int]], cost: (call: Duration, item: Duration), sleep: Bool) async -> CaseFigures {
        let clock = ContinuousClock()
        handlerMicroseconds.store(0, ordering: .relaxed)
        let cpu = cpuMicroseconds()
        let start = clock.now
        var calls = 0
        var failed = 0
        for batch in inputs {
            calls += 1
            do {
                _ = try await handle(batch, cost: cost, sleep: sleep)
            } catch {
                for item in batch {
                    calls += 1
                    do { _ = try await handle([item], cost: cost, sleep: sleep) } catch { failed += 1 }
                }
            }
            await Task.yield()
        }
        let seconds = (clock.now - start).seconds
        return figures(
            name: "linear", inputs: inputs, seconds: seconds, cpu: cpuMicroseconds() - cpu, calls: calls, failed: failed)
    }

    /// User + system CPU time of the process so far, µs.
    static func cpuMicroseconds() -> Int {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let user = Int(usage.ru_utime.tv_sec) * 1_000_000 + Int(usage.ru_utime.tv_usec)
        return user + Int(usage.ru_stime.tv_sec) * 1_000_000 + Int(usage.ru_stime.tv_usec)
    }

    static func figures(name: String, inputs: [[Int]], seconds: Double, cpu: Int, calls: Int, failed: Int) -> CaseFigures {
        let items = inputs.reduce(0) { $0 + $1.count }
        return CaseFigures(
            name: name, items: items, seconds: (seconds * 1e4).rounded() / 1e4,
            items_per_second: (Double(items) / seconds).rounded(), handler_calls: calls,
            extra_calls_per_batch: (Double(calls - inputs.count) / Double(inputs.count) * 10).rounded() / 10,
            failed_items: failed,
            handler_us_per_batch: (Double(handlerMicroseconds.load(ordering: .relaxed)) / Double(inputs.count) * 10).rounded() / 10,
            cpu_us_per_batch: (Double(cpu) / Double(inputs.count) * 10).rounded() / 10)
    }
}

/// A small seeded generator, so every run poisons the same positions.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
