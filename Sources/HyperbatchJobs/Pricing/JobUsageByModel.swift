/// Token usage of a job's succeeded requests per model, computed from the ``JobStore``.
public enum JobUsageByModel {
    /// Usage per model: ``JobStore/tokenUsage(job:)`` when the job's batches use one model, else summed by paging
    /// the job's requests (``JobStore/requests(job:afterID:limit:)``, `pageSize` at a time).
    public static func usage(store: any JobStore, job: JobID, pageSize: Int = 2_000) async throws -> [String: TokenUsage] {
        let models = Set(try await store.batches(job: job).map(\.key.model))
        if models.count <= 1 {
            guard let model = models.first else { return [:] }
            return [model: try await store.tokenUsage(job: job)]
        }
        var byModel: [String: TokenUsage] = [:]
        var after: Int64? = nil
        while true {
            let page = try await store.requests(job: job, afterID: after, limit: pageSize)
            guard let last = page.last else { break }
            after = last.id
            for r in page where r.state == .succeeded {
                guard let u = r.usage else { continue }
                var total = byModel[r.key.model, default: TokenUsage(inputTokens: 0, outputTokens: 0)]
                total.inputTokens += u.inputTokens
                total.outputTokens += u.outputTokens
                byModel[r.key.model] = total
            }
        }
        return byModel
    }
}
