import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import HyperbatchEmulator
import HyperbatchTestKit
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Testing

/// The Hummingbird front end over real loopback HTTP: chunked uploads, error shapes of unknown routes, port 0,
/// streamed downloads, the slow-response fault on the injected clock, and the `Service` lifecycle.
@Suite struct EmulatorFrontEndTests {
    static func fast() -> EmulatorConfiguration {
        var c = EmulatorConfiguration()
        c.speedUp = 10_000
        c.requestsPerSecond = 10_000
        return c
    }

    func send(_ method: HTTPMethod, _ url: String, headers: [(String, String)] = [("authorization", "Bearer k")], body: HTTPClientRequest.Body? = nil)
        async throws -> (status: Int, headers: HTTPHeaders, body: [UInt8])
    {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        if let body { request.body = body }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        var buffer = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), response.headers, buffer.readBytes(length: buffer.readableBytes) ?? [])
    }

    func object(_ bytes: [UInt8]) -> [String: Any] {
        ((try? JSONSerialization.jsonObject(with: Data(bytes))) as? [String: Any]) ?? [:]
    }

    static func line(_ i: Int) -> String {
        #"{"custom_id":"r\#(i)","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"question number \#(i) with some padding text"}]}}"#
    }

    /// A multipart body sent in many small chunks with no length, so AsyncHTTPClient uses chunked encoding.
    static func chunkedMultipart(_ text: String, boundary b: String, chunk: Int = 1000) -> HTTPClientRequest.Body {
        let bytes = Array(("--\(b)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--\(b)\r\n"
            + "Content-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n\(text)\r\n--\(b)--\r\n").utf8)
        let chunks = stride(from: 0, to: bytes.count, by: chunk).map { ByteBuffer(bytes: bytes[$0..<min(bytes.count, $0 + chunk)]) }
        let stream = AsyncStream<ByteBuffer> { c in
            for part in chunks { c.yield(part) }
            c.finish()
        }
        return .stream(stream, length: .unknown)
    }

    @Test(.timeLimit(.minutes(1))) func chunkedUploadThenStreamedDownload() async throws {
        try await Emulator.withEmulator(configuration: Self.fast()) { endpoint in
            let n = 5_000
            let text = (0..<n).map(Self.line).joined(separator: "\n")
            let up = try await send(.POST, endpoint.openAIBaseURL + "/files",
                                    headers: [("authorization", "Bearer k"), ("content-type", "multipart/form-data; boundary=XyZ")],
                                    body: Self.chunkedMultipart(text, boundary: "XyZ"))
            #expect(up.status == 200)
            let file = object(up.body)
            #expect(file["bytes"] as? Int == text.utf8.count)
            let fileID = try #require(file["id"] as? String)

            let create = #"{"input_file_id":"\#(fileID)","endpoint":"/v1/chat/completions","completion_window":"24h"}"#
            let created = object(try await send(.POST, endpoint.openAIBaseURL + "/batches", headers: [("authorization", "Bearer k"), ("content-type", "application/json")],
                                                body: .bytes(ByteBuffer(string: create))).body)
            let batchID = try #require(created["id"] as? String)
            var outputID: String?
            while outputID == nil {
                let b = object(try await send(.GET, endpoint.openAIBaseURL + "/batches/\(batchID)").body)
                try #require(!["failed", "expired", "cancelled"].contains(b["status"] as? String ?? ""))
                outputID = b["output_file_id"] as? String
                if outputID == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            // The output (several MB) is larger than one write chunk, so it is streamed with a content-length.
            let out = try await send(.GET, endpoint.openAIBaseURL + "/files/\(outputID!)/content")
            #expect(out.status == 200)
            #expect(out.body.count > 1_000_000)
            #expect(out.headers.first(name: "content-length") == String(out.body.count))
            let ids = Set(out.body.split(separator: 10).compactMap { object(Array($0))["custom_id"] as? String })
            #expect(ids == Set((0..<n).map { "r\($0)" }))
        }
    }

    @Test(.timeLimit(.minutes(1))) func anthropicResultsAreRenderedWhileStreaming() async throws {
        try await Emulator.withEmulator(configuration: Self.fast()) { endpoint in
            let n = 3_000
            let requests = (0..<n).map { #"{"custom_id":"q\#($0)","params":{"model":"claude","max_tokens":8,"messages":[{"role":"user","content":"x\#($0)"}]}}"# }
            let body = #"{"requests":[\#(requests.joined(separator: ","))]}"#
            let created = object(try await send(.POST, endpoint.anthropicBaseURL + "/v1/messages/batches", headers: [("x-api-key", "k"), ("content-type", "application/json")],
                                                body: .bytes(ByteBuffer(string: body))).body)
            let id = try #require(created["id"] as? String)
            var resultsURL: String?
            while resultsURL == nil {
                resultsURL = object(try await send(.GET, endpoint.anthropicBaseURL + "/v1/messages/batches/\(id)", headers: [("x-api-key", "k")]).body)["results_url"] as? String
                if resultsURL == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            let results = try await send(.GET, endpoint.anthropicBaseURL + resultsURL!, headers: [("x-api-key", "k")])
            #expect(results.status == 200)
            #expect(results.headers.first(name: "transfer-encoding") == "chunked")
            #expect(results.headers.first(name: "content-type") == "application/x-jsonl")
            let rows = results.body.split(separator: 10).map { object(Array($0)) }
            #expect(Set(rows.compactMap { $0["custom_id"] as? String }) == Set((0..<n).map { "q\($0)" }))
            #expect(rows.allSatisfy { ($0["result"] as? [String: Any])?["type"] as? String == "succeeded" })
            #expect(rows.prefix(10).compactMap { $0["custom_id"] as? String } != (0..<10).map { "q\($0)" })
        }
    }

    @Test(.timeLimit(.minutes(1))) func bodiesOverEveryLimitGet413InTheProviderShape() async throws {
        var config = Self.fast()
        config.openAIMaxBytes = 1_000
        config.anthropicMaxBytes = 1_000
        try await Emulator.withEmulator(configuration: config) { endpoint in
            // The front end stops reading 1 MB past the largest limit; the core's answer is the provider's 413.
            let big = ByteBuffer(repeating: UInt8(ascii: " "), count: 1_100_000)
            let r = try await send(.POST, endpoint.anthropicBaseURL + "/v1/messages/batches", headers: [("x-api-key", "k")], body: .bytes(big))
            #expect(r.status == 413)
            #expect((object(r.body)["error"] as? [String: Any])?["type"] as? String == "request_too_large")
        }
    }

    @Test(.timeLimit(.minutes(1))) func expectContinueGetsAnInterim100BeforeTheBodyIsSent() async throws {
        try await Emulator.withEmulator(configuration: Self.fast()) { endpoint in
            let port = endpoint.port
            // Blocking socket I/O (with a 5 s receive timeout) on a thread of its own: a detached task would block one
            // of the cooperative pool's threads (two on this machine), which the emulator's handlers need to answer.
            let (interim, final) = try await withCheckedThrowingContinuation { continuation in
                Thread { continuation.resume(with: Result { try RawExpectContinue.exchange(port: port) }) }.start()
            }
            #expect(interim.hasPrefix("HTTP/1.1 100 Continue"))
            #expect(final.hasPrefix("HTTP/1.1 200"))
            #expect(endpoint.stats().batches.count == 1)
        }
    }

    @Test(.timeLimit(.minutes(1))) func unknownRoutesAndWrongMethodsKeepProviderShapes() async throws {
        try await Emulator.withEmulator(configuration: Self.fast()) { endpoint in
            let nope = try await send(.GET, endpoint.openAIBaseURL + "/nope")
            #expect(nope.status == 404)
            let oaError = object(nope.body)["error"] as? [String: Any]
            #expect(oaError?["type"] as? String == "invalid_request_error")
            #expect((oaError?["message"] as? String)?.contains("Invalid URL (GET /v1/nope)") == true)

            let wrong = try await send(.DELETE, endpoint.openAIBaseURL + "/batches/batch_1")
            #expect(wrong.status == 405)
            #expect(wrong.headers.first(name: "allow") == "GET")
            #expect((object(wrong.body)["error"] as? [String: Any])?["type"] as? String == "invalid_request_error")

            let anMissing = try await send(.GET, endpoint.anthropicBaseURL + "/v1/messages/batches/msgbatch_1/nope", headers: [("x-api-key", "k")])
            #expect(anMissing.status == 404)
            let an = object(anMissing.body)
            #expect(an["type"] as? String == "error")
            #expect((an["error"] as? [String: Any])?["type"] as? String == "not_found_error")

            let anWrong = try await send(.PUT, endpoint.anthropicBaseURL + "/v1/messages/batches", headers: [("x-api-key", "k")])
            #expect(anWrong.status == 405)
            #expect(anWrong.headers.first(name: "allow") == "GET, POST")
            #expect(object(anWrong.body)["type"] as? String == "error")

            // A registered route with an unknown id is the handler's own 404, not the router's.
            let missingBatch = try await send(.GET, endpoint.openAIBaseURL + "/batches/batch_nope")
            #expect(missingBatch.status == 404)
            #expect(String(decoding: missingBatch.body, as: UTF8.self).contains("No batch found with id 'batch_nope'"))
        }
    }

    @Test(.timeLimit(.minutes(1))) func portZeroPicksFreePortsAndATakenPortFails() async throws {
        try await Emulator.withEmulator(configuration: Self.fast()) { a in
            try await Emulator.withEmulator(configuration: Self.fast()) { b in
                #expect(a.port > 0 && b.port > 0 && a.port != b.port)
                let fromA = try await send(.GET, a.openAIBaseURL + "/batches")
                let fromB = try await send(.GET, b.openAIBaseURL + "/batches")
                #expect(fromA.status == 200 && fromB.status == 200)
            }
            var taken = Self.fast()
            taken.port = a.port
            await #expect(throws: (any Error).self) {
                try await Emulator.withEmulator(configuration: taken) { _ in Issue.record("bound a port already in use") }
            }
        }
    }

    @Test(.timeLimit(.minutes(1))) func runsAsServiceUntilGracefulShutdown() async throws {
        let emulator = try Emulator(configuration: Self.fast(), clock: ContinuousClock(), logger: Logger(label: "test"))
        let group = ServiceGroup(services: [emulator], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            let endpoint = try await emulator.endpoint
            #expect(try await send(.GET, endpoint.openAIBaseURL + "/batches").status == 200)
            await group.triggerGracefulShutdown()
            try await tasks.next()
            await #expect(throws: EmulatorError.notListening) { _ = try await emulator.endpoint }
        }
    }

    @Test(.timeLimit(.minutes(1))) func slowResponseSleepsOnTheInjectedClock() async throws {
        var config = Self.fast()
        config.faults.slowResponseRate = 1
        config.faults.slowResponseSeconds = 30
        let clock = ManualClock()
        let emulator = try Emulator(configuration: config, clock: clock, logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await emulator.run() }
            let endpoint = try await emulator.endpoint
            async let answer = send(.GET, endpoint.openAIBaseURL + "/batches")
            // The handler sleeps 30 s on the manual clock; the answer comes only after the clock moves.
            let deadline = await clock.nextSleep()
            #expect(deadline == clock.now.advanced(by: .seconds(30)))
            clock.advance(to: deadline)
            #expect(try await answer.status == 200)
            #expect(endpoint.stats().slowResponsesSent == 1)
            tasks.cancelAll()
        }
    }
}

/// A raw HTTP/1.1 client for the one thing AsyncHTTPClient never does: send `Expect: 100-continue` and wait for the
/// interim answer before sending the body.
enum RawExpectContinue {
    struct Failure: Error { var step: String }

    /// Sends the head, reads the interim response, sends the body, reads the final response head.
    static func exchange(port: Int) throws -> (interim: String, final: String) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(step: "socket") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr)
        let connected = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(step: "connect") }
        let body = #"{"requests":[{"custom_id":"a","params":{"model":"m","max_tokens":5,"messages":[]}}]}"#
        let head = "POST /v1/messages/batches HTTP/1.1\r\nhost: 127.0.0.1\r\nx-api-key: k\r\ncontent-type: application/json\r\n"
            + "content-length: \(body.utf8.count)\r\nexpect: 100-continue\r\n\r\n"
        try send(fd, head)
        let interim = try readHead(fd)
        try send(fd, body)
        return (interim, try readHead(fd))
    }

    static func send(_ fd: Int32, _ text: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw Failure(step: "write") }
    }

    /// Reads byte by byte up to the blank line that ends a response head.
    static func readHead(_ fd: Int32) throws -> String {
        var out: [UInt8] = []
        var byte: UInt8 = 0
        while !out.suffix(4).elementsEqual([13, 10, 13, 10]) {
            guard read(fd, &byte, 1) == 1 else { throw Failure(step: "read after \(out.count) bytes") }
            out.append(byte)
        }
        return String(decoding: out, as: UTF8.self)
    }
}
