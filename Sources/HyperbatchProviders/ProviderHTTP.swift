import AsyncHTTPClient
import Foundation
import HyperbatchJobs
import Logging
import NIOCore
import NIOHTTP1

/// The HTTP layer shared by both provider clients: auth headers, retries with backoff on an injected clock,
/// error decoding, and line-by-line streaming of response bodies.
struct ProviderHTTP<C: Clock>: Sendable where C.Duration == Duration {
    let client: HTTPClient
    let baseURL: String
    /// Auth and version headers. Holds the key: never log these.
    private let fixedHeaders: HTTPHeaders
    let retry: RetryPolicy
    let clock: C
    let logger: Logger
    let timeout: TimeAmount
    let random: @Sendable () -> Double

    init(
        client: HTTPClient, baseURL: String, fixedHeaders: HTTPHeaders, retry: RetryPolicy, clock: C, logger: Logger,
        timeout: Duration, random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.client = client
        var base = baseURL
        while base.hasSuffix("/") { base.removeLast() }
        self.baseURL = base
        self.fixedHeaders = fixedHeaders
        self.retry = retry
        self.clock = clock
        self.logger = logger
        let (seconds, attoseconds) = timeout.components
        self.timeout = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        self.random = random
    }

    /// `path` joined to the base URL, or `path` itself when it is already absolute (`http://` / `https://`).
    func url(_ path: String, query: [(String, String)] = []) -> String {
        var url: String
        if path.hasPrefix("http://") || path.hasPrefix("https://") {
            url = path
        } else {
            url = baseURL + (path.hasPrefix("/") ? path : "/" + path)
        }
        if !query.isEmpty {
            let encoded = query.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
            url += (url.contains("?") ? "&" : "?") + encoded
        }
        return url
    }

    private static func encode(_ text: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    /// Sends a request, retrying 408/409/429/5xx answers (as `x-should-retry` allows) and connection errors with
    /// backoff; returns the first 2xx response with its body unread. `body` is called again for every attempt.
    /// Throws ``ProviderError`` for an error answer, ``ProviderTransportError`` when the connection kept failing.
    func execute(
        _ method: HTTPMethod, _ url: String, headers: HTTPHeaders = [:],
        body: (@Sendable () -> HTTPClientRequest.Body)? = nil
    ) async throws -> HTTPClientResponse {
        let label = "\(method.rawValue) \(Self.pathForLogs(url))"
        var attempt = 0
        while true {
            var request = HTTPClientRequest(url: url)
            request.method = method
            request.headers = fixedHeaders
            request.headers.add(contentsOf: headers)
            if let body { request.body = body() }
            logger.debug("provider call", metadata: ["provider.request": "\(label)", "provider.attempt": "\(attempt)"])
            let response: HTTPClientResponse
            do {
                response = try await client.execute(request, timeout: timeout, logger: logger)
            } catch {
                if error is CancellationError || Task.isCancelled { throw error }
                guard attempt < retry.maxRetries else {
                    throw ProviderTransportError(request: label, underlying: String(describing: error))
                }
                let delay = retry.backoff(retry: attempt, random: random())
                logger.info(
                    "provider call failed, retrying",
                    metadata: ["provider.request": "\(label)", "provider.error": "\(error)", "provider.delay": "\(delay)"])
                try await clock.sleep(for: delay)
                attempt += 1
                continue
            }
            let status = Int(response.status.code)
            if (200..<300).contains(status) { return response }
            let bytes = (try? await response.body.collect(upTo: 1 << 20)).map { Array($0.readableBytesView) } ?? []
            let error = ProviderErrorDecoding.decode(status: status, body: bytes)
            let shouldRetry = RetryPolicy.shouldRetry(status: status, shouldRetryHeader: response.headers.first(name: "x-should-retry"))
            guard shouldRetry, attempt < retry.maxRetries else { throw error }
            let delay = retry.delay(
                retry: attempt, retryAfterMs: response.headers.first(name: "retry-after-ms"),
                retryAfter: response.headers.first(name: "retry-after"), random: random())
            logger.info(
                "provider answered with a retryable error, retrying",
                metadata: ["provider.request": "\(label)", "provider.status": "\(status)", "provider.delay": "\(delay)"])
            try await clock.sleep(for: delay)
            attempt += 1
        }
    }

    /// Sends a request and decodes its JSON answer as `T`.
    func json<T: Decodable>(
        _ type: T.Type, _ method: HTTPMethod, _ url: String, jsonBody: [UInt8]? = nil
    ) async throws -> T {
        var headers: HTTPHeaders = ["accept": "application/json"]
        var body: (@Sendable () -> HTTPClientRequest.Body)?
        if let jsonBody {
            headers.add(name: "content-type", value: "application/json")
            body = { .bytes(ByteBuffer(bytes: jsonBody)) }
        }
        let response = try await execute(method, url, headers: headers, body: body)
        let buffer = try await response.body.collect(upTo: 64 << 20)
        do {
            return try Wire.decoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch {
            throw ProviderError(
                status: Int(response.status.code), type: "decoding_error",
                message: "unexpected answer to \(method.rawValue) \(Self.pathForLogs(url)): \(error)")
        }
    }

    /// GETs `url` and hands its body to `body` line by line, `chunkSize` decoded lines per call; never holds the
    /// whole body. Retries apply to getting the answer, not to a body cut off midway (that throws).
    func streamLines(
        _ url: String, accept: String, chunkSize: Int,
        decode: ([UInt8], Int) throws -> ProviderResultLine,
        _ body: ([ProviderResultLine]) async throws -> Void
    ) async throws {
        let response = try await execute(.GET, url, headers: ["accept": accept])
        var splitter = LineSplitter()
        var pending: [ProviderResultLine] = []
        pending.reserveCapacity(chunkSize)
        var lineNumber = 0
        for try await buffer in response.body {
            for line in splitter.append(buffer) {
                lineNumber += 1
                pending.append(try decode(line, lineNumber))
                if pending.count >= chunkSize {
                    try await body(pending)
                    pending.removeAll(keepingCapacity: true)
                }
            }
        }
        if let line = splitter.finish() {
            lineNumber += 1
            pending.append(try decode(line, lineNumber))
        }
        if !pending.isEmpty { try await body(pending) }
        logger.debug("provider results read", metadata: ["provider.request": "GET \(Self.pathForLogs(url))", "provider.lines": "\(lineNumber)"])
    }

    /// The path of `url` without its query (queries of results URLs could carry signatures).
    static func pathForLogs(_ url: String) -> String {
        let noQuery = url.split(separator: "?", maxSplits: 1).first.map(String.init) ?? url
        return URLComponents(string: noQuery)?.path ?? noQuery
    }
}
