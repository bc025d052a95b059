import Foundation
import Logging
import PostgresNIO
import Testing

/// A `hyperbatch worker` whose lease renewals keep failing stops and exits (non-zero) instead of working on with
/// leases other workers may already consider expired. The renewals are made to fail by renaming the heartbeat table
/// (every renewal errors at once), or to hang by holding a lock on it (renewals block).
@Suite(.enabled(if: PostgresTestEnvironment.url != nil, "HYPERBATCH_POSTGRES_URL not set: PostgreSQL tests skipped"))
struct WorkerLeaseLossTests {
    static let logger = Logger(label: "test.leaseloss")
    /// Waits (at most 30 s) for the worker to exit; returns how long it took.
    static func waitForExit(_ worker: Process) async throws -> Duration {
        let broken = ContinuousClock.now
        while worker.isRunning && ContinuousClock.now < broken.advanced(by: .seconds(30)) {
            try await Task.sleep(for: .milliseconds(50))
        }
        return ContinuousClock.now - broken
    }

    enum Breakage: String, CaseIterable, Sendable { case renameTable, holdLock }

    @Test("a worker that cannot renew its lease exits", .timeLimit(.minutes(2)), arguments: Breakage.allCases)
    func workerExitsWhenRenewalKeepsFailing(_ breakage: Breakage) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MultiWorkerTests.binary), "build the CLI first")
        let database = "hb_ll_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await PostgresTestEnvironment.withClient { admin in
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(database)"), logger: Self.logger)
        }
        let store = try MultiWorkerTests().url(database: database)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("hb-ll-\(UUID().uuidString).log").path
        let worker = try MultiWorkerTests().spawn(
            ["worker", "--provider", "emulator", "--store", store, "--lease-seconds", "2", "--worker-id", "doomed"], log: log)
        defer { if worker.isRunning { kill(worker.processIdentifier, SIGKILL) } }

        var configuration = try PostgresTestEnvironment.configuration()
        configuration.database = database
        let client = PostgresClient(configuration: configuration)
        let elapsed = try await withThrowingTaskGroup(of: Void.self) { group -> Duration in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            // Wait for the worker's first heartbeat.
            var registered = false
            let start = ContinuousClock.now
            while !registered && ContinuousClock.now < start.advanced(by: .seconds(30)) {
                registered = (try? await MultiWorkerTests().scalar(client, "SELECT count(*)::int8 FROM hb_worker WHERE id = 'doomed'")) == 1
                if !registered { try await Task.sleep(for: .milliseconds(50)) }
            }
            try #require(registered, "the worker never recorded a heartbeat")
            #expect(worker.isRunning)
            switch breakage {
            case .renameTable:
                try await client.query("ALTER TABLE hb_worker RENAME TO hb_worker_gone", logger: Self.logger)
                return try await Self.waitForExit(worker)
            case .holdLock:
                return try await client.withConnection { connection in
                    try await connection.query("BEGIN", logger: Self.logger)
                    try await connection.query("LOCK TABLE hb_worker IN ACCESS EXCLUSIVE MODE", logger: Self.logger)
                    let elapsed = try await Self.waitForExit(worker)
                    try await connection.query("ROLLBACK", logger: Self.logger)
                    return elapsed
                }
            }
        }
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        try #require(!worker.isRunning, "the worker kept running 30 s after its renewals started failing")
        #expect(worker.terminationStatus != 0)
        // Lease 2 s: it must give up within the lease (plus process shutdown), well before 10 s.
        #expect(elapsed < .seconds(10), "exited \(elapsed) after the breakage")
        #expect(text.contains("leaseLost") || text.contains("lease lost"), "log: \(text.suffix(800))")
        try? await PostgresTestEnvironment.withClient { admin in
            try await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(database) WITH (FORCE)"), logger: Self.logger)
        }
    }
}
