import ArgumentParser
import Foundation
import HyperbatchJobs
import HyperbatchPostgres
import HyperbatchSQLite
import Logging
import PostgresNIO
import ServiceLifecycle

/// `hyperbatch submit FILE`: ingest a JSONL file into a job without running it (a `worker` runs it).
struct SubmitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "submit", abstract: "Ingest a JSONL file into a job; a worker runs it.")

    @Argument(help: "JSONL input file.") var file: String
    @Option(help: "openai | anthropic | emulator.") var provider: String
    @Option(help: "Store: a SQLite file path, or postgres://user@host:port/db[?sslmode=…&sslrootcert=PATH] (libpq meanings; PGPASSWORD, PGSSLMODE, PGSSLROOTCERT).") var store: String = JobCLI.defaultStore
    @Option(help: "Job id (default: derived from the file path).") var job: String?
    @Option(help: "Attempts per request.") var maxAttempts: Int = 3
    @Flag(help: "Reject the whole file when any line is bad.") var strict = false

    func run() async throws {
        guard let choice = ProviderChoice(rawValue: provider) else { throw ValidationError("--provider must be openai, anthropic or emulator") }
        let kind = choice.inputKind(file: file)
        let jobID = job.map(JobID.init(rawValue:)) ?? JobCLI.jobID(forFile: file, provider: kind)
        let store = try await JobCLI.openStore(self.store)
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
///
/// With a PostgreSQL store, several workers (on several machines) share the jobs: each batch is leased to one
/// worker at a time; the `PostgresClient`, the `WorkerLease` and the runner run in one `ServiceGroup`, so a worker
/// whose lease renewal keeps failing stops and exits.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "worker", abstract: "Run every job of the store until SIGINT/SIGTERM.")

    @Option(help: "openai | anthropic | emulator (with --base-url, or in-process).") var provider: String
    @Option(help: "Provider base URL.") var baseURL: String?
    @Option(help: "Store: a SQLite file path, or postgres://user@host:port/db[?sslmode=…&sslrootcert=PATH] (libpq meanings; PGPASSWORD, PGSSLMODE, PGSSLROOTCERT).") var store: String = JobCLI.defaultStore
    @Option(help: "Seconds before the first poll of a batch; later polls back off up to 5 min (default 5; 0.2 with the emulator).")
    var pollInitial: Double?
    @Option(help: "Most requests per provider batch (default: the provider's limit).") var maxBatchRequests: Int?
    @Option(help: "PostgreSQL: this worker's id (default host-pid-random).") var workerID: String?
    @Option(help: "PostgreSQL: seconds a batch lease lasts without renewal (renewed every third).") var leaseSeconds: Double = 30
    @Option(help: "With --provider emulator: the API to drive, openai | anthropic.") var emulatorApi: String = "openai"
    @Flag(help: "Log pipeline steps to stderr.") var verbose = false

    func run() async throws {
        guard let choice = ProviderChoice(rawValue: provider) else { throw ValidationError("--provider must be openai, anthropic or emulator") }
        guard let api = ProviderKind(rawValue: emulatorApi) else { throw ValidationError("--emulator-api must be openai or anthropic") }
        guard leaseSeconds >= 1 else { throw ValidationError("--lease-seconds must be at least 1") }
        var logger = Logger(label: "hyperbatch.worker")
        logger.logLevel = verbose ? .info : .notice
        let pollInitial = self.pollInitial ?? (choice == .emulator ? 0.2 : 5)
        var pipeline = PipelineConfiguration()
        pipeline.poll = PollSchedule(initial: .milliseconds(Int64(pollInitial * 1000)), errorDelay: .milliseconds(Int64(pollInitial * 1000)))
        pipeline.idleDelay = min(.seconds(1), pipeline.poll.initial)
        let location = try StoreLocation(self.store)
        // A PostgreSQL hiccup (connection reset, restart, serialization failure) is retried, not fatal.
        if case .postgres = location { pipeline.storeRetry = PostgresStoreErrors.retryPolicy() }
        try await JobCLI.withProvider(choice, kind: choice == .emulator ? api : choice.kind, baseURL: baseURL, maxBatchRequests: maxBatchRequests, logger: logger) { provider in
            switch location {
            case .sqlite(let path):
                let store = try SQLiteJobStore(path: path)
                try await JobCLI.withRunner(store: store, provider: provider, configuration: pipeline, logger: logger) { runner in
                    let group = ServiceGroup(configuration: .init(
                        services: [RunnerService(runner: runner)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                    try await group.run()
                }
            case .postgres(let url):
                // A worker may start while the database restarts: its first connection is retried for about a minute.
                let client = try await url.checkedClient(
                    logger: logger, retry: PostgresStoreErrors.retryPolicy(maximumDelay: .seconds(10), maximumAttempts: 9))
                let lease = Duration.milliseconds(Int64(leaseSeconds * 1000))
                let store = PostgresJobStore(
                    client: client, configuration: .init(workerID: workerID, leaseDuration: lease), logger: logger)
                let keeper = WorkerLease(store: store, configuration: .init(leaseDuration: lease), clock: ContinuousClock(), logger: logger)
                logger.notice("worker started", metadata: ["worker": "\(store.configuration.workerID)"])
                try await JobCLI.withRunner(store: store, provider: provider, configuration: pipeline, logger: logger) { runner in
                    // Dependencies first: shutdown runs in reverse (runner, then lease release, then client).
                    let group = ServiceGroup(configuration: .init(
                        services: [client, LeaseLossExit(lease: keeper, logger: logger), RunnerService(runner: runner, prepare: { [retry = pipeline.storeRetry, logger] in
                            // Retried like the runner's passes: a connection closed under the migration is no reason to stop.
                            try await retry.run(clock: ContinuousClock(), logger: logger, "migrating the schema") {
                                _ = try await store.migrate()
                            }
                        })],
                        gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
                    try await group.run()
                }
            }
        }
    }
}

/// The type-erased runner as a `Service`.
struct RunnerService: Service {
    let runner: AnyJobRunner
    /// Runs before the runner starts (e.g. migrating a PostgreSQL store once its client runs).
    var prepare: (@Sendable () async throws -> Void)? = nil

    func run() async throws {
        try await prepare?()
        try await runner.run()
    }
}
