import Foundation

extension Process {
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
