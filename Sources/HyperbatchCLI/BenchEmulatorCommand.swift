import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HyperbatchEmulator
import Logging

/// `hyperbatch bench emulator`: one 50,000-request OpenAI batch over loopback (upload, create, poll, download).
struct BenchEmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator", abstract: "Time a 50,000-request OpenAI batch through the emulator over loopback.")

    @Option(help: "Number of requests.") var requests: Int = 50_000
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        var config = EmulatorConfiguration()
        config.speedUp = 1_000_000
        let n = requests
        var logger = Logger(label: "hyperbatch.bench.emulator")
        logger.logLevel = .warning
        let phases = try await Emulator.withEmulator(configuration: config, logger: logger) { ep -> [(String, Double)] in
            var phases: [(String, Double)] = []
            let clock = ContinuousClock()
            func timed<T>(_ name: String, _ f: () async throws -> T) async rethrows -> T {
                let s = clock.now
                let r = try await f()
                let d = s.duration(to: clock.now).components
                phases.append((name, Double(d.seconds) + Double(d.attoseconds) / 1e18))
                return r
            }
            func send(_ method: String, _ path: String, _ body: Data? = nil, _ type: String? = nil) async throws -> Data {
                var r = URLRequest(url: URL(string: ep.openAIBaseURL + path)!)
                r.httpMethod = method
                r.setValue("Bearer bench", forHTTPHeaderField: "Authorization")
                if let type { r.setValue(type, forHTTPHeaderField: "Content-Type") }
                r.httpBody = body
                return try await URLSession.shared.data(for: r).0
            }
            func obj(_ d: Data) -> [String: Any] { ((try? JSONSerialization.jsonObject(with: d)) as? [String: Any]) ?? [:] }
            let fileID = try await timed("upload") { () async throws -> String in
                var text = ""
                for i in 0..<n {
                    text += #"{"custom_id":"r\#(i)","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"q\#(i)"}]}}"# + "\n"
                }
                let b = "hbbench"
                var body = Data("--\(b)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--\(b)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"in.jsonl\"\r\n\r\n".utf8)
                body += Data(text.utf8) + Data("\r\n--\(b)--\r\n".utf8)
                return obj(try await send("POST", "/files", body, "multipart/form-data; boundary=\(b)"))["id"] as? String ?? ""
            }
            let batchID = try await timed("create") { () async throws -> String in
                let body = Data(#"{"input_file_id":"\#(fileID)","endpoint":"/v1/chat/completions","completion_window":"24h"}"#.utf8)
                return obj(try await send("POST", "/batches", body, "application/json"))["id"] as? String ?? ""
            }
            let out = try await timed("poll") { () async throws -> String in
                while true {
                    let b = obj(try await send("GET", "/batches/\(batchID)"))
                    if let o = b["output_file_id"] as? String { return o }
                    if ["failed", "expired", "cancelled"].contains(b["status"] as? String ?? "") { throw ValidationError("batch \(b["status"] ?? "")") }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let lines = try await timed("download") { try await send("GET", "/files/\(out)/content").split(separator: 10).count }
            guard lines == n else { throw ValidationError("got \(lines) result lines, expected \(n)") }
            return phases
        }
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let hwm = status.split(separator: "\n").first { $0.hasPrefix("VmHWM") }.map { String($0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") } ?? "0"
        if json {
            var o: [String: Any] = ["requests": n, "peak_rss_kb": Int(hwm) ?? 0]
            for (k, v) in phases { o["\(k)_seconds"] = v }
            print(String(decoding: try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys]), as: UTF8.self))
        } else {
            for (k, v) in phases { print("\(k): \(String(format: "%.3f", v)) s") }
            print("total: \(String(format: "%.3f", phases.reduce(0) { $0 + $1.1 })) s, peak RSS: \(hwm) kB")
        }
    }
}
