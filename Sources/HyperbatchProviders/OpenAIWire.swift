import Foundation
import HyperbatchJobs

/// OpenAI wire objects (only the fields the client reads) and their mapping to the normalized vocabulary.
enum OpenAIWire {
    struct Batch: Decodable {
        struct Counts: Decodable {
            var total: Int?
            var completed: Int?
            var failed: Int?
        }
        struct Errors: Decodable {
            struct Item: Decodable {
                var code: String?
                var message: String?
                var line: Int?
            }
            var data: [Item]?
        }
        struct Usage: Decodable {
            var inputTokens: Int?
            var outputTokens: Int?
        }

        var id: String
        var status: String
        var createdAt: Int
        var expiresAt: Int?
        var completedAt: Int?
        var failedAt: Int?
        var expiredAt: Int?
        var cancelledAt: Int?
        var inputFileId: String?
        var outputFileId: String?
        var errorFileId: String?
        var requestCounts: Counts?
        var errors: Errors?
        var metadata: [String: String]?
        var usage: Usage?

        func status(tagKey: String) -> ProviderBatchStatus {
            let phase: ProviderBatchPhase =
                switch status {
                case "validating": .validating
                case "finalizing": .finalizing
                case "cancelling": .cancelling
                case "completed": .ended(.completed)
                case "failed": .ended(.failed)
                case "expired": .ended(.expired)
                case "cancelled": .ended(.cancelled)
                default: .inProgress
                }
            let total = requestCounts?.total ?? 0
            let succeeded = requestCounts?.completed ?? 0
            let errored = requestCounts?.failed ?? 0
            let rest = max(0, total - succeeded - errored)
            var counts = ProviderRequestCounts(total: total, succeeded: succeeded, errored: errored)
            switch phase {
            case .ended(.expired): counts.expired = rest
            case .ended(.cancelled): counts.canceled = rest
            case .ended: break
            default: counts.processing = rest
            }
            let date = { (seconds: Int?) in seconds.map { Date(timeIntervalSince1970: TimeInterval($0)) } }
            return ProviderBatchStatus(
                id: id, phase: phase, counts: counts, createdAt: Date(timeIntervalSince1970: TimeInterval(createdAt)),
                endedAt: date(completedAt ?? failedAt ?? expiredAt ?? cancelledAt), expiresAt: date(expiresAt),
                inputFileID: inputFileId, outputFileID: outputFileId, errorFileID: errorFileId,
                errors: (errors?.data ?? []).map { ProviderBatchError(code: $0.code ?? "unknown", message: $0.message ?? "", line: $0.line) },
                idempotencyTag: metadata?[tagKey],
                usage: usage.flatMap { usage in
                    guard let input = usage.inputTokens, let output = usage.outputTokens else { return nil }
                    return TokenUsage(inputTokens: input, outputTokens: output)
                })
        }
    }

    struct BatchList: Decodable {
        var data: [Batch]
        var hasMore: Bool?
        var lastId: String?
    }

    struct File: Decodable {
        var id: String
    }

    struct CreateBatch: Encodable {
        var inputFileId: String
        var endpoint: String
        var completionWindow = "24h"
        var metadata: [String: String]

        enum CodingKeys: String, CodingKey {
            case inputFileId = "input_file_id"
            case endpoint
            case completionWindow = "completion_window"
            case metadata
        }
    }
}
