import Foundation
import Testing

/// `hyperbatch run` on Anthropic-format lines with `--provider emulator` drives the Anthropic client, and
/// `hyperbatch status --json` reports the estimated saving. Runs the debug binary; skipped when it is missing.
@Suite struct CLIAnthropicTests {
    static let example = CrashTests.packageRoot.appendingPathComponent("Examples/anthropic-requests.jsonl").path

    /// Runs the binary to completion and returns its exit status and standard output.
    func hyperbatch(_ arguments: [String]) async throws -> (status: Int32, output: Data) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CrashTests.binary)
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            p.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try p.run() } catch { continuation.resume(throwing: error) }
        }
        return (status, pipe.fileHandleForReading.readDataToEndOfFile())
    }

    @Test("run Examples/anthropic-requests.jsonl --provider emulator, then status --json",
          .enabled(if: CrashTests.binaryExists), .timeLimit(.minutes(1)))
    func anthropicExampleThroughCLI() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hb-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let store = dir.appendingPathComponent("store.sqlite").path
        let output = dir.appendingPathComponent("results.jsonl").path

        let run = try await hyperbatch(["run", Self.example, "--provider", "emulator", "--store", store, "--output", output, "--json"])
        #expect(run.status == 0)
        let summary = try #require(try JSONSerialization.jsonObject(with: run.output) as? [String: Any])
        #expect(summary["lines"] as? Int == 200)
        #expect((summary["counts"] as? [String: Int])?["succeeded"] == 200)

        let lines = try String(contentsOfFile: output, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 200)
        var ids = Set<String>()
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let customID = try #require(object["custom_id"] as? String)
            ids.insert(customID)
            #expect(object["status"] as? String == "succeeded")
            #expect((object["provider_batch_id"] as? String)?.hasPrefix("msgbatch_") == true, "the Anthropic API was used")
            let response = try #require(object["response"] as? [String: Any])
            #expect(response["type"] as? String == "message")
            let text = ((response["content"] as? [[String: Any]])?.first?["text"] as? String) ?? ""
            #expect(text.hasPrefix("echo \(customID) "))
        }
        #expect(ids.count == 200)

        let status = try await hyperbatch(["status", "--store", store, "--json"])
        #expect(status.status == 0)
        let jobs = try #require(try JSONSerialization.jsonObject(with: status.output) as? [[String: Any]])
        let job = try #require(jobs.first)
        #expect(job["provider"] as? String == "anthropic")
        let estimate = try #require(job["estimate"] as? [String: Any])
        let saved = try #require(estimate["savedUSD"] as? Double), sync = try #require(estimate["synchronousUSD"] as? Double)
        #expect(saved > 0)
        #expect(abs(saved - sync / 2) < 1e-12)
        #expect((estimate["unknownPriceModels"] as? [String])?.isEmpty == true)
    }
}
