import Hummingbird
import NIOCore

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
        streamed: @escaping @Sendable (Int, Int) async -> Void = { _, _ in }
    ) -> Router<BasicRequestContext> {
        let router = Router()
        let respond: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            try await answer(request, maxBodyBytes: maxBodyBytes, handle: handle, tooLarge: tooLarge, streamed: streamed)
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

    /// Collects the body, calls `handle`, and renders the answer.
    static func answer(
        _ request: Request, maxBodyBytes: Int,
        handle: @Sendable (EmulatorRequest) async throws -> EmulatorResponse,
        tooLarge: @Sendable (EmulatorRequest) -> EmulatorResponse,
        streamed: @escaping @Sendable (Int, Int) async -> Void = { _, _ in }
    ) async throws -> Response {
        var headers: [String: String] = [:]
        for field in request.headers where headers[field.name.canonicalName] == nil {
            headers[field.name.canonicalName] = field.value
        }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters where query[String(key)] == nil { query[String(key)] = String(value) }
        var emulated = EmulatorRequest(method: request.method.rawValue, path: request.uri.path, query: query, headers: headers)
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
