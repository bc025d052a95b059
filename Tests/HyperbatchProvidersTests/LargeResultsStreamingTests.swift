import AsyncHTTPClient
import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import Logging
import Testing
@testable import HyperbatchProviders

/// Large result sets through both clients against the emulator over real HTTP: 20,000 requests, several MB of
/// results, consumed as a stream.
///
/// The emulator holds every streamed body once 1 MB of it is written (a stalled download) and counts the bytes it
/// has handed to its socket. The consumer must get its first chunk of decoded lines during that stall, and only
/// then releases the body. A client that collected the whole body before decoding would never deliver a chunk
/// during the stall: a watchdog releases the body after 10 s, and the first chunk then comes with every byte sent.
@Suite struct LargeResultsStreamingTests {
    static let logger = Logger(label: "test.providers.large")
    static let key = APIKey("sk-emulator-LARGE")
    static let count = 20_000
    static let chunkSize = 200

    static func emulatorConfiguration() -> EmulatorConfiguration {
        var configuration = EmulatorConfiguration()
        configuration.requestsPerSecond = 10_000
        configuration.speedUp = 1_000
        configuration.validationSeconds = 0.01
        configuration.finalizingSeconds = 0.01
        return configuration
    }

    /// What the consumer saw while streaming.
    struct Observed {
        var outcomes: [String: Int] = [:]
        var mismatched: [String] = []
        var chunks = 0
        /// Server bytes handed over (since the download began) when the first chunk reached the consumer.
        var sentAtFirstChunk: Int?
        var total = 0
    }

    static let holdAfter = 1 << 20

    /// Streams `batch`'s results, checking each succeeded body echoes its own `custom_id`.
    static func consume<P: BatchProvider>(_ provider: P, _ batch: ProviderBatchStatus, _ endpoint: EmulatorEndpoint) async throws -> Observed {
        var observed = Observed()
        let before = endpoint.streamedBodyBytesSent
        endpoint.holdStreamedBodies(after: holdAfter)
        let watchdog = Task {
            try await Task.sleep(for: .seconds(10))
            endpoint.releaseStreamedBodies()
        }
        defer {
            watchdog.cancel()
            endpoint.releaseStreamedBodies()
        }
        try await provider.streamResults(of: batch) { chunk in
            observed.chunks += 1
            if observed.sentAtFirstChunk == nil {
                observed.sentAtFirstChunk = endpoint.streamedBodyBytesSent - before
                endpoint.releaseStreamedBodies()
            }
            for line in chunk {
                observed.outcomes[line.customID, default: 0] += 1
                guard case .succeeded(let body, _) = line.outcome,
                    String(decoding: body, as: UTF8.self).contains("echo \(line.customID) ")
                else {
                    observed.mismatched.append(line.customID)
                    continue
                }
            }
        }
        observed.total = endpoint.streamedBodyBytesSent - before
        return observed
    }

    static func waitUntilEnded<P: BatchProvider>(_ provider: P, id: String) async throws -> ProviderBatchStatus {
        for _ in 0..<2_000 {
            let status = try await provider.retrieveBatch(id: id)
            if status.phase.isEnded { return status }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }

    static func check(_ observed: Observed, ids: [String]) {
        #expect(observed.outcomes.count == ids.count)
        #expect(Set(observed.outcomes.keys) == Set(ids))
        #expect(observed.outcomes.values.allSatisfy { $0 == 1 }, "some custom_id came back more than once")
        #expect(observed.mismatched.isEmpty, "\(observed.mismatched.prefix(5)) did not echo their own custom_id")
        #expect(observed.total > 4_000_000, "only \(observed.total) bytes of results")
        #expect(observed.chunks == ids.count / chunkSize)
        // The first chunk arrived while the server was held after 1 MB (plus at most one piece of at most 1 MB):
        // the body is decoded as it is received, never collected first.
        let first = observed.sentAtFirstChunk ?? -1
        #expect(first > 0 && first < observed.total, "first chunk at \(first) of \(observed.total) bytes")
        #expect(first <= 2 * holdAfter, "first chunk at \(first) bytes")
    }

    @Test(.timeLimit(.minutes(1)))
    func openAIStreamsALargeOutputFile() async throws {
        try await Emulator.withEmulator(configuration: Self.emulatorConfiguration()) { endpoint in
            var configuration = ProviderClientConfiguration.openAI(apiKey: Self.key, baseURL: endpoint.openAIBaseURL)
            configuration.resultChunkSize = Self.chunkSize
            let provider = OpenAIBatchProvider(configuration: configuration, httpClient: .shared, logger: Self.logger)
            let input = (0..<Self.count).map {
                ProviderRequestLine(
                    customID: "large-openai-request-\($0)", endpoint: "/v1/chat/completions",
                    body: Array(#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"item \#($0)"}]}"#.utf8))
            }
            let spec = ProviderBatchSpec(
                endpoint: "/v1/chat/completions", model: "gpt-4o-mini", idempotencyTag: "tag-large", requestCount: Self.count)
            let fileID = try await provider.uploadInput(spec, lines: AsyncLines(input))
            let created = try await provider.createBatch(spec, inputFileID: fileID, lines: AsyncLines(input))
            let ended = try await Self.waitUntilEnded(provider, id: created.id)
            #expect(ended.phase == .ended(.completed))
            #expect(ended.errorFileID == nil)
            let observed = try await Self.consume(provider, ended, endpoint)
            Self.check(observed, ids: input.map(\.customID))
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anthropicStreamsLargeResults() async throws {
        try await Emulator.withEmulator(configuration: Self.emulatorConfiguration()) { endpoint in
            var configuration = ProviderClientConfiguration.anthropic(apiKey: Self.key, baseURL: endpoint.anthropicBaseURL)
            configuration.resultChunkSize = Self.chunkSize
            let provider = AnthropicBatchProvider(configuration: configuration, httpClient: .shared, logger: Self.logger)
            let input = (0..<Self.count).map {
                ProviderRequestLine(
                    customID: "large_anthropic_request_\($0)", endpoint: "/v1/messages",
                    body: Array(#"{"model":"claude-3-5-haiku-latest","max_tokens":64,"messages":[{"role":"user","content":"item \#($0)"}]}"#.utf8))
            }
            let spec = ProviderBatchSpec(
                endpoint: "/v1/messages", model: "claude-3-5-haiku-latest", idempotencyTag: "tag-large-a", requestCount: Self.count)
            let created = try await provider.createBatch(spec, inputFileID: nil, lines: AsyncLines(input))
            let ended = try await Self.waitUntilEnded(provider, id: created.id)
            #expect(ended.phase == .ended(.completed))
            let observed = try await Self.consume(provider, ended, endpoint)
            Self.check(observed, ids: input.map(\.customID))
        }
    }
}
