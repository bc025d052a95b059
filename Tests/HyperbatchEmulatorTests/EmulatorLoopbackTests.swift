import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Testing
import HyperbatchEmulator

@Suite struct EmulatorLoopbackTests {
    @Test(.timeLimit(.minutes(1))) func servesOverLoopbackAndRecordsStats() async throws {
        var config = EmulatorConfiguration()
        config.speedUp = 1000
        try await Emulator.withEmulator(configuration: config) { endpoint in
            var missing = URLRequest(url: URL(string: endpoint.openAIBaseURL + "/batches/batch_nope")!)
            missing.setValue("Bearer k", forHTTPHeaderField: "Authorization")
            let (body404, r404) = try await URLSession.shared.data(for: missing)
            #expect((r404 as? HTTPURLResponse)?.statusCode == 404)
            #expect(String(decoding: body404, as: UTF8.self).contains("No batch found"))

            var create = URLRequest(url: URL(string: endpoint.anthropicBaseURL + "/v1/messages/batches")!)
            create.httpMethod = "POST"
            create.setValue("k", forHTTPHeaderField: "x-api-key")
            create.httpBody = Data(#"{"requests":[{"custom_id":"a","params":{"model":"m","max_tokens":5,"messages":[]}}]}"#.utf8)
            let (_, rc) = try await URLSession.shared.data(for: create)
            #expect((rc as? HTTPURLResponse)?.statusCode == 200)

            var noKey = URLRequest(url: URL(string: endpoint.anthropicBaseURL + "/v1/messages/batches")!)
            noKey.httpMethod = "GET"
            let (_, r401) = try await URLSession.shared.data(for: noKey)
            #expect((r401 as? HTTPURLResponse)?.statusCode == 401)

            let stats = endpoint.stats()
            #expect(stats.batches.count == 1)
            #expect(stats.batches.first?.provider == "anthropic")
        }
    }
}
