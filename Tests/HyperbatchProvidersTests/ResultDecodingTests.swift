import Foundation
import HyperbatchJobs
import Testing

@testable import HyperbatchProviders

@Suite struct ResultDecodingTests {
    func openAI(_ text: String) throws -> ProviderResultLine {
        try OpenAILineCoding.decodeResult(Array(text.utf8), lineNumber: 1)
    }

    func anthropic(_ text: String) throws -> ProviderResultLine {
        try AnthropicLineCoding.decodeResult(Array(text.utf8), lineNumber: 1)
    }

    @Test func openAIOutputLineSucceedsWithBodyAndUsage() throws {
        let line = try openAI(
            #"{"id":"batch_req_123","custom_id":"request-2","response":{"status_code":200,"request_id":"req_123","body":{"id":"chatcmpl-123","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hello."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":22,"completion_tokens":2,"total_tokens":24},"ok":true}},"error":null}"#)
        #expect(line.customID == "request-2")
        guard case .succeeded(let body, let usage) = line.outcome else { Issue.record("not succeeded: \(line.outcome)"); return }
        #expect(usage == TokenUsage(inputTokens: 22, outputTokens: 2))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(object["id"] as? String == "chatcmpl-123")
        #expect(object["ok"] as? Bool == true)
        #expect(String(decoding: body, as: UTF8.self).contains("\"ok\":true"))
    }

    @Test func openAIErrorFileHTTPErrorForm() throws {
        let line = try openAI(
            #"{"id":"batch_req_1","custom_id":"c9","response":{"status_code":400,"request_id":"r","body":{"error":{"message":"bad model","type":"invalid_request_error","param":"model","code":"model_not_found"}}},"error":null}"#)
        #expect(line == ProviderResultLine(customID: "c9", outcome: .errored(ProviderError(
            status: 400, type: "invalid_request_error", code: "model_not_found", message: "bad model", param: "model"))))
    }

    @Test func openAIErrorFileExpiredForm() throws {
        let line = try openAI(
            #"{"id":"batch_req_123","custom_id":"request-3","response":null,"error":{"code":"batch_expired","message":"This request could not be executed before the completion window expired."}}"#)
        #expect(line == ProviderResultLine(customID: "request-3", outcome: .expired))
    }

    @Test func openAIErrorFileOtherErrorAndCancelled() throws {
        let other = try openAI(#"{"custom_id":"x","response":null,"error":{"code":"server_error","message":"boom"}}"#)
        #expect(other.outcome == .errored(ProviderError(type: "batch_error", code: "server_error", message: "boom")))
        let cancelled = try openAI(#"{"custom_id":"y","response":null,"error":{"code":"batch_cancelled","message":"cancelled"}}"#)
        #expect(cancelled.outcome == .canceled)
    }

    @Test func anthropicSucceeded() throws {
        let line = try anthropic(
            #"{"custom_id":"my-second-request","result":{"type":"succeeded","message":{"id":"msg_014","type":"message","role":"assistant","content":[{"type":"text","text":"Hello again!"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":11,"output_tokens":36}}}}"#)
        guard case .succeeded(let body, let usage) = line.outcome else { Issue.record("not succeeded"); return }
        #expect(line.customID == "my-second-request")
        #expect(usage == TokenUsage(inputTokens: 11, outputTokens: 36))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
        #expect(object["id"] as? String == "msg_014")
    }

    @Test func anthropicErroredIsDoublyNested() throws {
        let line = try anthropic(
            #"{"custom_id":"r2","result":{"type":"errored","error":{"type":"error","error":{"details":null,"type":"invalid_request_error","message":"Your credit balance is too low"},"request_id":null}}}"#)
        #expect(line.outcome == .errored(ProviderError(type: "invalid_request_error", message: "Your credit balance is too low")))
    }

    @Test func anthropicCanceledAndExpired() throws {
        #expect(try anthropic(#"{"custom_id":"r3","result":{"type":"canceled"}}"#) == ProviderResultLine(customID: "r3", outcome: .canceled))
        #expect(try anthropic(#"{"custom_id":"r4","result":{"type":"expired"}}"#) == ProviderResultLine(customID: "r4", outcome: .expired))
    }

    @Test func malformedLinesThrowWithLineNumber() {
        #expect(throws: ProviderResultDecodingError.self) { try openAI("not json") }
        #expect(throws: ProviderResultDecodingError.self) { try openAI(#"{"response":null}"#) }
        #expect(throws: ProviderResultDecodingError.self) { try anthropic(#"{"custom_id":"a","result":{"type":"weird"}}"#) }
    }
}

/// The raw-member scanner used to hand result bodies on unparsed.
@Suite struct RawJSONTests {
    @Test func findsNestedMembersPastStringsEscapesAndNesting() throws {
        let text = #"{"id":"x","custom_id":"a\"}{","response":{"status_code":200,"request_id":"r","body": {"k":[1,{"x":"}"}],"s":"\\"} },"error":null}"#
        let bytes = Array(text.utf8)
        let range = try #require(RawJSON.range(of: ["response", "body"], in: bytes))
        #expect(String(decoding: bytes[range], as: UTF8.self) == #"{"k":[1,{"x":"}"}],"s":"\\"}"#)
        let code = try #require(RawJSON.range(of: ["response", "status_code"], in: bytes))
        #expect(String(decoding: bytes[code], as: UTF8.self) == "200")
        #expect(RawJSON.range(of: ["error"], in: bytes).map { String(decoding: bytes[$0], as: UTF8.self) } == "null")
        #expect(RawJSON.range(of: ["response", "missing"], in: bytes) == nil)
        #expect(RawJSON.range(of: ["custom_id", "x"], in: bytes) == nil)
        #expect(RawJSON.range(of: ["a"], in: Array(#"{"a":"#.utf8)) == nil)
    }
}
