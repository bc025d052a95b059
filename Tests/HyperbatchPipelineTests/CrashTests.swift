import AsyncHTTPClient
import Foundation
import HyperbatchEmulator
import HyperbatchTestKit
import Testing

/// Kills `hyperbatch run` with SIGKILL at random moments, restarts it, and checks the invariants at the end: every
/// request has exactly one result and the emulator (a separate `hyperbatch emulator` process, so it survives the
/// kills) saw no provider batch created twice for the same requests.
///
/// Needs the debug binary (`swift build` builds it); skipped when it is missing.
@Suite struct CrashTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = packageRoot.appendingPathComponent(".build/debug/hyperbatch").path
    static var binaryExists: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    func spawn(_ arguments: [String]) throws -> Process { try Process.launch(Self.binary, arguments) }


    @Test("SIGKILL at random moments ≥ 20 times, restart: exactly one result per custom_id, no batch created twice",
          .enabled(if: CrashTests.binaryExists), .timeLimit(.minutes(5)))
    func killAndRestart() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hb-crash-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let input = dir.appendingPathComponent("requests.jsonl").path
        let count = 2_000
        FileManager.default.createFile(atPath: input, contents: Data(PipelineHarness.jsonl(count)))
        let store = dir.appendingPathComponent("store.sqlite").path
        let output = dir.appendingPathComponent("results.jsonl").path

        // Port 0: the kernel picks a free port (a random one could be another test's server), read from the banner.
        let child = try await ChildEmulator.launch(
            executable: Self.binary, ["--rate", "10"], log: dir.appendingPathComponent("emulator.log").path)  // 10 s a 100-request batch: the job outlives 20 kills
        let emulator = child.process
        let port = child.port
        defer { emulator.terminate() }

        let args = [
            "run", input, "--provider", "emulator", "--base-url", "http://127.0.0.1:\(port)/v1", "--store", store,
            "--output", output, "--json", "--poll-initial", "0.05", "--max-batch-requests", "100",
        ]
        var kills = 0
        var attempts = 0
        // Keep killing until there were 20 kills and one run got to finish the job by itself, so the kills also
        // land while batches end and are reconciled.
        var finishedAlone = false
        while !(kills >= 20 && finishedAlone) && attempts < 100 {
            attempts += 1
            let child = try spawn(args)
            try await Task.sleep(for: .milliseconds(Int.random(in: 30...500)))
            if child.isRunning {
                kill(child.processIdentifier, SIGKILL)
                kills += 1
            }
            try #require(await child.waitForExit(timeout: .seconds(120)), "a run did not end")
            if child.terminationReason == .exit && child.terminationStatus == 0 { finishedAlone = true }
        }
        print("crash test: \(kills) kills in \(attempts) runs")
        #expect(kills >= 20)
        #expect(finishedAlone, "no run finished the job between the kills")

        // The last run completes.
        let final = try spawn(args)
        try #require(await final.waitForExit(timeout: .seconds(180)), "the last run did not end")
        #expect(final.terminationStatus == 0)

        let text = try String(contentsOfFile: output, encoding: .utf8)
        var seen: [String: Int] = [:]
        var succeeded = 0
        for line in text.split(separator: "\n") {
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let id = try #require(obj?["custom_id"] as? String)
            seen[id, default: 0] += 1
            if obj?["status"] as? String == "succeeded" { succeeded += 1 }
        }
        #expect(seen.count == count)
        #expect(seen.values.allSatisfy { $0 == 1 })
        #expect(succeeded == count)
        let s = try await child.stats()
        #expect(s.duplicateSubmissions == 0)
        #expect(s.batches.count >= count / 100)  // at least one provider batch per 100 requests was created
    }
}
