/// Deterministic synthetic answers derived from a request, so a test can tie each result to its `custom_id`.
public enum SyntheticResponse {
    /// 64-bit FNV-1a digest of bytes, as 16 hex digits.
    public static func digest(_ bytes: some Sequence<UInt8>) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// The text every synthetic answer carries: `echo <custom_id> <digest of the request body>`.
    public static func text(customID: String, body: [UInt8]) -> String {
        "echo \(customID) \(digest(body))"
    }

    /// Prompt token count: one token per 4 bytes of body, at least 1.
    public static func inputTokens(body: [UInt8]) -> Int { max(1, body.count / 4) }

    /// OpenAI response body for `endpoint` (chat completion, embedding, or a generic object).
    public static func openAIBody(endpoint: String, customID: String, model: String, body: [UInt8], created: Int) -> [String: Any] {
        let text = text(customID: customID, body: body)
        let prompt = inputTokens(body: body)
        if endpoint == "/v1/embeddings" {
            let d = digest(body).utf8.prefix(8).map { Double($0) / 255 }
            return ["object": "list", "model": model,
                    "data": [["object": "embedding", "index": 0, "embedding": d]],
                    "usage": ["prompt_tokens": prompt, "total_tokens": prompt]]
        }
        return ["id": "chatcmpl-\(digest(Array(customID.utf8)))", "object": "chat.completion", "created": created,
                "model": model,
                "choices": [["index": 0, "message": ["role": "assistant", "content": text],
                             "logprobs": NSNull(), "finish_reason": "stop"]],
                "usage": ["prompt_tokens": prompt, "completion_tokens": 4, "total_tokens": prompt + 4],
                "system_fingerprint": "fp_emulator"]
    }

    /// Appends the JSON of `openAIBody(...)` to `out` (keys sorted), writing chat completions without dictionaries.
    static func writeOpenAIBody(endpoint: String, customID: String, model: String, body: UnsafeBufferPointer<UInt8>, created: Int, to out: inout [UInt8]) {
        if endpoint == "/v1/embeddings" {
            FastJSON.write(openAIBody(endpoint: endpoint, customID: customID, model: model, body: Array(body), created: created), to: &out)
            return
        }
        let prompt = max(1, body.count / 4)
        out.append(contentsOf: #"{"choices":[{"finish_reason":"stop","index":0,"logprobs":null,"message":{"content":"#.utf8)
        FastJSON.writeString("echo \(customID) \(digest(body))", to: &out)
        out.append(contentsOf: #","role":"assistant"}}],"created":"#.utf8)
        FastJSON.writeInt(created, to: &out)
        out.append(contentsOf: #","id":"chatcmpl-"#.utf8)
        out.append(contentsOf: digest(customID.utf8).utf8)
        out.append(contentsOf: #"","model":"#.utf8)
        FastJSON.writeString(model, to: &out)
        out.append(contentsOf: #","object":"chat.completion","system_fingerprint":"fp_emulator","usage":{"completion_tokens":4,"prompt_tokens":"#.utf8)
        FastJSON.writeInt(prompt, to: &out)
        out.append(contentsOf: #","total_tokens":"#.utf8)
        FastJSON.writeInt(prompt + 4, to: &out)
        out.append(contentsOf: "}}".utf8)
    }

    /// Anthropic `message` object for a request.
    public static func anthropicMessage(customID: String, model: String, body: [UInt8]) -> [String: Any] {
        ["id": "msg_\(digest(Array(customID.utf8)))", "type": "message", "role": "assistant", "model": model,
         "content": [["type": "text", "text": text(customID: customID, body: body)]],
         "stop_reason": "end_turn", "stop_sequence": NSNull(),
         "usage": ["input_tokens": inputTokens(body: body), "output_tokens": 4]]
    }
}

import Foundation
