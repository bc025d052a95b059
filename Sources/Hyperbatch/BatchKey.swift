/// A compatibility key: items whose keys are equal may travel in the same batch; items of different keys never do.
///
/// Write a small struct of the fields that must match for items to share a call, for example:
/// ```swift
/// struct EmbedKey: BatchKey { var provider: String; var model: String; var tenant: String }
/// ```
/// Put the tenant in the key: items of different tenants then never share a batch.
public protocol BatchKey: Hashable, Sendable {
    /// A low-cardinality name for metrics and logs (for example `"embed"`), never a tenant id or other unbounded value.
    ///
    /// The default is the type's name.
    var metricsLabel: String { get }
}

extension BatchKey {
    public var metricsLabel: String { String(describing: Self.self) }
}

extension String: BatchKey {
    /// Strings are unbounded, so they all share one label.
    public var metricsLabel: String { "string" }
}
