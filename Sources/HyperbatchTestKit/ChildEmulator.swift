import AsyncHTTPClient
import Foundation
import HyperbatchEmulator

/// A `hyperbatch emulator` child process of a test, listening on a port the kernel picked.
public struct ChildEmulator: Sendable {
    /// The child process (terminate it when the test ends).
    public let process: Process
    /// The port it listens on, read from its banner.
    public let port: Int

    /// Starts `executable emulator --port 0 extraArguments…` and waits until its banner names the port.
    /// A fixed or random port could be taken by another test's server or an outgoing connection; port 0 cannot.
    /// Throws when the child exits first or prints no banner within `timeout`.
    public static func launch(
        executable: String, _ extraArguments: [String], log: String, timeout: Duration = .seconds(60)
    ) async throws -> ChildEmulator {
        let process = try Process.launch(executable, ["emulator", "--port", "0"] + extraArguments, log: log)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while ContinuousClock.now < deadline {
            if let port = bannerPort(in: (try? String(contentsOfFile: log, encoding: .utf8)) ?? "") {
                return ChildEmulator(process: process, port: port)
            }
            if !process.isRunning {
                throw ChildEmulatorError(message: "the emulator exited (status \(process.terminationStatus)) before listening; log: \(log)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.terminate()
        throw ChildEmulatorError(message: "the emulator printed no banner within \(timeout); log: \(log)")
    }

    /// The port of the `OpenAI base URL:    http://127.0.0.1:PORT/v1` banner line, if printed yet.
    static func bannerPort(in text: Substring) -> Int? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("OpenAI base URL:") }),
              let url = URL(string: line.dropFirst("OpenAI base URL:".count).trimmingCharacters(in: .whitespaces)),
              let port = url.port
        else { return nil }
        return port
    }

    static func bannerPort(in text: String) -> Int? { bannerPort(in: Substring(text)) }
}

/// Why a child emulator did not start.
public struct ChildEmulatorError: Error, CustomStringConvertible {
    /// What went wrong, with the log's path.
    public var message: String
    /// The message.
    public var description: String { message }
}

extension ChildEmulator {
    /// What the emulator has seen so far (`GET /_emulator/stats`): its batches, their metadata and request counts,
    /// duplicate submissions.
    public func stats() async throws -> EmulatorStats {
        let response = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(port)/_emulator/stats").get()
        guard response.status == .ok else {
            throw ChildEmulatorError(message: "GET /_emulator/stats answered \(response.status)")
        }
        let body = response.body.map { Data($0.readableBytesView) } ?? Data()
        return try JSONDecoder().decode(EmulatorStats.self, from: body)
    }
}
