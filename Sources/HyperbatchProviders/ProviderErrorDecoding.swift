import Foundation
import HyperbatchJobs

/// Decodes a provider's HTTP error body into a ``ProviderError``, for both shapes:
/// OpenAI `{"error":{"message","type","param","code"}}` and Anthropic `{"type":"error","error":{"type","message"}}`.
enum ProviderErrorDecoding {
    private struct Envelope: Decodable {
        var error: Inner?
    }

    private struct Inner: Decodable {
        var message: String?
        var type: String?
        var param: String?
        var code: CodeValue?
    }

    /// OpenAI sometimes sends `code` as a number; keep it as text either way.
    private struct CodeValue: Decodable {
        var text: String?
        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if container.decodeNil() { text = nil }
            else if let string = try? container.decode(String.self) { text = string }
            else if let number = try? container.decode(Int.self) { text = String(number) }
            else { text = nil }
        }
    }

    /// Decodes `body` of an HTTP answer with `status`; a body in neither shape becomes a generic error of type
    /// `http_error` (or `api_error` for 5xx) carrying at most 200 bytes of the body as its message.
    static func decode(status: Int, body: [UInt8]) -> ProviderError {
        if let envelope = try? JSONDecoder().decode(Envelope.self, from: Data(body)), let inner = envelope.error,
            inner.message != nil || inner.type != nil
        {
            return ProviderError(
                status: status, type: inner.type ?? fallbackType(status), code: inner.code?.text,
                message: inner.message ?? "", param: inner.param)
        }
        let snippet = String(decoding: body.prefix(200), as: UTF8.self)
        return ProviderError(status: status, type: fallbackType(status), message: snippet.isEmpty ? "HTTP \(status)" : snippet)
    }

    /// Decodes an error object already parsed by JSONSerialization (`{"message","type","param","code"}`).
    static func decode(object: [String: Any], status: Int?) -> ProviderError {
        let code: String? =
            switch object["code"] {
            case let string as String: string
            case let number as NSNumber: number.stringValue
            default: nil
            }
        return ProviderError(
            status: status, type: object["type"] as? String ?? (status.map(fallbackType) ?? "error"), code: code,
            message: object["message"] as? String ?? "", param: object["param"] as? String)
    }

    static func fallbackType(_ status: Int) -> String { status >= 500 ? "api_error" : "http_error" }
}
