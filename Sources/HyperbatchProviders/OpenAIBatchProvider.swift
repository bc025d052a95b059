import AsyncHTTPClient
import Foundation
import HyperbatchJobs
import Logging
import NIOCore
import NIOHTTP1

/// The OpenAI Batch API (`/v1/files` + `/v1/batches`) as a ``BatchProvider``.
///
/// The input file is streamed from the lines as multipart/form-data with chunked transfer encoding; a retried upload
/// iterates `lines` again, so pass a sequence that can be iterated more than once. Results are read line by line.
public struct OpenAIBatchProvider<C: Clock>: BatchProvider where C.Duration == Duration {
    public var kind: ProviderKind { .openai }
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
            fixedHeaders: ["authorization": "Bearer \(configuration.apiKey.secret)"], retry: configuration.retry,
            clock: clock, logger: logger, timeout: configuration.requestTimeout)
    }

    public func encodedSize(of line: ProviderRequestLine) -> Int {
        OpenAILineCoding.encodedSize(line)
    }

    /// Uploads the JSONL input file (`purpose=batch`) and returns its file id.
    public func uploadInput<Lines: AsyncSequence & Sendable>(_ spec: ProviderBatchSpec, lines: Lines) async throws -> String?
    where Lines.Element == ProviderRequestLine {
        let boundary = "hyperbatch-\(UUID().uuidString)"
        let filename = "hyperbatch-" + String(spec.idempotencyTag.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_" }) + ".jsonl"
        let prefix = Array(
            ("--\(boundary)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
                + "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\n"
                + "Content-Type: application/jsonl\r\n\r\n").utf8)
        let suffix = Array("\r\n--\(boundary)--\r\n".utf8)
        let body = RequestLinesBody(
            prefix: prefix, separator: [], suffix: suffix, lines: lines,
            encode: { line, out in OpenAILineCoding.encode(line, into: &out) })
        let response = try await http.execute(
            .POST, http.url("/files"),
            headers: ["content-type": "multipart/form-data; boundary=\(boundary)", "accept": "application/json"],
            body: { .stream(body, length: .unknown) })
        let buffer = try await response.body.collect(upTo: 1 << 20)
        guard let file = try? Wire.decoder().decode(OpenAIWire.File.self, from: Data(buffer.readableBytesView)) else {
            throw ProviderError(status: Int(response.status.code), type: "decoding_error", message: "unexpected answer to POST /files")
        }
        logger.debug("openai input uploaded", metadata: ["provider.file": "\(file.id)", "provider.tag": "\(spec.idempotencyTag)"])
        return file.id
    }

    /// Creates the batch from an uploaded file, with the idempotency tag in `metadata`; `lines` is ignored.
    public func createBatch<Lines: AsyncSequence & Sendable>(
        _ spec: ProviderBatchSpec, inputFileID: String?, lines: Lines
    ) async throws -> ProviderBatchStatus where Lines.Element == ProviderRequestLine {
        guard let inputFileID else {
            throw ProviderError(type: "invalid_request_error", message: "OpenAI batches need an uploaded input file", param: "input_file_id")
        }
        var metadata = spec.metadata
        metadata[configuration.tagMetadataKey] = spec.idempotencyTag
        let request = OpenAIWire.CreateBatch(inputFileId: inputFileID, endpoint: spec.endpoint, metadata: metadata)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = Array(try encoder.encode(request))
        let batch = try await http.json(OpenAIWire.Batch.self, .POST, http.url("/batches"), jsonBody: body)
        logger.debug("openai batch created", metadata: ["provider.batch": "\(batch.id)", "provider.tag": "\(spec.idempotencyTag)"])
        return batch.status(tagKey: configuration.tagMetadataKey)
    }

    public func retrieveBatch(id: String) async throws -> ProviderBatchStatus {
        try await http.json(OpenAIWire.Batch.self, .GET, http.url("/batches/\(id)")).status(tagKey: configuration.tagMetadataKey)
    }

    public func cancelBatch(id: String) async throws -> ProviderBatchStatus {
        try await http.json(OpenAIWire.Batch.self, .POST, http.url("/batches/\(id)/cancel")).status(tagKey: configuration.tagMetadataKey)
    }

    /// Lists batches newest first; `limit` is clamped to OpenAI's 1...100.
    public func listBatches(after cursor: String?, limit: Int) async throws -> ProviderBatchPage {
        var query = [("limit", String(min(max(limit, 1), 100)))]
        if let cursor { query.append(("after", cursor)) }
        let list = try await http.json(OpenAIWire.BatchList.self, .GET, http.url("/batches", query: query))
        let next = (list.hasMore ?? false) ? (list.lastId ?? list.data.last?.id) : nil
        return ProviderBatchPage(batches: list.data.map { $0.status(tagKey: configuration.tagMetadataKey) }, nextCursor: next)
    }

    /// Pages through batches newest first, stopping at the first one created before `createdAfter` minus
    /// ``ProviderClientConfiguration/findSkew``; returns the newest whose metadata carries `spec`'s tag.
    public func findBatch(_ spec: ProviderBatchSpec, createdAfter: Date) async throws -> ProviderBatchStatus? {
        let floor = createdAfter.addingTimeInterval(-Self.seconds(configuration.findSkew))
        var cursor: String?
        repeat {
            let page = try await listBatches(after: cursor, limit: configuration.listPageSize)
            for batch in page.batches {
                if batch.createdAt < floor { return nil }
                if batch.idempotencyTag == spec.idempotencyTag { return batch }
            }
            cursor = page.nextCursor
        } while cursor != nil
        return nil
    }

    /// Streams the output file, then the error file (expired lines, failed lines, and a cancelled batch's rest).
    public func streamResults(
        of batch: ProviderBatchStatus, _ body: ([ProviderResultLine]) async throws -> Void
    ) async throws {
        for fileID in [batch.outputFileID, batch.errorFileID].compactMap({ $0 }) {
            try await http.streamLines(
                http.url("/files/\(fileID)/content"), accept: "application/binary", chunkSize: configuration.resultChunkSize,
                decode: { try OpenAILineCoding.decodeResult($0, lineNumber: $1) }, body)
        }
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}

extension OpenAIBatchProvider where C == ContinuousClock {
    /// Creates a client that sleeps for retries on the real clock.
    public init(configuration: ProviderClientConfiguration, httpClient: HTTPClient, logger: Logger) {
        self.init(configuration: configuration, httpClient: httpClient, clock: ContinuousClock(), logger: logger)
    }
}
