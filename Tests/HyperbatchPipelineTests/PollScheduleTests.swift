import HyperbatchJobs
import Testing

@Suite struct PollScheduleTests {
    @Test func fastFirstThenSlowerUpToTheMaximum() {
        let s = PollSchedule(initial: .seconds(2), growth: 2, maximum: .seconds(60), errorDelay: .seconds(5))
        #expect(s.delay(poll: 0) == .seconds(2))
        #expect(s.delay(poll: 1) == .seconds(4))
        #expect(s.delay(poll: 3) == .seconds(16))
        #expect(s.delay(poll: 10) == .seconds(60))
        #expect(s.errorDelay(failures: 1) == .seconds(5))
        #expect(s.errorDelay(failures: 2) == .seconds(10))
        #expect(s.errorDelay(failures: 20) == .seconds(60))
    }
}
