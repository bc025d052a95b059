import Foundation

extension Process {
    /// Starts `executable` with `arguments` (e.g. the `hyperbatch` binary as a child of a test). Its standard output
    /// and error go to the file at `log`, created or truncated, or are discarded when `log` is nil.
    public static func launch(_ executable: String, _ arguments: [String], log: String? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let log {
            FileManager.default.createFile(atPath: log, contents: nil)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.standardOutput = handle
            process.standardError = handle
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        try process.run()
        return process
    }

    /// Waits until the process has ended, polling without blocking a thread of the cooperative pool (unlike
    /// `waitUntilExit()`, which would hold one of its few threads for as long as the child lives).
    /// Returns false when `timeout` passed first; the process is then left running.
    public func waitForExit(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while isRunning {
            if ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }
}
