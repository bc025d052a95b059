import Foundation

/// Small, allocation-light JSON writing and scanning for the emulator's hot paths.
///
/// Foundation's `JSONSerialization` on Linux costs hundreds of microseconds per line (dynamic casts, ICU key
/// sorting), which made a 50,000-line batch take minutes; these helpers do the same work in a few microseconds.
enum FastJSON {
    // MARK: Writing

    /// Serializes a `JSONSerialization`-style tree (dictionaries, arrays, strings, numbers, booleans, `NSNull`)
    /// with keys sorted by Unicode scalar order and slashes unescaped.
    static func data(_ value: Any) -> [UInt8] {
        var out: [UInt8] = []
        write(value, to: &out)
        return out
    }

    /// Appends `value` serialized as JSON to `out`.
    static func write(_ value: Any, to out: inout [UInt8]) {
        // Numbers parsed by `JSONSerialization` are NSNumber objects, which also cast to Bool: test them first.
        if type(of: value) is NSNumber.Type, let n = value as? NSNumber {
            if String(describing: type(of: n)).contains("Boolean") {
                out.append(contentsOf: n.boolValue ? trueBytes : falseBytes)
            } else {
                writeDouble(n.doubleValue, to: &out)
            }
            return
        }
        switch value {
        case let s as String: writeString(s, to: &out)
        case let b as Bool: out.append(contentsOf: b ? trueBytes : falseBytes)
        case let i as Int: writeInt(i, to: &out)
        case let d as Double: writeDouble(d, to: &out)
        case let o as [String: Any]:
            out.append(UInt8(ascii: "{"))
            var first = true
            for k in o.keys.sorted() {
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                writeString(k, to: &out)
                out.append(UInt8(ascii: ":"))
                write(o[k]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        case let a as [Any]:
            out.append(UInt8(ascii: "["))
            for (n, e) in a.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                write(e, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case is NSNull: out.append(contentsOf: nullBytes)
        case let i as Int64: writeInt(Int(i), to: &out)
        case let u as UInt64: out.append(contentsOf: String(u).utf8)
        case let f as Float: writeDouble(Double(f), to: &out)
        case let n as NSNumber: out.append(contentsOf: n.description.utf8)
        default: writeString(String(describing: value), to: &out)
        }
    }

    static let trueBytes = Array("true".utf8), falseBytes = Array("false".utf8), nullBytes = Array("null".utf8)

    /// Appends a decimal integer.
    static func writeInt(_ i: Int, to out: inout [UInt8]) {
        if i >= 0 && i < 10 { out.append(UInt8(48 + i)); return }
        out.append(contentsOf: String(i).utf8)
    }

    /// Appends a double; integral values print without a fraction, like `JSONSerialization`.
    static func writeDouble(_ d: Double, to out: inout [UInt8]) {
        if d.isNaN || d.isInfinite { out.append(contentsOf: nullBytes); return }
        if d == d.rounded(), abs(d) < 1e15 { writeInt(Int(d), to: &out); return }
        out.append(contentsOf: "\(d)".utf8)
    }

    private static let hex = Array("0123456789abcdef".utf8)

    /// Appends `s` as a quoted, escaped JSON string.
    static func writeString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): out.append(92); out.append(c)
            case UInt8(ascii: "\\"): out.append(92); out.append(c)
            case 10: out.append(92); out.append(UInt8(ascii: "n"))
            case 13: out.append(92); out.append(UInt8(ascii: "r"))
            case 9: out.append(92); out.append(UInt8(ascii: "t"))
            case 0..<32:
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(c >> 4)]); out.append(hex[Int(c & 15)])
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    // MARK: Scanning

    /// A validated top-level JSON object: each member's key and raw value range in the scanned buffer.
    struct Members {
        /// Decoded key → byte range of the raw value (including quotes for strings).
        var values: [String: Range<Int>] = [:]
    }

    /// Validates that `bytes` holds exactly one JSON object (surrounded by optional whitespace) and returns its
    /// members; nil if the text is not valid JSON or not an object.
    static func scanObject(_ bytes: UnsafeBufferPointer<UInt8>) -> Members? {
        var s = Scanner(b: bytes, i: 0)
        s.ws()
        guard s.i < bytes.count, bytes[s.i] == UInt8(ascii: "{") else { return nil }
        var members = Members()
        guard s.object(depth: 0, members: &members) else { return nil }
        s.ws()
        return s.i == bytes.count ? members : nil
    }

    /// The byte range of each element of the JSON array whose raw text is `bytes[range]`; nil if it is not a
    /// valid array.
    static func arrayElements(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> [Range<Int>]? {
        let slice = UnsafeBufferPointer(rebasing: bytes[range])
        var s = Scanner(b: slice, i: 0)
        guard slice.first == UInt8(ascii: "[") else { return nil }
        s.i = 1
        var elements: [Range<Int>] = []
        s.ws()
        if s.i < slice.count, slice[s.i] == UInt8(ascii: "]") { return s.i + 1 == slice.count ? [] : nil }
        while true {
            s.ws()
            let start = s.i
            guard s.value(depth: 1) else { return nil }
            elements.append((range.lowerBound + start)..<(range.lowerBound + s.i))
            s.ws()
            guard s.i < slice.count else { return nil }
            if slice[s.i] == UInt8(ascii: ",") { s.i += 1; continue }
            if slice[s.i] == UInt8(ascii: "]") { return s.i + 1 == slice.count ? elements : nil }
            return nil
        }
    }

    /// Decodes the string whose raw JSON text (with quotes) is `bytes[range]`; nil if it is not a string.
    static func string(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> String? {
        guard range.count >= 2, bytes[range.lowerBound] == UInt8(ascii: "\"") else { return nil }
        let inner = UnsafeBufferPointer(rebasing: bytes[(range.lowerBound + 1)..<(range.upperBound - 1)])
        if !inner.contains(92) { return String(decoding: inner, as: UTF8.self) }
        let d = Data(UnsafeBufferPointer(rebasing: bytes[range]))
        return (try? JSONSerialization.jsonObject(with: d, options: [.fragmentsAllowed])) as? String
    }

    struct Scanner {
        let b: UnsafeBufferPointer<UInt8>
        var i: Int

        mutating func ws() {
            while i < b.count, b[i] == 32 || b[i] == 10 || b[i] == 13 || b[i] == 9 { i += 1 }
        }

        /// Scans an object starting at `{`; records members when `depth == 0`.
        mutating func object(depth: Int, members: inout Members) -> Bool {
            i += 1
            ws()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return true }
            while true {
                ws()
                let keyStart = i
                guard string() else { return false }
                let keyRange = keyStart..<i
                ws()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { return false }
                i += 1
                ws()
                let valueStart = i
                guard value(depth: depth + 1) else { return false }
                if depth == 0, let k = FastJSON.string(b, keyRange) { members.values[k] = valueStart..<i }
                ws()
                guard i < b.count else { return false }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return true }
                return false
            }
        }

        mutating func value(depth: Int) -> Bool {
            guard depth < 512, i < b.count else { return false }
            switch b[i] {
            case UInt8(ascii: "{"):
                var ignored = Members()
                return object(depth: depth, members: &ignored)
            case UInt8(ascii: "["):
                i += 1
                ws()
                if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return true }
                while true {
                    ws()
                    guard value(depth: depth + 1) else { return false }
                    ws()
                    guard i < b.count else { return false }
                    if b[i] == UInt8(ascii: ",") { i += 1; continue }
                    if b[i] == UInt8(ascii: "]") { i += 1; return true }
                    return false
                }
            case UInt8(ascii: "\""): return string()
            case UInt8(ascii: "t"): return literal("true")
            case UInt8(ascii: "f"): return literal("false")
            case UInt8(ascii: "n"): return literal("null")
            default: return number()
            }
        }

        mutating func literal(_ word: StaticString) -> Bool {
            let n = word.utf8CodeUnitCount
            guard i + n <= b.count else { return false }
            for k in 0..<n where b[i + k] != word.utf8Start[k] { return false }
            i += n
            return true
        }

        mutating func digits() -> Bool {
            let s = i
            while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
            return i > s
        }

        mutating func number() -> Bool {
            if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
            guard i < b.count else { return false }
            if b[i] == 48 { i += 1 } else if !digits() { return false }
            if i < b.count, b[i] == UInt8(ascii: ".") { i += 1; guard digits() else { return false } }
            if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
                i += 1
                if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() else { return false }
            }
            return true
        }

        mutating func string() -> Bool {
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { return false }
            i += 1
            while i < b.count {
                let c = b[i]
                if c == UInt8(ascii: "\"") { i += 1; return true }
                if c < 32 { return false }
                if c == 92 {
                    i += 1
                    guard i < b.count else { return false }
                    switch b[i] {
                    case UInt8(ascii: "\""), 92, UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                        UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                        i += 1
                    case UInt8(ascii: "u"):
                        guard i + 4 < b.count else { return false }
                        for k in 1...4 where !isHex(b[i + k]) { return false }
                        i += 5
                    default: return false
                    }
                    continue
                }
                i += 1
            }
            return false
        }

        func isHex(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102) }
    }
}
