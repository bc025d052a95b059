import Foundation
import HyperbatchEmulator
import HyperbatchJobs
import HyperbatchProviders
import HyperbatchSQLite
import HyperbatchTestKit
import Synchronization
import Testing

/// The runner's loop retries errors its policy calls transient, backing off on the injected clock, and still stops at
/// once on a permanent one.
@Suite struct RunnerStoreRetryTests {
    typealias H = PipelineHarness
    struct Hiccup: Error {}
    struct Broken: Error {}

    static func configuration(onPhase: @escaping @Sendable (PipelinePhase, Int64) async throws -> Void) -> PipelineConfiguration {
        var configuration = H.pipelineConfiguration(onPhase: onPhase)
        configuration.storeRetry = StoreRetryPolicy(initialDelay: .seconds(7), maximumDelay: .seconds(60)) { error in
            error is Hiccup ? .transient : .permanent
        }
        return configuration
    }

    @Test(.timeLimit(.minutes(1))) func transientErrorsAreRetriedWithBackoffOnTheClock() async throws {
        try await Emulator.withEmulator(configuration: H.emulatorConfiguration()) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("retry-transient")
            try await H.makeJob(store: store, job: job, count: 40, models: ["gpt-4o-mini"])
            let hiccups = SharedCounter()
            let clock = ManualClock()
            let runner = JobRunner(
                store: store, provider: H.provider(endpoint), configuration: Self.configuration { phase, _ in
                    if phase == .polled, hiccups.increment() == 1 { throw Hiccup() }
                }, clock: clock, logger: H.logger)
            let done = Mutex(false)
            let start = clock.now
            let task = Task {
                let counts = try await runner.runUntilDone(job: job)
                done.withLock { $0 = true }
                try? await clock.sleep(for: .seconds(1))  // wakes the driver below one last time
                return counts
            }
            // The first pass claims and sends (progress: no idle sleep), the next polls and hits the hiccup: the first
            // sleep is the backoff (7 s). Its growth is covered by StoreRetryTests.
            let first = await clock.nextSleep()
            #expect(first == start.advanced(by: .seconds(7)))
            clock.advance(to: first)
            while !done.withLock({ $0 }) { clock.advance(to: await clock.nextSleep()) }
            clock.advance(by: .seconds(1))
            let counts = try await task.value
            #expect(counts[.succeeded] == 40)
            #expect(hiccups.increment() >= 2)  // the hiccup was thrown (and the runner went on)
            #expect(endpoint.stats().duplicateSubmissions == 0)
        }
    }

    @Test(.timeLimit(.minutes(1))) func aPermanentErrorStillEndsTheRunner() async throws {
        try await Emulator.withEmulator(configuration: H.emulatorConfiguration()) { endpoint in
            let store = try SQLiteJobStore(path: H.tempStorePath())
            let job = JobID("retry-permanent")
            try await H.makeJob(store: store, job: job, count: 10, models: ["gpt-4o-mini"])
            let runner = JobRunner(
                store: store, provider: H.provider(endpoint), configuration: Self.configuration { phase, _ in
                    if phase == .polled { throw Broken() }
                }, clock: ManualClock(), logger: H.logger)
            await #expect(throws: Broken.self) { try await runner.runUntilDone(job: job) }
        }
    }
}
