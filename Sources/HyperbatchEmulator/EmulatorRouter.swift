import Hummingbird
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// The Hummingbird front end: registers `EmulatorRoute.all` on a `Router` and converts between Hummingbird's
/// requests and responses and the core's transport-neutral ones. No API logic lives here.
enum EmulatorRouter {
    /// Bodies larger than this are written in chunks of this size rather than as one buffer.
    static let chunkSize = 256 * 1024

    /// A router sending every API call to `handle`; paths and methods it does not register reach `handle` too
    /// (through `FallbackMiddleware`), so the core answers them with 404/405 in the provider's shape.
    ///
    /// - Parameters:
    ///   - maxBodyBytes: largest request body collected; a larger one is answered by `tooLarge`.
    ///   - handle: answers one request (the core at the current emulated time, plus any slow-response delay).
    ///   - tooLarge: the 413 answer for a body over `maxBodyBytes`.
    ///   - streamed: called with each piece's size and the bytes of its body already written, just before the piece
    ///     is written; the body waits while it runs.
    static func build(
        maxBodyBytes: Int,
        handle: @escaping @Sendable (EmulatorRequest) async throws -> EmulatorResponse,
        tooLarge: @escaping @Sendable (EmulatorRequest) -> EmulatorResponse,
        storage: EmulatorStorage? = nil,
        streamed: @escaping @Sendable (Int, Int) async -> Void = { _, _ in }
    ) -> Router<BasicRequestContext> {
        let router = Router()
        let respond: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            try await answer(request, maxBodyBytes: maxBodyBytes, handle: handle, tooLarge: tooLarge, storage: storage, streamed: streamed)
        }
        // `http.server.request.duration` and friends, with the route template as `http.route`.
        router.add(middleware: MetricsMiddleware())
        router.add(middleware: FallbackMiddleware(respond: respond))
        for route in EmulatorRoute.all {
            for method in route.methods {
                router.on(RouterPath(route.path), method: HTTPRequest.Method(method)!, use: respond)
            }
        }
        return router
    }

    /// Paths whose POST bodies (a file upload, an Anthropic create) are written to `storage` as they arrive
    /// instead of collected in memory.
    static let spooledPaths: Set<String> = ["/v1/files", "/v1/messages/batches"]

    /// Collects the body (or spools it to `storage`), calls `handle`, and renders the answer.
    static func answer(
        _ request: Request, maxBodyBytes: Int,
        handle: @Sendable (EmulatorRequest) async throws -> EmulatorResponse,
        tooLarge: @Sendable (EmulatorRequest) -> EmulatorResponse,
        storage: EmulatorStorage? = nil,
        streamed: @escaping @Sendable (Int, Int) async -> Void = { _, _ in }
    ) async throws -> Response {
        var headers: [String: String] = [:]
        for field in request.headers where headers[field.name.canonicalName] == nil {
            headers[field.name.canonicalName] = field.value
        }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters where query[String(key)] == nil { query[String(key)] = String(value) }
        var emulated = EmulatorRequest(method: request.method.rawValue, path: request.uri.path, query: query, headers: headers)
        if let storage, request.method == .post, spooledPaths.contains(request.uri.path) {
            let path = try storage.newPath("upload")
            // The core renames the file when it keeps it; whatever is left here afterwards is removed.
            defer { unlink(path) }
            let writer = try SpoolWriter(path: path)
            for try await piece in request.body {
                guard writer.count + piece.readableBytes <= maxBodyBytes else {
                    try? writer.close()
                    return response(tooLarge(emulated), streamed: streamed)
                }
                try piece.withUnsafeReadableBytes { try writer.append($0) }
            }
            try writer.close()
            emulated.spooledBody = EmulatorSpooledBody(path: path, count: writer.count)
            return response(try await handle(emulated), streamed: streamed)
        }
        do {
            var buffer = try await request.body.collect(upTo: maxBodyBytes)
            emulated.body = buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            return response(tooLarge(emulated), streamed: streamed)
        }
        return response(try await handle(emulated), streamed: streamed)
    }

    /// Renders a core response; bodies over `chunkSize` are streamed in slices instead of copied into one buffer.
    /// `streamed` is called with each streamed piece's size and the body's bytes written so far, before the piece.
    static func response(_ r: EmulatorResponse, streamed: @escaping @Sendable (Int, Int) async -> Void = { _, _ in }) -> Response {
        var fields = HTTPFields()
        for (name, value) in r.headers {
            if let n = HTTPFields.Element.Name(name) { fields[n] = value }
        }
        let status = HTTPResponse.Status(code: r.status)
        let bytes = r.body
        if let chunks = r.chunks {
            // Rendered piece by piece while sending (chunked transfer encoding).
            return Response(status: status, headers: fields, body: ResponseBody { writer in
                var written = 0
                if !bytes.isEmpty {
                    await streamed(bytes.count, written)
                    try await writer.write(ByteBuffer(bytes: bytes))
                    written += bytes.count
                }
                for piece in chunks where !piece.isEmpty {
                    await streamed(piece.count, written)
                    try await writer.write(ByteBuffer(bytes: piece))
                    written += piece.count
                }
                try await writer.finish(nil)
            })
        }
        if let file = r.file {
            return fileResponse(status: status, fields: fields, file: file, streamed: streamed)
        }
        guard bytes.count > chunkSize else {
            return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        return Response(status: status, headers: fields, body: ResponseBody(contentLength: bytes.count) { writer in
            var offset = 0
            while offset < bytes.count {
                let end = min(bytes.count, offset + chunkSize)
                await streamed(end - offset, offset)
                try await writer.write(ByteBuffer(bytes: bytes[offset..<end]))
                offset = end
            }
            try await writer.finish(nil)
        })
    }

    /// A stored file's bytes, with their length: read whole when small, else read and sent in `chunkSize` slices.
    static func fileResponse(
        status: HTTPResponse.Status, fields: HTTPFields, file: EmulatorFileBody,
        streamed: @escaping @Sendable (Int, Int) async -> Void
    ) -> Response {
        guard file.count > chunkSize else {
            let bytes = (try? FileReader(path: file.path).read(at: file.offset, count: file.count)) ?? ByteBuffer()
            return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: bytes))
        }
        return Response(status: status, headers: fields, body: ResponseBody(contentLength: file.count) { writer in
            let reader = try FileReader(path: file.path)
            var offset = 0
            while offset < file.count {
                let end = min(file.count, offset + chunkSize)
                await streamed(end - offset, offset)
                let piece = try reader.read(at: file.offset + offset, count: end - offset)
                guard piece.readableBytes == end - offset else { throw EmulatorStorageError.io("short read of \(file.path)", EIO) }
                try await writer.write(piece)
                offset = end
            }
            try await writer.finish(nil)
        })
    }

    /// Sends requests the router did not match (unknown path, or a known path with another method) to the core
    /// instead of Hummingbird's plain 404, so clients see the provider's error shape.
    struct FallbackMiddleware: RouterMiddleware {
        typealias Context = BasicRequestContext
        let respond: @Sendable (Request, BasicRequestContext) async throws -> Response

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            do {
                return try await next(request, context)
            } catch let error as HTTPError where error.status == .notFound {
                return try await respond(request, context)
            }
        }
    }
}
