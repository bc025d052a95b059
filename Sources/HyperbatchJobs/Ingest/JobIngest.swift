import Foundation

/// What an ingest did.
public struct IngestReport: Sendable, Hashable {
    /// Non-blank lines read.
    public var lines: Int = 0
    /// Lines that parsed into requests.
    public var accepted: Int = 0
    /// Requests newly stored.
    public var inserted: Int = 0
    /// Accepted requests that were already stored (a re-ingest).
    public var alreadyStored: Int = 0
    /// Rejected lines, in line order (at most ``JobIngest/Options/maxReportedErrors``).
    public var errors: [IngestLineError] = []
    /// All rejected lines, including those past the reporting cap.
    public var errorCount: Int = 0
    /// Strict mode found bad lines: nothing was stored.
    public var rejected: Bool = false

    /// Creates an empty report.
    public init() {}
}

/// Streams a batch-input JSONL file into a job: chunks of parsed requests go to ``JobStore/insertRequests(_:into:at:)``,
/// the file is never held in memory, bad lines are reported with their line number and do not stop the valid ones.
public struct JobIngest: Sendable {
    /// How to ingest.
    public struct Options: Sendable {
        /// Reject the whole input (store nothing) when any line is bad.
        public var strict: Bool = false
        /// Requests per store transaction.
        public var chunkSize: Int = 5_000
        /// Bytes read from the file at a time.
        public var readSize: Int = 1 << 20
        /// Most line errors kept in the report (all are counted).
        public var maxReportedErrors: Int = 1_000

        /// Default options.
        public init() {}
    }

    public var store: any JobStore
    public var parser: IngestLineParser
    public var options: Options

    /// Creates an ingester storing through `store`, parsing with `parser`.
    public init(store: any JobStore, parser: IngestLineParser, options: Options = Options()) {
        self.store = store
        self.parser = parser
        self.options = options
    }

    /// Ingests the file at `path` into the existing job `job`. Re-ingesting the same file stores nothing new.
    public func ingest(fileAt path: String, into job: JobID, at now: Date = Date()) async throws -> IngestReport {
        try await run(into: job, at: now) {
            guard let handle = FileHandle(forReadingAtPath: path) else {
                throw CocoaError(.fileReadNoSuchFile, userInfo: [NSFilePathErrorKey: path])
            }
            return handle
        }
    }

    /// Ingests JSONL `data` (for small inputs and tests).
    public func ingest(data: [UInt8], into job: JobID, at now: Date = Date()) async throws -> IngestReport {
        try await run(into: job, at: now) { DataSource(data: data) }
    }

    private func run(into job: JobID, at now: Date, open: () throws -> any ChunkSource) async throws -> IngestReport {
        if options.strict {
            var check = try await pass(open(), job: job, now: now, store: false)
            if check.errorCount > 0 {
                check.rejected = true
                check.accepted = 0
                return check
            }
        }
        return try await pass(open(), job: job, now: now, store: true)
    }

    private func pass(_ source: any ChunkSource, job: JobID, now: Date, store write: Bool) async throws -> IngestReport {
        var report = IngestReport()
        var seen = CustomIDTable()
        var pending: [NewRequest] = []
        pending.reserveCapacity(options.chunkSize)
        var buffer: [UInt8] = []
        var lineNumber = 0
        let parser = self.parser

        func handle(_ line: UnsafeBufferPointer<UInt8>) {
            lineNumber += 1
            var end = line.count
            if end > 0, line[end - 1] == 0x0D { end -= 1 }
            let trimmed = UnsafeBufferPointer(rebasing: line[0..<end])
            if trimmed.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }
            report.lines += 1
            switch parser.parse(trimmed) {
            case let .success(request):
                if let first = seen.firstLine(of: request.customID, recordingAt: lineNumber) {
                    record(IngestLineError(line: lineNumber, problem: .duplicateCustomID(firstLine: first), customID: request.customID))
                } else {
                    report.accepted += 1
                    if write { pending.append(request) }
                }
            case let .failure(error):
                var e = error
                e.line = lineNumber
                record(e)
            }
        }
        func record(_ e: IngestLineError) {
            report.errorCount += 1
            if report.errors.count < options.maxReportedErrors { report.errors.append(e) }
        }
        func flush() async throws {
            guard !pending.isEmpty else { return }
            let summary = try await store.insertRequests(pending, into: job, at: now)
            report.inserted += summary.inserted
            report.alreadyStored += summary.duplicates
            pending.removeAll(keepingCapacity: true)
        }

        var source = source
        defer { source.finish() }
        while let chunk = try source.next(options.readSize) {
            buffer.append(contentsOf: chunk)
            var consumed = 0
            buffer.withUnsafeBufferPointer { all in
                var start = 0
                while let nl = all[start...].firstIndex(of: 0x0A) {
                    handle(UnsafeBufferPointer(rebasing: all[start..<nl]))
                    start = nl + 1
                }
                consumed = start
            }
            buffer.removeFirst(consumed)
            if pending.count >= options.chunkSize { try await flush() }
        }
        if !buffer.isEmpty { buffer.withUnsafeBufferPointer { handle($0) } }
        try await flush()
        return report
    }
}

/// Where ingest reads bytes from.
protocol ChunkSource {
    /// The next bytes, or nil at the end.
    mutating func next(_ count: Int) throws -> [UInt8]?
    /// Releases the source.
    func finish()
}

extension FileHandle: ChunkSource {
    func next(_ count: Int) throws -> [UInt8]? {
        guard let data = try read(upToCount: count), !data.isEmpty else { return nil }
        return [UInt8](data)
    }

    func finish() { try? close() }
}

struct DataSource: ChunkSource {
    var data: [UInt8]
    var offset = 0

    mutating func next(_ count: Int) throws -> [UInt8]? {
        guard offset < data.count else { return nil }
        let end = min(data.count, offset + count)
        defer { offset = end }
        return Array(data[offset..<end])
    }

    func finish() {}
}
