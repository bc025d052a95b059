/// Parses one batch-input JSONL line of a provider into a ``NewRequest`` (pure; no duplicate check).
///
/// OpenAI: `{"custom_id", "method":"POST", "url", "body":{"model",…}}`. Anthropic: `{"custom_id", "params":{"model",…}}`
/// (endpoint `/v1/messages`). The body bytes are kept exactly as written.
public struct IngestLineParser: Sendable {
    /// The OpenAI batch endpoints.
    public static let openAIEndpoints: Set<String> = [
        "/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions", "/v1/moderations",
        "/v1/images/generations", "/v1/images/edits", "/v1/videos",
    ]
    /// The Anthropic Message Batches endpoint.
    public static let anthropicEndpoint = "/v1/messages"

    public var provider: ProviderKind
    public var tenant: String
    public var limits: ProviderLimits
    /// Largest accepted encoded request.
    public var maxRequestBytes: Int
    /// The encoded size of a line (the provider's ``BatchProvider/encodedSize(of:)``); ``RequestSizeEstimate`` when nil.
    public var sizeOf: (@Sendable (ProviderRequestLine) -> Int)?

    /// Creates a parser.
    public init(
        provider: ProviderKind, tenant: String = "", limits: ProviderLimits? = nil, maxRequestBytes: Int? = nil,
        sizeOf: (@Sendable (ProviderRequestLine) -> Int)? = nil
    ) {
        self.provider = provider
        self.tenant = tenant
        let limits = limits ?? (provider == .openai ? .openAI : .anthropic)
        self.limits = limits
        self.maxRequestBytes = maxRequestBytes ?? limits.maxBytes
        self.sizeOf = sizeOf
    }

    /// Parses `line` (without its newline): the request, or the problem (and the `custom_id` when readable).
    public func parse(_ line: UnsafeBufferPointer<UInt8>) -> Result<NewRequest, IngestLineError> {
        func fail(_ p: IngestLineProblem, _ id: String? = nil) -> Result<NewRequest, IngestLineError> {
            .failure(IngestLineError(line: 0, problem: p, customID: id))
        }
        guard let members = try? JSONScanner.members(of: line, in: 0..<line.count) else { return fail(.invalidJSON) }
        func member(_ name: String) -> Range<Int>? { members.last(where: { $0.key == name })?.value }
        guard let idRange = member("custom_id"), JSONScanner.isString(line, idRange),
            let customID = try? JSONScanner.decodeString(line, idRange), !customID.isEmpty
        else { return fail(.missingCustomID) }
        if limits.restrictedCustomIDs, !Self.isRestrictedID(customID) { return fail(.invalidCustomID, customID) }
        let endpoint: String
        let bodyRange: Range<Int>?
        switch provider {
        case .openai:
            if let m = member("method") {
                let method = JSONScanner.isString(line, m) ? ((try? JSONScanner.decodeString(line, m)) ?? "") : "?"
                if method != "POST" { return fail(.invalidMethod(method), customID) }
            }
            guard let u = member("url"), JSONScanner.isString(line, u), let url = try? JSONScanner.decodeString(line, u),
                Self.openAIEndpoints.contains(url)
            else {
                let given = member("url").flatMap { try? JSONScanner.decodeString(line, $0) } ?? ""
                return fail(.unknownEndpoint(given), customID)
            }
            endpoint = url
            bodyRange = member("body")
        case .anthropic:
            endpoint = Self.anthropicEndpoint
            bodyRange = member("params")
        }
        guard let bodyRange, line[bodyRange.lowerBound] == UInt8(ascii: "{"),
            let bodyMembers = try? JSONScanner.members(of: line, in: bodyRange)
        else { return fail(.missingBody, customID) }
        guard let modelRange = bodyMembers.last(where: { $0.key == "model" })?.value, JSONScanner.isString(line, modelRange),
            let model = try? JSONScanner.decodeString(line, modelRange), !model.isEmpty
        else { return fail(.missingModel, customID) }
        let body = Array(UnsafeBufferPointer(rebasing: line[bodyRange]))
        let key = CompatibilityKey(provider: provider, endpoint: endpoint, model: model, tenant: tenant)
        let size = sizeOf?(ProviderRequestLine(customID: customID, endpoint: endpoint, body: body))
            ?? RequestSizeEstimate.estimate(customID: customID, endpoint: endpoint, body: body)
        if size > maxRequestBytes { return fail(.tooLarge(bytes: size, limit: maxRequestBytes), customID) }
        return .success(NewRequest(customID: customID, key: key, body: body, encodedSize: size))
    }

    /// Whether `id` matches `^[a-zA-Z0-9_-]{1,64}$`.
    public static func isRestrictedID(_ id: String) -> Bool {
        let u = id.utf8
        guard (1...64).contains(u.count) else { return false }
        return u.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == UInt8(ascii: "_") || c == UInt8(ascii: "-")
        }
    }
}
