#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore

/// Splits a byte stream that arrives in arbitrary chunks into `\n`-terminated lines; a line may span chunks.
///
/// Pure and synchronous: feed chunks with ``append(_:)``, collect the complete lines it returns, then call
/// ``finish()`` for a last line without a trailing newline. `\r\n` endings are accepted; empty lines are dropped.
struct LineSplitter {
    private var partial: [UInt8] = []

    /// Feeds one chunk; returns the lines it completed (without their terminators).
    mutating func append(_ chunk: ByteBuffer) -> [[UInt8]] {
        chunk.withUnsafeReadableBytes { raw in
            raw.withMemoryRebound(to: UInt8.self) { append(contiguous: $0) }
        }
    }

    /// Feeds contiguous bytes, finding newlines with `memchr` and copying whole runs (not byte by byte).
    mutating func append(contiguous bytes: UnsafeBufferPointer<UInt8>) -> [[UInt8]] {
        guard let base = bytes.baseAddress else { return [] }
        var lines: [[UInt8]] = []
        var start = 0
        while start < bytes.count {
            guard let hit = memchr(base + start, Int32(UInt8(ascii: "\n")), bytes.count - start) else {
                partial.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
                break
            }
            let end = start + UnsafeRawPointer(base + start).distance(to: UnsafeRawPointer(hit))
            if partial.isEmpty {
                if let line = Self.trimmed(Array(UnsafeBufferPointer(rebasing: bytes[start..<end]))) { lines.append(line) }
            } else {
                partial.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<end]))
                if let line = Self.trimmed(partial) { lines.append(line) }
                partial.removeAll(keepingCapacity: true)
            }
            start = end + 1
        }
        return lines
    }

    /// Feeds raw bytes; returns the lines they completed.
    mutating func append(bytes: some Collection<UInt8>) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if let line = Self.trimmed(partial) { lines.append(line) }
                partial.removeAll(keepingCapacity: true)
            } else {
                partial.append(byte)
            }
        }
        return lines
    }

    /// Returns the final unterminated line, if any.
    mutating func finish() -> [UInt8]? {
        defer { partial = [] }
        return Self.trimmed(partial)
    }

    private static func trimmed(_ line: [UInt8]) -> [UInt8]? {
        var line = line
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return nil }
        return line
    }
}
