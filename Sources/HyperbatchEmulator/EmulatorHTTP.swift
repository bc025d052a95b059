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
    /// The raw body.
    public var body: [UInt8]

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

    /// `body` followed by every piece of `chunks`, in one buffer (for tests and small answers).
    public var collectedBody: [UInt8] { body + (chunks.map { Array($0.joined()) } ?? []) }

    /// Creates a response.
    public init(status: Int, headers: [String: String] = [:], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
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

/// Splits a `multipart/form-data` body into named parts.
enum Multipart {
    /// Parses `body` with the boundary in `contentType`; returns part name → bytes (and file name if any).
    static func parse(body: [UInt8], contentType: String) -> [String: (filename: String?, data: [UInt8])] {
        guard let r = contentType.range(of: "boundary=") else { return [:] }
        var boundary = String(contentType[r.upperBound...])
        if let semi = boundary.firstIndex(of: ";") { boundary = String(boundary[..<semi]) }
        boundary = boundary.trimmingCharacters(in: CharacterSet(charactersIn: "\" "))
        let delimiter = Array(("--" + boundary).utf8)
        var parts: [String: (String?, [UInt8])] = [:]
        var positions: [Int] = []
        var i = 0
        while let p = find(delimiter, in: body, from: i) { positions.append(p); i = p + delimiter.count }
        for (k, start) in positions.enumerated() where k + 1 < positions.count {
            var s = start + delimiter.count
            if s + 1 < body.count, body[s] == 13, body[s + 1] == 10 { s += 2 }
            var e = positions[k + 1]
            if e >= 2, body[e - 2] == 13, body[e - 1] == 10 { e -= 2 }
            guard let h = find([13, 10, 13, 10], in: body, from: s), h <= e else { continue }
            let head = String(decoding: body[s..<h], as: UTF8.self)
            guard let name = attribute("name", in: head) else { continue }
            parts[name] = (attribute("filename", in: head), Array(body[(h + 4)..<e]))
        }
        return parts.mapValues { (filename: $0.0, data: $0.1) }
    }

    private static func attribute(_ key: String, in head: String) -> String? {
        for piece in head.split(whereSeparator: { $0 == ";" || $0 == "\r" || $0 == "\n" }) {
            let t = piece.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix(key + "=\"") { return String(t.dropFirst(key.count + 2).dropLast()) }
        }
        return nil
    }

    static func find(_ needle: [UInt8], in hay: [UInt8], from: Int) -> Int? {
        guard !needle.isEmpty, hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        var i = from
        let first = needle[0]
        while i <= hay.count - needle.count {
            if hay[i] == first {
                var ok = true
                for j in 1..<needle.count where hay[i + j] != needle[j] { ok = false; break }
                if ok { return i }
            }
            i += 1
        }
        return nil
    }
}

import Foundation
