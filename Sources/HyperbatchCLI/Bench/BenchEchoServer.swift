import AsyncAlgorithms
import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// The baseline of `bench emulator`: a trivial Hummingbird server on loopback that swallows an upload
/// (`POST /sink`) and streams back a given number of JSONL bytes in 256 KB pieces (`GET /source?bytes=N`), so the
/// same `HTTPClient` can move the same bytes with no API logic on either side.
enum BenchEchoServer {
    /// Uploads `uploadBytes` and downloads `downloadBytes` through `client`; returns both times in seconds.
    static func measure(client: HTTPClient, uploadBytes: Int, downloadBytes: Int, logger: Logger) async throws -> (Double, Double) {
        let piece = 256 * 1024
        let line = Array((#"{"id":"batch_req_x","custom_id":"r0","response":{"status_code":200,"body":{}},"error":null}"# + "\n").utf8)
        var source: [UInt8] = []
        source.reserveCapacity(piece + line.count)
        while source.count < piece { source += line }
        let template = ByteBuffer(bytes: source[0..<piece])

        let router = Router()
        router.post("/sink") { request, _ -> String in
            var received = 0
            for try await buffer in request.body { received += buffer.readableBytes }
            return "\(received)"
        }
        router.get("/source") { request, _ -> Response in
            let total = Int(request.uri.queryParameters.get("bytes") ?? "0") ?? 0
            return Response(status: .ok, body: ResponseBody(contentLength: total) { writer in
                var sent = 0
                while sent < total {
                    let size = min(piece, total - sent)
                    try await writer.write(template.getSlice(at: 0, length: size)!)
                    sent += size
                }
                try await writer.finish(nil)
            })
        }
        let port = PortBox()
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, .warning)
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "bench-baseline"),
            onServerRunning: { port.set($0.localAddress?.port ?? 0) }, logger: serverLogger)
        var groupConfiguration = ServiceGroupConfiguration(services: [app], logger: serverLogger)
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(2)
        let group = ServiceGroup(configuration: groupConfiguration)
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            defer { Task { await group.triggerGracefulShutdown() } }
            let base = "http://127.0.0.1:\(try await port.wait())"

            // The upload: the same number of bytes, in pieces, as a streamed body.
            let uploadStart = ContinuousClock.now
            var upload = HTTPClientRequest(url: base + "/sink")
            upload.method = .POST
            let chunks = stride(from: 0, to: uploadBytes, by: piece).map { template.getSlice(at: 0, length: min(piece, uploadBytes - $0))! }
            upload.body = .stream(chunks.async, length: .known(Int64(uploadBytes)))
            let uploadAnswer = try await client.execute(upload, timeout: .seconds(600))
            let echoed = Int(String(buffer: try await uploadAnswer.body.collect(upTo: 1024))) ?? -1
            let uploadSeconds = (ContinuousClock.now - uploadStart).seconds
            guard echoed == uploadBytes else { throw BenchBaselineError(message: "sink got \(echoed) of \(uploadBytes) bytes") }

            // The download: the same number of bytes, read as a stream.
            let downloadStart = ContinuousClock.now
            let download = try await client.execute(HTTPClientRequest(url: base + "/source?bytes=\(downloadBytes)"), timeout: .seconds(600))
            var received = 0
            for try await buffer in download.body { received += buffer.readableBytes }
            let downloadSeconds = (ContinuousClock.now - downloadStart).seconds
            guard received == downloadBytes else { throw BenchBaselineError(message: "got \(received) of \(downloadBytes) bytes") }
            await group.triggerGracefulShutdown()
            return (uploadSeconds, downloadSeconds)
        }
    }

    struct BenchBaselineError: Error, CustomStringConvertible {
        var message: String
        var description: String { "baseline: \(message)" }
    }

    /// The port the baseline server bound, handed from `onServerRunning` to the measuring task.
    final class PortBox: Sendable {
        private let stream: AsyncStream<Int>
        private let continuation: AsyncStream<Int>.Continuation
        init() { (stream, continuation) = AsyncStream.makeStream(of: Int.self) }
        func set(_ port: Int) { continuation.yield(port) }
        func wait() async throws -> Int {
            for await port in stream { return port }
            throw CancellationError()
        }
    }
}
