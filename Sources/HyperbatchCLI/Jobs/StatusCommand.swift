import ArgumentParser
import Foundation
import HyperbatchJobs
import Logging

/// `hyperbatch status [JOB]`: counts per state, provider batches and the estimated cost saved of one job, or every job.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show jobs: requests per state, provider batches, estimated cost saved.",
        discussion: """
            The cost saved is an estimate: the token usage the provider reported for succeeded requests, priced with a \
            built-in table of synchronous list prices per model (2025; batch = 50% of synchronous). Models not in the \
            table are shown as "unknown price" and left out of the dollar figures.
            """)

    @Argument(help: "Job id (all jobs when omitted).") var job: String?
    @Option(help: "Store: a SQLite file path, or postgres://user@host:port/db[?sslmode=…&sslrootcert=PATH] (libpq meanings; PGPASSWORD, PGSSLMODE, PGSSLROOTCERT).") var store: String = JobCLI.defaultStore
    @Flag(help: "Print JSON.") var json = false

    struct JobStatus: Encodable {
        var job: String
        var provider: String
        var state: String
        var counts: [String: Int]
        var batches: [String: Int]
        var inputTokens: Int
        var outputTokens: Int
        /// Estimate against synchronous pricing (see the command's discussion); absent without token usage.
        var estimate: EstimateJSON?
    }

    struct EstimateJSON: Encodable {
        var synchronousUSD: Double
        var batchUSD: Double
        var savedUSD: Double
        var unknownPriceModels: [String]
    }

    func run() async throws {
        let store = try await JobCLI.openStore(self.store)
        let jobs = try await store.listJobs().filter { job == nil || $0.id.rawValue == job }
        if let job, jobs.isEmpty { throw ValidationFailure("no job \(job) in \(StoreLocation.redacted(self.store))") }
        var out: [JobStatus] = []
        for j in jobs {
            let counts = try await store.requestCounts(job: j.id)
            var batches: [String: Int] = [:]
            for b in try await store.batches(job: j.id) { batches[b.state.rawValue, default: 0] += 1 }
            let usage = try await store.tokenUsage(job: j.id)
            var estimate: CostEstimate?
            if usage.inputTokens + usage.outputTokens > 0 {
                estimate = CostEstimate.estimate(usageByModel: try await JobUsageByModel.usage(store: store, job: j.id))
            }
            out.append(JobStatus(
                job: j.id.rawValue, provider: j.provider.rawValue, state: j.state.rawValue, counts: JobCLI.countsJSON(counts),
                batches: batches, inputTokens: usage.inputTokens, outputTokens: usage.outputTokens,
                estimate: estimate.map {
                    EstimateJSON(synchronousUSD: $0.synchronousUSD, batchUSD: $0.batchUSD, savedUSD: $0.savedUSD, unknownPriceModels: $0.unknownModels)
                }))
            if !json {
                let b = batches.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                let cost = estimate.map { "; " + $0.summary } ?? ""
                print("\(j.id) [\(j.provider.rawValue), \(j.state.rawValue)]: \(JobCLI.describe(counts)); batches: \(b.isEmpty ? "none" : b); tokens in \(usage.inputTokens) out \(usage.outputTokens)\(cost)")
            }
        }
        if json { try JobCLI.printJSON(out) }
    }
}

/// `hyperbatch results JOB --output F`: one JSON line per custom_id.
struct ResultsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "results", abstract: "Write a job's results, one JSON line per custom_id.")

    @Argument(help: "Job id.") var job: String
    @Option(help: "Store: a SQLite file path, or postgres://user@host:port/db[?sslmode=…&sslrootcert=PATH] (libpq meanings; PGPASSWORD, PGSSLMODE, PGSSLROOTCERT).") var store: String = JobCLI.defaultStore
    @Option(help: "Output file.") var output: String

    func run() async throws {
        let store = try await JobCLI.openStore(self.store)
        guard try await store.job(JobID(job)) != nil else { throw ValidationFailure("no job \(job) in \(StoreLocation.redacted(self.store))") }
        let written = try await JobCLI.writeResults(store: store, job: JobID(job), to: output)
        print("\(written) results in \(output)")
    }
}

/// `hyperbatch cancel JOB`: cancel pending requests and the job's live provider batches.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cancel", abstract: "Cancel a job and its live provider batches.")

    @Argument(help: "Job id.") var job: String
    @Option(help: "Store: a SQLite file path, or postgres://user@host:port/db[?sslmode=…&sslrootcert=PATH] (libpq meanings; PGPASSWORD, PGSSLMODE, PGSSLROOTCERT).") var store: String = JobCLI.defaultStore
    @Option(help: "openai | anthropic | emulator (with --base-url).") var provider: String
    @Option(help: "Provider base URL.") var baseURL: String?

    func run() async throws {
        guard let choice = ProviderChoice(rawValue: provider) else { throw ValidationError("--provider must be openai, anthropic or emulator") }
        let store = try await JobCLI.openStore(self.store)
        guard let record = try await store.job(JobID(job)) else { throw ValidationFailure("no job \(job) in \(StoreLocation.redacted(self.store))") }
        try await JobCLI.withProvider(choice, kind: record.provider, baseURL: baseURL, logger: Logger(label: "hyperbatch.cancel")) { provider in
            try await JobCLI.withRunner(store: store, provider: provider, configuration: PipelineConfiguration(), logger: Logger(label: "hyperbatch.cancel")) {
                try await $0.cancel(JobID(job))
            }
        }
        print("job \(job) cancelled: \(JobCLI.describe(try await store.requestCounts(job: JobID(job))))")
    }
}
