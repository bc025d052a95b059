import ArgumentParser
import Foundation
import HyperbatchEmulator
import Logging
import ServiceLifecycle

/// `hyperbatch emulator`: serves the OpenAI and Anthropic batch APIs locally until SIGINT/SIGTERM.
struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "Serve emulated OpenAI and Anthropic batch APIs on loopback."
    )

    @Option(help: "Port to listen on (0 = ephemeral).") var port: Int = 8080
    @Option(help: "Host to bind.") var host: String = "127.0.0.1"
    @Option(help: "Emulated time runs this many times faster than real time.") var speedUp: Double = 1
    @Option(help: "Processing rate in requests per emulated second.") var rate: Double = 500
    @Option(help: "Fraction of requests whose result is an error.") var errorRate: Double = 0
    @Option(name: .customLong("http-429-rate"), help: "Fraction of API calls answered with 429.") var http429Rate: Double = 0
    @Option(name: .customLong("http-5xx-rate"), help: "Fraction of API calls answered with 500.") var http5xxRate: Double = 0
    @Option(help: "Fraction of API calls answered late (slow-response fault).") var slowResponseRate: Double = 0
    @Option(help: "Delay of a slow answer, in seconds.") var slowResponseSeconds: Double = 2
    @Option(help: "Expire batches after this fraction of their work.") var expireAfter: Double?
    @Option(help: "Seed of every pseudo-random choice.") var seed: UInt64 = 1
    @Option(help: "Directory under which uploaded and result files are kept (a new subdirectory, removed at exit; default: the system temporary directory).")
    var storageDirectory: String?

    func run() async throws {
        var config = EmulatorConfiguration()
        config.host = host
        config.port = port
        config.speedUp = speedUp
        config.requestsPerSecond = rate
        config.seed = seed
        config.storageDirectory = storageDirectory
        config.faults.requestErrorRate = errorRate
        config.faults.http429Rate = http429Rate
        config.faults.http5xxRate = http5xxRate
        config.faults.expireAfterFraction = expireAfter
        config.faults.slowResponseRate = slowResponseRate
        config.faults.slowResponseSeconds = slowResponseSeconds
        let logger = Logger(label: "hyperbatch.emulator")
        let emulator = try Emulator(configuration: config, clock: ContinuousClock(), logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [emulator], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            // The port is known once the server listens (with --port 0 it is picked then).
            let endpoint = try await emulator.endpoint
            // Written unbuffered, so a parent process reading a pipe sees the URLs at once.
            let urls = "OpenAI base URL:    \(endpoint.openAIBaseURL)\nAnthropic base URL: \(endpoint.anthropicBaseURL)\n"
            FileHandle.standardOutput.write(Data(urls.utf8))
            try await tasks.next()
        }
    }
}
