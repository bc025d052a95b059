import Synchronization

@testable import Hyperbatch

/// A handler error the default classifier calls poison.
struct PoisonError: Error, Hashable { var item: Int }
/// A handler error the default classifier calls transient.
struct FlakyError: RetryableError, Hashable {}
/// A handler error classified fatal by the tests' classifier.
struct BrokenError: Error, Hashable {}

/// Counts handler calls and records the inputs of each.
final class CallLog: Sendable {
    private let calls = Mutex<[[Int]]>([])
    func record(_ inputs: [Int]) { calls.withLock { $0.append(inputs) } }
    var all: [[Int]] { calls.withLock { $0 } }
    var count: Int { calls.withLock { $0.count } }
}

/// A handler that throws ``PoisonError`` when any input is in `poison`, else succeeds with `x * 10`.
func poisonHandler(_ poison: Set<Int>, log: CallLog) -> @Sendable (String, [Int]) async throws -> [Result<Int, any Error>] {
    { _, inputs in
        log.record(inputs)
        if let bad = inputs.first(where: { poison.contains($0) }) { throw PoisonError(item: bad) }
        return inputs.map { .success($0 * 10) }
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
    var failure: Failure? { if case .failure(let e) = self { e } else { nil } }
}
