import AsyncHTTPClient
import Foundation
import HyperbatchJobs
import Logging
import NIOCore
import NIOHTTP1

/// Anthropic Message Batches (`/v1/messages/batches`) as a ``BatchProvider``.
///
/// The create body `{"requests":[…]}` is streamed from the lines (chunked transfer encoding); a retried create
/// iterates `lines` again, so pass a sequence that can be iterated more than once. Results are read from
/// `results_url` as given (relative → joined to the base URL; absolute → used as is), line by line.
public struct AnthropicBatchProvider<C: Clock>: BatchProvider where C.Duration == Duration {
    public var kind: ProviderKind { .anthropic }
    public var limits: ProviderLimits { configuration.limits }

    /// The settings this client was made with.
    public let configuration: ProviderClientConfiguration
    private let http: ProviderHTTP<C>
    private let logger: Logger

    /// Creates a client on `httpClient` (owned by the caller), sleeping for retries on `clock`.
    public init(configuration: ProviderClientConfiguration, httpClient: HTTPClient, clock: C, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.http = ProviderHTTP(
            client: httpClient, baseURL: configuration.baseURL,
            fixedHeaders: ["x-api-key": configuration.apiKey.secret, "anthropic-version": "2023-06-01"],
            retry: configuration.retry, clock: clock, logger: logger, timeout: configuration.requestTimeout)
    }

    public func encodedSize(of line: ProviderRequestLine) -> Int {
        AnthropicLineCoding.encodedSize(line)
    }

    /// Anthropic stages nothing: returns nil.
    public func uploadInput<Lines: AsyncSequence & Sendable>(_ spec: ProviderBatchSpec, lines: Lines) async throws -> String?
    where Lines.Element == ProviderRequestLine {
        nil
    }

    /// Creates the batch, streaming `{"requests":[{"custom_id","params"}…]}` from `lines`.
    public func createBatch<Lines: AsyncSequence & Sendable>(
        _ spec: ProviderBatchSpec, inputFileID: String?, lines: Lines
    ) async throws -> ProviderBatchStatus where Lines.Element == ProviderRequestLine {
        let body = RequestLinesBody(
            prefix: Array(#"{"requests":["#.utf8), separator: [UInt8(ascii: ",")], suffix: Array("]}".utf8), lines: lines,
            encode: { line, out in AnthropicLineCoding.encode(line, into: &out) })
        let response = try await http.execute(
            .POST, http.url("/v1/messages/batches"),
            headers: ["content-type": "application/json", "accept": "application/json"],
            body: { .stream(body, length: .unknown) })
        let buffer = try await response.body.collect(upTo: 1 << 20)
        guard let batch = try? Wire.decoder().decode(AnthropicWire.Batch.self, from: Data(buffer.readableBytesView)) else {
            throw ProviderError(status: Int(response.status.code), type: "decoding_error", message: "unexpected answer to POST /v1/messages/batches")
        }
        logger.debug("anthropic batch created", metadata: ["provider.batch": "\(batch.id)", "provider.tag": "\(spec.idempotencyTag)"])
        return try batch.status()
    }

    public func retrieveBatch(id: String) async throws -> ProviderBatchStatus {
        try await http.json(AnthropicWire.Batch.self, .GET, http.url("/v1/messages/batches/\(id)")).status()
    }

    public func cancelBatch(id: String) async throws -> ProviderBatchStatus {
        try await http.json(AnthropicWire.Batch.self, .POST, http.url("/v1/messages/batches/\(id)/cancel")).status()
    }

    /// Lists batches newest first (`after_id` = the previous page's `last_id`); `limit` is clamped to 1...1000.
    public func listBatches(after cursor: String?, limit: Int) async throws -> ProviderBatchPage {
        var query = [("limit", String(min(max(limit, 1), 1000)))]
        if let cursor { query.append(("after_id", cursor)) }
        let list = try await http.json(AnthropicWire.BatchList.self, .GET, http.url("/v1/messages/batches", query: query))
        let next = (list.hasMore ?? false) ? (list.lastId ?? list.data.last?.id) : nil
        return ProviderBatchPage(batches: try list.data.map { try $0.status() }, nextCursor: next)
    }

    /// Anthropic batches carry no metadata, so this matches on time and size: among batches created at or after
    /// `createdAfter` minus ``ProviderClientConfiguration/findSkew`` whose request total equals `spec.requestCount`,
    /// it returns the oldest.
    ///
    /// Ambiguous by nature: another create of the same size in that window (ours or another process's on the same
    /// key) is indistinguishable. Callers should pass the time just before their own create and keep result
    /// ingestion idempotent on `custom_id`.
    public func findBatch(_ spec: ProviderBatchSpec, createdAfter: Date) async throws -> ProviderBatchStatus? {
        let floor = createdAfter.addingTimeInterval(-OpenAIBatchProvider<C>.seconds(configuration.findSkew))
        var oldestMatch: ProviderBatchStatus?
        var cursor: String?
        pages: repeat {
            let page = try await listBatches(after: cursor, limit: configuration.listPageSize)
            for batch in page.batches {
                if batch.createdAt < floor { break pages }
                if batch.counts.total == spec.requestCount { oldestMatch = batch }
            }
            cursor = page.nextCursor
        } while cursor != nil
        return oldestMatch
    }

    /// Streams the results from `results_url` (retrieving the batch first when `batch` has none).
    public func streamResults(
        of batch: ProviderBatchStatus, _ body: ([ProviderResultLine]) async throws -> Void
    ) async throws {
        var resultsURL = batch.resultsURL
        if resultsURL == nil { resultsURL = try await retrieveBatch(id: batch.id).resultsURL }
        guard let resultsURL else {
            throw ProviderError(type: "invalid_request_error", message: "batch \(batch.id) has no results yet")
        }
        try await http.streamLines(
            http.url(resultsURL), accept: "application/x-jsonl", chunkSize: configuration.resultChunkSize,
            decode: { try AnthropicLineCoding.decodeResult($0, lineNumber: $1) }, body)
    }
}

extension AnthropicBatchProvider where C == ContinuousClock {
    /// Creates a client that sleeps for retries on the real clock.
    public init(configuration: ProviderClientConfiguration, httpClient: HTTPClient, logger: Logger) {
        self.init(configuration: configuration, httpClient: httpClient, clock: ContinuousClock(), logger: logger)
    }
}
