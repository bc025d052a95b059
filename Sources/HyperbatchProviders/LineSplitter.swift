import NIOCore

/// Splits a byte stream that arrives in arbitrary chunks into `\n`-terminated lines; a line may span chunks.
///
/// Pure and synchronous: feed chunks with ``append(_:)``, collect the complete lines it returns, then call
/// ``finish()`` for a last line without a trailing newline. `\r\n` endings are accepted; empty lines are dropped.
struct LineSplitter {
    private var partial: [UInt8] = []

    /// Feeds one chunk; returns the lines it completed (without their terminators).
    mutating func append(_ chunk: ByteBuffer) -> [[UInt8]] {
        chunk.withUnsafeReadableBytes { append(bytes: $0) }
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
