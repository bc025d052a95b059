import Foundation
import Testing
@testable import HyperbatchEmulator

@Suite struct FastJSONTests {
    func members(_ text: String) -> [String: String]? {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBufferPointer { b in
            FastJSON.scanObject(b).map { m in m.values.mapValues { String(decoding: b[$0], as: UTF8.self) } }
        }
    }

    @Test func scansTopLevelMembersWithRawValues() {
        let m = members(#" {"custom_id":"a\"b","body":{"model":"m","x":[1,-2.5e3,true,null]},"n":0} "#)
        #expect(m?["custom_id"] == #""a\"b""#)
        #expect(m?["body"] == #"{"model":"m","x":[1,-2.5e3,true,null]}"#)
        #expect(m?["n"] == "0")
        let bytes = Array(#"{"k":"a\"b\u0041"}"#.utf8)
        let decoded = bytes.withUnsafeBufferPointer { b in FastJSON.scanObject(b).flatMap { FastJSON.string(b, $0.values["k"]!) } }
        #expect(decoded == "a\"bA")
    }

    @Test func rejectsInvalidJSON() {
        for bad in ["not json", "{", #"{"a":}"#, #"{"a":1,}"#, #"{"a":01}"#, #"{"a":"x"} extra"#, "[1]", #"{"a":tru}"#, "{\"a\":\"\u{01}\"}", #"{"a":"\q"}"#] {
            #expect(members(bad) == nil, "accepted \(bad)")
        }
    }

    @Test func writesSortedEscapedJSONThatFoundationReadsBack() throws {
        let parsed = try JSONSerialization.jsonObject(with: Data(#"{"t":true,"one":1,"f":1.5}"#.utf8))
        let value: [String: Any] = ["b": [1, 2.5, true, NSNull(), "q\"\n/"] as [Any], "a": ["k": "v"], "p": parsed]
        let text = String(decoding: FastJSON.data(value), as: UTF8.self)
        #expect(text == #"{"a":{"k":"v"},"b":[1,2.5,true,null,"q\"\n/"],"p":{"f":1.5,"one":1,"t":true}}"#)
        let back = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect((back["b"] as? [Any])?.last as? String == "q\"\n/")
    }
}

@Suite struct SlowResponseFaultTests {
    func get(_ core: EmulatorCore, _ path: String = "/v1/batches") -> EmulatorResponse {
        core.handle(EmulatorRequest(method: "GET", path: path, headers: ["authorization": "Bearer k"]), now: 0)
    }

    @Test func slowFaultDelaysTheConfiguredFractionOfAnswers() {
        var config = EmulatorConfiguration()
        config.faults.slowResponseRate = 0.3
        config.faults.slowResponseSeconds = 1.5
        let core = EmulatorCore(configuration: config)
        let delays = (0..<1000).map { _ in get(core).delaySeconds }
        let slow = delays.filter { $0 > 0 }
        #expect(Set(slow) == [1.5])
        #expect((200...400).contains(slow.count))
        #expect(core.stats(now: 0).slowResponsesSent == slow.count)
        // Answers stay correct; only their timing changes.
        #expect(get(core).status == 200)
    }

    @Test func noSlowFaultMeansNoDelayAndAdminCallsAreNeverDelayed() {
        let core = EmulatorCore(configuration: EmulatorConfiguration())
        #expect((0..<100).allSatisfy { _ in get(core).delaySeconds == 0 })
        var f = EmulatorFaults()
        f.slowResponseRate = 1
        core.setFaults(f)
        #expect(get(core).delaySeconds == 2)
        #expect(get(core, "/_emulator/faults").delaySeconds == 0)
    }

    @Test func faultsDecodeWithMissingKeysKeepingDefaults() throws {
        let f = try JSONDecoder().decode(EmulatorFaults.self, from: Data(#"{"slowResponseRate":0.5}"#.utf8))
        #expect(f.slowResponseRate == 0.5)
        #expect(f.slowResponseSeconds == 2)
        #expect(f.retryAfterSeconds == 1)
        let round = try JSONDecoder().decode(EmulatorFaults.self, from: JSONEncoder().encode(f))
        #expect(round == f)
    }
}

@Suite struct AnthropicCreateParsingTests {
    let core = EmulatorCore(configuration: {
        var c = EmulatorConfiguration()
        c.anthropicMaxRequests = 3
        return c
    }())

    func create(_ body: String) -> (Int, String) {
        let r = core.handle(EmulatorRequest(method: "POST", path: "/v1/messages/batches", headers: ["x-api-key": "k"], body: Array(body.utf8)), now: 0)
        let o = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]
        return (r.status, ((o?["error"] as? [String: Any])?["message"] as? String) ?? "")
    }

    @Test func keepsRawParamsAndModelOfEachRequest() throws {
        let params = #"{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"é \"q\""}]}"#
        let body = #"{"requests":[{"custom_id":"a-1","params":\#(params)},{"params":{"model":"m2"},"custom_id":"b_2"}]}"#
        let lines = try Array(body.utf8).withUnsafeBufferPointer { try core.parseMessageBatchRequests($0).get() }
        #expect(lines.map(\.customID) == ["a-1", "b_2"])
        #expect(lines.map(\.model) == ["claude-x", "m2"])
        #expect(String(decoding: lines[0].body, as: UTF8.self) == params)
        #expect(create(body).0 == 200)
    }

    @Test func rejectsBadBodiesWithFieldPaths() {
        let cases: [(String, String)] = [
            ("{not json", "not valid JSON"),
            (#"{"other":1}"#, "requests: Field required"),
            (#"{"requests":{}}"#, "requests: Input should be a valid list"),
            (#"{"requests":[]}"#, "at least 1 item"),
            (#"{"requests":[1,2,3,4]}"#, "at most 3 items"),
            (#"{"requests":[1]}"#, "requests.0: Input should be a valid dictionary"),
            (#"{"requests":[{"custom_id":"ok","params":{}},{"custom_id":"bad id","params":{}}]}"#, "requests.1.custom_id"),
            (#"{"requests":[{"custom_id":"x","params":{}},{"custom_id":"x","params":{}}]}"#, "Duplicate custom_id 'x'"),
            (#"{"requests":[{"custom_id":"x"}]}"#, "requests.0.params: Field required"),
            (#"{"requests":[{"custom_id":"x","params":[1]}]}"#, "requests.0.params: Input should be a valid dictionary"),
        ]
        for (body, message) in cases {
            let (status, text) = create(body)
            #expect(status == 400, "\(body)")
            #expect(text.contains(message), "\(body): \(text)")
        }
    }

    @Test func arrayElementsGivesEachElementRange() {
        let text = #" [ {"a":[1,2]} , "s,]" ,3 ] "#.trimmingCharacters(in: .whitespaces)
        let bytes = Array(text.utf8)
        let parts = bytes.withUnsafeBufferPointer { b in FastJSON.arrayElements(b, 0..<b.count)?.map { String(decoding: b[$0], as: UTF8.self) } }
        #expect(parts == [#"{"a":[1,2]}"#, #""s,]""#, "3"])
        for bad in ["[1,]", "[1 2]", "[", "{}"] {
            let b = Array(bad.utf8)
            #expect(b.withUnsafeBufferPointer { FastJSON.arrayElements($0, 0..<$0.count) } == nil, "accepted \(bad)")
        }
    }
}

@Suite struct RouteTableTests {
    let core = EmulatorCore(configuration: EmulatorConfiguration())

    @Test func matchesTemplatesSegmentBySegment() {
        #expect(EmulatorRoute.matching("/v1/batches/batch_1/cancel")?.path == "/v1/batches/:id/cancel")
        #expect(EmulatorRoute.matching("/v1/messages/batches")?.path == "/v1/messages/batches")
        #expect(EmulatorRoute.matching("/v1/files/f/content/")?.path == "/v1/files/:id/content")
        #expect(EmulatorRoute.matching("/v1/batches/a/b") == nil)
        #expect(EmulatorRoute.matching("/v2/batches") == nil)
    }

    @Test func wrongMethodIs405WithAllowAndUnknownPathIs404() {
        let r = core.handle(EmulatorRequest(method: "POST", path: "/v1/files/f1/content", headers: ["authorization": "Bearer k"]), now: 0)
        #expect(r.status == 405)
        #expect(r.headers["allow"] == "GET")
        let admin = core.handle(EmulatorRequest(method: "POST", path: "/_emulator/stats"), now: 0)
        #expect(admin.status == 405)
        let missing = core.handle(EmulatorRequest(method: "GET", path: "/v1/messages/other", headers: ["x-api-key": "k"]), now: 0)
        #expect(missing.status == 404)
        #expect(String(decoding: missing.body, as: UTF8.self).contains("not_found_error"))
    }
}
