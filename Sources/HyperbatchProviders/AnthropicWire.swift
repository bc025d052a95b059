import Foundation
import HyperbatchJobs

/// Anthropic wire objects (only the fields the client reads) and their mapping to the normalized vocabulary.
enum AnthropicWire {
    struct Batch: Decodable {
        struct Counts: Decodable {
            var processing: Int?
            var succeeded: Int?
            var errored: Int?
            var canceled: Int?
            var expired: Int?
        }

        var id: String
        var processingStatus: String
        var requestCounts: Counts?
        var createdAt: String
        var endedAt: String?
        var expiresAt: String?
        var cancelInitiatedAt: String?
        var resultsUrl: String?

        func status() throws -> ProviderBatchStatus {
            guard let created = Wire.parseRFC3339(createdAt) else {
                throw ProviderError(type: "decoding_error", message: "batch \(id): bad created_at")
            }
            let phase: ProviderBatchPhase =
                switch processingStatus {
                case "canceling": .cancelling
                case "ended": .ended(cancelInitiatedAt == nil ? .completed : .cancelled)
                default: .inProgress
                }
            let c = requestCounts
            let counts = ProviderRequestCounts(
                total: (c?.processing ?? 0) + (c?.succeeded ?? 0) + (c?.errored ?? 0) + (c?.canceled ?? 0) + (c?.expired ?? 0),
                processing: c?.processing ?? 0, succeeded: c?.succeeded ?? 0, errored: c?.errored ?? 0,
                expired: c?.expired ?? 0, canceled: c?.canceled ?? 0)
            return ProviderBatchStatus(
                id: id, phase: phase, counts: counts, createdAt: created, endedAt: endedAt.flatMap(Wire.parseRFC3339),
                expiresAt: expiresAt.flatMap(Wire.parseRFC3339), resultsURL: resultsUrl)
        }
    }

    struct BatchList: Decodable {
        var data: [Batch]
        var hasMore: Bool?
        var lastId: String?
    }
}
