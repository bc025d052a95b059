import Foundation
import HyperbatchJobs
import Testing

@testable import HyperbatchProviders

@Suite struct LineEncodingTests {
    static let lines = [
        ProviderRequestLine(customID: "r-1", endpoint: "/v1/chat/completions", body: Array(#"{"model":"m","n":1}"#.utf8)),
        ProviderRequestLine(customID: "we\"ird\\id\n\u{1}é", endpoint: "/v1/chat/completions", body: Array("{}".utf8)),
    ]

    @Test func openAILineIsExactAndSized() throws {
        var out: [UInt8] = []
        OpenAILineCoding.encode(Self.lines[0], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"{"custom_id":"r-1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","n":1}}"# + "\n")
        for line in Self.lines {
            var bytes: [UInt8] = []
            OpenAILineCoding.encode(line, into: &bytes)
            #expect(bytes.count == OpenAILineCoding.encodedSize(line))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes.dropLast())) as? [String: Any])
            #expect(object["custom_id"] as? String == line.customID)
            #expect(object["method"] as? String == "POST")
        }
    }

    @Test func anthropicLineIsExactAndSizedWithSeparator() throws {
        var out: [UInt8] = []
        AnthropicLineCoding.encode(Self.lines[0], into: &out)
        #expect(String(decoding: out, as: UTF8.self) == #"{"custom_id":"r-1","params":{"model":"m","n":1}}"#)
        for line in Self.lines {
            var bytes: [UInt8] = []
            AnthropicLineCoding.encode(line, into: &bytes)
            #expect(bytes.count + 1 == AnthropicLineCoding.encodedSize(line))
            let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            #expect(object["custom_id"] as? String == line.customID)
        }
    }

    @Test(.timeLimit(.minutes(1)), arguments: [0, 1, 3, 5000])
    func anthropicStreamedBodyIsValidJSON(count: Int) async throws {
        let lines = (0..<count).map { ProviderRequestLine(customID: "id_\($0)", endpoint: "/v1/messages", body: Array(#"{"max_tokens":5}"#.utf8)) }
        let body = RequestLinesBody(
            prefix: Array(#"{"requests":["#.utf8), separator: [UInt8(ascii: ",")], suffix: Array("]}".utf8),
            lines: AsyncLines(lines), encode: { AnthropicLineCoding.encode($0, into: &$1) })
        var bytes: [UInt8] = []
        var chunks = 0
        for try await buffer in body {
            bytes.append(contentsOf: buffer.readableBytesView)
            chunks += 1
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        let requests = try #require(object["requests"] as? [[String: Any]])
        #expect(requests.count == count)
        #expect(requests.last?["custom_id"] as? String == (count == 0 ? nil : "id_\(count - 1)"))
        let sized = lines.reduce(0) { $0 + AnthropicLineCoding.encodedSize($1) }
        #expect(bytes.count == 15 + max(sized - 1, 0))
        if count == 5000 { #expect(chunks > 1) }
    }

    @Test(.timeLimit(.minutes(1)))
    func openAIStreamedFileSizeMatchesEncodedSizes() async throws {
        let lines = (0..<2000).map { ProviderRequestLine(customID: "c\($0)", endpoint: "/v1/embeddings", body: Array(#"{"input":"x"}"#.utf8)) }
        let body = RequestLinesBody(prefix: [], separator: [], suffix: [], lines: AsyncLines(lines), encode: { OpenAILineCoding.encode($0, into: &$1) })
        var total = 0
        for try await buffer in body { total += buffer.readableBytes }
        #expect(total == lines.reduce(0) { $0 + OpenAILineCoding.encodedSize($1) })
    }
}

/// An async sequence over an array, re-iterable.
struct AsyncLines: AsyncSequence, Sendable {
    typealias Element = ProviderRequestLine
    let lines: [ProviderRequestLine]
    init(_ lines: [ProviderRequestLine]) { self.lines = lines }
    struct AsyncIterator: AsyncIteratorProtocol {
        var base: IndexingIterator<[ProviderRequestLine]>
        mutating func next() async -> ProviderRequestLine? { base.next() }
    }
    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: lines.makeIterator()) }
}
