/// An online least-squares fit of handler latency against batch weight, `t ≈ a·weight + b`, with exponential
/// forgetting so it follows a drifting downstream. A pure value.
///
/// ```swift
/// var model = LatencyModel()
/// model.record(weight: 10, latency: .microseconds(60))
/// model.record(weight: 100, latency: .microseconds(150))
/// model.predict(weight: 50)   // ≈ 100 µs
/// ```
public struct LatencyModel: Sendable, Hashable {
    /// Weight of past samples per new sample (1 keeps everything; 0.98 forgets with a half-life of ~34 samples).
    public let decay: Double
    private var n = 0.0
    private var sx = 0.0
    private var sy = 0.0
    private var sxx = 0.0
    private var sxy = 0.0

    /// Creates an empty model.
    public init(decay: Double = 0.98) { self.decay = min(max(decay, 0), 1) }

    /// Samples recorded (decayed).
    public var sampleWeight: Double { n }

    /// Records one batch: its weight and how long the handler took.
    public mutating func record(weight: Int, latency: Duration) {
        let x = Double(weight)
        let y = latency.inSeconds
        n = n * decay + 1
        sx = sx * decay + x
        sy = sy * decay + y
        sxx = sxx * decay + x * x
        sxy = sxy * decay + x * y
    }

    /// The fitted per-weight cost `a` and fixed cost `b`, in seconds; nil before the first sample.
    ///
    /// With a single weight seen (no spread) the slope is 0 and `b` is the mean. A negative slope is clamped to 0.
    public var coefficients: (perWeight: Double, fixed: Double)? {
        guard n > 0 else { return nil }
        let denominator = n * sxx - sx * sx
        var a = denominator > 1e-9 * max(1, n * sxx) ? (n * sxy - sx * sy) / denominator : 0
        if a < 0 { a = 0 }
        let b = (sy - a * sx) / n
        return (a, max(0, b))
    }

    /// The predicted handler latency for a batch of `weight`; nil before the first sample.
    public func predict(weight: Int) -> Duration? {
        guard let (a, b) = coefficients else { return nil }
        return .seconds(max(0, a * Double(weight) + b))
    }
}
