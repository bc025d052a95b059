import ArgumentParser
import AsyncAlgorithms
import Foundation
import Hyperbatch
import Synchronization

/// `hyperbatch bench core`: the `Batcher` against a minimal floor and against `chunks(ofCount:or:)`, same run.
struct BenchCoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "core",
        abstract: "Items/s of the Batcher vs a minimal floor and vs chunks(ofCount:or:) with a timer; lone-item latency.",
        discussion: "Build in release: swift run -c release hyperbatch bench core [--json]")

    @Option(help: "Items per case.") var items: Int = 2_000_000
    @Option(help: "Concurrent submitters, comma separated.") var submitters: String = "1,64,10000"
    @Option(help: "Batch size.") var batchSize: Int = 256
    @Option(help: "Lone-item latency samples per max wait.") var latencySamples: Int = 200
    @Flag(help: "Print one JSON object.") var json = false
    @Option(help: "Cases to run, comma separated (for profiling one case; ratios need all three).")
    var cases: String = "floor,batcher,chunks"

    func run() async throws {
        let counts = submitters.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        var batcherFigures: [ThroughputFigures] = []
        var floorFigures: [ThroughputFigures] = []
        var chunksFigures: [ThroughputFigures] = []
        let selected = Set(cases.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        if selected != ["floor", "batcher", "chunks"] {
            // Profiling one case: no ratios, no latency.
            for n in counts {
                let total = n == 1 ? min(items, 500_000) : items
                if selected.contains("floor") {
                    print(Self.line(try await Self.floor(submitters: n, items: total, batchSize: batchSize)))
                }
                if selected.contains("batcher") {
                    print(Self.line(try await Self.batcher(submitters: n, items: total, batchSize: batchSize)))
                }
                if selected.contains("chunks") {
                    print(Self.line(
                        try await Self.chunks(submitters: n, items: min(total, 1_000_000), batchSize: batchSize)))
                }
            }
            return
        }
        for n in counts {
            let total = n == 1 ? min(items, 500_000) : items
            floorFigures.append(try await Self.floor(submitters: n, items: total, batchSize: batchSize))
            batcherFigures.append(try await Self.batcher(submitters: n, items: total, batchSize: batchSize))
            chunksFigures.append(try await Self.chunks(submitters: n, items: min(total, 1_000_000), batchSize: batchSize))
            if !json {
                for f in [floorFigures.last!, batcherFigures.last!, chunksFigures.last!] { print(Self.line(f)) }
            }
        }
        var latency: [LatencyFigures] = []
        for wait in [Duration.milliseconds(1), .milliseconds(10)] {
            // The same count for both waits: with 100 samples the p99 would be the maximum.
            latency.append(try await Self.loneItem(maxWait: wait, samples: latencySamples))
            if !json {
                let l = latency.last!
                print(String(
                    format: "lone item, fill-or-wait, maxWait %d ms: added p50 %.0f µs, p99 %.0f µs, max %.0f µs (%d samples)",
                    l.maxWaitMilliseconds, l.p50Microseconds, l.p99Microseconds, l.maxMicroseconds, l.samples))
            }
        }
        var vsFloor: [String: Double] = [:]
        var vsChunks: [String: Double] = [:]
        for (i, n) in counts.enumerated() {
            vsFloor["\(n)"] = (batcherFigures[i].itemsPerSecond / floorFigures[i].itemsPerSecond * 100).rounded() / 100
            vsChunks["\(n)"] = (batcherFigures[i].itemsPerSecond / chunksFigures[i].itemsPerSecond * 10).rounded() / 10
        }
        if json {
            struct Report: Encodable {
                var batcher, floor, chunks: [ThroughputFigures]
                var batcher_vs_floor, batcher_vs_chunks: [String: Double]
                var lone_item_latency: [LatencyFigures]
                var batch_size: Int
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let report = Report(
                batcher: batcherFigures, floor: floorFigures, chunks: chunksFigures, batcher_vs_floor: vsFloor,
                batcher_vs_chunks: vsChunks, lone_item_latency: latency, batch_size: batchSize)
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("batcher_vs_floor: \(vsFloor.sorted { Int($0.key)! < Int($1.key)! })")
            print("batcher_vs_chunks: \(vsChunks.sorted { Int($0.key)! < Int($1.key)! })")
        }
    }

    static func line(_ f: ThroughputFigures) -> String {
        String(
            format: "%-8@ submitters %6d: %10.0f items/s %8.1f ns/item  mean batch %@", f.name as NSString, f.submitters,
            f.itemsPerSecond, f.nanosecondsPerItem, (f.meanBatchSize.map { String(format: "%.1f", $0) } ?? "-") as NSString)
    }

    static func floor(submitters: Int, items: Int, batchSize: Int) async throws -> ThroughputFigures {
        let floor = FloorBatcher(maxBatchSize: batchSize)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await floor.run() }
            var f = try await BenchHarness.measure(name: "floor", submitters: submitters, totalItems: items) { x in
                _ = await floor.submit(x)
            }
            floor.close()
            try await group.waitForAll()
            f.meanBatchSize = floor.meanBatchSize
            return f
        }
    }

    static func batcher(submitters: Int, items: Int, batchSize: Int) async throws -> ThroughputFigures {
        let batches = Atomic<Int>(0)
        let count = Atomic<Int>(0)
        var configuration = BatchConfiguration(maxBatchSize: batchSize, maxWait: .milliseconds(10), flushPolicy: .eager)
        configuration.maxPendingItems = max(10_000, submitters * 2)
        configuration.maxTotalPendingItems = configuration.maxPendingItems
        configuration.maxConcurrentBatches = 1
        var figures = try await Batcher<String, Int, Int>.withBatcher(
            configuration: configuration,
            handler: { _, inputs in
                batches.add(1, ordering: .relaxed)
                count.add(inputs.count, ordering: .relaxed)
                return inputs.map { .success($0) }
            }
        ) { batcher in
            try await BenchHarness.measure(name: "batcher", submitters: submitters, totalItems: items) { x in
                _ = try await batcher.submit(x, key: "bench")
            }
        }
        let b = batches.load(ordering: .relaxed)
        figures.meanBatchSize = b == 0 ? nil : Double(count.load(ordering: .relaxed)) / Double(b)
        return figures
    }

    /// `chunks(ofCount:or:)` with a 10 ms timer, fed through an `AsyncStream` (throughput only: no per-item replies).
    static func chunks(submitters: Int, items: Int, batchSize: Int) async throws -> ThroughputFigures {
        let perTask = max(1, items / submitters)
        let total = perTask * submitters
        let (stream, continuation) = AsyncStream<Int>.makeStream(bufferingPolicy: .unbounded)
        let clock = ContinuousClock()
        let start = clock.now
        let chunkCount = try await withThrowingTaskGroup(of: Int.self) { group in
            group.addTask {
                var received = 0
                var chunks = 0
                for await chunk in stream.chunks(ofCount: batchSize, or: .repeating(every: .milliseconds(10))) {
                    received += chunk.count
                    chunks += 1
                    if received >= total { break }
                }
                return chunks
            }
            for t in 0..<submitters {
                group.addTask {
                    for i in 0..<perTask {
                        continuation.yield(t &* perTask &+ i)
                        if i & 63 == 63 { await Task.yield() }
                    }
                    return 0
                }
            }
            var chunks = 0
            for try await c in group { chunks += c }
            continuation.finish()
            return chunks
        }
        let seconds = (clock.now - start).seconds
        return ThroughputFigures(
            name: "chunks", submitters: submitters, items: total, seconds: seconds,
            meanBatchSize: Double(total) / Double(max(chunkCount, 1)))
    }

    static func loneItem(maxWait: Duration, samples: Int) async throws -> LatencyFigures {
        try await Batcher<String, Int, Int>.withBatcher(
            configuration: BatchConfiguration(maxBatchSize: 256, maxWait: maxWait, flushPolicy: .fillOrWait),
            allOrNothing: { _, inputs in inputs }
        ) { batcher in
            try await BenchHarness.loneItemLatency(maxWait: maxWait, samples: samples) { x in
                _ = try await batcher.submit(x, key: "lone")
            }
        }
    }
}
