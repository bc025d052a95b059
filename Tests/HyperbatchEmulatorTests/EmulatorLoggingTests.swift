import Foundation
import HyperbatchEmulator
import Logging
import Synchronization
import Testing

/// The emulator is library code: Hummingbird's own `info` lines ("Server started and listening") stay below the
/// level the caller chose for the server, whatever level the caller's logger is at.
@Suite struct EmulatorLoggingTests {
    /// Keeps every log message it receives.
    final class Recorder: Sendable {
        let entries = Mutex<[(Logger.Level, String)]>([])
        var messages: [(Logger.Level, String)] { entries.withLock { $0 } }
    }

    struct RecordingHandler: LogHandler {
        let recorder: Recorder
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            recorder.entries.withLock { $0.append((event.level, "\(event.message)")) }
        }
    }

    static func fast() -> EmulatorConfiguration {
        var configuration = EmulatorConfiguration()
        configuration.requestsPerSecond = 10_000
        return configuration
    }

    @Test(.timeLimit(.minutes(1))) func hummingbirdInfoLinesAreQuietByDefault() async throws {
        let recorder = Recorder()
        var logger = Logger(label: "test.emulator.logging") { _ in RecordingHandler(recorder: recorder) }
        logger.logLevel = .info
        let port = try await Emulator.withEmulator(configuration: Self.fast(), logger: logger) { $0.port }
        #expect(port > 0)
        let infoOrLower = recorder.messages.filter { $0.0 <= .info }
        #expect(infoOrLower.isEmpty, "logged: \(infoOrLower.map(\.1))")
    }

    @Test(.timeLimit(.minutes(1))) func aCallerAskingForInfoSeesTheServerStart() async throws {
        let recorder = Recorder()
        var logger = Logger(label: "test.emulator.logging") { _ in RecordingHandler(recorder: recorder) }
        logger.logLevel = .info
        _ = try await Emulator.withEmulator(configuration: Self.fast(), logger: logger, serverLogLevel: .info) { $0.port }
        #expect(recorder.messages.contains { $0.0 == .info && $0.1.contains("Server started") })
    }
}
