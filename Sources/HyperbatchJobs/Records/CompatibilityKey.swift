/// What requests must share to travel in the same provider batch: provider, endpoint, model and tenant.
public struct CompatibilityKey: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The provider the request goes to.
    public var provider: ProviderKind
    /// The endpoint path, e.g. `/v1/chat/completions` or `/v1/messages`.
    public var endpoint: String
    /// The model named in the request body.
    public var model: String
    /// The tenant (API key / account owner); empty when there is only one.
    public var tenant: String

    /// Creates a key.
    public init(provider: ProviderKind, endpoint: String, model: String, tenant: String = "") {
        self.provider = provider
        self.endpoint = endpoint
        self.model = model
        self.tenant = tenant
    }

    public var description: String { "\(provider.rawValue) \(endpoint) \(model)" + (tenant.isEmpty ? "" : " [\(tenant)]") }
}
