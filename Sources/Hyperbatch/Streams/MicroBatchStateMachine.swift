import DequeModule

/// The pure logic of ``AsyncMicroBatchSequence``: events in (an element, the timer, the end of the base, a consumer
/// asking for a batch), actions out. It holds no tasks and no clock; the driver performs what it returns.
///
/// A batch closes when it reaches `maxCount` elements, when the next element would push it past `maxWeight` (an
/// element heavier than `maxWeight` travels alone), when `maxWait` has passed since its first element, or when the
/// base ends. At most `bufferedBatches` closed batches wait for the consumer; beyond that the producer is told to
/// suspend, so a slow consumer slows the base instead of growing memory.
struct MicroBatchStateMachine<Element, Instant: Comparable> {
    /// What the driver must do after an event.
    struct Actions {
        /// Start a timer that fires `timerFired(generation:)` at `deadline`.
        var startTimer: (deadline: Instant, generation: UInt64)?
        /// Cancel the running timer (its batch closed early).
        var cancelTimer = false
        /// Hand this to the waiting consumer (`nil` = end of the sequence).
        var resumeConsumer: ConsumerResume?
        /// Wake the suspended producer.
        var resumeProducer = false
    }

    /// What a waiting consumer receives.
    enum ConsumerResume {
        case batch([Element])
        case failure(any Error)
        case end
    }

    /// The answer to a consumer's `next()`.
    enum NextAction {
        /// Return this immediately.
        case resume(ConsumerResume, resumeProducer: Bool)
        /// Suspend until an event resumes the consumer.
        case suspend
    }

    let maxCount: Int
    let maxWeight: Int
    let bufferedBatches: Int

    private(set) var current: [Element] = []
    private(set) var currentWeight = 0
    private(set) var ready: Deque<[Element]> = []
    private var generation: UInt64 = 0
    private var timerRunning = false
    private var consumerWaiting = false
    private(set) var producerSuspended = false
    private var baseEnded = false
    private var failure: (any Error)?
    private var terminated = false

    init(maxCount: Int, maxWeight: Int, bufferedBatches: Int = 1) {
        precondition(maxCount >= 1, "microBatches: maxCount must be >= 1, got \(maxCount)")
        precondition(maxWeight >= 1, "microBatches: maxWeight must be >= 1, got \(maxWeight)")
        precondition(bufferedBatches >= 1, "microBatches: bufferedBatches must be >= 1")
        self.maxCount = maxCount
        self.maxWeight = maxWeight
        self.bufferedBatches = bufferedBatches
    }

    /// True when the producer should suspend before reading the next element.
    var producerShouldSuspend: Bool { !terminated && ready.count >= bufferedBatches }

    /// The producer read `element` from the base at `now`; `deadline` is `now + maxWait`.
    mutating func element(_ element: Element, weight: Int, deadline: Instant) -> Actions {
        var actions = Actions()
        guard !terminated else { return actions }
        if !current.isEmpty && currentWeight + weight > maxWeight { close(into: &actions) }
        if current.isEmpty {
            generation &+= 1
            timerRunning = true
            actions.startTimer = (deadline, generation)
        }
        current.append(element)
        currentWeight += weight
        if current.count >= maxCount || currentWeight >= maxWeight {
            close(into: &actions)
            if actions.startTimer?.generation == generation { actions.startTimer = nil }
        }
        deliver(into: &actions)
        return actions
    }

    /// The timer of batch `generation` fired.
    mutating func timerFired(generation fired: UInt64) -> Actions {
        var actions = Actions()
        guard !terminated, fired == generation, timerRunning, !current.isEmpty else { return actions }
        timerRunning = false
        close(into: &actions)
        deliver(into: &actions)
        return actions
    }

    /// The base ended, normally (`error == nil`) or by throwing. The open batch is emitted before the error.
    mutating func baseFinished(error: (any Error)?) -> Actions {
        var actions = Actions()
        guard !terminated, !baseEnded else { return actions }
        baseEnded = true
        failure = error
        if !current.isEmpty { close(into: &actions) }
        deliver(into: &actions)
        return actions
    }

    /// The producer is about to suspend (it saw `producerShouldSuspend`). Returns false if it must not (the consumer
    /// drained the buffer meanwhile).
    mutating func producerWillSuspend() -> Bool {
        guard producerShouldSuspend else { return false }
        producerSuspended = true
        return true
    }

    /// The consumer asks for the next batch.
    mutating func next() -> NextAction {
        if let batch = ready.popFirst() {
            return .resume(.batch(batch), resumeProducer: wakeProducerIfRoom())
        }
        if baseEnded || terminated {
            terminated = true
            if let error = failure {
                failure = nil
                return .resume(.failure(error), resumeProducer: false)
            }
            return .resume(.end, resumeProducer: false)
        }
        consumerWaiting = true
        return .suspend
    }

    /// The consumer's task was cancelled: end the sequence, stop the producer and the timer.
    mutating func cancel() -> Actions {
        var actions = Actions()
        guard !terminated else { return actions }
        terminated = true
        ready.removeAll()
        current.removeAll()
        if timerRunning { timerRunning = false; actions.cancelTimer = true }
        if consumerWaiting { consumerWaiting = false; actions.resumeConsumer = .end }
        if producerSuspended { producerSuspended = false; actions.resumeProducer = true }
        return actions
    }

    /// Whether the sequence has ended for the producer (it should stop reading the base).
    var isTerminated: Bool { terminated }

    private mutating func close(into actions: inout Actions) {
        guard !current.isEmpty else { return }
        ready.append(current)
        current = []
        currentWeight = 0
        if timerRunning { timerRunning = false; actions.cancelTimer = true }
    }

    private mutating func deliver(into actions: inout Actions) {
        guard consumerWaiting else { return }
        if let batch = ready.popFirst() {
            consumerWaiting = false
            actions.resumeConsumer = .batch(batch)
            if wakeProducerIfRoom() { actions.resumeProducer = true }
        } else if baseEnded {
            consumerWaiting = false
            terminated = true
            if let error = failure {
                failure = nil
                actions.resumeConsumer = .failure(error)
            } else {
                actions.resumeConsumer = .end
            }
        }
    }

    private mutating func wakeProducerIfRoom() -> Bool {
        guard producerSuspended, ready.count < bufferedBatches else { return false }
        producerSuspended = false
        return true
    }
}

extension MicroBatchStateMachine.ConsumerResume: Sendable where Element: Sendable {}
