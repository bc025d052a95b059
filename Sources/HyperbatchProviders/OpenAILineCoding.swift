import Foundation
import HyperbatchJobs

/// Encodes OpenAI batch input lines and decodes output/error-file lines.
///
/// Success lines are decoded by a byte scan that keeps the response `body` as written (``decodeSuccess(_:)``); other
/// lines are parsed with `JSONSerialization` (errors are rare and need the full structure).
enum OpenAILineCoding {
    /// Appends `{"custom_id":…,"method":"POST","url":…,"body":<raw>}\n` to `out`.
    static func encode(_ line: ProviderRequestLine, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"custom_id":"#.utf8)
        Wire.appendString(line.customID, to: &out)
        out.append(contentsOf: #","method":"POST","url":"#.utf8)
        Wire.appendString(line.endpoint, to: &out)
        out.append(contentsOf: #","body":"#.utf8)
        out.append(contentsOf: line.body)
        out.append(contentsOf: "}\n".utf8)
    }

    /// The exact number of bytes ``encode(_:into:)`` appends, newline included.
    static func encodedSize(_ line: ProviderRequestLine) -> Int {
        #"{"custom_id":"#.utf8.count + Wire.stringLength(line.customID) + #","method":"POST","url":"#.utf8.count
            + Wire.stringLength(line.endpoint) + #","body":"#.utf8.count + line.body.count + 2
    }

    /// Decodes one line of an output or error file.
    ///
    /// `response.status_code < 400` → `succeeded(body, usage)`; `>= 400` → `errored` from `response.body.error`;
    /// no response and `error.code == "batch_expired"` → `expired`; `batch_cancelled` → `canceled`; any other
    /// `error` → `errored`.
    static func decodeResult(_ bytes: [UInt8], lineNumber: Int) throws -> ProviderResultLine {
        if let line = decodeSuccess(bytes) { return line }
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw ProviderResultDecodingError(line: lineNumber, reason: "not a JSON object")
        }
        guard let customID = object["custom_id"] as? String else {
            throw ProviderResultDecodingError(line: lineNumber, reason: "no custom_id")
        }
        if let response = object["response"] as? [String: Any] {
            let status = Wire.int(response["status_code"]) ?? 200
            let body = response["body"]
            if status >= 400 {
                if let error = (body as? [String: Any])?["error"] as? [String: Any] {
                    return ProviderResultLine(customID: customID, outcome: .errored(ProviderErrorDecoding.decode(object: error, status: status)))
                }
                return ProviderResultLine(
                    customID: customID,
                    outcome: .errored(ProviderError(status: status, type: ProviderErrorDecoding.fallbackType(status), message: "HTTP \(status)")))
            }
            guard let body else {
                throw ProviderResultDecodingError(line: lineNumber, reason: "response without body")
            }
            let bodyBytes: [UInt8]
            if let raw = RawJSON.range(of: ["response", "body"], in: bytes) {
                bodyBytes = Array(bytes[raw])
            } else {
                do { bodyBytes = try Wire.reencode(body) } catch {
                    throw ProviderResultDecodingError(line: lineNumber, reason: "body not serializable")
                }
            }
            return ProviderResultLine(customID: customID, outcome: .succeeded(body: bodyBytes, usage: usage(of: body)))
        }
        if let error = object["error"] as? [String: Any] {
            switch error["code"] as? String {
            case "batch_expired": return ProviderResultLine(customID: customID, outcome: .expired)
            case "batch_cancelled", "batch_canceled": return ProviderResultLine(customID: customID, outcome: .canceled)
            default:
                var decoded = ProviderErrorDecoding.decode(object: error, status: nil)
                if error["type"] == nil { decoded.type = "batch_error" }
                return ProviderResultLine(customID: customID, outcome: .errored(decoded))
            }
        }
        throw ProviderResultDecodingError(line: lineNumber, reason: "neither response nor error")
    }

    /// The fast path for a success line (`response.status_code < 400` with an object body): a byte scan that keeps the
    /// body exactly as written, without a Foundation parse and re-encode. Nil for anything else (the full decoder runs).
    static func decodeSuccess(_ bytes: [UInt8]) -> ProviderResultLine? {
        bytes.withUnsafeBufferPointer { b -> ProviderResultLine? in
            guard let members = JSONMembers.of(b, in: 0..<b.count) else { return nil }
            var customID: String?
            var response: Range<Int>?
            for m in members {
                if m.key == "custom_id" { customID = JSONMembers.string(b, m.value) } else if m.key == "response" { response = m.value }
            }
            guard let customID, let response, let fields = JSONMembers.of(b, in: response) else { return nil }
            var status = 200
            var body: Range<Int>?
            for f in fields {
                if f.key == "status_code" {
                    guard let s = JSONMembers.int(b, f.value) else { return nil }
                    status = s
                } else if f.key == "body" {
                    body = f.value
                }
            }
            guard status < 400, let body, b[body.lowerBound] == UInt8(ascii: "{"), let bodyMembers = JSONMembers.of(b, in: body) else { return nil }
            var usage: TokenUsage?
            if let u = bodyMembers.first(where: { $0.key == "usage" }), let counts = JSONMembers.of(b, in: u.value) {
                func count(_ key: String) -> Int? { counts.first { $0.key == key }.flatMap { JSONMembers.int(b, $0.value) } }
                if let input = count("prompt_tokens") ?? count("input_tokens") {
                    usage = TokenUsage(inputTokens: input, outputTokens: count("completion_tokens") ?? count("output_tokens") ?? 0)
                }
            }
            return ProviderResultLine(customID: customID, outcome: .succeeded(body: Array(b[body]), usage: usage))
        }
    }

    /// Usage from a body: chat/completions `prompt_tokens`/`completion_tokens`, or responses `input_tokens`/`output_tokens`.
    static func usage(of body: Any) -> TokenUsage? {
        guard let usage = (body as? [String: Any])?["usage"] as? [String: Any] else { return nil }
        if let input = Wire.int(usage["prompt_tokens"]) ?? Wire.int(usage["input_tokens"]) {
            return TokenUsage(inputTokens: input, outputTokens: Wire.int(usage["completion_tokens"]) ?? Wire.int(usage["output_tokens"]) ?? 0)
        }
        return nil
    }
}
