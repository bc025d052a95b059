import ArgumentParser
import AsyncHTTPClient
import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import Logging
import NIOCore

/// `hyperbatch bench emulator`: one OpenAI batch (50,000 requests by default) through `OpenAIBatchProvider` and the
/// emulator over loopback (upload, create, processing, streamed download), against a same-run baseline: the same
/// number of bytes uploaded to and downloaded from a trivial Hummingbird route through the same `HTTPClient`.
struct BenchEmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "Time a 50,000-request OpenAI batch through the client and emulator over loopback, against a plain-HTTP baseline.")

    @Option(help: "Number of requests.") var requests: Int = 50_000
    @Flag(help: "Print JSON.") var json = false

    /// One timed phase; `ratio` is its time over its baseline's time (1.0 = as fast as plain HTTP).
    struct Phase: Encodable {
        var name: String
        var seconds: Double
        var bytes: Int?
        var baseline: String?
        var baselineSeconds: Double?
        var ratio: Double?

        enum CodingKeys: String, CodingKey {
            case name, seconds, bytes, baseline, baselineSeconds = "baseline_seconds", ratio
        }
    }

    /// The whole report.
    struct Report: Encodable {
        var requests: Int
        var phases: [Phase]
        var totalSeconds: Double
        var baselineSeconds: Double
        var totalRatio: Double
        var peakRSSKB: Int

        enum CodingKeys: String, CodingKey {
            case requests, phases, totalSeconds = "total_seconds", baselineSeconds = "baseline_seconds",
                totalRatio = "total_ratio", peakRSSKB = "peak_rss_kb"
        }
    }

    func run() async throws {
        let n = requests
        var logger = Logger(label: "hyperbatch.bench.emulator")
        logger.logLevel = .warning
        var config = EmulatorConfiguration()
        config.speedUp = 1_000_000
        let input = (0..<n).map {
            ProviderRequestLine(
                customID: "r\($0)", endpoint: "/v1/chat/completions",
                body: Array(#"{"model":"m","messages":[{"role":"user","content":"q\#($0)"}]}"#.utf8))
        }
        let client = HTTPClient.shared
        var phases: [Phase] = []
        var downloadBytes = 0
        var uploadBytes = 0

        try await Emulator.withEmulator(configuration: config, logger: logger) { endpoint in
            let providerConfiguration = ProviderClientConfiguration.openAI(apiKey: APIKey("sk-bench"), baseURL: endpoint.openAIBaseURL)
            let provider = OpenAIBatchProvider(configuration: providerConfiguration, httpClient: client, logger: logger)
            uploadBytes = input.reduce(0) { $0 + provider.encodedSize(of: $1) }
            let spec = ProviderBatchSpec(endpoint: "/v1/chat/completions", model: "m", idempotencyTag: "bench", requestCount: n)
            let (fileID, upload) = try await Self.timed { try await provider.uploadInput(spec, lines: BenchLines(input)) }
            phases.append(Phase(name: "upload", seconds: upload, bytes: uploadBytes))
            let (created, create) = try await Self.timed {
                try await provider.createBatch(spec, inputFileID: fileID, lines: BenchLines(input))
            }
            phases.append(Phase(name: "create", seconds: create))
            let (ended, processing) = try await Self.timed { () async throws -> ProviderBatchStatus in
                while true {
                    let status = try await provider.retrieveBatch(id: created.id)
                    if status.phase.isEnded { return status }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            guard ended.phase == .ended(.completed) else { throw ValidationError("batch ended \(ended.phase)") }
            phases.append(Phase(name: "processing (poll until ended)", seconds: processing))
            let before = endpoint.streamedBodyBytesSent
            let (lines, download) = try await Self.timed { () async throws -> Int in
                var lines = 0
                try await provider.streamResults(of: ended) { lines += $0.count }
                return lines
            }
            guard lines == n else { throw ValidationError("got \(lines) result lines, expected \(n)") }
            downloadBytes = endpoint.streamedBodyBytesSent - before
            phases.append(Phase(name: "download + decode", seconds: download, bytes: downloadBytes))
        }

        let (baselineUpload, baselineDownload) = try await BenchEchoServer.measure(
            client: client, uploadBytes: uploadBytes, downloadBytes: downloadBytes, logger: logger)
        phases[0].baseline = "plain HTTP upload of the same bytes"
        phases[0].baselineSeconds = baselineUpload
        phases[phases.count - 1].baseline = "plain HTTP download of the same bytes"
        phases[phases.count - 1].baselineSeconds = baselineDownload
        for i in phases.indices {
            if let b = phases[i].baselineSeconds, b > 0 { phases[i].ratio = Self.round(phases[i].seconds / b) }
            phases[i].seconds = Self.round(phases[i].seconds, places: 4)
            phases[i].baselineSeconds = phases[i].baselineSeconds.map { Self.round($0, places: 4) }
        }
        let total = phases.reduce(0) { $0 + $1.seconds }
        let baseline = baselineUpload + baselineDownload
        let report = Report(
            requests: n, phases: phases, totalSeconds: Self.round(total, places: 4),
            baselineSeconds: Self.round(baseline, places: 4), totalRatio: Self.round(total / baseline),
            peakRSSKB: Self.peakRSSKB())
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print("\(n) requests, OpenAI batch through OpenAIBatchProvider and the emulator over loopback")
            for p in phases {
                var line = p.name.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: " %8.3f s", p.seconds)
                if let bytes = p.bytes { line += String(format: "  %7.1f MB", Double(bytes) / 1e6) }
                if let r = p.ratio, let b = p.baseline, let s = p.baselineSeconds {
                    line += String(format: "  %.2fx %@ (%.3f s)", r, b, s)
                }
                print(line)
            }
            print(String(format: "total %.3f s = %.2fx the plain-HTTP transfer of the same bytes (%.3f s); peak RSS %d kB",
                         total, report.totalRatio, baseline, report.peakRSSKB))
        }
    }

    static func timed<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
        let start = ContinuousClock.now
        let value = try await body()
        return (value, (ContinuousClock.now - start).seconds)
    }

    static func round(_ value: Double, places: Int = 2) -> Double {
        let scale = pow(10, Double(places))
        return (value * scale).rounded() / scale
    }

    /// Peak resident set size of this process (VmHWM), in kB.
    static func peakRSSKB() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM") } ?? ""
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0
    }
}

/// The request lines as an `AsyncSequence` that can be iterated more than once (a retried upload starts over).
struct BenchLines: AsyncSequence, Sendable {
    typealias Element = ProviderRequestLine
    let lines: [ProviderRequestLine]
    init(_ lines: [ProviderRequestLine]) { self.lines = lines }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: IndexingIterator<[ProviderRequestLine]>
        mutating func next() async -> ProviderRequestLine? { base.next() }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: lines.makeIterator()) }
}
