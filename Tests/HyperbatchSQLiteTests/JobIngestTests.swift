import Foundation
import GRDB
import HyperbatchJobs
import HyperbatchSQLite
import Testing

@Suite("JobIngest")
struct JobIngestTests {
    let job = JobID("ingest")

    func makeStore() async throws -> SQLiteJobStore {
        let store = try SQLiteJobStore(writer: DatabaseQueue())
        _ = try await store.createJob(NewJob(id: job, provider: .openai), at: Date())
        return store
    }

    func line(_ id: String, model: String = "gpt-4o-mini") -> String {
        #"{"custom_id":"\#(id)","method":"POST","url":"/v1/chat/completions","body":{"model":"\#(model)","messages":[]}}"#
    }

    var mixed: String {
        [
            line("a"),
            "{broken",
            line("b"),
            #"{"method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}"#,
            line("a"),
            "",
            #"{"custom_id":"c","method":"POST","url":"/v1/nope","body":{"model":"m"}}"#,
            #"{"custom_id":"d","method":"POST","url":"/v1/chat/completions","body":{}}"#,
            line("e") + "\r",
        ].joined(separator: "\n")
    }

    @Test("bad lines are reported with line numbers; valid ones are stored", .timeLimit(.minutes(1)))
    func badLines() async throws {
        let store = try await makeStore()
        let ingest = JobIngest(store: store, parser: IngestLineParser(provider: .openai))
        let report = try await ingest.ingest(data: Array(mixed.utf8), into: job)
        #expect(report.lines == 8)
        #expect(report.accepted == 3)
        #expect(report.inserted == 3)
        #expect(report.errorCount == 5)
        #expect(report.errors.map(\.line) == [2, 4, 5, 7, 8])
        #expect(report.errors.map(\.problem) == [
            .invalidJSON, .missingCustomID, .duplicateCustomID(firstLine: 1), .unknownEndpoint("/v1/nope"), .missingModel,
        ])
        #expect(report.errors[2].customID == "a")
        #expect(!report.rejected)
        let counts = try await store.requestCounts(job: job)
        #expect(counts[.pending] == 3)
        #expect(try await store.request(job: job, customID: "e") != nil)
    }

    @Test("strict mode stores nothing when a line is bad", .timeLimit(.minutes(1)))
    func strict() async throws {
        let store = try await makeStore()
        var options = JobIngest.Options()
        options.strict = true
        let ingest = JobIngest(store: store, parser: IngestLineParser(provider: .openai), options: options)
        let report = try await ingest.ingest(data: Array(mixed.utf8), into: job)
        #expect(report.rejected)
        #expect(report.inserted == 0)
        #expect(report.errorCount == 5)
        #expect(try await store.requestCounts(job: job).total == 0)
        let clean = try await ingest.ingest(data: Array([line("x"), line("y")].joined(separator: "\n").utf8), into: job)
        #expect(!clean.rejected)
        #expect(clean.inserted == 2)
    }

    @Test("re-ingesting a file is idempotent; chunks and reads smaller than the file", .timeLimit(.minutes(1)))
    func reingestFile() async throws {
        let store = try await makeStore()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hb-ingest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("in.jsonl").path
        let text = (0..<2_500).map { line("req-\($0)", model: $0 % 3 == 0 ? "gpt-4o" : "gpt-4o-mini") }.joined(separator: "\n") + "\n"
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        var options = JobIngest.Options()
        options.chunkSize = 300
        options.readSize = 4_096  // many lines straddle read boundaries
        let ingest = JobIngest(store: store, parser: IngestLineParser(provider: .openai), options: options)
        let first = try await ingest.ingest(fileAt: path, into: job)
        #expect(first.lines == 2_500 && first.accepted == 2_500 && first.inserted == 2_500 && first.errorCount == 0)
        let second = try await ingest.ingest(fileAt: path, into: job)
        #expect(second.inserted == 0)
        #expect(second.alreadyStored == 2_500)
        #expect(try await store.requestCounts(job: job).total == 2_500)
        let keys = try await store.pendingKeys()
        #expect(Set(keys.map(\.key.model)) == ["gpt-4o", "gpt-4o-mini"])
        let r = try await store.request(job: job, customID: "req-2498")
        #expect(r.map { String(decoding: $0.body, as: UTF8.self) } == #"{"model":"gpt-4o-mini","messages":[]}"#)
    }

    @Test("a missing file throws", .timeLimit(.minutes(1)))
    func missingFile() async throws {
        let store = try await makeStore()
        let ingest = JobIngest(store: store, parser: IngestLineParser(provider: .openai))
        await #expect(throws: (any Error).self) { try await ingest.ingest(fileAt: "/nonexistent/x.jsonl", into: job) }
    }
}
