import ArgumentParser
import Foundation
import HyperbatchJobs
import HyperbatchSQLite
import Logging

/// `hyperbatch run FILE`: ingest a JSONL file into a job, run it until every request is done, write the results.
/// Running the same command again with the same store resumes that job instead of starting over.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Ingest a JSONL file, run it through a provider's batch API until done, and write the results."
    )

    @Argument(help: "JSONL input: OpenAI batch lines {custom_id, method, url, body} or Anthropic lines {custom_id, params}.")
    var file: String
    @Option(help: "openai | anthropic | emulator (an in-process emulator, driven through the OpenAI or Anthropic client by the file's format).")
    var provider: String
    @Option(help: "Provider base URL (e.g. a running `hyperbatch emulator`).") var baseURL: String?
    @Option(help: "Store: a SQLite file path, or postgres://user@host:port/db[?sslmode=…&sslrootcert=PATH] (libpq meanings; PGPASSWORD, PGSSLMODE, PGSSLROOTCERT).") var store: String = JobCLI.defaultStore
    @Option(help: "Results file (JSONL, one line per custom_id). Default: FILE.results.jsonl") var output: String?
    @Option(help: "Job id (default: derived from the file path, so a rerun resumes).") var job: String?
    @Option(help: "Attempts per request for expired/cancelled/retryable outcomes.") var maxAttempts: Int = 3
    @Flag(help: "Reject the whole file when any line is bad.") var strict = false
    @Flag(help: "Print a JSON summary instead of text.") var json = false
    @Flag(help: "Log pipeline steps to stderr.") var verbose = false
    @Option(help: "Seconds before the first poll of a batch; later polls back off up to 5 min (default 5; 0.2 with the emulator).")
    var pollInitial: Double?
    @Option(help: "Most requests per provider batch (default: the provider's limit).") var maxBatchRequests: Int?
    @Option(help: "Most provider batches uploaded/created, polled or reconciled at once (Anthropic creates stay one at a time).")
    var concurrentBatches: Int = 4

    func run() async throws {
        guard let choice = ProviderChoice(rawValue: provider) else {
            throw ValidationError("--provider must be one of: openai, anthropic, emulator")
        }
        var logger = Logger(label: "hyperbatch.run")
        logger.logLevel = verbose ? .info : .error
        let kind = choice.inputKind(file: file)
        let jobID = job.map(JobID.init(rawValue:)) ?? JobCLI.jobID(forFile: file, provider: kind)
        let store = try await JobCLI.openStore(self.store, leases: true)
        let existing = try await store.job(jobID)
        _ = try await store.createJob(NewJob(id: jobID, provider: kind, maxAttempts: maxAttempts, label: file), at: Date())

        var options = JobIngest.Options()
        options.strict = strict
        let report = try await JobIngest(store: store, parser: IngestLineParser(provider: kind), options: options)
            .ingest(fileAt: file, into: jobID)
        if !json {
            let resumed = existing == nil ? "" : " (resuming; \(report.alreadyStored) already stored)"
            FileHandle.standardError.write(Data("job \(jobID): \(report.lines) lines, \(report.inserted) new, \(report.errorCount) bad\(resumed)\n".utf8))
            for e in report.errors.prefix(20) { FileHandle.standardError.write(Data("  \(e)\n".utf8)) }
        }
        if report.rejected {
            throw ValidationFailure("--strict: \(report.errorCount) bad line(s); nothing was stored")
        }

        let progress = ProgressPrinter(enabled: !json)
        let pollInitial = self.pollInitial ?? (choice == .emulator ? 0.2 : 5)
        var pipeline = PipelineConfiguration()
        pipeline.poll = PollSchedule(initial: .milliseconds(Int64(pollInitial * 1000)), errorDelay: .milliseconds(Int64(pollInitial * 1000)))
        pipeline.idleDelay = min(.seconds(1), pipeline.poll.initial)
        pipeline.maxConcurrentBatches = max(1, concurrentBatches)
        let counts = try await JobCLI.withProvider(choice, kind: kind, baseURL: baseURL, maxBatchRequests: maxBatchRequests, logger: logger) { provider in
            try await JobCLI.withRunner(store: store, provider: provider, configuration: pipeline, logger: logger) { runner in
                try await runner.runUntilDone(jobID) { progress.update($0) }
            }
        }
        progress.finish()
        let output = self.output ?? (file + ".results.jsonl")
        let written = try await JobCLI.writeResults(store: store, job: jobID, to: output)
        let batches = try await store.batches(job: jobID).count
        if json {
            try JobCLI.printJSON(RunSummary(
                job: jobID.rawValue, lines: report.lines, badLines: report.errorCount, counts: JobCLI.countsJSON(counts),
                batches: batches, output: output, results: written))
        } else {
            print("job \(jobID): \(JobCLI.describe(counts)); \(batches) provider batches; \(written) results in \(output)")
        }
    }
}

/// The `--json` summary of `hyperbatch run`.
struct RunSummary: Encodable {
    var job: String
    var lines: Int
    var badLines: Int
    var counts: [String: Int]
    var batches: Int
    var output: String
    var results: Int
}
