import AsyncHTTPClient
import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import Logging

/// Which provider a job command talks to.
enum ProviderChoice: String, CaseIterable, Sendable {
    case openai, anthropic, emulator

    /// The provider API the job's requests use; the emulator speaks both, so for it the API comes from the input
    /// file's format (``JobCLI/detectFormat(file:)``) or the job's stored provider, OpenAI when unknown.
    var kind: ProviderKind { self == .anthropic ? .anthropic : .openai }

    /// The provider API for an input file: the file's format with the emulator, else the provider's own.
    func inputKind(file path: String) -> ProviderKind {
        guard self == .emulator else { return kind }
        return JobCLI.detectFormat(file: path) ?? .openai
    }
}

/// Shared helpers of the job commands.
enum JobCLI {
    static let defaultStore = "./hyperbatch.sqlite"

    /// A stable job id for an input file, so rerunning the same command resumes the same job.
    static func jobID(forFile path: String, provider: ProviderKind) -> JobID {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in (provider.rawValue + ":" + absolute).utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let hex = String(h, radix: 16)
        return JobID(base + "-" + String(hex.prefix(8)))
    }

    /// The batch-input format of a JSONL file from its first non-blank line: Anthropic lines carry `params`, OpenAI
    /// lines `body`/`url`. Nil when the file cannot be read or the line is neither.
    static func detectFormat(file path: String) -> ProviderKind? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        var buffer = Data()
        while let chunk = try? handle.read(upToCount: 64 * 1024), !chunk.isEmpty {
            buffer.append(chunk)
            while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[buffer.startIndex..<newline]
                if let format = format(ofLine: line) { return format }
                if !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }) { return nil }
                buffer = Data(buffer[buffer.index(after: newline)...])
            }
            if buffer.count > 64 * 1024 * 1024 { break }
        }
        return format(ofLine: buffer)
    }

    private static func format(ofLine line: Data) -> ProviderKind? {
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else { return nil }
        if object["params"] != nil && object["body"] == nil { return .anthropic }
        if object["body"] != nil || object["url"] != nil { return .openai }
        return nil
    }

    /// Runs `body` with a provider for `choice` (starting an in-process emulator for `.emulator`, driven through the
    /// client of `kind`: the OpenAI or the Anthropic batch API).
    static func withProvider<T>(
        _ choice: ProviderChoice, kind: ProviderKind? = nil, baseURL: String?, maxBatchRequests: Int? = nil, logger: Logger,
        _ body: (any BatchProvider) async throws -> T
    ) async throws -> T {
        let emulatedKind = kind ?? .openai
        func emulatorClient(openAIBaseURL: String, anthropicBaseURL: String) -> any BatchProvider {
            switch emulatedKind {
            case .openai:
                var configuration = ProviderClientConfiguration.openAI(apiKey: APIKey("sk-emulator"), baseURL: openAIBaseURL)
                if let maxBatchRequests { configuration.limits.maxRequests = maxBatchRequests }
                return OpenAIBatchProvider(configuration: configuration, httpClient: .shared, logger: logger)
            case .anthropic:
                var configuration = ProviderClientConfiguration.anthropic(apiKey: APIKey("sk-ant-emulator"), baseURL: anthropicBaseURL)
                if let maxBatchRequests { configuration.limits.maxRequests = maxBatchRequests }
                return AnthropicBatchProvider(configuration: configuration, httpClient: .shared, logger: logger)
            }
        }
        switch choice {
        case .openai:
            var configuration = try ProviderClientConfiguration.openAIFromEnvironment()
            if let baseURL { configuration.baseURL = baseURL }
            if let maxBatchRequests { configuration.limits.maxRequests = maxBatchRequests }
            return try await body(OpenAIBatchProvider(configuration: configuration, httpClient: .shared, logger: logger))
        case .anthropic:
            var configuration = try ProviderClientConfiguration.anthropicFromEnvironment()
            if let baseURL { configuration.baseURL = baseURL }
            if let maxBatchRequests { configuration.limits.maxRequests = maxBatchRequests }
            return try await body(AnthropicBatchProvider(configuration: configuration, httpClient: .shared, logger: logger))
        case .emulator:
            if let baseURL {
                // One emulator serves both APIs: OpenAI under `/v1`, Anthropic at the root.
                let root = baseURL.hasSuffix("/v1") ? String(baseURL.dropLast(3)) : baseURL
                return try await body(emulatorClient(openAIBaseURL: root + "/v1", anthropicBaseURL: root))
            }
            var emulator = EmulatorConfiguration()
            emulator.requestsPerSecond = 20_000
            emulator.validationSeconds = 0.05
            emulator.finalizingSeconds = 0.05
            return try await Emulator.withEmulator(configuration: emulator, logger: logger) { endpoint in
                try await body(emulatorClient(openAIBaseURL: endpoint.openAIBaseURL, anthropicBaseURL: endpoint.anthropicBaseURL))
            }
        }
    }

    /// A runner over an existential provider (opened so the runner is generic over the concrete type).
    static func withRunner<T>(
        store: any JobStore, provider: any BatchProvider, configuration: PipelineConfiguration, logger: Logger,
        _ body: (AnyJobRunner) async throws -> T
    ) async throws -> T {
        func open<P: BatchProvider>(_ p: P) async throws -> T {
            let runner = JobRunner(store: store, provider: p, configuration: configuration, clock: ContinuousClock(), logger: logger)
            return try await body(AnyJobRunner(runner))
        }
        return try await open(provider)
    }

    /// Writes one JSON line per request of `job`: custom_id, status, response or error, provider batch id.
    /// Returns the number of lines written.
    static func writeResults(store: any JobStore, job: JobID, to path: String) async throws -> Int {
        FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationFailure("cannot write \(path)") }
        defer { try? handle.close() }
        var providerIDs: [Int64: String] = [:]
        for b in try await store.batches(job: job) { if let id = b.providerBatchID { providerIDs[b.id] = id } }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var after: Int64? = nil
        var written = 0
        while true {
            let page = try await store.requests(job: job, afterID: after, limit: 2_000)
            guard let last = page.last else { break }
            after = last.id
            var out: [UInt8] = []
            for r in page {
                out += Array(#"{"custom_id":"#.utf8) + (try encoder.encode(r.customID))
                out += Array(#","status":"#.utf8) + (try encoder.encode(r.state.rawValue))
                if let response = r.response, r.state == .succeeded {
                    out += Array(#","response":"#.utf8) + response
                } else if let error = r.lastError, r.state.isTerminal {
                    out += Array(#","error":"#.utf8) + (try encoder.encode(error))
                }
                if let b = r.batchID, let id = providerIDs[b] {
                    out += Array(#","provider_batch_id":"#.utf8) + (try encoder.encode(id))
                }
                out += Array("}\n".utf8)
                written += 1
            }
            try handle.write(contentsOf: out)
        }
        return written
    }

    /// A one-line summary of counts per state.
    static func describe(_ counts: RequestStateCounts) -> String {
        let parts = RequestState.allCases.compactMap { s in counts[s] > 0 ? "\(s.rawValue) \(counts[s])" : nil }
        return "\(counts.terminal)/\(counts.total) done" + (parts.isEmpty ? "" : " (" + parts.joined(separator: ", ") + ")")
    }

    static func countsJSON(_ counts: RequestStateCounts) -> [String: Int] {
        var d: [String: Int] = [:]
        for s in RequestState.allCases where counts[s] > 0 { d[s.rawValue] = counts[s] }
        return d
    }

    static func printJSON(_ value: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: try encoder.encode(value), as: UTF8.self))
    }
}

/// A job runner with the provider type erased, for the CLI.
struct AnyJobRunner: Sendable {
    let runUntilDone: @Sendable (JobID, (@Sendable (RequestStateCounts) -> Void)?) async throws -> RequestStateCounts
    let cancel: @Sendable (JobID) async throws -> Void
    let run: @Sendable () async throws -> Void

    init<P: BatchProvider, C: Clock>(_ runner: JobRunner<P, C>) where C.Duration == Duration {
        runUntilDone = { try await runner.runUntilDone(job: $0, onProgress: $1) }
        cancel = { try await runner.cancel(job: $0) }
        run = { try await runner.run() }
    }
}

/// A command-line failure with a message.
struct ValidationFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Prints progress: a rewritten line on a terminal, a plain line per change (at most once a second) otherwise.
final class ProgressPrinter: @unchecked Sendable {
    private let lock = NSLock()
    private var last = ""
    private var lastPrint = Date.distantPast
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let enabled: Bool

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ counts: RequestStateCounts) {
        guard enabled else { return }
        let line = JobCLI.describe(counts)
        lock.lock()
        defer { lock.unlock() }
        guard line != last else { return }
        if isTerminal {
            let width = 30
            let filled = counts.total == 0 ? 0 : width * counts.terminal / counts.total
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardError.write(Data("\r[\(bar)] \(line)\u{1B}[K".utf8))
        } else if Date().timeIntervalSince(lastPrint) >= 1 || counts.terminal == counts.total {
            FileHandle.standardError.write(Data((line + "\n").utf8))
            lastPrint = Date()
        }
        last = line
    }

    func finish() {
        if enabled && isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
