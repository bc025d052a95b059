import Foundation
import HyperbatchJobs

/// Encodes Anthropic batch requests and decodes result lines.
///
/// Decoding parses a line with `JSONSerialization` and re-serializes only `result.message`; cost: one full parse
/// plus one re-encode of the message per line (transient, nothing retained).
enum AnthropicLineCoding {
    /// Appends `{"custom_id":…,"params":<raw>}` to `out`.
    static func encode(_ line: ProviderRequestLine, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"custom_id":"#.utf8)
        Wire.appendString(line.customID, to: &out)
        out.append(contentsOf: #","params":"#.utf8)
        out.append(contentsOf: line.body)
        out.append(UInt8(ascii: "}"))
    }

    /// The exact bytes one request adds to the create body: ``encode(_:into:)``'s output plus its `,` separator.
    /// The whole body is the sum over the lines plus `{"requests":[` and `]}` (15 bytes) minus one separator.
    static func encodedSize(_ line: ProviderRequestLine) -> Int {
        #"{"custom_id":"#.utf8.count + Wire.stringLength(line.customID) + #","params":"#.utf8.count + line.body.count + 1 + 1
    }

    /// Decodes one result line: `succeeded` (message, usage), `errored` (the doubly nested
    /// `result.error.error.{type,message}`; a single level is accepted too), `canceled`, `expired`.
    static func decodeResult(_ bytes: [UInt8], lineNumber: Int) throws -> ProviderResultLine {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else {
            throw ProviderResultDecodingError(line: lineNumber, reason: "not a JSON object")
        }
        guard let customID = object["custom_id"] as? String else {
            throw ProviderResultDecodingError(line: lineNumber, reason: "no custom_id")
        }
        guard let result = object["result"] as? [String: Any], let type = result["type"] as? String else {
            throw ProviderResultDecodingError(line: lineNumber, reason: "no result.type")
        }
        switch type {
        case "succeeded":
            guard let message = result["message"] else {
                throw ProviderResultDecodingError(line: lineNumber, reason: "succeeded without message")
            }
            let body: [UInt8]
            if let raw = RawJSON.range(of: ["result", "message"], in: bytes) {
                body = Array(bytes[raw])
            } else {
                do { body = try Wire.reencode(message) } catch {
                    throw ProviderResultDecodingError(line: lineNumber, reason: "message not serializable")
                }
            }
            var usage: TokenUsage?
            if let u = (message as? [String: Any])?["usage"] as? [String: Any], let input = Wire.int(u["input_tokens"]) {
                usage = TokenUsage(inputTokens: input, outputTokens: Wire.int(u["output_tokens"]) ?? 0)
            }
            return ProviderResultLine(customID: customID, outcome: .succeeded(body: body, usage: usage))
        case "errored":
            let outer = result["error"] as? [String: Any] ?? [:]
            let inner = outer["error"] as? [String: Any] ?? outer
            return ProviderResultLine(customID: customID, outcome: .errored(ProviderErrorDecoding.decode(object: inner, status: nil)))
        case "canceled":
            return ProviderResultLine(customID: customID, outcome: .canceled)
        case "expired":
            return ProviderResultLine(customID: customID, outcome: .expired)
        default:
            throw ProviderResultDecodingError(line: lineNumber, reason: "unknown result type \(type)")
        }
    }
}
