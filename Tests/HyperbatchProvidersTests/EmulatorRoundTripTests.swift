import AsyncHTTPClient
import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import Logging
import Testing
@testable import HyperbatchProviders

/// The provider clients against the in-process emulator over real HTTP on loopback (AsyncHTTPClient ↔ the Hummingbird front end).
/// Only the emulator is fake; every byte goes through the clients' real encoding, upload, polling and result parsing.
@Suite struct EmulatorRoundTripTests {
    static let logger = Logger(label: "test.providers.emulator")
    static let key = APIKey("sk-emulator-SECRET-42")

    func lines(_ count: Int, prefix: String = "req", endpoint: String = "/v1/chat/completions") -> [ProviderRequestLine] {
        (0..<count).map {
            ProviderRequestLine(
                customID: "\(prefix)-\($0)", endpoint: endpoint,
                body: Array(#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"item \#($0)"}]}"#.utf8))
        }
    }

    func anthropicLines(_ count: Int) -> [ProviderRequestLine] {
        (0..<count).map {
            ProviderRequestLine(
                customID: "a_\($0)", endpoint: "/v1/messages",
                body: Array(#"{"model":"claude-3-5-haiku-latest","max_tokens":64,"messages":[{"role":"user","content":"item \#($0)"}]}"#.utf8))
        }
    }

    func fastEmulator(requestsPerSecond: Double = 10_000) -> EmulatorConfiguration {
        var configuration = EmulatorConfiguration()
        configuration.requestsPerSecond = requestsPerSecond
        configuration.validationSeconds = 0.01
        configuration.finalizingSeconds = 0.01
        return configuration
    }

    func openAI(_ endpoint: EmulatorEndpoint, retry: RetryPolicy = RetryPolicy()) -> OpenAIBatchProvider<ContinuousClock> {
        var configuration = ProviderClientConfiguration.openAI(apiKey: Self.key, baseURL: endpoint.openAIBaseURL)
        configuration.retry = retry
        configuration.listPageSize = 2
        return OpenAIBatchProvider(configuration: configuration, httpClient: .shared, logger: Self.logger)
    }

    func anthropic(_ endpoint: EmulatorEndpoint) -> AnthropicBatchProvider<ContinuousClock> {
        var configuration = ProviderClientConfiguration.anthropic(apiKey: Self.key, baseURL: endpoint.anthropicBaseURL)
        configuration.listPageSize = 2
        return AnthropicBatchProvider(configuration: configuration, httpClient: .shared, logger: Self.logger)
    }

    /// Polls until the batch ends (the emulator runs on real time; a few hundred milliseconds at these settings).
    func waitUntilEnded<P: BatchProvider>(_ provider: P, id: String) async throws -> ProviderBatchStatus {
        for _ in 0..<1_000 {
            let status = try await provider.retrieveBatch(id: id)
            if status.phase.isEnded { return status }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CancellationError()
    }

    func collect<P: BatchProvider>(_ provider: P, _ status: ProviderBatchStatus) async throws -> [String: [ProviderResultOutcome]] {
        var seen: [String: [ProviderResultOutcome]] = [:]
        try await provider.streamResults(of: status) { chunk in
            for line in chunk { seen[line.customID, default: []].append(line.outcome) }
        }
        return seen
    }

    @Test(.timeLimit(.minutes(1)))
    func openAIFullLifecycleWithErrorLinesReconcilesEveryCustomIDOnce() async throws {
        var configuration = fastEmulator()
        configuration.faults.requestErrorRate = 0.2
        try await Emulator.withEmulator(configuration: configuration) { endpoint in
            let provider = openAI(endpoint)
            let input = lines(200)
            let spec = ProviderBatchSpec(
                endpoint: "/v1/chat/completions", model: "gpt-4o-mini", idempotencyTag: "tag-lifecycle",
                requestCount: input.count)
            let fileID = try await provider.uploadInput(spec, lines: AsyncLines(input))
            let created = try await provider.createBatch(spec, inputFileID: fileID, lines: AsyncLines(input))
            #expect(created.idempotencyTag == "tag-lifecycle")
            // The write-ahead lookup finds the batch by its tag.
            let found = try await provider.findBatch(spec, createdAfter: Date(timeIntervalSinceNow: -60))
            #expect(found?.id == created.id)

            let ended = try await waitUntilEnded(provider, id: created.id)
            #expect(ended.phase == .ended(.completed))
            let results = try await collect(provider, ended)
            #expect(results.count == input.count)
            #expect(results.values.allSatisfy { $0.count == 1 })
            var succeeded = 0
            var errored = 0
            for (customID, outcomes) in results {
                switch outcomes[0] {
                case .succeeded(let body, _):
                    succeeded += 1
                    #expect(!body.isEmpty, "\(customID) has an empty body")
                case .errored(let error):
                    errored += 1
                    #expect(!error.message.isEmpty)
                default: Issue.record("\(customID): unexpected \(outcomes[0])")
                }
            }
            #expect(succeeded == ended.counts.succeeded)
            #expect(errored == ended.counts.errored)
            #expect(errored > 0 && succeeded > 0)
            #expect(endpoint.stats().batches.count == 1)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anthropicFullLifecycleAndFindByListing() async throws {
        try await Emulator.withEmulator(configuration: fastEmulator()) { endpoint in
            let provider = anthropic(endpoint)
            let input = anthropicLines(50)
            let spec = ProviderBatchSpec(
                endpoint: "/v1/messages", model: "claude-3-5-haiku-latest", idempotencyTag: "tag-a", requestCount: 50)
            let created = try await provider.createBatch(spec, inputFileID: nil, lines: AsyncLines(input))
            let ended = try await waitUntilEnded(provider, id: created.id)
            #expect(ended.phase == .ended(.completed))
            #expect(ended.counts.succeeded == 50)
            let results = try await collect(provider, ended)
            #expect(Set(results.keys) == Set(input.map(\.customID)))
            #expect(results.values.allSatisfy { if case .succeeded = $0.first { $0.count == 1 } else { false } })
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func cancelledBatchReportsEveryRequestAsDoneOrCanceled() async throws {
        // 20 requests/s: the batch is still running when it is cancelled.
        try await Emulator.withEmulator(configuration: fastEmulator(requestsPerSecond: 20)) { endpoint in
            let provider = openAI(endpoint)
            let input = lines(100, prefix: "cx")
            let spec = ProviderBatchSpec(
                endpoint: "/v1/chat/completions", model: "gpt-4o-mini", idempotencyTag: "tag-cancel",
                requestCount: input.count)
            let fileID = try await provider.uploadInput(spec, lines: AsyncLines(input))
            let created = try await provider.createBatch(spec, inputFileID: fileID, lines: AsyncLines(input))
            _ = try await provider.cancelBatch(id: created.id)
            let ended = try await waitUntilEnded(provider, id: created.id)
            #expect(ended.phase == .ended(.cancelled))
            let results = try await collect(provider, ended)
            #expect(results.count == input.count)
            let canceled = results.values.filter { $0 == [.canceled] }.count
            let finished = results.values.filter { if case .succeeded = $0.first { true } else { false } }.count
            #expect(canceled > 0)
            #expect(canceled + finished == input.count)
            #expect(ended.counts.total == input.count)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func expiredBatchKeepsFinishedWorkAndReportsTheRestExpired() async throws {
        var configuration = fastEmulator(requestsPerSecond: 200)
        configuration.faults.expireAfterFraction = 0.5
        try await Emulator.withEmulator(configuration: configuration) { endpoint in
            let provider = openAI(endpoint)
            let input = lines(40, prefix: "ex")
            let spec = ProviderBatchSpec(
                endpoint: "/v1/chat/completions", model: "gpt-4o-mini", idempotencyTag: "tag-expire",
                requestCount: input.count)
            let fileID = try await provider.uploadInput(spec, lines: AsyncLines(input))
            let created = try await provider.createBatch(spec, inputFileID: fileID, lines: AsyncLines(input))
            let ended = try await waitUntilEnded(provider, id: created.id)
            #expect(ended.phase == .ended(.expired))
            let results = try await collect(provider, ended)
            #expect(results.count == input.count)
            let expired = results.values.filter { $0 == [.expired] }.count
            let succeeded = results.values.filter { if case .succeeded = $0.first { true } else { false } }.count
            #expect(expired > 0 && succeeded > 0)
            #expect(expired + succeeded == input.count)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func rateLimitsAndServerErrorsAreRetriedUntilTheCallSucceeds() async throws {
        var configuration = fastEmulator()
        configuration.faults.http429Rate = 0.5
        configuration.faults.http5xxRate = 0.3
        configuration.faults.retryAfterSeconds = 0
        try await Emulator.withEmulator(configuration: configuration) { endpoint in
            let provider = openAI(
                endpoint, retry: RetryPolicy(maxRetries: 30, initialDelay: .milliseconds(5), maxDelay: .milliseconds(20)))
            let input = lines(20, prefix: "rl")
            let spec = ProviderBatchSpec(
                endpoint: "/v1/chat/completions", model: "gpt-4o-mini", idempotencyTag: "tag-429",
                requestCount: input.count)
            let fileID = try await provider.uploadInput(spec, lines: AsyncLines(input))
            let created = try await provider.createBatch(spec, inputFileID: fileID, lines: AsyncLines(input))
            let ended = try await waitUntilEnded(provider, id: created.id)
            let results = try await collect(provider, ended)
            #expect(results.count == input.count)
            let stats = endpoint.stats()
            #expect(stats.http429Sent + stats.http5xxSent > 0, "stats: \(stats)")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func listingPagesThroughEveryBatch() async throws {
        try await Emulator.withEmulator(configuration: fastEmulator()) { endpoint in
            let provider = openAI(endpoint)
            var created: Set<String> = []
            for index in 0..<5 {
                let input = lines(2, prefix: "p\(index)")
                let spec = ProviderBatchSpec(
                    endpoint: "/v1/chat/completions", model: "gpt-4o-mini", idempotencyTag: "tag-p\(index)",
                    requestCount: 2)
                let fileID = try await provider.uploadInput(spec, lines: AsyncLines(input))
                created.insert(try await provider.createBatch(spec, inputFileID: fileID, lines: AsyncLines(input)).id)
            }
            var listed: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let page = try await provider.listBatches(after: cursor, limit: 2)
                listed += page.batches.map(\.id)
                cursor = page.nextCursor
                pages += 1
            } while cursor != nil && pages < 10
            #expect(Set(listed) == created)
            #expect(listed.count == 5)
            #expect(pages == 3)
        }
    }
}
