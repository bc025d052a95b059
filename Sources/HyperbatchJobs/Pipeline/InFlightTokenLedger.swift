import Synchronization

/// The estimated tokens of each live provider batch, remembered by one dispatcher so a batch's lines are read at
/// most once per process (batch contents never change after the claim).
final class InFlightTokenLedger: Sendable {
    private let tokensByBatch = Mutex<[Int64: Int]>([:])

    /// The remembered estimate of `batch`, if any.
    func tokens(batch: Int64) -> Int? { tokensByBatch.withLock { $0[batch] } }

    /// Remembers the estimate of `batch`.
    func record(batch: Int64, tokens: Int) { tokensByBatch.withLock { $0[batch] = tokens } }

    /// Forgets every batch not in `live`.
    func retain(_ live: Set<Int64>) { tokensByBatch.withLock { $0 = $0.filter { live.contains($0.key) } } }
}
