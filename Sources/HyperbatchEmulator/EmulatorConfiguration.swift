/// How the emulator behaves: processing rate, virtual-time speed-up, limits, faults and seed.
public struct EmulatorConfiguration: Sendable {
    /// Loopback host to bind (used by an HTTP front end).
    public var host: String = "127.0.0.1"
    /// Port to bind; 0 picks an ephemeral port.
    public var port: Int = 0
    /// Emulated processing rate, in requests per emulated second.
    public var requestsPerSecond: Double = 500
    /// How much faster emulated time runs than real time.
    public var speedUp: Double = 1
    /// Most requests per OpenAI batch (50,000 by default).
    public var openAIMaxRequests: Int = 50_000
    /// Most bytes per OpenAI input file (200 MB by default).
    public var openAIMaxBytes: Int = 200 * 1024 * 1024
    /// Most requests per Anthropic batch (100,000 by default).
    public var anthropicMaxRequests: Int = 100_000
    /// Most bytes per Anthropic create body (256 MB by default; 413 above).
    public var anthropicMaxBytes: Int = 256 * 1024 * 1024
    /// Emulated seconds of validation before an OpenAI batch goes `in_progress`.
    public var validationSeconds: Double = 0.1
    /// Emulated seconds an OpenAI batch spends in `finalizing` (and a cancel spends `cancelling`).
    public var finalizingSeconds: Double = 0.1
    /// The completion window in emulated seconds (24 h).
    public var completionWindowSeconds: Double = 86_400
    /// Faults to inject.
    public var faults: EmulatorFaults = .init()
    /// Seed of every pseudo-random choice, so runs are deterministic.
    public var seed: UInt64 = 1
    /// Where uploaded files, create bodies and result files are kept: the emulator makes a new subdirectory here
    /// and removes it when it shuts down. nil: the system temporary directory.
    public var storageDirectory: String? = nil

    /// Creates the default configuration (fast: a 1,000-request batch ends in about 2 s).
    public init() {}
}

/// Faults the emulator injects, all chosen by a seeded hash so they are deterministic.
public struct EmulatorFaults: Sendable, Codable, Equatable {
    /// Fraction of requests whose result is an error (OpenAI error-file line, Anthropic `errored`).
    public var requestErrorRate: Double = 0
    /// Fraction of API calls answered with HTTP 429 and `retry-after`.
    public var http429Rate: Double = 0
    /// Fraction of API calls answered with HTTP 500 and `x-should-retry: true`.
    public var http5xxRate: Double = 0
    /// Value of the `retry-after` header, in seconds.
    public var retryAfterSeconds: Int = 1
    /// When set, batches expire once this fraction of their requests is done.
    public var expireAfterFraction: Double? = nil
    /// When true, every OpenAI request fails, so batches complete with only an error file.
    public var onlyErrorFile: Bool = false

    /// Fraction of API calls whose answer is delayed by `slowResponseSeconds` (the front end waits before replying).
    public var slowResponseRate: Double = 0
    /// Delay of a slow answer, in real (not emulated) seconds.
    public var slowResponseSeconds: Double = 2

    /// Creates "no faults".
    public init() {}

    private enum CodingKeys: String, CodingKey {
        case requestErrorRate, http429Rate, http5xxRate, retryAfterSeconds, expireAfterFraction, onlyErrorFile
        case slowResponseRate, slowResponseSeconds
    }

    /// Decodes faults; every missing key keeps its default, so `PUT /_emulator/faults` may send only what changes.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = EmulatorFaults()
        requestErrorRate = try c.decodeIfPresent(Double.self, forKey: .requestErrorRate) ?? d.requestErrorRate
        http429Rate = try c.decodeIfPresent(Double.self, forKey: .http429Rate) ?? d.http429Rate
        http5xxRate = try c.decodeIfPresent(Double.self, forKey: .http5xxRate) ?? d.http5xxRate
        retryAfterSeconds = try c.decodeIfPresent(Int.self, forKey: .retryAfterSeconds) ?? d.retryAfterSeconds
        expireAfterFraction = try c.decodeIfPresent(Double.self, forKey: .expireAfterFraction)
        onlyErrorFile = try c.decodeIfPresent(Bool.self, forKey: .onlyErrorFile) ?? d.onlyErrorFile
        slowResponseRate = try c.decodeIfPresent(Double.self, forKey: .slowResponseRate) ?? d.slowResponseRate
        slowResponseSeconds = try c.decodeIfPresent(Double.self, forKey: .slowResponseSeconds) ?? d.slowResponseSeconds
    }
}
