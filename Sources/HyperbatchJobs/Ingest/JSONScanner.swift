import Foundation

/// A small validating JSON scanner over UTF-8 bytes: checks a value is well-formed and returns the byte ranges of an
/// object's members, so ingest can splice `body`/`params` unparsed and read only the few fields it needs.
struct JSONScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var i: Int

    init(_ bytes: UnsafeBufferPointer<UInt8>, at start: Int = 0) {
        self.bytes = bytes
        self.i = start
    }

    struct Invalid: Error {}

    /// The members of the object spanning `range` (key as decoded text, value as a byte range), or throws if the
    /// range is not exactly one well-formed JSON object.
    static func members(of bytes: UnsafeBufferPointer<UInt8>, in range: Range<Int>) throws -> [(key: String, value: Range<Int>)] {
        var s = JSONScanner(UnsafeBufferPointer(rebasing: bytes[..<range.upperBound]), at: range.lowerBound)
        s.skipSpace()
        guard s.peek == UInt8(ascii: "{") else { throw Invalid() }
        s.i += 1
        var result: [(key: String, value: Range<Int>)] = []
        s.skipSpace()
        if s.peek == UInt8(ascii: "}") {
            s.i += 1
        } else {
            while true {
                s.skipSpace()
                let keyRange = try s.string()
                s.skipSpace()
                guard s.peek == UInt8(ascii: ":") else { throw Invalid() }
                s.i += 1
                s.skipSpace()
                let start = s.i
                try s.value(depth: 0)
                result.append((try Self.decodeString(bytes, keyRange), start..<s.i))
                s.skipSpace()
                if s.peek == UInt8(ascii: ",") { s.i += 1; continue }
                guard s.peek == UInt8(ascii: "}") else { throw Invalid() }
                s.i += 1
                break
            }
        }
        s.skipSpace()
        guard s.i == s.bytes.count else { throw Invalid() }
        return result
    }

    /// Decodes the JSON string token at `range` (quotes included); nil when the range is not a string.
    static func decodeString(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) throws -> String {
        guard range.count >= 2, bytes[range.lowerBound] == UInt8(ascii: "\"") else { throw Invalid() }
        let inner = UnsafeBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
        if !inner.contains(UInt8(ascii: "\\")) { return String(decoding: inner, as: UTF8.self) }
        return try JSONDecoder().decode(String.self, from: Data(UnsafeBufferPointer(rebasing: bytes[range])))
    }

    /// Whether the token at `range` is a JSON string.
    static func isString(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        range.count >= 2 && bytes[range.lowerBound] == UInt8(ascii: "\"")
    }

    var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    mutating func skipSpace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0A, 0x0D: i += 1
            default: return
            }
        }
    }

    /// Scans a string token, returning its range (quotes included).
    mutating func string() throws -> Range<Int> {
        let start = i
        guard peek == UInt8(ascii: "\"") else { throw Invalid() }
        i += 1
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\"") { i += 1; return start..<i }
            if c < 0x20 { throw Invalid() }
            if c == UInt8(ascii: "\\") {
                i += 1
                guard let e = peek else { throw Invalid() }
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 1
                case UInt8(ascii: "u"):
                    guard i + 4 < bytes.count else { throw Invalid() }
                    for k in 1...4 where !Self.isHex(bytes[i + k]) { throw Invalid() }
                    i += 5
                default: throw Invalid()
                }
                continue
            }
            i += 1
        }
        throw Invalid()
    }

    static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }

    mutating func value(depth: Int) throws {
        guard depth < 512, let c = peek else { throw Invalid() }
        switch c {
        case UInt8(ascii: "\""):
            _ = try string()
        case UInt8(ascii: "{"):
            i += 1
            skipSpace()
            if peek == UInt8(ascii: "}") { i += 1; return }
            while true {
                skipSpace()
                _ = try string()
                skipSpace()
                guard peek == UInt8(ascii: ":") else { throw Invalid() }
                i += 1
                skipSpace()
                try value(depth: depth + 1)
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                guard peek == UInt8(ascii: "}") else { throw Invalid() }
                i += 1
                return
            }
        case UInt8(ascii: "["):
            i += 1
            skipSpace()
            if peek == UInt8(ascii: "]") { i += 1; return }
            while true {
                skipSpace()
                try value(depth: depth + 1)
                skipSpace()
                if peek == UInt8(ascii: ",") { i += 1; continue }
                guard peek == UInt8(ascii: "]") else { throw Invalid() }
                i += 1
                return
            }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        default: try number()
        }
    }

    mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw Invalid() }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw Invalid() }
        i += n
    }

    mutating func number() throws {
        func digits() throws {
            guard let c = peek, c >= 0x30, c <= 0x39 else { throw Invalid() }
            while let c = peek, c >= 0x30, c <= 0x39 { i += 1 }
        }
        if peek == UInt8(ascii: "-") { i += 1 }
        if peek == UInt8(ascii: "0") { i += 1 } else { try digits() }
        if peek == UInt8(ascii: ".") { i += 1; try digits() }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            try digits()
        }
    }
}

/// Reads JSON objects without building a Foundation tree: the members of an object as byte ranges, so a caller can
/// keep a nested value's bytes exactly as written and decode only the few scalars it needs (for hot paths such as
/// result files).
public enum JSONMembers {
    /// The members of the object spanning `range` of `bytes` (decoded key, value byte range), or nil when the range
    /// is not exactly one well-formed JSON object.
    public static func of(_ bytes: UnsafeBufferPointer<UInt8>, in range: Range<Int>) -> [(key: String, value: Range<Int>)]? {
        try? JSONScanner.members(of: bytes, in: range)
    }

    /// The decoded string at `range` (a JSON string token, quotes included), or nil when it is not a string.
    public static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String? {
        try? JSONScanner.decodeString(bytes, range)
    }

    /// The integer at `range` (plain decimal digits, optional minus), or nil for any other token.
    public static func int(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 18 else { return nil }
        var i = range.lowerBound
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        guard i < range.upperBound else { return nil }
        var n = 0
        while i < range.upperBound {
            let c = bytes[i]
            guard c >= 0x30, c <= 0x39 else { return nil }
            n = n * 10 + Int(c - 0x30)
            i += 1
        }
        return negative ? -n : n
    }
}
