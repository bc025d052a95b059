/// Finds the raw bytes of a nested member in a JSON document without building it, so a result body can be handed
/// on exactly as the provider sent it (re-serializing it with `JSONSerialization` cost most of the decode time).
///
/// Only object keys without escapes are matched; anything it cannot follow returns nil and callers fall back to
/// re-serializing.
enum RawJSON {
    /// The range of the value at `path` (object keys from the top level) in `bytes`, or nil.
    static func range(of path: [String], in bytes: [UInt8]) -> Range<Int>? {
        bytes.withUnsafeBufferPointer { buffer in
            var range = 0..<buffer.count
            for key in path {
                guard let next = member(Array(key.utf8), in: buffer, range) else { return nil }
                range = next
            }
            return range
        }
    }

    private static let quote = UInt8(ascii: "\"")
    private static let backslash = UInt8(ascii: "\\")

    private static func member(_ key: [UInt8], in b: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Range<Int>? {
        let end = range.upperBound
        var i = skipSpace(b, range.lowerBound, end)
        guard i < end, b[i] == UInt8(ascii: "{") else { return nil }
        i += 1
        while true {
            i = skipSpace(b, i, end)
            guard i < end else { return nil }
            if b[i] == UInt8(ascii: "}") { return nil }
            if b[i] == UInt8(ascii: ",") {
                i += 1
                continue
            }
            guard b[i] == quote, let keyEnd = skipString(b, i, end) else { return nil }
            let matches = keyEnd - i - 2 == key.count && (0..<key.count).allSatisfy { b[i + 1 + $0] == key[$0] }
            i = skipSpace(b, keyEnd, end)
            guard i < end, b[i] == UInt8(ascii: ":") else { return nil }
            i = skipSpace(b, i + 1, end)
            guard let valueEnd = skipValue(b, i, end) else { return nil }
            if matches { return i..<valueEnd }
            i = valueEnd
        }
    }

    private static func skipSpace(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int {
        var i = start
        while i < end, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        return i
    }

    /// `start` is at an opening quote; returns the index after the closing one.
    private static func skipString(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        var i = start + 1
        while i < end {
            if b[i] == backslash {
                i += 2
            } else if b[i] == quote {
                return i + 1
            } else {
                i += 1
            }
        }
        return nil
    }

    /// Returns the index after the value starting at `start`.
    private static func skipValue(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        guard start < end else { return nil }
        switch b[start] {
        case quote:
            return skipString(b, start, end)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            var i = start
            while i < end {
                switch b[i] {
                case quote:
                    guard let next = skipString(b, i, end) else { return nil }
                    i = next
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["):
                    depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"):
                    depth -= 1
                    if depth == 0 { return i + 1 }
                default:
                    break
                }
                i += 1
            }
            return nil
        default:
            var i = start
            while i < end {
                let c = b[i]
                if c == UInt8(ascii: ",") || c == UInt8(ascii: "}") || c == UInt8(ascii: "]") || c == 0x20 || c == 0x09
                    || c == 0x0A || c == 0x0D { break }
                i += 1
            }
            return i > start ? i : nil
        }
    }
}
