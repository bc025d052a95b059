import NIOCore
import Testing

@testable import HyperbatchProviders

@Suite struct LineSplitterTests {
    @Test func everySplitPointGivesTheSameLines() {
        let text = Array("{\"a\":1}\n{\"b\":\"é\"}\r\n\n{\"c\":3}".utf8)
        let expected = [Array("{\"a\":1}".utf8), Array("{\"b\":\"é\"}".utf8), Array("{\"c\":3}".utf8)]
        for first in 0...text.count {
            for second in first...text.count {
                var splitter = LineSplitter()
                var lines: [[UInt8]] = []
                lines += splitter.append(ByteBuffer(bytes: text[0..<first]))
                lines += splitter.append(ByteBuffer(bytes: text[first..<second]))
                lines += splitter.append(ByteBuffer(bytes: text[second...]))
                if let last = splitter.finish() { lines.append(last) }
                #expect(lines == expected, "split at \(first), \(second)")
            }
        }
    }

    @Test func oneByteChunksAndTrailingNewline() {
        var splitter = LineSplitter()
        var lines: [[UInt8]] = []
        for byte in Array("x\ny\n".utf8) { lines += splitter.append(ByteBuffer(bytes: [byte])) }
        #expect(lines == [[UInt8(ascii: "x")], [UInt8(ascii: "y")]])
        #expect(splitter.finish() == nil)
    }
}
