import ArgumentParser
import Foundation
import Hyperbatch

/// `hyperbatch bench intents`: the seed's intent pipeline. Producers emit game intents on an event bus (an
/// `AsyncStream`); `microBatches` groups them; each batch is coalesced (the last intent per entity wins) and applied by
/// the batch writer in one transaction. The baseline applies the same intents one `UPDATE` each through the same
/// client, in the same run.
struct BenchIntentsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "intents",
        abstract: "Intent pipeline: event bus → microBatches → batch writer, vs one UPDATE per intent."
    )

    @Option(help: "postgres://user@host:port/db or sqlite:PATH") var url: String
    @Option(help: "Intents through the pipeline.") var intents: Int = 50_000
    @Option(help: "Intents through the one-UPDATE-per-intent baseline.") var singleIntents: Int = 3_000
    @Option(help: "Concurrent producers on the bus.") var producers: Int = 4
    @Option(help: "Entities in the table.") var entities: Int = 100_000
    @Option(help: "microBatches maxCount.") var batchSize: Int = 857
    @Option(help: "microBatches maxWait in milliseconds.") var maxWaitMs: Int = 5
    @Option(name: .customLong("synchronous-commit"), help: "PostgreSQL synchronous_commit for the session (on/off).")
    var synchronousCommit: String?
    @Flag(help: "Print one JSON object.") var json = false

    /// A game intent: set an entity's hit points.
    struct Intent: Sendable {
        var entity: Int
        var hp: Int
    }

    struct Output: Codable {
        var intents: Int
        var producers: Int
        var batchSize: Int
        var batches: Int
        var averageBatch: Double
        var pipelineIntentsPerSecond: Double
        var singleIntentsPerSecond: Double
        var pipelineVsSingle: Double
    }

    func run() async throws {
        let backend: any DBBackend = url.hasPrefix("sqlite:")
            ? try SQLiteBackend(path: String(url.dropFirst("sqlite:".count)))
            : try PostgresBackend(url: url, synchronousCommit: synchronousCommit)
        let output = try await Self.measure(backend, options: self)
        if json {
            print(String(decoding: try JSONEncoder().encode(output), as: UTF8.self))
        } else {
            print("intents \(output.intents), producers \(output.producers), maxCount \(output.batchSize)")
            print(String(format: "one UPDATE per intent  %10.0f intents/s", output.singleIntentsPerSecond))
            print(String(format: "microBatches + writer  %10.0f intents/s  (%d batches, %.0f per batch)",
                         output.pipelineIntentsPerSecond, output.batches, output.averageBatch))
            print(String(format: "pipeline_vs_single     %10.1f×", output.pipelineVsSingle))
        }
    }

    private static func measure<B: DBBackend>(_ backend: B, options: BenchIntentsCommand) async throws -> Output {
        let entities = options.entities, intents = options.intents, producers = options.producers
        let single = options.singleIntents, batchSize = options.batchSize, maxWait = options.maxWaitMs
        return try await backend.run { db in
            try await db.reset(rows: entities)
            // Baseline: one UPDATE (one round trip, one commit) per intent.
            let singleStart = ContinuousClock.now
            for _ in 0..<single {
                let intent = Intent(entity: Int.random(in: 0..<entities), hp: Int.random(in: 0..<1000))
                try await db.singleUpdate(.init(id: intent.entity, hp: intent.hp, state: "{}", updatedAt: Date()))
            }
            let singleRate = Double(single) / (ContinuousClock.now - singleStart).seconds

            // Pipeline: producers → bus → microBatches → coalesce → writer.
            let (bus, emit) = AsyncStream.makeStream(of: Intent.self, bufferingPolicy: .unbounded)
            let start = ContinuousClock.now
            let share = intents / producers
            let producerTasks = (0..<producers).map { p in
                let count = p == producers - 1 ? intents - share * (producers - 1) : share
                return Task {
                    for _ in 0..<count {
                        emit.yield(Intent(entity: Int.random(in: 0..<entities), hp: Int.random(in: 0..<1000)))
                    }
                }
            }
            var applied = 0
            var batches = 0
            for try await batch in bus.microBatches(maxCount: batchSize, maxWait: .milliseconds(maxWait)) {
                var last: [Int: Intent] = [:]
                for intent in batch { last[intent.entity] = intent }
                let now = Date()
                try await db.batchUpdate(last.values.map { .init(id: $0.entity, hp: $0.hp, state: "{}", updatedAt: now) })
                applied += batch.count
                batches += 1
                if applied == intents { break }
            }
            for task in producerTasks { await task.value }
            emit.finish()
            let rate = Double(applied) / (ContinuousClock.now - start).seconds
            return Output(
                intents: applied, producers: producers, batchSize: batchSize, batches: batches,
                averageBatch: Double(applied) / Double(max(batches, 1)), pipelineIntentsPerSecond: rate,
                singleIntentsPerSecond: singleRate, pipelineVsSingle: rate / singleRate)
        }
    }
}
