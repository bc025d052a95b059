/// The instant type the ``ClockedBatcher`` runs its state machine on: the time since the batcher's creation, read on
/// its clock.
///
/// `ContinuousClock.Instant` is a resilient standard-library type: every copy, comparison and `Optional` of it goes
/// through runtime value witnesses, which cost 10–15% of a submit. This one is a plain `Duration`, so the machine's
/// items, queues and timers are copied and compared inline. The driver converts at its edges (deadlines in, timer
/// instants out).
@frozen @usableFromInline struct BatcherInstant: InstantProtocol, Hashable, Sendable {
    /// Time since the batcher's epoch (its clock's `now` when it was created; negative for earlier instants).
    @usableFromInline var offset: Duration

    @inlinable init(offset: Duration) { self.offset = offset }

    @inlinable func advanced(by duration: Duration) -> BatcherInstant { BatcherInstant(offset: offset + duration) }
    @inlinable func duration(to other: BatcherInstant) -> Duration { other.offset - offset }
    @inlinable static func < (lhs: BatcherInstant, rhs: BatcherInstant) -> Bool { lhs.offset < rhs.offset }
    @inlinable static func == (lhs: BatcherInstant, rhs: BatcherInstant) -> Bool { lhs.offset == rhs.offset }
}
