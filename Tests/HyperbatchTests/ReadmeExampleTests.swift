import Hyperbatch
import Testing

/// The README's usage example, verbatim: if this stops compiling or passing, update the README too.
@Suite struct ReadmeExampleTests {
    struct EmbedKey: BatchKey {
        var model: String
        var tenant: String
    }

    @Test(.timeLimit(.minutes(1))) func readmeExampleRuns() async throws {
        let vectors = try await Batcher<EmbedKey, String, [Float]>.withBatcher(
            configuration: BatchConfiguration(maxBatchSize: 64, maxWait: .milliseconds(5)),
            weigh: { text in text.utf8.count / 4 },  // rough tokens
            allOrNothing: { key, texts in
                // One call for the whole batch; one output per input, in order.
                texts.map { text in [Float(text.count), Float(key.model.count)] }
            }
        ) { batcher in
            let key = EmbedKey(model: "text-embedding-3-small", tenant: "acme")
            return try await withThrowingTaskGroup(of: [Float].self) { group in
                for text in ["a", "bb", "ccc"] {
                    group.addTask { try await batcher.submit(text, key: key) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
        }
        #expect(vectors.map(\.first).compactMap { $0 }.sorted() == [1, 2, 3])
        #expect(vectors.allSatisfy { $0.last == Float("text-embedding-3-small".count) })
    }
}
