import Foundation
import Logging
import ServiceLifecycle

/// The provider batch-API emulator as a `Service`: serves OpenAI and Anthropic batch APIs on one loopback port.
///
/// Emulated time = wall time at start + (clock elapsed × `speedUp`); batch state derives from it.
public final class Emulator<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// The request-handling core (state and lifecycles).
    public let core: EmulatorCore
    let clock: C
    let start: C.Instant
    let epoch: Double
    let server: SocketServer
    let logger: Logger

    /// Binds the port (so `endpoint` is known) without serving yet; `run()` serves until graceful shutdown.
    public init(configuration: EmulatorConfiguration = .init(), clock: C, logger: Logger) throws {
        let core = EmulatorCore(configuration: configuration)
        self.core = core
        self.clock = clock
        self.start = clock.now
        self.epoch = Date().timeIntervalSince1970
        self.logger = logger
        let clock = clock, start = self.start, epoch = self.epoch, speed = configuration.speedUp
        self.server = try SocketServer(host: configuration.host, port: configuration.port) { req in
            let d = start.duration(to: clock.now).components
            let elapsed = Double(d.seconds) + Double(d.attoseconds) / 1e18
            return core.handle(req, now: epoch + elapsed * speed)
        }
    }

    /// Where clients reach this emulator.
    public var endpoint: EmulatorEndpoint { EmulatorEndpoint(port: server.port, core: core, now: { [self] in self.emulatedNow() }) }

    func emulatedNow() -> Double {
        let d = start.duration(to: clock.now).components
        return epoch + (Double(d.seconds) + Double(d.attoseconds) / 1e18) * core.configuration.speedUp
    }

    /// Serves until graceful shutdown or cancellation.
    public func run() async throws {
        server.start()
        logger.debug("emulator listening", metadata: ["emulator.port": "\(server.port)"])
        try? await gracefulShutdown()
        server.stop()
    }
}

extension Emulator where C == ContinuousClock {
    /// Starts an emulator on loopback, runs `body` with its endpoint, then shuts it down.
    public static func withEmulator<T>(
        configuration: EmulatorConfiguration = .init(), logger: Logger = Logger(label: "hyperbatch.emulator"),
        _ body: (EmulatorEndpoint) async throws -> T
    ) async throws -> T {
        let emulator = try Emulator(configuration: configuration, clock: ContinuousClock(), logger: logger)
        emulator.server.start()
        defer { emulator.server.stop() }
        return try await body(emulator.endpoint)
    }
}

/// How clients reach a running emulator, plus its admin functions.
public struct EmulatorEndpoint: Sendable {
    /// The bound port.
    public let port: Int
    let core: EmulatorCore
    let now: @Sendable () -> Double

    /// OpenAI base URL, including `/v1`.
    public var openAIBaseURL: String { "http://127.0.0.1:\(port)/v1" }
    /// Anthropic base URL, without `/v1`.
    public var anthropicBaseURL: String { "http://127.0.0.1:\(port)" }
    /// Replaces the injected faults.
    public func setFaults(_ faults: EmulatorFaults) { core.setFaults(faults) }
    /// Every batch created so far.
    public func stats() -> EmulatorStats { core.stats(now: now()) }
}
