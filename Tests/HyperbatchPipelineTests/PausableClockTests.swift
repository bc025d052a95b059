import HyperbatchTestKit
import Testing

/// The clock the end-to-end cancel tests give the emulator: frozen while paused, moved only by `advance(by:)`.
@Suite struct PausableClockTests {
    @Test func aPausedClockStandsStillAndMovesOnlyWhenAdvanced() async throws {
        let clock = PausableClock(paused: true)
        #expect(clock.isPaused)
        let t0 = clock.now
        try await Task.sleep(for: .milliseconds(20))
        #expect(clock.now == t0, "no time passes while paused")
        clock.advance(by: .milliseconds(1_500))
        #expect(clock.now == t0.advanced(by: .milliseconds(1_500)))
        clock.pause()  // already paused: no effect
        #expect(clock.now == t0.advanced(by: .milliseconds(1_500)))
    }

    @Test func resumingRunsOnFromWhereItStood() async throws {
        let clock = PausableClock(paused: true)
        let stood = clock.now
        try await Task.sleep(for: .milliseconds(20))
        let before = ContinuousClock.now
        clock.resume()
        let after = clock.now
        let elapsed = before.duration(to: ContinuousClock.now)
        #expect(!clock.isPaused)
        #expect(after >= stood)
        #expect(stood.duration(to: after) <= elapsed, "only the time since the resume counts, not the paused 20 ms")
        try await Task.sleep(for: .milliseconds(5))
        #expect(clock.now > after, "running again")
    }

    @Test func aSleepEndsOnlyOnceTheClocksOwnTimeReachesItsDeadline() async throws {
        let clock = PausableClock(paused: true)
        let deadline = clock.now.advanced(by: .seconds(3_600))
        let sleeper = Task { try await clock.sleep(until: deadline, tolerance: nil) }
        try await Task.sleep(for: .milliseconds(30))
        clock.advance(by: .seconds(3_600))  // an hour of the clock's time, at once
        try await sleeper.value
        #expect(clock.now >= deadline)
    }
}
