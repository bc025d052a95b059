import Foundation
import HyperbatchJobs

/// Settings of one provider client. Build with ``openAI(apiKey:)`` or ``anthropic(apiKey:)`` and adjust the `var`s.
public struct ProviderClientConfiguration: Sendable {
    /// The API root. OpenAI's includes `/v1` (`https://api.openai.com/v1`); Anthropic's does not (`https://api.anthropic.com`).
    public var baseURL: String
    /// The API key; redacted in every description.
    public var apiKey: APIKey
    /// Retry rules for 408/409/429/5xx answers and connection errors.
    public var retry: RetryPolicy
    /// The limits reported to the packer (override in tests to force small batches).
    public var limits: ProviderLimits
    /// Deadline of one HTTP call (a whole result download included).
    public var requestTimeout: Duration
    /// Result lines handed to the `streamResults` callback per call.
    public var resultChunkSize: Int
    /// Page size used by `findBatch` when it lists batches.
    public var listPageSize: Int
    /// How far before `createdAfter` `findBatch` still looks, for clock skew between us and the provider.
    public var findSkew: Duration
    /// The OpenAI metadata key holding our idempotency tag.
    public var tagMetadataKey: String

    /// Creates a configuration; prefer ``openAI(apiKey:)`` and ``anthropic(apiKey:)``.
    public init(
        baseURL: String, apiKey: APIKey, limits: ProviderLimits, retry: RetryPolicy = RetryPolicy(),
        requestTimeout: Duration = .seconds(600), resultChunkSize: Int = 1_000, listPageSize: Int = 100,
        findSkew: Duration = .seconds(120), tagMetadataKey: String = "hyperbatch_tag"
    ) {
        self.baseURL = baseURL
        self.apiKey = apiKey
        self.limits = limits
        self.retry = retry
        self.requestTimeout = requestTimeout
        self.resultChunkSize = resultChunkSize
        self.listPageSize = listPageSize
        self.findSkew = findSkew
        self.tagMetadataKey = tagMetadataKey
    }

    /// OpenAI defaults: `https://api.openai.com/v1`, ``ProviderLimits/openAI``.
    public static func openAI(apiKey: APIKey, baseURL: String = "https://api.openai.com/v1") -> Self {
        Self(baseURL: baseURL, apiKey: apiKey, limits: .openAI)
    }

    /// Anthropic defaults: `https://api.anthropic.com`, ``ProviderLimits/anthropic``, page size 100.
    public static func anthropic(apiKey: APIKey, baseURL: String = "https://api.anthropic.com") -> Self {
        Self(baseURL: baseURL, apiKey: apiKey, limits: .anthropic)
    }

    /// OpenAI defaults with the key from `OPENAI_API_KEY` (and the base URL from `OPENAI_BASE_URL` when set).
    public static func openAIFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Self {
        guard let key = APIKey.environment("OPENAI_API_KEY", environment) else {
            throw ProviderConfigurationError.missingKey(variable: "OPENAI_API_KEY")
        }
        return openAI(apiKey: key, baseURL: environment["OPENAI_BASE_URL"] ?? "https://api.openai.com/v1")
    }

    /// Anthropic defaults with the key from `ANTHROPIC_API_KEY` (and the base URL from `ANTHROPIC_BASE_URL` when set).
    public static func anthropicFromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Self {
        guard let key = APIKey.environment("ANTHROPIC_API_KEY", environment) else {
            throw ProviderConfigurationError.missingKey(variable: "ANTHROPIC_API_KEY")
        }
        return anthropic(apiKey: key, baseURL: environment["ANTHROPIC_BASE_URL"] ?? "https://api.anthropic.com")
    }
}
