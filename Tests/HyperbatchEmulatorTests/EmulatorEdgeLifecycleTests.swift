import Foundation
import Testing
@testable import HyperbatchEmulator

/// Lifecycle corners of the emulator core on emulated time (no server, no sleeps): batch-level validation codes
/// without a line, `completed` with only an error file, Anthropic cancel with frozen counts and canceled results,
/// Anthropic's doubly nested error results, and the default speed (a 1,000-request batch ends in about 2 s).
@Suite struct EmulatorEdgeLifecycleTests {
    static let auth = ["authorization": "Bearer k", "x-api-key": "k"]

    func call(_ core: EmulatorCore, _ method: String, _ path: String, body: String = "", now: Double) -> (Int, [String: Any], [UInt8]) {
        let r = core.handle(EmulatorRequest(method: method, path: path, headers: Self.auth, body: Array(body.utf8)), now: now)
        return (r.status, ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]) ?? [:], r.collectedBody)
    }

    func line(_ id: String) -> String {
        #"{"custom_id":"\#(id)","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi \#(id)"}]}}"#
    }

    /// Uploads `text` and creates a chat-completions batch on it at `now`; returns the batch id.
    func createOpenAI(_ core: EmulatorCore, _ text: String, now: Double = 0) throws -> String {
        let b = "XyZ"
        let body = "--\(b)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--\(b)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n\(text)\r\n--\(b)--\r\n"
        var headers = Self.auth
        headers["content-type"] = "multipart/form-data; boundary=\(b)"
        let upload = core.handle(EmulatorRequest(method: "POST", path: "/v1/files", headers: headers, body: Array(body.utf8)), now: now)
        let file = try #require((try? JSONSerialization.jsonObject(with: Data(upload.body))) as? [String: Any])["id"] as? String
        let create = #"{"input_file_id":"\#(file ?? "")","endpoint":"/v1/chat/completions","completion_window":"24h"}"#
        return try #require(call(core, "POST", "/v1/batches", body: create, now: now).1["id"] as? String)
    }

    func errorCodes(_ batch: [String: Any]) -> [String] {
        (((batch["errors"] as? [String: Any])?["data"] as? [[String: Any]]) ?? []).compactMap { $0["code"] as? String }
    }

    @Test func tooManyRequestsAndAnEmptyFileFailTheBatch() throws {
        var configuration = EmulatorConfiguration()
        configuration.openAIMaxRequests = 3
        let core = EmulatorCore(configuration: configuration)
        let tooMany = try createOpenAI(core, (0..<4).map { line("r\($0)") }.joined(separator: "\n"))
        let empty = try createOpenAI(core, "")
        let a = call(core, "GET", "/v1/batches/\(tooMany)", now: 10).1
        let b = call(core, "GET", "/v1/batches/\(empty)", now: 10).1
        #expect(a["status"] as? String == "failed")
        #expect(errorCodes(a) == ["too_many_tasks"])
        #expect(b["status"] as? String == "failed")
        #expect(errorCodes(b) == ["empty_file"])
        #expect(a["failed_at"] is Int)
        // Three requests are within the limit.
        let fine = try createOpenAI(core, (0..<3).map { line("f\($0)") }.joined(separator: "\n"))
        #expect(call(core, "GET", "/v1/batches/\(fine)", now: 10).1["status"] as? String == "completed")
    }

    @Test func completedWithOnlyAnErrorFile() throws {
        var configuration = EmulatorConfiguration()
        configuration.faults.onlyErrorFile = true
        let core = EmulatorCore(configuration: configuration)
        let id = try createOpenAI(core, (0..<9).map { line("e\($0)") }.joined(separator: "\n"))
        let batch = call(core, "GET", "/v1/batches/\(id)", now: 10).1
        #expect(batch["status"] as? String == "completed")
        #expect(batch["output_file_id"] is NSNull)
        let counts = batch["request_counts"] as? [String: Int]
        #expect(counts == ["total": 9, "completed": 0, "failed": 9])
        let errorFile = try #require(batch["error_file_id"] as? String)
        let lines = String(decoding: call(core, "GET", "/v1/files/\(errorFile)/content", now: 10).2, as: UTF8.self).split(separator: "\n")
        #expect(lines.count == 9)
        for text in lines {
            let row = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
            let response = try #require(row["response"] as? [String: Any])
            #expect((response["status_code"] as? Int ?? 0) >= 400)
            #expect(((response["body"] as? [String: Any])?["error"] as? [String: Any])?["type"] is String)
        }
    }

    @Test func anthropicCancelFreezesCountsThenEndsWithCanceledResults() throws {
        var configuration = EmulatorConfiguration()
        configuration.requestsPerSecond = 100
        configuration.finalizingSeconds = 1
        let core = EmulatorCore(configuration: configuration)
        let requests = (0..<100).map { #"{"custom_id":"c\#($0)","params":{"model":"claude","max_tokens":8,"messages":[{"role":"user","content":"x"}]}}"# }
        let created = call(core, "POST", "/v1/messages/batches", body: #"{"requests":[\#(requests.joined(separator: ","))]}"#, now: 0).1
        let id = try #require(created["id"] as? String)
        let cancelling = call(core, "POST", "/v1/messages/batches/\(id)/cancel", now: 0.3).1
        #expect(cancelling["processing_status"] as? String == "canceling")
        #expect(cancelling["cancel_initiated_at"] is String)
        #expect(cancelling["results_url"] is NSNull)
        // Still canceling a moment later: every request counts as processing until the end.
        let mid = call(core, "GET", "/v1/messages/batches/\(id)", now: 0.8).1
        #expect(mid["processing_status"] as? String == "canceling")
        #expect((mid["request_counts"] as? [String: Int])?["processing"] == 100)
        let ended = call(core, "GET", "/v1/messages/batches/\(id)", now: 10).1
        #expect(ended["processing_status"] as? String == "ended")
        let counts = try #require(ended["request_counts"] as? [String: Int])
        #expect(counts["processing"] == 0)
        #expect(counts.values.reduce(0, +) == 100)
        #expect(counts["canceled", default: 0] > 0 && counts["succeeded", default: 0] > 0)
        let url = try #require(ended["results_url"] as? String)
        let rows = String(decoding: call(core, "GET", url, now: 10).2, as: UTF8.self).split(separator: "\n")
        let types = rows.compactMap { text in
            ((try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any]).flatMap { ($0["result"] as? [String: Any])?["type"] as? String }
        }
        #expect(types.count == 100)
        #expect(types.filter { $0 == "canceled" }.count == counts["canceled"])
    }

    @Test func anthropicErroredResultsAreNestedTwice() throws {
        var configuration = EmulatorConfiguration()
        configuration.faults.requestErrorRate = 1
        let core = EmulatorCore(configuration: configuration)
        let body = #"{"requests":[{"custom_id":"x1","params":{"model":"claude","max_tokens":8,"messages":[]}}]}"#
        let id = try #require(call(core, "POST", "/v1/messages/batches", body: body, now: 0).1["id"] as? String)
        let url = try #require(call(core, "GET", "/v1/messages/batches/\(id)", now: 10).1["results_url"] as? String)
        let row = try #require(try JSONSerialization.jsonObject(with: Data(call(core, "GET", url, now: 10).2)) as? [String: Any])
        let result = try #require(row["result"] as? [String: Any])
        #expect(result["type"] as? String == "errored")
        let outer = try #require(result["error"] as? [String: Any])
        #expect(outer["type"] as? String == "error")
        let inner = try #require(outer["error"] as? [String: Any])
        #expect(inner["type"] as? String == "invalid_request_error")
        #expect(inner["message"] is String)
    }

    @Test func byDefaultAThousandRequestBatchEndsInAboutTwoSeconds() throws {
        let core = EmulatorCore(configuration: EmulatorConfiguration())
        let id = try createOpenAI(core, (0..<1_000).map { line("d\($0)") }.joined(separator: "\n"))
        #expect(call(core, "GET", "/v1/batches/\(id)", now: 1).1["status"] as? String == "in_progress")
        #expect(call(core, "GET", "/v1/batches/\(id)", now: 2.5).1["status"] as? String == "completed")
    }
}
