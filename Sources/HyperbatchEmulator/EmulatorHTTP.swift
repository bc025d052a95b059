/// A transport-neutral HTTP request as the emulator core sees it.
public struct EmulatorRequest: Sendable {
    /// `GET`, `POST`, `DELETE`...
    public var method: String
    /// The path without the query, e.g. `/v1/batches`.
    public var path: String
    /// Query parameters.
    public var query: [String: String]
    /// Headers with lower-cased names.
    public var headers: [String: String]
    /// The raw body (empty when the front end spooled it to disk: see `spooledBody`).
    public var body: [UInt8]
    /// The body written to a file by the front end instead of collected in memory (file uploads and Anthropic
    /// creates); the core takes the file over or removes it.
    public var spooledBody: EmulatorSpooledBody?

    /// Creates a request; header names are lower-cased.
    public init(method: String, path: String, query: [String: String] = [:], headers: [String: String] = [:], body: [UInt8] = []) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = Dictionary(headers.map { ($0.key.lowercased(), $0.value) }, uniquingKeysWith: { a, _ in a })
        self.body = body
    }
}

/// A transport-neutral HTTP response produced by the emulator core.
public struct EmulatorResponse: Sendable {
    /// HTTP status code.
    public var status: Int
    /// Response headers.
    public var headers: [String: String]
    /// Response body.
    public var body: [UInt8]
    /// Real seconds the front end waits before sending the answer (the slow-response fault); 0 = at once.
    public var delaySeconds: Double = 0
    /// A body produced piece by piece, sent after `body` (which is then usually empty); nil for a plain body.
    public var chunks: EmulatorBodyChunks?
    /// A body read from a stored file as it is sent, after `body`; nil for a plain body.
    public var file: EmulatorFileBody?

    /// `body` followed by every piece of `chunks` or the stored file's bytes, in one buffer (for tests and small
    /// answers).
    public var collectedBody: [UInt8] {
        body + (chunks.map { Array($0.joined()) } ?? []) + ((try? file?.read(0..<(file?.count ?? 0))) ?? [])
    }

    /// Creates a response.
    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A request body the front end wrote to a file as it arrived.
public struct EmulatorSpooledBody: Sendable {
    /// Path of the file.
    public var path: String
    /// Bytes in it.
    public var count: Int

    /// Describes a spooled body.
    public init(path: String, count: Int) {
        self.path = path
        self.count = count
    }
}

/// A response body that is a byte range of a stored file, read piece by piece as it is sent.
public struct EmulatorFileBody: Sendable {
    /// Path of the stored file.
    public var path: String
    /// Offset of the body in the file.
    public var offset: Int
    /// Length of the body.
    public var count: Int

    /// Describes `count` bytes of the file at `path` from `offset`.
    public init(path: String, offset: Int, count: Int) {
        self.path = path
        self.offset = offset
        self.count = count
    }

    /// Reads bytes `range` of the body (relative to `offset`).
    public func read(_ range: Range<Int>) throws -> [UInt8] {
        var buffer = try FileReader(path: path).read(at: offset + range.lowerBound, count: range.count)
        return buffer.readBytes(length: buffer.readableBytes) ?? []
    }
}

/// Positional reads of one file (`pread`), for sending stored files in pieces.
final class FileReader: @unchecked Sendable {
    private let fd: Int32

    /// Opens the file at `path` for reading.
    init(path: String) throws {
        fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EmulatorStorageError.io("cannot open \(path)", errno) }
    }

    deinit { Glibc.close(fd) }

    /// Reads `count` bytes at `offset` straight into a new buffer (fewer only at the end of the file).
    func read(at offset: Int, count: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        guard count > 0 else { return buffer }
        try buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { raw in
            var done = 0
            while done < count {
                let n = pread(fd, raw.baseAddress! + done, count - done, off_t(offset + done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw EmulatorStorageError.io("read", errno)
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
        return buffer
    }
}

/// A response body rendered in pieces as it is sent, so a large answer is never held in memory whole.
public struct EmulatorBodyChunks: Sequence, Sendable {
    /// Number of items (e.g. result lines).
    public let count: Int
    /// Items rendered per piece.
    public let itemsPerChunk: Int
    let render: @Sendable (Range<Int>) -> [UInt8]

    /// Renders items `0..<count` in pieces of `itemsPerChunk` with `render`.
    public init(count: Int, itemsPerChunk: Int, render: @escaping @Sendable (Range<Int>) -> [UInt8]) {
        self.count = count
        self.itemsPerChunk = Swift.max(1, itemsPerChunk)
        self.render = render
    }

    /// Iterates the rendered pieces in order.
    public struct Iterator: IteratorProtocol {
        let chunks: EmulatorBodyChunks
        var position = 0

        /// The next rendered piece, or nil after the last.
        public mutating func next() -> [UInt8]? {
            guard position < chunks.count else { return nil }
            let end = Swift.min(chunks.count, position + chunks.itemsPerChunk)
            defer { position = end }
            return chunks.render(position..<end)
        }
    }

    /// An iterator over the pieces.
    public func makeIterator() -> Iterator { Iterator(chunks: self) }
}

/// Splits a `multipart/form-data` body into named parts, in place: each part is a byte range of the body.
enum Multipart {
    /// One part: its file name, if any, and where its bytes lie in the body.
    struct Part { var filename: String?; var range: Range<Int> }

    /// Parses `body` with the boundary in `contentType`; returns part name → part. `progress` is called with the
    /// offset reached as the delimiter search moves forward (a mapped body drops the pages behind it).
    static func parse(body: UnsafeBufferPointer<UInt8>, contentType: String, progress: (Int) -> Void = { _ in }) -> [String: Part] {
        guard let r = contentType.range(of: "boundary=") else { return [:] }
        var boundary = String(contentType[r.upperBound...])
        if let semi = boundary.firstIndex(of: ";") { boundary = String(boundary[..<semi]) }
        boundary = boundary.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        let delimiter = Array(("--" + boundary).utf8)
        var parts: [String: Part] = [:]
        var positions: [Int] = []
        var i = 0
        while let p = find(delimiter, in: body, from: i) {
            positions.append(p)
            i = p + delimiter.count
            progress(i)
        }
        for (k, start) in positions.enumerated() where k + 1 < positions.count {
            var s = start + delimiter.count
            if s + 1 < body.count, body[s] == 13, body[s + 1] == 10 { s += 2 }
            var e = positions[k + 1]
            if e >= 2, body[e - 2] == 13, body[e - 1] == 10 { e -= 2 }
            guard let h = find([13, 10, 13, 10], in: body, from: s), h <= e else { continue }
            let head = String(decoding: UnsafeBufferPointer(rebasing: body[s..<h]), as: UTF8.self)
            guard let name = attribute("name", in: head) else { continue }
            parts[name] = Part(filename: attribute("filename", in: head), range: (h + 4)..<e)
        }
        return parts
    }

    private static func attribute(_ key: String, in head: String) -> String? {
        for piece in head.split(whereSeparator: { $0 == ";" || $0 == "\r" || $0 == "\n" }) {
            let t = piece.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix(key + "=\"") { return String(t.dropFirst(key.count + 2).dropLast()) }
        }
        return nil
    }

    /// The first offset at or after `from` where `needle` occurs in `hay`.
    static func find(_ needle: [UInt8], in hay: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count, let base = hay.baseAddress else { return nil }
        let first = Int32(needle[0])
        let last = hay.count - needle.count
        var i = from
        while i <= last {
            // memchr finds candidates for the first byte; the rest is compared in place.
            guard let hit = memchr(base + i, first, last - i + 1) else { return nil }
            let p = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
            if memcmp(base + p, needle, needle.count) == 0 { return p }
            i = p + 1
        }
        return nil
    }
}

import Foundation
import NIOCore
#if canImport(Glibc)
import Glibc
#endif
