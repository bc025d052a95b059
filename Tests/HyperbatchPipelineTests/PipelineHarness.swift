import AsyncHTTPClient
import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import Logging
import Synchronization

/// Shared setup: a temp-file SQLite store, an ingested OpenAI JSONL job, fast emulator and client settings.
enum PipelineHarness {
    static let logger = Logger(label: "test.pipeline")
    static let apiKey = APIKey("sk-emulator-pipeline")

    static func tempStorePath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("hb-pipeline-\(UUID().uuidString).sqlite").path
    }

    static func jsonl(_ count: Int, models: [String] = ["gpt-4o-mini", "gpt-4o"]) -> [UInt8] {
        var text = ""
        for i in 0..<count {
            let model = models[i % models.count]
            text += #"{"custom_id":"req-\#(i)","method":"POST","url":"/v1/chat/completions","body":{"model":"\#(model)","messages":[{"role":"user","content":"item \#(i)"}]}}"#
            text += "\n"
        }
        return Array(text.utf8)
    }

    static func makeJob(store: SQLiteJobStore, job: JobID, count: Int, maxAttempts: Int = 3, models: [String] = ["gpt-4o-mini", "gpt-4o"]) async throws {
        _ = try await store.createJob(NewJob(id: job, provider: .openai, maxAttempts: maxAttempts), at: Date())
        let report = try await JobIngest(store: store, parser: IngestLineParser(provider: .openai)).ingest(data: jsonl(count, models: models), into: job)
        precondition(report.inserted == count || report.alreadyStored > 0)
    }

    static func emulatorConfiguration() -> EmulatorConfiguration {
        var configuration = EmulatorConfiguration()
        configuration.requestsPerSecond = 5_000
        configuration.validationSeconds = 0.01
        configuration.finalizingSeconds = 0.01
        return configuration
    }

    static func provider(_ endpoint: EmulatorEndpoint, maxRequests: Int = 60) -> OpenAIBatchProvider<ContinuousClock> {
        var configuration = ProviderClientConfiguration.openAI(apiKey: apiKey, baseURL: endpoint.openAIBaseURL)
        configuration.retry = RetryPolicy(maxRetries: 6, initialDelay: .milliseconds(2), maxDelay: .milliseconds(20), maxServerDelay: .milliseconds(1))
        configuration.limits.maxRequests = maxRequests
        return OpenAIBatchProvider(configuration: configuration, httpClient: .shared, logger: logger)
    }

    static func pipelineConfiguration(onPhase: (@Sendable (PipelinePhase, Int64) async throws -> Void)? = nil) -> PipelineConfiguration {
        var configuration = PipelineConfiguration()
        configuration.poll = PollSchedule(initial: .milliseconds(20), growth: 1.5, maximum: .milliseconds(200), errorDelay: .milliseconds(20))
        configuration.idleDelay = .milliseconds(20)
        configuration.uploadPageSize = 17
        configuration.onPhase = onPhase
        return configuration
    }

    /// Anthropic batch-input lines `{custom_id, params}`, alternating `models`, each with `max_tokens`.
    static func anthropicJSONL(_ count: Int, models: [String] = ["claude-3-5-haiku-20241022", "claude-sonnet-4-5"]) -> [UInt8] {
        var text = ""
        for i in 0..<count {
            let model = models[i % models.count]
            text += #"{"custom_id":"req-\#(i)","params":{"model":"\#(model)","max_tokens":64,"messages":[{"role":"user","content":"item \#(i)"}]}}"#
            text += "\n"
        }
        return Array(text.utf8)
    }

    static func makeAnthropicJob(store: SQLiteJobStore, job: JobID, count: Int, maxAttempts: Int = 3) async throws {
        _ = try await store.createJob(NewJob(id: job, provider: .anthropic, maxAttempts: maxAttempts), at: Date())
        let report = try await JobIngest(store: store, parser: IngestLineParser(provider: .anthropic)).ingest(data: anthropicJSONL(count), into: job)
        precondition(report.inserted == count || report.alreadyStored > 0)
    }

    static func anthropicProvider(_ endpoint: EmulatorEndpoint, maxRequests: Int = 60) -> AnthropicBatchProvider<ContinuousClock> {
        var configuration = ProviderClientConfiguration.anthropic(apiKey: APIKey("sk-ant-emulator-pipeline"), baseURL: endpoint.anthropicBaseURL)
        configuration.retry = RetryPolicy(maxRetries: 6, initialDelay: .milliseconds(2), maxDelay: .milliseconds(20), maxServerDelay: .milliseconds(1))
        configuration.limits.maxRequests = maxRequests
        return AnthropicBatchProvider(configuration: configuration, httpClient: .shared, logger: logger)
    }

    /// A runner for any provider, with the fast test configuration (changed by `adjust`).
    static func runner<P: BatchProvider>(
        store: SQLiteJobStore, provider: P, onPhase: (@Sendable (PipelinePhase, Int64) async throws -> Void)? = nil,
        adjust: (inout PipelineConfiguration) -> Void
    ) -> JobRunner<P, ContinuousClock> {
        var configuration = pipelineConfiguration(onPhase: onPhase)
        adjust(&configuration)
        return JobRunner(store: store, provider: provider, configuration: configuration, clock: ContinuousClock(), logger: logger)
    }

    static func runner(
        store: SQLiteJobStore, provider: OpenAIBatchProvider<ContinuousClock>,
        onPhase: (@Sendable (PipelinePhase, Int64) async throws -> Void)? = nil
    ) -> JobRunner<OpenAIBatchProvider<ContinuousClock>, ContinuousClock> {
        JobRunner(store: store, provider: provider, configuration: pipelineConfiguration(onPhase: onPhase), clock: ContinuousClock(), logger: logger)
    }

    /// Every request of the job, by custom_id (fails on a duplicate custom_id).
    static func allRequests(store: SQLiteJobStore, job: JobID) async throws -> [String: RequestRecord] {
        var out: [String: RequestRecord] = [:]
        var after: Int64? = nil
        while true {
            let page = try await store.requests(job: job, afterID: after, limit: 500)
            guard let last = page.last else { break }
            for r in page {
                precondition(out[r.customID] == nil, "duplicate custom_id \(r.customID)")
                out[r.customID] = r
            }
            after = last.id
        }
        return out
    }
}

/// Suspends callers until `count` have arrived, then lets every caller (and every later one) through: proves that
/// `count` batches are at the same point at once (a sequential pipeline would never release it).
actor Rendezvous {
    let count: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(count: Int) { self.count = count }

    func arrive() async {
        arrived += 1
        if arrived < count {
            await withCheckedContinuation { waiting.append($0) }
        } else {
            for w in waiting { w.resume() }
            waiting = []
        }
    }
}

/// Tracks how many batches are between two phases at once, and the most seen.
final class Occupancy: Sendable {
    private let state = Mutex((now: 0, peak: 0))
    func enter() { state.withLock { $0.now += 1; $0.peak = max($0.peak, $0.now) } }
    func leave() { state.withLock { $0.now -= 1 } }
    var peak: Int { state.withLock { $0.peak } }
}

/// A thread-safe counter tests share with `onPhase` hooks.
final class SharedCounter: Sendable {
    private let value = Mutex(0)
    /// Adds one and returns the new value.
    func increment() -> Int { value.withLock { $0 += 1; return $0 } }
    var current: Int { value.withLock { $0 } }
}
