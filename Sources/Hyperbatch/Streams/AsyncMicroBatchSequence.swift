import Synchronization

extension AsyncSequence where Self: Sendable, Element: Sendable {
    /// Groups the elements of this sequence into arrays, flushed when a batch holds `maxCount` elements, when the next
    /// element would push it past `maxWeight`, when `maxWait` has passed since its first element, or when the base
    /// ends (the last partial batch is emitted). A base error is thrown after the pending batch.
    ///
    /// ```swift
    /// for try await intents in bus.microBatches(maxCount: 256, maxWait: .milliseconds(5), clock: .continuous) {
    ///     try await writer.apply(intents)
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - maxCount: the most elements in one batch (≥ 1).
    ///   - maxWeight: the most total weight in one batch; an element heavier than this travels alone.
    ///   - maxWait: how long the first element of a batch waits for company.
    ///   - clock: the clock the wait runs on (`ContinuousClock` in production, a manual clock in tests).
    ///   - weigh: the weight of an element (for example its tokens); 1 when nil.
    /// - Note: the base is read ahead by at most one closed batch, so a slow consumer slows the base down.
    public func microBatches<C: Clock>(
        maxCount: Int, maxWeight: Int = .max, maxWait: C.Duration, clock: C,
        weigh: (@Sendable (Element) -> Int)? = nil
    ) -> AsyncMicroBatchSequence<Self, C> {
        AsyncMicroBatchSequence(
            base: self, maxCount: maxCount, maxWeight: maxWeight, maxWait: maxWait, clock: clock, weigh: weigh)
    }

    /// ``microBatches(maxCount:maxWeight:maxWait:clock:weigh:)`` on the continuous clock.
    public func microBatches(
        maxCount: Int, maxWeight: Int = .max, maxWait: Duration, weigh: (@Sendable (Element) -> Int)? = nil
    ) -> AsyncMicroBatchSequence<Self, ContinuousClock> {
        microBatches(maxCount: maxCount, maxWeight: maxWeight, maxWait: maxWait, clock: ContinuousClock(), weigh: weigh)
    }
}

/// An asynchronous sequence of arrays made from the elements of `Base`, flushed on count, weight, max wait or the
/// end of the base. Made by ``_Concurrency/AsyncSequence/microBatches(maxCount:maxWeight:maxWait:clock:weigh:)``.
public struct AsyncMicroBatchSequence<Base: AsyncSequence & Sendable, C: Clock>: AsyncSequence, Sendable
where Base.Element: Sendable {
    /// A batch of base elements, in arrival order.
    public typealias Element = [Base.Element]

    let base: Base
    let maxCount: Int
    let maxWeight: Int
    let maxWait: C.Duration
    let clock: C
    let weigh: (@Sendable (Base.Element) -> Int)?

    /// Starts reading the base (in a task) on the first call to `next()`.
    public func makeAsyncIterator() -> Iterator {
        Iterator(lifetime: MicroBatchIteratorLifetime(storage: MicroBatchStorage(
            base: base, maxCount: maxCount, maxWeight: maxWeight, maxWait: maxWait, clock: clock, weigh: weigh)))
    }

    /// Yields the batches; `nil` after the base ended (or the consumer's task was cancelled).
    public struct Iterator: AsyncIteratorProtocol {
        let lifetime: MicroBatchIteratorLifetime<Base, C>

        /// The next batch, `nil` at the end; throws the base's error after the batch that was open when it failed.
        public mutating func next() async throws -> [Base.Element]? {
            try await lifetime.storage.next()
        }
    }
}

/// Ends the sequence (stops reading the base, cancels the timer) when the last iterator copy goes away, for example
/// when the consumer breaks out of its loop. The tasks hold the storage, never this object.
final class MicroBatchIteratorLifetime<Base: AsyncSequence & Sendable, C: Clock>: Sendable
where Base.Element: Sendable {
    let storage: MicroBatchStorage<Base, C>
    init(storage: MicroBatchStorage<Base, C>) { self.storage = storage }
    deinit { storage.terminate() }
}

/// Drives a ``MicroBatchStateMachine``: one task reads the base, one short task per batch sleeps until its max wait.
final class MicroBatchStorage<Base: AsyncSequence & Sendable, C: Clock>: Sendable where Base.Element: Sendable {
    typealias Machine = MicroBatchStateMachine<Base.Element, C.Instant>

    struct State: ~Copyable {
        var machine: Machine
        var consumer: UnsafeContinuation<Machine.ConsumerResume, Never>?
        var producer: UnsafeContinuation<Void, Never>?
        var producerTask: Task<Void, Never>?
        var timerTask: Task<Void, Never>?
    }

    let base: Base
    let maxWait: C.Duration
    let clock: C
    let weigh: (@Sendable (Base.Element) -> Int)?
    let state: Mutex<State>

    init(
        base: Base, maxCount: Int, maxWeight: Int, maxWait: C.Duration, clock: C,
        weigh: (@Sendable (Base.Element) -> Int)?
    ) {
        self.base = base
        self.maxWait = maxWait
        self.clock = clock
        self.weigh = weigh
        self.state = Mutex(State(machine: Machine(maxCount: maxCount, maxWeight: maxWeight)))
    }

    /// Ends the sequence: the consumer's task was cancelled or its iterator went away.
    func terminate() {
        let (effects, producerTask) = state.withLock { state in
            let actions = state.machine.cancel()
            return (collect(actions, &state), state.producerTask.take())
        }
        producerTask?.cancel()
        perform(effects)
    }

    func next() async throws -> [Base.Element]? {
        startProducerIfNeeded()
        let resume: Machine.ConsumerResume = await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                let (action, producer) = state.withLock {
                    state -> (Machine.NextAction, UnsafeContinuation<Void, Never>?) in
                    let action = state.machine.next()
                    switch action {
                    case .suspend:
                        state.consumer = continuation
                        return (action, nil)
                    case .resume(_, let resumeProducer):
                        let producer = resumeProducer ? state.producer.take() : nil
                        return (action, producer)
                    }
                }
                producer?.resume()
                if case .resume(let value, _) = action { continuation.resume(returning: value) }
            }
        } onCancel: {
            terminate()
        }
        switch resume {
        case .batch(let batch): return batch
        case .failure(let error): throw error
        case .end: return nil
        }
    }

    private func startProducerIfNeeded() {
        state.withLock { state in
            guard state.producerTask == nil, !state.machine.isTerminated else { return }
            state.producerTask = Task { [self] in await produce() }
        }
    }

    private func produce() async {
        var error: (any Error)?
        do {
            for try await element in base {
                let weight = weigh?(element) ?? 1
                let deadline = clock.now.advanced(by: maxWait)
                let (effects, stop) = state.withLock { state -> (Effects, Bool) in
                    let actions = state.machine.element(element, weight: weight, deadline: deadline)
                    return (collect(actions, &state), state.machine.isTerminated)
                }
                perform(effects)
                if stop || Task.isCancelled { return }
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                    let suspend = state.withLock { state in
                        guard state.machine.producerWillSuspend() else { return false }
                        state.producer = continuation
                        return true
                    }
                    if !suspend { continuation.resume() }
                }
                if state.withLock({ $0.machine.isTerminated }) { return }
            }
        } catch let thrown {
            error = thrown
        }
        perform(state.withLock { state in
            collect(state.machine.baseFinished(error: error), &state)
        })
    }

    private func timerFired(generation: UInt64) {
        perform(state.withLock { state in
            collect(state.machine.timerFired(generation: generation), &state)
        })
    }

    /// Continuations and tasks to touch outside the lock.
    struct Effects {
        var consumer: (UnsafeContinuation<Machine.ConsumerResume, Never>, Machine.ConsumerResume)?
        var producer: UnsafeContinuation<Void, Never>?
        var cancelTimer: Task<Void, Never>?
    }

    private func collect(_ actions: Machine.Actions, _ state: inout State) -> Effects {
        var effects = Effects()
        if let value = actions.resumeConsumer, let consumer = state.consumer.take() {
            effects.consumer = (consumer, value)
        }
        if actions.resumeProducer { effects.producer = state.producer.take() }
        if actions.cancelTimer { effects.cancelTimer = state.timerTask.take() }
        if let (deadline, generation) = actions.startTimer {
            state.timerTask = startTimer(deadline: deadline, generation: generation)
        }
        return effects
    }

    private func perform(_ effects: Effects) {
        effects.cancelTimer?.cancel()
        effects.producer?.resume()
        if let (consumer, value) = effects.consumer { consumer.resume(returning: value) }
    }

    /// Starts the max-wait timer of a batch.
    private func startTimer(deadline: C.Instant, generation: UInt64) -> Task<Void, Never> {
        Task { [self] in
            do { try await clock.sleep(until: deadline, tolerance: .zero) } catch { return }
            timerFired(generation: generation)
        }
    }
}
