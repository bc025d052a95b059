/// One path of the emulated APIs and the methods it accepts; `:id` marks a variable path segment.
///
/// The table is framework-free: the HTTP front end registers these paths, and the core uses it to answer unknown
/// paths with 404 and known paths called with the wrong method with 405, each in the provider's error shape.
public struct EmulatorRoute: Sendable, Equatable {
    /// Path template, e.g. `/v1/batches/:id/cancel`.
    public var path: String
    /// Accepted methods, e.g. `["POST"]`.
    public var methods: [String]

    /// Every path the emulator serves: OpenAI files and batches, Anthropic message batches, and the admin API.
    public static let all: [EmulatorRoute] = [
        .init(path: "/v1/files", methods: ["GET", "POST"]),
        .init(path: "/v1/files/:id", methods: ["GET", "DELETE"]),
        .init(path: "/v1/files/:id/content", methods: ["GET"]),
        .init(path: "/v1/batches", methods: ["GET", "POST"]),
        .init(path: "/v1/batches/:id", methods: ["GET"]),
        .init(path: "/v1/batches/:id/cancel", methods: ["POST"]),
        .init(path: "/v1/messages/batches", methods: ["GET", "POST"]),
        .init(path: "/v1/messages/batches/:id", methods: ["GET", "DELETE"]),
        .init(path: "/v1/messages/batches/:id/cancel", methods: ["POST"]),
        .init(path: "/v1/messages/batches/:id/results", methods: ["GET"]),
        .init(path: "/_emulator/stats", methods: ["GET"]),
        .init(path: "/_emulator/faults", methods: ["GET", "PUT"]),
    ]

    /// The route whose template matches `path` (segment by segment), if any.
    public static func matching(_ path: String) -> EmulatorRoute? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return all.first { route in
            let template = route.path.split(separator: "/")
            return template.count == segments.count
                && zip(template, segments).allSatisfy { t, s in t.hasPrefix(":") || t == s }
        }
    }
}
