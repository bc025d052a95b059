import Testing

@testable import HyperbatchJobs

@Suite struct CustomIDTableTests {
    @Test func reportsTheFirstLineOfEveryDuplicateAcrossGrowth() {
        var table = CustomIDTable(capacity: 16)
        for i in 0..<50_000 {
            #expect(table.firstLine(of: "request-\(i)", recordingAt: i + 1) == nil)
        }
        #expect(table.count == 50_000)
        for i in stride(from: 0, to: 50_000, by: 997) {
            #expect(table.firstLine(of: "request-\(i)", recordingAt: 60_000 + i) == i + 1)
        }
        #expect(table.firstLine(of: "request-50000", recordingAt: 70_000) == nil)
        #expect(table.firstLine(of: "", recordingAt: 70_001) == nil)
        #expect(table.firstLine(of: "", recordingAt: 70_002) == 70_001)
        #expect(table.count == 50_002)
    }
}
