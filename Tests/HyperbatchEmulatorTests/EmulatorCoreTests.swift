import Foundation
import Testing
@testable import HyperbatchEmulator

@Suite struct BatchLifecycleTests {
    @Test func openAIPhasesFollowTime() {
        let lc = BatchLifecycle(createdAt: 1000, total: 100, rate: 10, validationSeconds: 1, finalizingSeconds: 1, windowSeconds: 86_400)
        #expect(lc.phase(at: 1000.5).phase == .validating)
        #expect(lc.phase(at: 1002).phase == .inProgress)
        #expect(lc.processed(at: 1006) == 50)
        #expect(lc.phase(at: 1011.5).phase == .finalizing)
        #expect(lc.phase(at: 1013).phase == .completed)
        #expect(lc.processed(at: 2000) == 100)
    }

    @Test func cancelFreezesWork() {
        var lc = BatchLifecycle(createdAt: 0, total: 100, rate: 10, validationSeconds: 0, finalizingSeconds: 2, windowSeconds: 86_400)
        lc.cancelRequestedAt = 3
        #expect(lc.phase(at: 4).phase == .cancelling)
        #expect(lc.phase(at: 6).phase == .cancelled)
        #expect(lc.processed(at: 100) == 30)
    }

    @Test func expiryKeepsPartialWork() {
        var lc = BatchLifecycle(createdAt: 0, total: 100, rate: 10, validationSeconds: 0, finalizingSeconds: 1, windowSeconds: 86_400)
        lc.expireAfterFraction = 0.4
        #expect(lc.phase(at: 5).phase == .expired)
        #expect(lc.processed(at: 50) == 40)
    }
}

@Suite struct EmulatorCoreTests {
    let core: EmulatorCore = {
        var c = EmulatorConfiguration()
        c.requestsPerSecond = 100
        return EmulatorCore(configuration: c)
    }()

    func call(_ method: String, _ path: String, body: [UInt8] = [], headers: [String: String] = ["authorization": "Bearer k", "x-api-key": "k"], query: [String: String] = [:], now: Double) -> (Int, [String: Any], [UInt8]) {
        let r = core.handle(EmulatorRequest(method: method, path: path, query: query, headers: headers, body: body), now: now)
        return (r.status, ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]) ?? [:], r.collectedBody)
    }

    func upload(_ text: String, now: Double) -> String {
        let b = "XyZ"
        let body = "--\(b)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--\(b)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n\(text)\r\n--\(b)--\r\n"
        let (s, o, _) = call("POST", "/v1/files", body: Array(body.utf8), headers: ["authorization": "Bearer k", "content-type": "multipart/form-data; boundary=\(b)"], now: now)
        #expect(s == 200)
        return o["id"] as? String ?? ""
    }

    func line(_ id: String, model: String = "m", url: String = "/v1/chat/completions") -> String {
        #"{"custom_id":"\#(id)","method":"POST","url":"\#(url)","body":{"model":"\#(model)","messages":[{"role":"user","content":"hi \#(id)"}]}}"#
    }

    @Test func openAIHappyPath() throws {
        let ids = (0..<20).map { "r\($0)" }
        let file = upload(ids.map { line($0) }.joined(separator: "\n"), now: 0)
        let body = #"{"input_file_id":"\#(file)","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"tag":"t1"}}"#
        let (s, created, _) = call("POST", "/v1/batches", body: Array(body.utf8), now: 0)
        #expect(s == 200)
        #expect(created["status"] as? String == "validating")
        let id = try #require(created["id"] as? String)
        #expect(call("GET", "/v1/batches/\(id)", now: 0.15).1["status"] as? String == "in_progress")
        let done = call("GET", "/v1/batches/\(id)", now: 10).1
        #expect(done["status"] as? String == "completed")
        let out = try #require(done["output_file_id"] as? String)
        let content = call("GET", "/v1/files/\(out)/content", now: 10).2
        let rows = String(decoding: content, as: UTF8.self).split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        let got = rows.map { $0["custom_id"] as! String }
        #expect(Set(got) == Set(ids))
        #expect(got != ids)  // out of input order
        for r in rows {
            let cid = r["custom_id"] as! String
            let text = (((r["response"] as! [String: Any])["body"] as! [String: Any])["choices"] as! [[String: Any]])[0]["message"] as! [String: Any]
            #expect((text["content"] as! String).hasPrefix("echo \(cid) "))
        }
        #expect(core.stats(now: 10).batches.first?.metadata["tag"] == "t1")
    }

    @Test func openAIValidationFailureReportsLines() throws {
        let text = [line("a"), "not json", line("a"), line("b", model: "other"), line("c", url: "/v1/embeddings")].joined(separator: "\n")
        let file = upload(text, now: 0)
        let body = #"{"input_file_id":"\#(file)","endpoint":"/v1/chat/completions","completion_window":"24h"}"#
        let id = try #require(call("POST", "/v1/batches", body: Array(body.utf8), now: 0).1["id"] as? String)
        let b = call("GET", "/v1/batches/\(id)", now: 5).1
        #expect(b["status"] as? String == "failed")
        let errs = ((b["errors"] as? [String: Any])?["data"] as? [[String: Any]]) ?? []
        let pairs = Set(errs.map { "\($0["code"] as! String)@\($0["line"] as! Int)" })
        #expect(pairs == ["invalid_json_line@2", "duplicate_custom_id@3", "model_mismatch@4", "url_mismatch@5"])
    }

    @Test func missingKeyIs401InEachShape() {
        let (s1, o1, _) = call("GET", "/v1/batches", headers: [:], now: 0)
        #expect(s1 == 401 && o1["error"] != nil)
        let (s2, o2, _) = call("GET", "/v1/messages/batches", headers: [:], now: 0)
        #expect(s2 == 401 && o2["type"] as? String == "error")
    }

    @Test func anthropicHappyPathAndValidation() throws {
        let reqs = (0..<10).map { #"{"custom_id":"q\#($0)","params":{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":"x\#($0)"}]}}"# }
        let body = #"{"requests":[\#(reqs.joined(separator: ","))]}"#
        let (s, created, _) = call("POST", "/v1/messages/batches", body: Array(body.utf8), now: 0)
        #expect(s == 200)
        let id = try #require(created["id"] as? String)
        let mid = call("GET", "/v1/messages/batches/\(id)", now: 0.05).1
        #expect(mid["processing_status"] as? String == "in_progress")
        #expect((mid["request_counts"] as? [String: Int])?["processing"] == 10)
        let end = call("GET", "/v1/messages/batches/\(id)", now: 5).1
        #expect(end["processing_status"] as? String == "ended")
        let url = try #require(end["results_url"] as? String)
        #expect(url.hasPrefix("/v1/"))
        let rows = String(decoding: call("GET", url, now: 5).2, as: UTF8.self).split(separator: "\n")
        #expect(rows.count == 10)
        let bad = #"{"requests":[{"custom_id":"has space","params":{}}]}"#
        #expect(call("POST", "/v1/messages/batches", body: Array(bad.utf8), now: 0).0 == 400)
        let dup = #"{"requests":[{"custom_id":"a","params":{}},{"custom_id":"a","params":{}}]}"#
        #expect(call("POST", "/v1/messages/batches", body: Array(dup.utf8), now: 0).0 == 400)
    }

    @Test func faults429CarryRetryAfter() {
        var f = EmulatorFaults()
        f.http429Rate = 1
        core.setFaults(f)
        let r = core.handle(EmulatorRequest(method: "GET", path: "/v1/batches", headers: ["authorization": "Bearer k"]), now: 0)
        #expect(r.status == 429)
        #expect(r.headers["retry-after"] == "1")
    }
}
