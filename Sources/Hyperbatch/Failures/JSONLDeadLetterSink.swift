import Foundation
import Logging
import Synchronization

/// A ``DeadLetterSink`` that appends one JSON object per dead letter (one line each) to a file.
///
/// Keys of each line: `key`, `input`, `error`, `failure`, `attempts`, `firstAttemptAt`, `failedAt` (ISO 8601).
/// The file is created if missing and only ever appended to. Write failures are logged and counted, never thrown.
public final class JSONLDeadLetterSink: DeadLetterSink {
    private struct State {
        var handle: FileHandle?
        var writeFailures = 0
    }

    /// The file the sink appends to.
    public let path: String
    private let logger: Logger
    private let state = Mutex(State())

    /// Creates a sink appending to the file at `path`.
    public init(path: String, logger: Logger = Logger(label: "hyperbatch.deadletters")) {
        self.path = path
        self.logger = logger
    }

    deinit {
        state.withLock { try? $0.handle?.close() }
    }

    public func record(_ deadLetters: [DeadLetter]) async {
        guard !deadLetters.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        var data = Data()
        do {
            for letter in deadLetters {
                data.append(try encoder.encode(letter))
                data.append(0x0A)
            }
        } catch {
            fail("encode", error)
            return
        }
        state.withLock { state in
            do {
                if state.handle == nil {
                    if !FileManager.default.fileExists(atPath: path) {
                        _ = FileManager.default.createFile(atPath: path, contents: nil)
                    }
                    guard let handle = FileHandle(forWritingAtPath: path) else {
                        throw CocoaError(.fileNoSuchFile)
                    }
                    state.handle = handle
                }
                try state.handle?.seekToEnd()
                try state.handle?.write(contentsOf: data)
            } catch {
                state.writeFailures += 1
                logger.info("dead letter write failed", metadata: ["file.path": "\(path)", "error": "\(error)"])
            }
        }
    }

    /// Writes that failed (each lost its batch's dead letters).
    public var writeFailures: Int { state.withLock { $0.writeFailures } }

    private func fail(_ what: String, _ error: any Error) {
        state.withLock { $0.writeFailures += 1 }
        logger.info("dead letter \(what) failed", metadata: ["error": "\(error)"])
    }
}
