import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HyperbatchEmulator
import NIOCore
import NIOHTTP1
import Testing

/// File bytes live on disk in the emulator's storage directory: uploads and Anthropic create bodies are spooled
/// there, result files are written there, downloads read them back, and the directory goes when the emulator stops.
@Suite struct EmulatorStorageTests {
    let front = EmulatorFrontEndTests()

    /// A fresh, empty parent directory for one test's storage.
    static func parentDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "hyperbatch-storage-test-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Every regular file under `directory` with its bytes.
    static func files(in directory: String) -> [String: [UInt8]] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var out: [String: [UInt8]] = [:]
        for name in names { out[name] = FileManager.default.contents(atPath: directory + "/" + name).map { [UInt8]($0) } }
        return out
    }

    @Test(.timeLimit(.minutes(1))) func filesLiveOnDiskAndGoAtShutdown() async throws {
        let parent = try Self.parentDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        var config = EmulatorFrontEndTests.fast()
        config.storageDirectory = parent
        let n = 3_000
        let text = (0..<n).map(EmulatorFrontEndTests.line).joined(separator: "\n")
        let multipart = [("authorization", "Bearer k"), ("content-type", "multipart/form-data; boundary=XyZ")]

        try await Emulator.withEmulator(configuration: config) { endpoint in
            // A rejected upload (wrong purpose) leaves nothing behind.
            let bad = "--XyZ\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\n\(text)\r\n--XyZ--\r\n"
            let rejected = try await front.send(.POST, endpoint.openAIBaseURL + "/files", headers: multipart, body: .bytes(ByteBuffer(string: bad)))
            #expect(rejected.status == 400)

            let up = try await front.send(.POST, endpoint.openAIBaseURL + "/files", headers: multipart,
                                          body: EmulatorFrontEndTests.chunkedMultipart(text, boundary: "XyZ"))
            #expect(up.status == 200)
            let fileID = try #require(front.object(up.body)["id"] as? String)
            let storage = try #require(try FileManager.default.contentsOfDirectory(atPath: parent).first)
            let directory = parent + "/" + storage
            // One file on disk: the upload, holding the JSONL text.
            let afterUpload = Self.files(in: directory)
            #expect(afterUpload.count == 1)
            let spooled = try #require(afterUpload.values.first)
            #expect(String(decoding: spooled, as: UTF8.self).contains(text))
            // Its content comes back from disk byte for byte.
            let content = try await front.send(.GET, endpoint.openAIBaseURL + "/files/\(fileID)/content")
            #expect(content.body == Array(text.utf8))

            let create = #"{"input_file_id":"\#(fileID)","endpoint":"/v1/chat/completions","completion_window":"24h"}"#
            let created = front.object(try await front.send(.POST, endpoint.openAIBaseURL + "/batches", headers: [("authorization", "Bearer k")],
                                                            body: .bytes(ByteBuffer(string: create))).body)
            let batchID = try #require(created["id"] as? String)
            var outputID: String?
            while outputID == nil {
                let b = front.object(try await front.send(.GET, endpoint.openAIBaseURL + "/batches/\(batchID)").body)
                outputID = b["output_file_id"] as? String
                if outputID == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            // The output file was written to disk when the batch ended; the download streams those bytes.
            let object = front.object(try await front.send(.GET, endpoint.openAIBaseURL + "/files/\(outputID!)").body)
            let out = try await front.send(.GET, endpoint.openAIBaseURL + "/files/\(outputID!)/content")
            #expect(out.body.count > 256 * 1024)
            #expect(out.headers.first(name: "content-length") == String(out.body.count))
            #expect(object["bytes"] as? Int == out.body.count)
            // The upload, the batch's request records and the output file.
            let onDisk = Self.files(in: directory)
            #expect(onDisk.count == 3)
            #expect(onDisk.keys.filter { $0.hasSuffix("requests.index") }.count == 1)
            #expect(onDisk.values.contains(out.body))
            let ids = out.body.split(separator: 10).compactMap { front.object(Array($0))["custom_id"] as? String }
            #expect(Set(ids) == Set((0..<n).map { "r\($0)" }))
            #expect(ids.count == n)
        }
        // Shutdown removed the storage directory.
        #expect(try FileManager.default.contentsOfDirectory(atPath: parent).isEmpty)
    }

    /// A storage directory left by a killed emulator (its process is gone) is removed by the next emulator that
    /// stores a file under the same parent; one of a live process is left alone.
    @Test func leftoversOfDeadEmulatorsAreRemoved() throws {
        let parent = try Self.parentDirectory()
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let child = Process()
        child.executableURL = URL(fileURLWithPath: "/bin/true")
        try child.run()
        child.waitUntilExit()
        let dead = parent + "/hyperbatch-emulator-\(child.processIdentifier)-0badc0de"
        let live = parent + "/hyperbatch-emulator-\(getppid())-0000live"
        for d in [dead, live] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: d + "/1-upload", contents: Data("x".utf8))
        }
        var config = EmulatorConfiguration()
        config.storageDirectory = parent
        let core = EmulatorCore(configuration: config)
        let r = core.handle(EmulatorRequest(method: "POST", path: "/v1/messages/batches", headers: ["x-api-key": "k"],
                                            body: Array(#"{"requests":[{"custom_id":"a","params":{"model":"m"}}]}"#.utf8)), now: 0)
        #expect(r.status == 200)
        #expect(!FileManager.default.fileExists(atPath: dead))
        #expect(FileManager.default.fileExists(atPath: live + "/1-upload"))
        #expect(FileManager.default.fileExists(atPath: core.storage.directory))
        core.removeStorage()
        #expect(!FileManager.default.fileExists(atPath: core.storage.directory))
    }

    /// The same inputs give the same result bytes from two emulators (results are derived, not stored state), and
    /// an Anthropic create body is spooled and read back for the results.
    @Test func resultsAreDeterministicFromSpooledInput() throws {
        func run() throws -> (openAI: [UInt8], anthropic: [UInt8], directory: String, filesOnDisk: Int) {
            var config = EmulatorConfiguration()
            config.requestsPerSecond = 1_000
            config.faults.requestErrorRate = 0.2
            let core = EmulatorCore(configuration: config)
            func call(_ method: String, _ path: String, _ body: String, headers: [String: String] = ["authorization": "Bearer k", "x-api-key": "k"], now: Double) -> EmulatorResponse {
                core.handle(EmulatorRequest(method: method, path: path, headers: headers, body: Array(body.utf8)), now: now)
            }
            func json(_ r: EmulatorResponse) -> [String: Any] { ((try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]) ?? [:] }
            let text = (0..<500).map(EmulatorFrontEndTests.line).joined(separator: "\n")
            let body = "--B\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n\(text)\r\n--B--\r\n"
            let file = json(call("POST", "/v1/files", body, headers: ["authorization": "Bearer k", "content-type": "multipart/form-data; boundary=B"], now: 0))["id"] as? String ?? ""
            let batch = json(call("POST", "/v1/batches", #"{"input_file_id":"\#(file)","endpoint":"/v1/chat/completions","completion_window":"24h"}"#, now: 0))["id"] as? String ?? ""
            let ended = json(call("GET", "/v1/batches/\(batch)", "", now: 100))
            var outputs = call("GET", "/v1/files/\(ended["output_file_id"] as? String ?? "")/content", "", now: 100).collectedBody
            outputs += call("GET", "/v1/files/\(ended["error_file_id"] as? String ?? "")/content", "", now: 100).collectedBody
            let requests = (0..<300).map { #"{"custom_id":"q\#($0)","params":{"model":"claude-\#($0 % 3)","max_tokens":8,"messages":[{"role":"user","content":"x\#($0)"}]}}"# }
            let message = json(call("POST", "/v1/messages/batches", #"{"requests":[\#(requests.joined(separator: ","))]}"#, now: 0))["id"] as? String ?? ""
            let results = call("GET", "/v1/messages/batches/\(message)/results", "", now: 100).collectedBody
            let directory = core.storage.directory
            let count = Self.files(in: directory).count
            core.removeStorage()
            #expect(!FileManager.default.fileExists(atPath: directory))
            return (outputs, results, directory, count)
        }
        let a = try run()
        let b = try run()
        // Upload, its request records, output and error file; the Anthropic body and its request records.
        #expect(a.filesOnDisk == 6)
        #expect(a.directory != b.directory)
        #expect(a.openAI == b.openAI)
        #expect(a.anthropic == b.anthropic)
        let rows = a.openAI.split(separator: 10).map { ((try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any]) ?? [:] }
        #expect(Set(rows.compactMap { $0["custom_id"] as? String }) == Set((0..<500).map { "r\($0)" }))
        let codes = rows.compactMap { ($0["response"] as? [String: Any])?["status_code"] as? Int }
        #expect(codes.contains(200) && codes.contains(400))
        let anthropic = a.anthropic.split(separator: 10).map { ((try? JSONSerialization.jsonObject(with: Data($0))) as? [String: Any]) ?? [:] }
        #expect(anthropic.count == 300)
        let models = anthropic.compactMap { (($0["result"] as? [String: Any])?["message"] as? [String: Any])?["model"] as? String }
        #expect(Set(models) == ["claude-0", "claude-1", "claude-2"])
    }
}
