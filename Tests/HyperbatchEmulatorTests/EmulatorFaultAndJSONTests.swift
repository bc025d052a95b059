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
