/// Receives items that finally failed (after retry and bisection), for example to store them for later inspection.
///
/// Called once per batch with every dead letter of that batch, after the callers got their errors. A sink must not
/// throw: log and count its own failures.
public protocol DeadLetterSink: Sendable {
    /// Takes the dead letters of one batch.
    func record(_ deadLetters: [DeadLetter]) async
}
