import ArgumentParser
import AsyncHTTPClient
import Foundation
import GRDB
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import Logging

/// `hyperbatch bench jobs`: N requests through the durable pipeline with SQLite (ingest → pack/claim → upload →
/// emulated provider → download + reconcile), requests/s per phase and peak RSS, against same-run baselines
/// (a raw line read of the input file, a plain SQLite bulk insert of the same rows, a download without applying).
struct BenchJobsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jobs",
        abstract: "Requests/s per phase of the batch-job pipeline (SQLite + emulator) and peak RSS, with same-run baselines.",
        discussion: "Build in release: swift build -c release --product hyperbatch; .build/release/hyperbatch bench jobs [--json]")

    @Option(help: "Requests in the job.") var requests: Int = 1_000_000
    @Option(help: "Directory for the input file and the stores (default: a new temporary directory, removed after).")
    var directory: String?
    @Option(help: "Most requests per provider batch (OpenAI's limit is 50,000).") var batchRequests: Int = 50_000
    @Option(help: "Emulator processing rate, requests per second.") var rate: Double = 10_000_000
    @Option(help: "Use an emulator already running at this OpenAI base URL (e.g. `hyperbatch emulator --rate 10000000`), so peak RSS is the pipeline's alone.")
    var baseURL: String?
    @Flag(help: "Print one JSON object.") var json = false

    /// One measured phase.
    struct Phase: Encodable {
        var name: String
        var items: Int
        var seconds: Double
        var itemsPerSecond: Double
        /// Peak RSS of the process at the end of the phase, MB.
        var peakRSSMB: Double
        /// CPU time (user + system, every thread of the process) per item, microseconds: steadier than the wall
        /// clock when the machine is shared.
        var cpuMicrosPerItem: Double = 0
        /// Throughput relative to the phase's baseline, when it has one.
        var ratio: Double?
        var baseline: String?

        enum CodingKeys: String, CodingKey {
            case name, items, seconds, itemsPerSecond = "items_per_second", peakRSSMB = "peak_rss_mb", ratio, baseline
            case cpuMicrosPerItem = "cpu_us_per_item"
        }
    }

    func run() async throws {
        let dir = directory ?? (NSTemporaryDirectory() + "hyperbatch-bench-jobs-\(getpid())")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { if directory == nil { try? FileManager.default.removeItem(atPath: dir) } }
        let input = dir + "/requests.jsonl"
        let storePath = dir + "/bench.sqlite"
        let plainPath = dir + "/plain.sqlite"
        for p in [storePath, plainPath] { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: p + s) } }

        var phases: [Phase] = []
        var cpuStart = Self.cpuSeconds()
        func add(_ name: String, _ items: Int, _ seconds: Double, baseline: String? = nil) {
            let base = baseline.flatMap { b in phases.first { $0.name == b } }
            let perSecond = Double(items) / seconds
            var p = Phase(name: name, items: items, seconds: (seconds * 1000).rounded() / 1000, itemsPerSecond: perSecond.rounded(), peakRSSMB: Self.peakRSSMB())
            p.cpuMicrosPerItem = ((Self.cpuSeconds() - cpuStart) / Double(max(1, items)) * 1e7).rounded() / 10
            if let base {
                p.ratio = (perSecond / base.itemsPerSecond * 100).rounded() / 100
                p.baseline = base.name
            }
            phases.append(p)
            if !json { FileHandle.standardOutput.write(Data((Self.line(p) + "\n").utf8)) }
        }

        let bytes = try Self.writeInput(to: input, count: requests)
        if !json { FileHandle.standardOutput.write(Data(String(format: "input: %d requests, %.1f MB at %@\n", requests, Double(bytes) / 1e6, input).utf8)) }

        // Baselines.
        var t = ContinuousClock.now
        cpuStart = Self.cpuSeconds()
        let read = try Self.rawLineRead(input)
        add("baseline: raw line read", read, (ContinuousClock.now - t).seconds)
        t = ContinuousClock.now
        cpuStart = Self.cpuSeconds()
        let plain = try Self.plainInsert(plainPath, count: requests)
        add("baseline: plain SQLite insert", plain, (ContinuousClock.now - t).seconds)
        for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: plainPath + s) }

        // Ingest.
        let store = try SQLiteJobStore(path: storePath)
        let jobID = JobID("bench")
        _ = try await store.createJob(NewJob(id: jobID, provider: .openai, maxAttempts: 3, label: "bench"), at: Date())
        t = ContinuousClock.now
        cpuStart = Self.cpuSeconds()
        let report = try await JobIngest(store: store, parser: IngestLineParser(provider: .openai)).ingest(fileAt: input, into: jobID)
        add("ingest", report.inserted, (ContinuousClock.now - t).seconds, baseline: "baseline: plain SQLite insert")
        guard report.inserted == requests, report.errorCount == 0 else {
            throw ValidationFailure("ingest stored \(report.inserted) of \(requests) (\(report.errorCount) bad lines)")
        }

        var logger = Logger(label: "hyperbatch.bench.jobs")
        logger.logLevel = .error
        let rate = self.rate, batchRequests = self.batchRequests
        try await Self.withProvider(baseURL: baseURL, rate: rate, batchRequests: batchRequests, logger: logger) { provider in
            let dispatcher = Dispatcher(store: store, provider: provider, logger: logger)
            let poller = Poller(store: store, provider: provider, logger: logger)
            let reconciler = Reconciler(store: store, provider: provider, logger: logger)

            // Pack + claim (what the Dispatcher does before any remote call).
            t = ContinuousClock.now
            cpuStart = Self.cpuSeconds()
            var batches: [ProviderBatchRecord] = []
            var claimedRequests = 0
            while true {
                var progressed = false
                for (job, key) in try await store.pendingKeys() where job == jobID {
                    let candidates = try await store.pendingCandidates(job: job, key: key, limit: dispatcher.configuration.candidatesPerPass)
                    for plan in BatchPacker.pack(candidates, limits: provider.limits).plans {
                        guard let b = try await store.claimBatch(
                            BatchClaim(jobID: job, key: key, requestIDs: plan.requestIDs), at: Date()) else { continue }
                        batches.append(b)
                        claimedRequests += b.requestCount
                        progressed = true
                    }
                }
                if !progressed { break }
            }
            add("pack + claim", claimedRequests, (ContinuousClock.now - t).seconds)

            // Upload + create (store read of the lines, HTTP upload, create, record submitted).
            t = ContinuousClock.now
            cpuStart = Self.cpuSeconds()
            var submitted: [ProviderBatchRecord] = []
            for b in batches {
                guard try await dispatcher.submit(b) != nil, let now = try await store.batch(b.id) else {
                    throw ValidationFailure("batch \(b.id) was not submitted")
                }
                submitted.append(now)
            }
            add("upload + create", claimedRequests, (ContinuousClock.now - t).seconds)

            // Provider: poll until every batch has ended.
            t = ContinuousClock.now
            cpuStart = Self.cpuSeconds()
            var ended: [Int64: ProviderBatchStatus] = [:]
            while ended.count < submitted.count {
                for b in submitted where ended[b.id] == nil {
                    if case let .ended(status) = try await poller.poll(b) { ended[b.id] = status }
                }
                if ended.count < submitted.count { try await Task.sleep(for: .milliseconds(20)) }
            }
            add("provider (emulated)", claimedRequests, (ContinuousClock.now - t).seconds)

            // Baseline: download and parse the results without applying them.
            t = ContinuousClock.now
            cpuStart = Self.cpuSeconds()
            var downloaded = 0
            for b in submitted {
                try await provider.streamResults(of: ended[b.id]!) { downloaded += $0.count }
            }
            add("baseline: download only", downloaded, (ContinuousClock.now - t).seconds)

            // Download + reconcile.
            t = ContinuousClock.now
            cpuStart = Self.cpuSeconds()
            var applied = 0
            for b in submitted {
                let s = try await reconciler.reconcile(b, status: ended[b.id]!)
                applied += s.finished + s.retried
            }
            add("download + reconcile", applied, (ContinuousClock.now - t).seconds, baseline: "baseline: download only")
        }

        let counts = try await store.requestCounts(job: jobID)
        guard counts[.succeeded] == requests else {
            throw ValidationFailure("expected \(requests) succeeded, got \(JobCLI.describe(counts))")
        }
        let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
        let peak = Self.peakRSSMB()
        if json {
            struct Report: Encodable {
                var requests: Int
                var input_mb: Double
                var phases: [Phase]
                var peak_rss_mb: Double
                var load_average: String
                var emulator: String
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let r = Report(
                requests: requests, input_mb: (Double(bytes) / 1e5).rounded() / 10, phases: phases, peak_rss_mb: peak,
                load_average: load, emulator: baseURL == nil ? "in-process" : "external")
            print(String(decoding: try encoder.encode(r), as: UTF8.self))
        } else {
            print(String(format: "all %d requests succeeded; peak RSS %.0f MB (%@ emulator); load average %@", requests, peak,
                         baseURL == nil ? "includes the in-process" : "excludes the external", load))
        }
    }

    static func line(_ p: Phase) -> String {
        var s = p.name.padding(toLength: 30, withPad: " ", startingAt: 0)
        s += String(format: " %9d items %8.2f s %10.0f /s %6.1f cpu µs/item  peak RSS %5.0f MB", p.items, p.seconds, p.itemsPerSecond, p.cpuMicrosPerItem, p.peakRSSMB)
        if let r = p.ratio, let b = p.baseline { s += String(format: "  (%.2fx %@)", r, b) }
        return s
    }

    /// CPU time this process has used so far (user + system, all threads), seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// Peak resident set size of this process so far, in MB (`getrusage` `ru_maxrss`, KB on Linux).
    static func peakRSSMB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return (Double(usage.ru_maxrss) / 1024 * 10).rounded() / 10
    }

    /// The body of request `i` (also what the plain-insert baseline stores).
    static func body(_ i: Int) -> String {
        #"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Summarize record \#(i) in one sentence."}],"max_tokens":64}"#
    }

    static func customID(_ i: Int) -> String { "req-\(i)" }

    /// Writes `count` OpenAI batch-input lines; returns the bytes written.
    static func writeInput(to path: String, count: Int) throws -> Int {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let handle = FileHandle(forWritingAtPath: path) else { throw ValidationFailure("cannot write \(path)") }
        defer { try? handle.close() }
        var out: [UInt8] = []
        out.reserveCapacity(1 << 20)
        var total = 0
        for i in 0..<count {
            out += #"{"custom_id":"\#(customID(i))","method":"POST","url":"/v1/chat/completions","body":\#(body(i))}"#.utf8
            out.append(0x0A)
            if out.count >= 1 << 20 {
                try handle.write(contentsOf: out)
                total += out.count
                out.removeAll(keepingCapacity: true)
            }
        }
        try handle.write(contentsOf: out)
        return total + out.count
    }

    /// Reads the file the way ingest does (1 MB chunks) and counts lines.
    static func rawLineRead(_ path: String) throws -> Int {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ValidationFailure("cannot read \(path)") }
        defer { try? handle.close() }
        var lines = 0
        while let data = try handle.read(upToCount: 1 << 20), !data.isEmpty {
            let bytes = [UInt8](data)
            bytes.withUnsafeBufferPointer { b in for c in b where c == 0x0A { lines += 1 } }
        }
        return lines
    }

    /// Inserts the same rows (custom id, model, body) into a one-table SQLite file with the store's PRAGMAs:
    /// one cached statement, 5,000 rows per transaction. The floor for the store's insert.
    static func plainInsert(_ path: String, count: Int) throws -> Int {
        var config = Configuration()
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL; PRAGMA journal_mode = WAL") }
        let queue = try DatabaseQueue(path: path, configuration: config)
        try queue.write { db in
            try db.execute(sql: "CREATE TABLE plain (id INTEGER PRIMARY KEY, custom_id TEXT NOT NULL UNIQUE, model TEXT NOT NULL, body BLOB NOT NULL)")
        }
        var i = 0
        while i < count {
            let end = min(count, i + 5_000)
            try queue.write { db in
                let statement = try db.cachedStatement(sql: "INSERT INTO plain (custom_id, model, body) VALUES (?, ?, ?)")
                for j in i..<end {
                    try statement.execute(arguments: [customID(j), "gpt-4o-mini", Data(body(j).utf8)])
                }
            }
            i = end
        }
        try queue.close()
        return count
    }

    /// An OpenAI client against an in-process emulator (or the one at `baseURL`).
    static func withProvider<T>(
        baseURL: String?, rate: Double, batchRequests: Int, logger: Logger, _ body: (OpenAIBatchProvider<ContinuousClock>) async throws -> T
    ) async throws -> T {
        func client(_ url: String) -> OpenAIBatchProvider<ContinuousClock> {
            var configuration = ProviderClientConfiguration.openAI(apiKey: APIKey("sk-emulator"), baseURL: url)
            configuration.limits.maxRequests = batchRequests
            return OpenAIBatchProvider(configuration: configuration, httpClient: .shared, logger: logger)
        }
        if let baseURL { return try await body(client(baseURL)) }
        var emulator = EmulatorConfiguration()
        emulator.requestsPerSecond = rate
        emulator.validationSeconds = 0.01
        emulator.finalizingSeconds = 0.01
        return try await Emulator.withEmulator(configuration: emulator, logger: logger) { endpoint in
            try await body(client(endpoint.openAIBaseURL))
        }
    }
}
