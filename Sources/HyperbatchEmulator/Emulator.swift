import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// The provider batch-API emulator as a `Service`: a Hummingbird application serving the OpenAI and Anthropic
/// batch APIs on one loopback port, in front of `EmulatorCore`.
///
/// Emulated time = wall time at start + (clock elapsed × `speedUp`); batch state derives from it. Port 0 picks a
/// free port; `endpoint` reports the bound one once `run()` listens. File bytes are kept on disk in
/// `core.storage`, removed when `run()` returns.
public final class Emulator<C: Clock>: Service, Sendable where C.Duration == Duration {
    /// The request-handling core (state and lifecycles).
    public let core: EmulatorCore
    let clock: C
    let start: C.Instant
    let epoch: Double
    let logger: Logger
    /// The logger handed to Hummingbird: `logger` raised to at least `serverLogLevel`.
    let serverLogger: Logger
    let listening = ListeningPort()

    /// Creates the emulator; nothing is bound until `run()`.
    ///
    /// - Parameter serverLogLevel: the least severe level Hummingbird itself logs at (its "Server started and
    ///   listening" line is `info`). The default, `warning`, keeps library users quiet; callers print the
    ///   endpoint themselves. `logger`'s own level still applies when it is higher.
    public init(
        configuration: EmulatorConfiguration = .init(), clock: C, logger: Logger, serverLogLevel: Logger.Level = .warning
    ) throws {
        self.core = EmulatorCore(configuration: configuration)
        self.clock = clock
        self.start = clock.now
        self.epoch = Date().timeIntervalSince1970
        self.logger = logger
        var serverLogger = logger
        serverLogger.logLevel = max(logger.logLevel, serverLogLevel)
        self.serverLogger = serverLogger
    }

    /// Where clients reach this emulator: waits until `run()` has bound its port.
    ///
    /// Throws the bind error if the server could not start, `EmulatorError.notListening` once it has stopped.
    public var endpoint: EmulatorEndpoint {
        get async throws {
            let port = try await listening.wait()
            return EmulatorEndpoint(port: port, core: core, now: { [self] in self.emulatedNow() })
        }
    }

    func emulatedNow() -> Double {
        let d = start.duration(to: clock.now).components
        return epoch + (Double(d.seconds) + Double(d.attoseconds) / 1e18) * core.configuration.speedUp
    }

    /// Answers one request at the current emulated time; a slow-response fault sleeps on the clock first.
    func handle(_ request: EmulatorRequest) async throws -> EmulatorResponse {
        let response = core.handle(request, now: emulatedNow())
        if response.delaySeconds > 0 {
            try await clock.sleep(for: .seconds(min(response.delaySeconds, 3600)))
        }
        return response
    }

    /// Serves until graceful shutdown or cancellation.
    public func run() async throws {
        let cfg = core.configuration
        // Room for the largest upload the limits allow plus multipart framing; bigger bodies get a 413.
        let maxBody = max(cfg.openAIMaxBytes, cfg.anthropicMaxBytes) + 1024 * 1024
        let core = self.core
        let router = EmulatorRouter.build(
            maxBodyBytes: maxBody, handle: { [self] in try await self.handle($0) }, tooLarge: { core.tooLarge($0) },
            storage: core.storage,
            streamed: { size, offset in
                await core.waitIfHeld(bodyOffset: offset)
                core.noteStreamed(size)
            })
        let listening = self.listening
        let logger = self.logger
        let serverLogger = self.serverLogger
        let app = Application(
            router: router,
            server: .http1(configuration: .init(additionalChannelHandlers: [ExpectContinueHandler()])),
            configuration: .init(address: .hostname(cfg.host, port: cfg.port), serverName: "hyperbatch-emulator"),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? cfg.port
                logger.debug("emulator listening", metadata: ["emulator.port": "\(port)"])
                listening.bound(port)
            },
            logger: serverLogger
        )
        // Stored files go with the server.
        defer { core.removeStorage() }
        do {
            try await app.run()
        } catch {
            listening.failed(error)
            throw error
        }
        listening.failed(EmulatorError.notListening)
    }
}

extension Emulator where C == ContinuousClock {
    /// Starts an emulator on loopback (a free port unless `configuration.port` is set), runs `body` with its
    /// endpoint, then shuts it down. Hummingbird logs only at `serverLogLevel` and above.
    public static func withEmulator<T>(
        configuration: EmulatorConfiguration = .init(), logger: Logger = Logger(label: "hyperbatch.emulator"),
        serverLogLevel: Logger.Level = .warning, _ body: (EmulatorEndpoint) async throws -> T
    ) async throws -> T {
        try await withEmulator(
            configuration: configuration, clock: ContinuousClock(), logger: logger, serverLogLevel: serverLogLevel, body)
    }
}

extension Emulator {
    /// Like the `ContinuousClock` form, with emulated time read from `clock` (a test can stop it to hold every
    /// batch in its current phase).
    public static func withEmulator<T>(
        configuration: EmulatorConfiguration = .init(), clock: C, logger: Logger = Logger(label: "hyperbatch.emulator"),
        serverLogLevel: Logger.Level = .warning, _ body: (EmulatorEndpoint) async throws -> T
    ) async throws -> T {
        let emulator = try Emulator(
            configuration: configuration, clock: clock, logger: logger, serverLogLevel: serverLogLevel)
        var groupConfiguration = ServiceGroupConfiguration(services: [emulator], logger: logger)
        // Graceful shutdown lets answers in flight finish; a client that holds a request longer gets cancelled.
        groupConfiguration.maximumGracefulShutdownDuration = .seconds(2)
        let group = ServiceGroup(configuration: groupConfiguration)
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do {
                let result = try await body(emulator.endpoint)
                await group.triggerGracefulShutdown()
                return result
            } catch {
                await group.triggerGracefulShutdown()
                throw error
            }
        }
    }
}
