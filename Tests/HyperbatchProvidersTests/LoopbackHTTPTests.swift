import AsyncHTTPClient
import Foundation
import HyperbatchJobs
import HyperbatchTestKit
import Logging
import Synchronization
import Testing

@testable import HyperbatchProviders

/// A counter shared with a stub server's responder.
final class Counter: Sendable {
    private let value = Mutex(0)
    /// Increments and returns the new value.
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}

func openAIBatchJSON(id: String, status: String, createdAt: Int, tag: String? = nil, output: String? = nil, error: String? = nil) -> String {
    let metadata = tag.map { #"{"hyperbatch_tag":"\#($0)"}"# } ?? "null"
    let out = output.map { "\"\($0)\"" } ?? "null"
    let err = error.map { "\"\($0)\"" } ?? "null"
    return #"{"id":"\#(id)","object":"batch","endpoint":"/v1/chat/completions","errors":null,"input_file_id":"file-in","completion_window":"24h","status":"\#(status)","output_file_id":\#(out),"error_file_id":\#(err),"created_at":\#(createdAt),"expires_at":\#(createdAt + 86400),"completed_at":null,"request_counts":{"total":3,"completed":2,"failed":1},"metadata":\#(metadata)}"#
}

func anthropicBatchJSON(id: String, status: String, createdAt: String, processing: Int = 0, succeeded: Int = 0, resultsURL: String? = nil) -> String {
    let url = resultsURL.map { "\"\($0)\"" } ?? "null"
    return #"{"id":"\#(id)","type":"message_batch","processing_status":"\#(status)","request_counts":{"processing":\#(processing),"succeeded":\#(succeeded),"errored":0,"canceled":0,"expired":0},"ended_at":null,"created_at":"\#(createdAt)","expires_at":"2024-09-25T18:37:24.100435Z","archived_at":null,"cancel_initiated_at":null,"results_url":\#(url)}"#
}

@Suite struct LoopbackHTTPTests {
    static let logger = Logger(label: "test.providers")
    static let key = APIKey("sk-test-SECRET-0001")

    func openAI(_ server: StubServer, clock: ManualClock = ManualClock(), chunk: Int = 1_000) -> OpenAIBatchProvider<ManualClock> {
        var configuration = ProviderClientConfiguration.openAI(apiKey: Self.key, baseURL: server.baseURL + "/v1")
        configuration.resultChunkSize = chunk
        configuration.retry.maxRetries = 2
        return OpenAIBatchProvider(configuration: configuration, httpClient: .shared, clock: clock, logger: Self.logger)
    }

    func anthropic(_ server: StubServer, clock: ManualClock = ManualClock()) -> AnthropicBatchProvider<ManualClock> {
        var configuration = ProviderClientConfiguration.anthropic(apiKey: Self.key, baseURL: server.baseURL + "/")
        configuration.listPageSize = 2
        return AnthropicBatchProvider(configuration: configuration, httpClient: .shared, clock: clock, logger: Self.logger)
    }

    @Test(.timeLimit(.minutes(1)))
    func openAIUploadCreateAndStreamLargeResults() async throws {
        let outputLines = (0..<20_000).map {
            #"{"id":"batch_req_\#($0)","custom_id":"c\#($0)","response":{"status_code":200,"request_id":"r","body":{"id":"cmpl-\#($0)","usage":{"prompt_tokens":3,"completion_tokens":4},"text":"\#(String(repeating: "x", count: 200))"}},"error":null}"#
        }.joined(separator: "\n") + "\n"
        let errorLines = #"{"id":"batch_req_e","custom_id":"e1","response":null,"error":{"code":"batch_expired","message":"late"}}"#
        let server = try await StubServer.start { request in
            switch (request.method, request.uri) {
            case ("POST", "/v1/files"): return .json(#"{"id":"file-in","object":"file","bytes":1,"created_at":1,"filename":"x","purpose":"batch"}"#)
            case ("POST", "/v1/batches"): return .json(openAIBatchJSON(id: "batch_1", status: "validating", createdAt: 1_700_000_000, tag: "tag-1"))
            case ("GET", "/v1/files/file-out/content"): return StubServer.Response(status: 200, body: Array(outputLines.utf8))
            case ("GET", "/v1/files/file-err/content"): return StubServer.Response(status: 200, body: Array(errorLines.utf8))
            default: return .json(#"{"error":{"message":"no route","type":"invalid_request_error","param":null,"code":null}}"#, status: 404)
            }
        }
        let provider = openAI(server, chunk: 1_000)
        let spec = ProviderBatchSpec(endpoint: "/v1/chat/completions", model: "m", idempotencyTag: "tag-1", requestCount: 2, metadata: ["k": "v"])
        let lines = AsyncLines([
            ProviderRequestLine(customID: "c0", endpoint: "/v1/chat/completions", body: Array(#"{"model":"m"}"#.utf8)),
            ProviderRequestLine(customID: "c1", endpoint: "/v1/chat/completions", body: Array(#"{"model":"m"}"#.utf8)),
        ])
        let fileID = try await provider.uploadInput(spec, lines: lines)
        #expect(fileID == "file-in")
        let status = try await provider.createBatch(spec, inputFileID: fileID, lines: lines)
        #expect(status.id == "batch_1")
        #expect(status.phase == .validating)
        #expect(status.idempotencyTag == "tag-1")

        let upload = try #require(server.requests.first)
        #expect(upload.headers["authorization"] == "Bearer sk-test-SECRET-0001")
        #expect(upload.headers["content-type"]?.hasPrefix("multipart/form-data; boundary=") == true)
        let uploaded = String(decoding: upload.body, as: UTF8.self)
        #expect(uploaded.contains("name=\"purpose\"\r\n\r\nbatch\r\n"))
        #expect(uploaded.contains(#"{"custom_id":"c1","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"# + "\n"))
        let create = try #require(try JSONSerialization.jsonObject(with: Data(server.requests[1].body)) as? [String: Any])
        #expect(create["input_file_id"] as? String == "file-in")
        #expect(create["completion_window"] as? String == "24h")
        #expect(create["metadata"] as? [String: String] == ["k": "v", "hyperbatch_tag": "tag-1"])

        var ended = status
        ended.outputFileID = "file-out"
        ended.errorFileID = "file-err"
        var chunkSizes: [Int] = []
        var seen: [String: ProviderResultOutcome] = [:]
        try await provider.streamResults(of: ended) { chunk in
            chunkSizes.append(chunk.count)
            for line in chunk { seen[line.customID] = line.outcome }
        }
        #expect(seen.count == 20_001)
        #expect(chunkSizes.max() == 1_000)
        #expect(seen["e1"] == .expired)
        guard case .succeeded(let body, let usage) = seen["c19999"] else { Issue.record("c19999 missing"); return }
        #expect(usage == TokenUsage(inputTokens: 3, outputTokens: 4))
        #expect(String(decoding: body, as: UTF8.self).contains("cmpl-19999"))
        try await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func retries429HonouringRetryAfterMsOnTheInjectedClock() async throws {
        let calls = Counter()
        let server = try await StubServer.start { _ in
            if calls.next() <= 2 {
                return .json(#"{"error":{"message":"Rate limit","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}"#,
                             status: 429, headers: [("retry-after-ms", "1234")])
            }
            return .json(openAIBatchJSON(id: "batch_9", status: "in_progress", createdAt: 1_700_000_000))
        }
        let clock = ManualClock()
        let provider = openAI(server, clock: clock)
        let task = Task { try await provider.retrieveBatch(id: "batch_9") }
        for _ in 0..<2 {
            let deadline = await clock.nextSleep()
            #expect(deadline.offset - clock.now.offset == .milliseconds(1234))
            clock.advance(to: deadline)
        }
        let status = try await task.value
        #expect(status.phase == .inProgress)
        #expect(status.counts == ProviderRequestCounts(total: 3, processing: 0, succeeded: 2, errored: 1))
        #expect(server.requests.count == 3)
        try await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func retriesGiveUpAndKeepTheProviderError() async throws {
        let server = try await StubServer.start { _ in
            .json(#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#, status: 529, headers: [("retry-after", "1")])
        }
        let clock = ManualClock()
        var configuration = ProviderClientConfiguration.anthropic(apiKey: Self.key, baseURL: server.baseURL)
        configuration.retry.maxRetries = 1
        let provider = AnthropicBatchProvider(configuration: configuration, httpClient: .shared, clock: clock, logger: Self.logger)
        let task = Task { try await provider.retrieveBatch(id: "msgbatch_1") }
        let deadline = await clock.nextSleep()
        #expect(deadline.offset == .seconds(1))
        clock.advance(to: deadline)
        let error = await #expect(throws: ProviderError.self) { try await task.value }
        #expect(error == ProviderError(status: 529, type: "overloaded_error", message: "Overloaded"))
        #expect(!"\(String(describing: error))".contains("SECRET"))
        #expect(server.requests.count == 2)
        #expect(server.requests[0].headers["x-api-key"] == "sk-test-SECRET-0001")
        #expect(server.requests[0].headers["anthropic-version"] == "2023-06-01")
        try await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func notFoundIsNotRetried() async throws {
        let server = try await StubServer.start { _ in
            .json(#"{"error":{"message":"No batch found with id 'batch_x'.","type":"invalid_request_error","param":null,"code":null}}"#, status: 404)
        }
        let provider = openAI(server)
        let error = await #expect(throws: ProviderError.self) { try await provider.retrieveBatch(id: "batch_x") }
        #expect(error?.status == 404)
        #expect(error?.type == "invalid_request_error")
        #expect(server.requests.count == 1)
        try await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func connectionErrorsAreRetriedWithBackoffThenReported() async throws {
        let closed = try await StubServer.start { _ in .json("{}") }
        let base = closed.baseURL
        try await closed.shutdown()
        let clock = ManualClock()
        var configuration = ProviderClientConfiguration.openAI(apiKey: Self.key, baseURL: base + "/v1")
        configuration.retry = RetryPolicy(maxRetries: 2, initialDelay: .milliseconds(500), jitter: 0)
        // AsyncHTTPClient re-dials a refused port until its connect timeout, so give this client a short one.
        let client = HTTPClient(
            eventLoopGroup: HTTPClient.defaultEventLoopGroup,
            configuration: HTTPClient.Configuration(timeout: .init(connect: .milliseconds(200)))
        )
        let provider = OpenAIBatchProvider(configuration: configuration, httpClient: client, clock: clock, logger: Self.logger)
        let task = Task { try await provider.retrieveBatch(id: "batch_1") }
        var delays: [Duration] = []
        for _ in 0..<2 {
            let deadline = await clock.nextSleep()
            delays.append(deadline.offset - clock.now.offset)
            clock.advance(to: deadline)
        }
        #expect(delays == [.milliseconds(500), .seconds(1)])
        let error = await #expect(throws: ProviderTransportError.self) { try await task.value }
        #expect(error?.request == "GET /v1/batches/batch_1")
        #expect(!"\(String(describing: error))".contains("SECRET"))
        try await client.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func openAIFindBatchPagesNewestFirstAndStopsAtCreatedAfter() async throws {
        let server = try await StubServer.start { request in
            if request.uri.hasPrefix("/v1/batches?") && !request.uri.contains("after=") {
                return .json(#"{"object":"list","data":[\#(openAIBatchJSON(id: "b3", status: "completed", createdAt: 3000, tag: "other")),\#(openAIBatchJSON(id: "b2", status: "completed", createdAt: 2000))],"first_id":"b3","last_id":"b2","has_more":true}"#)
            }
            if request.uri.contains("after=b2") {
                return .json(#"{"object":"list","data":[\#(openAIBatchJSON(id: "b1", status: "in_progress", createdAt: 1500, tag: "mine")),\#(openAIBatchJSON(id: "b0", status: "completed", createdAt: 100, tag: "old"))],"first_id":"b1","last_id":"b0","has_more":true}"#)
            }
            return .json(#"{"error":{"message":"unexpected","type":"invalid_request_error","param":null,"code":null}}"#, status: 400)
        }
        let provider = openAI(server)
        let spec = ProviderBatchSpec(endpoint: "/v1/chat/completions", model: nil, idempotencyTag: "mine", requestCount: 3)
        let found = try await provider.findBatch(spec, createdAfter: Date(timeIntervalSince1970: 1000))
        #expect(found?.id == "b1")
        let missing = ProviderBatchSpec(endpoint: "/v1/chat/completions", model: nil, idempotencyTag: "nope", requestCount: 3)
        #expect(try await provider.findBatch(missing, createdAfter: Date(timeIntervalSince1970: 1000)) == nil)
        #expect(server.requests.allSatisfy { !$0.uri.contains("after=b0") })
        try await server.shutdown()
    }

    @Test(.timeLimit(.minutes(1)))
    func anthropicCreateFindAndResultsURLs() async throws {
        let results = [
            #"{"custom_id":"a","result":{"type":"succeeded","message":{"id":"msg_1","usage":{"input_tokens":1,"output_tokens":2}}}}"#,
            #"{"custom_id":"b","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}}}"#,
            #"{"custom_id":"c","result":{"type":"canceled"}}"#,
        ].joined(separator: "\n")
        let server = try await StubServer.start { request in
            switch (request.method, request.uri) {
            case ("POST", "/v1/messages/batches"):
                return .json(anthropicBatchJSON(id: "msgbatch_new", status: "in_progress", createdAt: "2024-09-24T18:37:24.100435Z", processing: 3))
            case ("GET", "/v1/messages/batches?limit=2"):
                return .json(#"{"data":[\#(anthropicBatchJSON(id: "m4", status: "in_progress", createdAt: "2024-09-24T18:40:00Z", processing: 3)),\#(anthropicBatchJSON(id: "m3", status: "in_progress", createdAt: "2024-09-24T18:39:00Z", processing: 5))],"has_more":true,"first_id":"m4","last_id":"m3"}"#)
            case ("GET", "/v1/messages/batches?limit=2&after_id=m3"):
                return .json(#"{"data":[\#(anthropicBatchJSON(id: "m2", status: "in_progress", createdAt: "2024-09-24T18:38:00.5Z", processing: 3)),\#(anthropicBatchJSON(id: "m1", status: "ended", createdAt: "2024-09-24T10:00:00Z", succeeded: 3))],"has_more":false,"first_id":"m2","last_id":"m1"}"#)
            case ("GET", "/custom/results?sig=1"), ("GET", "/v1/messages/batches/msgbatch_new/results"):
                return StubServer.Response(status: 200, headers: [("content-type", "application/x-jsonl")], body: Array(results.utf8))
            default:
                return .json(#"{"type":"error","error":{"type":"not_found_error","message":"no route \#(request.uri)"}}"#, status: 404)
            }
        }
        let provider = anthropic(server)
        let spec = ProviderBatchSpec(endpoint: "/v1/messages", model: nil, idempotencyTag: "t", requestCount: 3)
        let lines = AsyncLines((0..<3).map { ProviderRequestLine(customID: "id_\($0)", endpoint: "/v1/messages", body: Array(#"{"max_tokens":5}"#.utf8)) })
        #expect(try await provider.uploadInput(spec, lines: lines) == nil)
        let created = try await provider.createBatch(spec, inputFileID: nil, lines: lines)
        #expect(created.id == "msgbatch_new")
        #expect(created.counts.total == 3)
        #expect(created.createdAt == Date(timeIntervalSince1970: 1_727_203_044.100435))
        let body = try #require(try JSONSerialization.jsonObject(with: Data(server.requests[0].body)) as? [String: Any])
        #expect((body["requests"] as? [[String: Any]])?.map { $0["custom_id"] as? String } == ["id_0", "id_1", "id_2"])

        let found = try await provider.findBatch(spec, createdAfter: Wire.parseRFC3339("2024-09-24T18:39:30Z")!)
        #expect(found?.id == "m2")  // oldest with total 3 within the skew window; m1 is too old

        var ended = created
        for url in ["/v1/messages/batches/msgbatch_new/results", server.baseURL + "/custom/results?sig=1"] {
            ended.resultsURL = url
            var seen: [ProviderResultLine] = []
            try await provider.streamResults(of: ended) { seen += $0 }
            #expect(seen.map(\.customID) == ["a", "b", "c"])
            #expect(seen[1].outcome == .errored(ProviderError(type: "invalid_request_error", message: "bad")))
            #expect(seen[2].outcome == .canceled)
        }
        try await server.shutdown()
    }
}
