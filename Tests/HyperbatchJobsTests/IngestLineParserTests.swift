import HyperbatchJobs
import Testing

@Suite("IngestLineParser")
struct IngestLineParserTests {
    func parse(_ text: String, _ parser: IngestLineParser) -> Result<NewRequest, IngestLineError> {
        Array(text.utf8).withUnsafeBufferPointer { parser.parse($0) }
    }

    func problem(_ text: String, _ parser: IngestLineParser) -> IngestLineProblem? {
        if case let .failure(e) = parse(text, parser) { return e.problem }
        return nil
    }

    let openAI = IngestLineParser(provider: .openai)
    let anthropic = IngestLineParser(provider: .anthropic, tenant: "acme")

    @Test("an OpenAI line keeps its body bytes exactly")
    func openAILine() throws {
        let body = #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"2+2? \u00e9 \"q\""}],"max_tokens":10}"#
        let line = #"{"custom_id":"r-1","method":"POST","url":"/v1/chat/completions","body":"# + body + "}"
        let request = try parse(line, openAI).get()
        #expect(request.customID == "r-1")
        #expect(request.key == CompatibilityKey(provider: .openai, endpoint: "/v1/chat/completions", model: "gpt-4o-mini"))
        #expect(request.body == Array(body.utf8))
        #expect(request.encodedSize >= line.utf8.count)
    }

    @Test("an Anthropic line uses params and /v1/messages")
    func anthropicLine() throws {
        let line = #"{"custom_id":"a_1","params":{"model":"claude-haiku","max_tokens":5,"messages":[]}}"#
        let request = try parse(line, anthropic).get()
        #expect(request.key == CompatibilityKey(provider: .anthropic, endpoint: "/v1/messages", model: "claude-haiku", tenant: "acme"))
        #expect(request.body == Array(#"{"model":"claude-haiku","max_tokens":5,"messages":[]}"#.utf8))
    }

    @Test("escaped custom_id is decoded")
    func escapedID() throws {
        let line = #"{"custom_id":"a\"b","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"x"}}"#
        #expect(try parse(line, openAI).get().customID == "a\"b")
    }

    @Test("bad lines", arguments: [
        (#"{"custom_id":"x","url":"/v1/chat/completions","body":{"model":"m"}"#, IngestLineProblem.invalidJSON),
        (#"not json"#, .invalidJSON),
        (#"[1,2]"#, .invalidJSON),
        (#"{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}} trailing"#, .invalidJSON),
        (#"{"custom_id":"x","body":{"model":"m",}}"#, .invalidJSON),
        (#"{"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#, .missingCustomID),
        (#"{"custom_id":"","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#, .missingCustomID),
        (#"{"custom_id":7,"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#, .missingCustomID),
        (#"{"custom_id":"x","method":"GET","url":"/v1/chat/completions","body":{"model":"m"}}"#, .invalidMethod("GET")),
        (#"{"custom_id":"x","method":"POST","url":"/v1/chat","body":{"model":"m"}}"#, .unknownEndpoint("/v1/chat")),
        (#"{"custom_id":"x","method":"POST","body":{"model":"m"}}"#, .unknownEndpoint("")),
        (#"{"custom_id":"x","method":"POST","url":"/v1/chat/completions"}"#, .missingBody),
        (#"{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":"text"}"#, .missingBody),
        (#"{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"messages":[]}}"#, .missingModel),
        (#"{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":3}}"#, .missingModel),
    ])
    func badOpenAILines(line: String, expected: IngestLineProblem) {
        #expect(problem(line, openAI) == expected)
    }

    @Test("Anthropic custom_id pattern")
    func anthropicPattern() {
        #expect(problem(#"{"custom_id":"has space","params":{"model":"c"}}"#, anthropic) == .invalidCustomID)
        #expect(problem(#"{"custom_id":"\#(String(repeating: "a", count: 65))","params":{"model":"c"}}"#, anthropic) == .invalidCustomID)
        #expect(problem(#"{"custom_id":"ok-\#(String(repeating: "a", count: 61))","params":{"model":"c"}}"#, anthropic) == nil)
        #expect(problem(#"{"custom_id":"x","params":{"max_tokens":1}}"#, anthropic) == .missingModel)
        #expect(problem(#"{"custom_id":"x"}"#, anthropic) == .missingBody)
        // The same id is fine for OpenAI, which has no pattern.
        #expect(problem(#"{"custom_id":"has space","method":"POST","url":"/v1/embeddings","body":{"model":"m"}}"#, openAI) == nil)
    }

    @Test("over the per-request size")
    func tooLarge() {
        let small = IngestLineParser(provider: .openai, maxRequestBytes: 200)
        let big = String(repeating: "x", count: 300)
        let line = #"{"custom_id":"x","method":"POST","url":"/v1/embeddings","body":{"model":"m","input":"\#(big)"}}"#
        guard case let .tooLarge(bytes, limit)? = problem(line, small) else {
            Issue.record("expected tooLarge")
            return
        }
        #expect(limit == 200)
        #expect(bytes > 300)
        let sized = IngestLineParser(provider: .openai, maxRequestBytes: 200, sizeOf: { _ in 10 })
        #expect(problem(line, sized) == nil)
    }
}
