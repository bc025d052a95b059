import ArgumentParser
import Foundation
import HyperbatchJobs
import Logging
import ServiceLifecycle

/// `hyperbatch submit FILE`: ingest a JSONL file into a job without running it (a `worker` runs it).
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "submit", abstract: "Ingest a JSONL file into a job; a worker runs it.")

    @Argument(help: "JSONL input file.") var file: String
    @Option(help: "openai | anthropic | emulator.") var provider: String
    @Option(help: "SQLite store path.") var store: String = JobCLI.defaultStore
    @Option(help: "Job id (default: derived from the file path).") var job: String?
    @Option(help: "Attempts per request.") var maxAttempts: Int = 3
    @Flag(help: "Reject the whole file when any line is bad.") var strict = false

    func run() async throws {
        guard let choice = ProviderChoice(rawValue: provider) else { throw ValidationError("--provider must be openai, anthropic or emulator") }
        let kind = choice.inputKind(file: file)
        let jobID = job.map(JobID.init(rawValue:)) ?? JobCLI.jobID(forFile: file, provider: kind)
        let store = try JobCLI.openStore(self.store)
        _ = try await store.createJob(NewJob(id: jobID, provider: kind, maxAttempts: maxAttempts, label: file), at: Date())
        var options = JobIngest.Options()
        options.strict = strict
        let report = try await JobIngest(store: store, parser: IngestLineParser(provider: kind), options: options).ingest(fileAt: file, into: jobID)
        for e in report.errors.prefix(20) { FileHandle.standardError.write(Data("  \(e)\n".utf8)) }
        if report.rejected { throw ValidationFailure("--strict: \(report.errorCount) bad line(s); nothing was stored") }
        print("job \(jobID): \(report.inserted) new requests, \(report.alreadyStored) already stored, \(report.errorCount) bad lines")
    }
}

/// `hyperbatch worker`: runs the pipeline for every job of the store until SIGINT/SIGTERM.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Run every job of the store until SIGINT/SIGTERM.")

    @Option(help: "openai | anthropic | emulator (with --base-url, or in-process).") var provider: String
    @Option(help: "Provider base URL.") var baseURL: String?
    @Option(help: "SQLite store path.") var store: String = JobCLI.defaultStore
    @Option(help: "With --provider emulator: the API to drive, openai | anthropic.") var emulatorApi: String = "openai"

    func run() async throws {
        guard let choice = ProviderChoice(rawValue: provider) else { throw ValidationError("--provider must be openai, anthropic or emulator") }
        guard let api = ProviderKind(rawValue: emulatorApi) else { throw ValidationError("--emulator-api must be openai or anthropic") }
        var logger = Logger(label: "hyperbatch.worker")
        logger.logLevel = .info
        let store = try JobCLI.openStore(self.store)
        try await JobCLI.withProvider(choice, kind: choice == .emulator ? api : choice.kind, baseURL: baseURL, logger: logger) { provider in
            try await JobCLI.withRunner(store: store, provider: provider, configuration: PipelineConfiguration(), logger: logger) { runner in
                let group = ServiceGroup(configuration: .init(
                    services: [RunnerService(runner: runner)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                try await group.run()
            }
        }
    }
}

/// The type-erased runner as a `Service`.
struct RunnerService: Service {
    let runner: AnyJobRunner
    func run() async throws { try await runner.run() }
}
