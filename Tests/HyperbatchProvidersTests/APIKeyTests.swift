import Foundation
import Testing

@testable import HyperbatchProviders

@Suite struct APIKeyTests {
    @Test func descriptionsAreRedacted() {
        let key = APIKey("sk-very-secret-123")
        #expect(!"\(key)".contains("secret"))
        #expect(!String(reflecting: key).contains("secret"))
        let configuration = ProviderClientConfiguration.openAI(apiKey: key)
        #expect(!"\(configuration)".contains("sk-very-secret-123"))
        #expect(!String(reflecting: configuration).contains("sk-very-secret-123"))
    }

    @Test func environmentAndFile() throws {
        #expect(APIKey.environment("OPENAI_API_KEY", ["OPENAI_API_KEY": " k1\n"])?.secret == "k1")
        #expect(APIKey.environment("OPENAI_API_KEY", ["OPENAI_API_KEY": "  "]) == nil)
        #expect(throws: ProviderConfigurationError.missingKey(variable: "ANTHROPIC_API_KEY")) {
            try ProviderClientConfiguration.anthropicFromEnvironment([:])
        }
        let configuration = try ProviderClientConfiguration.anthropicFromEnvironment(["ANTHROPIC_API_KEY": "a"])
        #expect(configuration.baseURL == "https://api.anthropic.com")
        #expect(configuration.limits == .anthropic)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("hb-key-\(UUID().uuidString)").path
        try "sk-file\n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try APIKey.file(path) == APIKey("sk-file"))
    }
}
