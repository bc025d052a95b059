import DequeModule

/// The batching logic of ``Batcher`` as a pure state machine: per-key queues, flush decisions, backpressure,
/// cancellation and shutdown.
///
/// Events go in (`submit`, `timerFired`, `claim`, `batchFinished`, `cancel`, `flush`, `shutdown`); actions come out
/// (batches to dispatch, eager slots to claim, timers to arm, waiters to fail or resume).
///
/// Eager batches are bound late: when a slot of a key is free and items are pending, the machine reserves the slot
/// (`Actions.claims`) instead of cutting a batch; the driver calls `claim` once a worker is ready to run it, and the
/// batch takes everything that accumulated in between (up to the limits). So batches grow by themselves while the
/// worker is being woken, as in a bare eager flusher that swaps its buffer out when it runs. It holds no clock, task or lock: the driver passes
/// the current instant and performs the actions, so tests drive it step by step.
///
/// Every waiter handed in comes out exactly once: in a dispatched batch's running record (returned by
/// `batchFinished` or `cancel`), in `Actions.failed`, or from `cancel`.
@usableFromInline struct BatcherStateMachine<Key: Hashable, Input, Waiter, Instant: InstantProtocol> where Instant.Duration == Duration {
    /// An item waiting for its batch.
    @usableFromInline struct Item {
        @usableFromInline var id: UInt64
        @usableFromInline var input: Input
        @usableFromInline var weight: Int
        @usableFromInline var deadline: Instant?
        /// When the item became pending (after any backpressure wait); `maxWait` counts from here.
        @usableFromInline var enqueuedAt: Instant
        @usableFromInline var waiter: Waiter

        @inlinable init(id: UInt64, input: Input, weight: Int, deadline: Instant?, enqueuedAt: Instant, waiter: Waiter) {
            self.id = id
            self.input = input
            self.weight = weight
            self.deadline = deadline
            self.enqueuedAt = enqueuedAt
            self.waiter = waiter
        }
    }

    /// A batch to hand to the handler.
    @usableFromInline struct Batch {
        @usableFromInline var key: Key
        @usableFromInline var id: UInt64
        @usableFromInline var reason: FlushReason
        @usableFromInline var inputs: [Input]
        /// Each input's deadline; empty when no input has one.
        @usableFromInline var deadlines: [Instant?]
        @usableFromInline var enqueuedAt: [Instant]
        @usableFromInline var weight: Int

        @inlinable init(
            key: Key, id: UInt64, reason: FlushReason, inputs: [Input], deadlines: [Instant?], enqueuedAt: [Instant],
            weight: Int
        ) {
            self.key = key
            self.id = id
            self.reason = reason
            self.inputs = inputs
            self.deadlines = deadlines
            self.enqueuedAt = enqueuedAt
            self.weight = weight
        }
    }

    /// What the driver must do after an event.
    @usableFromInline struct Actions {
        /// Batches to run, each on a free handler slot.
        @usableFromInline var dispatch: [Batch] = []
        /// Eager slots reserved for these keys: call `claim(key:now:)` for each once a worker is ready to run it.
        @usableFromInline var claims: [Key] = []
        /// Timers to arm: call `timerFired(key:at:)` once the instant is reached.
        @usableFromInline var timers: [(key: Key, at: Instant)] = []
        /// Waiters to resume with an error (deadline passed, shutdown, cancellation of the run).
        @usableFromInline var failed: [(waiter: Waiter, error: any Error)] = []

        @inlinable init() {}

        @inlinable var isEmpty: Bool { dispatch.isEmpty && claims.isEmpty && timers.isEmpty && failed.isEmpty }

        /// Appends the actions of another event.
        @inlinable mutating func merge(_ other: Actions) {
            dispatch.append(contentsOf: other.dispatch)
            claims.append(contentsOf: other.claims)
            timers.append(contentsOf: other.timers)
            failed.append(contentsOf: other.failed)
        }
    }

    /// What became of a submitted item.
    @usableFromInline enum SubmitOutcome {
        /// Pending: it will be flushed with its key.
        case queued
        /// Over a pending limit with `overflow: .suspend`: it waits for room, then becomes pending.
        case suspended
        /// Refused; the waiter was not kept and must be resumed with this error by the caller.
        case rejected(BatcherError)
    }

    /// The waiters of a running batch, by input position; `nil` where the caller cancelled.
    @usableFromInline struct RunningBatch {
        @usableFromInline var id: UInt64
        @usableFromInline var itemIDs: [UInt64]
        @usableFromInline var waiters: [Waiter?]

        @inlinable init(id: UInt64, itemIDs: [UInt64], waiters: [Waiter?]) {
            self.id = id
            self.itemIDs = itemIDs
            self.waiters = waiters
        }
    }

    @usableFromInline struct KeyQueue {
        @usableFromInline var pending: Deque<Item> = []
        @usableFromInline var pendingWeight = 0
        /// Items suspended by backpressure, in arrival order.
        @usableFromInline var blocked: Deque<Item> = []
        @usableFromInline var running: [RunningBatch] = []
        /// Eager slots reserved and not claimed yet (they count as running for the concurrency limits).
        @usableFromInline var claims = 0
        /// Idle slots lent to the split calls (bisection halves) of a running batch.
        @usableFromInline var lent = 0
        @usableFromInline var armedTimer: Instant?
        @usableFromInline var earliestDeadline: Instant?
        @usableFromInline var draining: FlushReason?
        @usableFromInline var batchSizeLimit: Int
        @usableFromInline var predictedLatency: Duration

        @inlinable init(batchSizeLimit: Int, predictedLatency: Duration) {
            self.batchSizeLimit = batchSizeLimit
            self.predictedLatency = predictedLatency
        }

        @inlinable var isIdle: Bool { pending.isEmpty && blocked.isEmpty && running.isEmpty && claims == 0 && lent == 0 }

        /// Handler slots in use: running batches, reserved eager slots and slots lent to split calls.
        @inlinable var busySlots: Int { running.count + claims + lent }
    }

    @usableFromInline enum Lifecycle { case running, draining, stopped }

    @usableFromInline let configuration: BatchConfiguration
    /// Queues of every key but the hot one.
    @usableFromInline var queues: [Key: KeyQueue] = [:]
    /// The key touched last and its queue, kept out of the dictionary: a busy key costs no hashing per event.
    @usableFromInline var hotKey: Key? = nil
    /// Meaningful only while `hotKey` is set. Not optional: reading a field through an optional copies the whole
    /// queue (through runtime value witnesses), which the per-submit checks cannot afford.
    @usableFromInline var hotQueue = KeyQueue(batchSizeLimit: 0, predictedLatency: .zero)
    @usableFromInline var totalPending = 0
    @usableFromInline var totalPendingWeight = 0
    @usableFromInline var totalRunning = 0
    @usableFromInline var lifecycle: Lifecycle = .running
    @usableFromInline var nextBatchID: UInt64 = 0
    /// Keys with due work held back by `maxTotalConcurrentBatches`.
    @usableFromInline var waitingForGlobalSlot: Deque<Key> = []
    /// Keys with items suspended by backpressure.
    @usableFromInline var keysWithBlocked: Set<Key> = []
    /// Idle queues are kept (so a busy key does not reallocate) until there are more than this many keys.
    @usableFromInline let maxIdleQueues = 1024

    @inlinable init(configuration: BatchConfiguration) {
        self.configuration = configuration
    }

    /// Whether no item is pending, suspended or running.
    @inlinable var isIdle: Bool { totalPending == 0 && totalRunning == 0 && keysWithBlocked.isEmpty }

    /// Whether shutdown has begun and everything accepted has finished.
    @inlinable var isFinished: Bool { lifecycle != .running && isIdle }

    // MARK: - Events

    /// An item arrives.
    @inlinable mutating func submit(key: Key, item: consuming Item, now: Instant) -> (SubmitOutcome, Actions) {
        var actions = Actions()
        guard lifecycle == .running else { return (.rejected(.shutDown), actions) }
        if let maxWeight = configuration.maxBatchWeight, item.weight > maxWeight {
            return (.rejected(BatcherError(.overweight, "the item weighs \(item.weight), more than maxBatchWeight \(maxWeight)")), actions)
        }
        if let deadline = item.deadline, deadline <= now {
            return (.rejected(BatcherError(.deadlineExceeded, "the item's deadline had passed when it was submitted")), actions)
        }
        if joinsReservedEagerBatch(key: key, item: item) {
            // The common case under load, in place: the key's eager slot is reserved and its batch not full, so
            // the item only waits for the claim (`schedule` would find nothing to do).
            item.enqueuedAt = now
            hotQueue.pending.append(item)
            hotQueue.pendingWeight += item.weight
            totalPending += 1
            totalPendingWeight += item.weight
            return (.queued, actions)
        }
        // No `defer { store(...) }`: a deferred store copies the queue instead of moving it back.
        var queue = takeQueue(key) ?? newQueue()
        if !queue.blocked.isEmpty || !hasRoom(queue, weight: item.weight) {
            if configuration.overflow == .reject {
                let error = overloadedError(queue)
                store(consume queue, for: key)
                return (.rejected(error), actions)
            }
            queue.blocked.append(item)
            keysWithBlocked.insert(key)
            store(consume queue, for: key)
            return (.suspended, actions)
        }
        enqueue(item, in: &queue, now: now)
        schedule(&queue, key: key, now: now, into: &actions)
        store(consume queue, for: key)
        return (.queued, actions)
    }

    /// Whether `submit` of an item of `key` needs the current instant. It does not when the item only joins items
    /// already pending under the eager policy, has no deadline and none pending has one: its `enqueuedAt` then only
    /// feeds the queue-time metric, so the driver may pass the latest instant it read (not later than the real one)
    /// instead of reading the clock for every item.
    @inlinable func submitNeedsCurrentInstant(key: Key, hasDeadline: Bool) -> Bool {
        if hasDeadline || configuration.flushPolicy != .eager { return true }
        guard let hot = hotKey, hot == key else {
            return queues[key].map { $0.pending.isEmpty || $0.earliestDeadline != nil } ?? true
        }
        return hotQueue.pending.isEmpty || hotQueue.earliestDeadline != nil
    }

    /// Whether `item` only joins the pending items of the hot key `key` under a reserved eager slot, with room
    /// left and nothing else due: no deadline (own or pending), nothing suspended, no drain, and either the batch not
    /// full or no other slot of the key to send a full one on (`schedule` would stop at the slot limit), as with
    /// thousands of callers.
    @inlinable func joinsReservedEagerBatch(key: Key, item: borrowing Item) -> Bool {
        guard item.deadline == nil, configuration.flushPolicy == .eager, let hot = hotKey, hot == key else {
            return false
        }
        let weight = item.weight
        let count = hotQueue.pending.count
        let pendingWeight = hotQueue.pendingWeight
        guard hotQueue.claims > 0, hotQueue.draining == nil, hotQueue.blocked.isEmpty,
            hotQueue.earliestDeadline == nil,
            count + 1 < hotQueue.batchSizeLimit || hotQueue.busySlots >= configuration.maxConcurrentBatches,
            count < configuration.maxPendingItems, totalPending < configuration.maxTotalPendingItems
        else { return false }
        if let max = configuration.maxBatchWeight, pendingWeight + weight >= max { return false }
        if let max = configuration.maxPendingWeight, pendingWeight + weight > max { return false }
        if let max = configuration.maxTotalPendingWeight, totalPendingWeight + weight > max { return false }
        return true
    }

    /// A timer armed by an earlier action fired.
    @inlinable mutating func timerFired(key: Key, at instant: Instant, now: Instant) -> Actions {
        var actions = Actions()
        guard var queue = takeQueue(key) else { return actions }
        if queue.armedTimer == instant { queue.armedTimer = nil }
        schedule(&queue, key: key, now: now, into: &actions)
        store(queue, for: key)
        return actions
    }

    /// A worker is ready to run an eager slot reserved by `Actions.claims`: takes the batch of everything pending now
    /// (up to the limits), or releases the slot and returns nil when nothing is left (cancelled or taken by a full
    /// batch meanwhile).
    @inlinable mutating func claim(key: Key, now: Instant) -> (Batch?, Actions) {
        var actions = Actions()
        guard var queue = takeQueue(key), queue.claims > 0 else {
            preconditionFailure("claim without a reserved slot")
        }
        queue.claims -= 1
        totalRunning -= 1
        var batch: Batch? = nil
        while batch == nil, !queue.pending.isEmpty {
            batch = takeBatch(&queue, key: key, reason: queue.draining ?? .eager, now: now, into: &actions)
        }
        if batch != nil { promoteBlocked(&queue, key: key, now: now) }
        schedule(&queue, key: key, now: now, into: &actions)
        store(consume queue, for: key)
        if batch == nil { rescheduleGlobalWaiters(now: now, into: &actions) }
        return (batch, actions)
    }

    /// A running batch of `key` splits (bisection) and asks for up to `wanted` idle slots of its key for the extra
    /// calls, so split calls stay within `maxConcurrentBatches` and `maxTotalConcurrentBatches`. Returns how many were
    /// lent (possibly 0: the parts then run one after another on the batch's own slot); each must come back through
    /// `returnSlot`.
    @inlinable mutating func lendSlots(key: Key, wanted: Int) -> Int {
        guard wanted > 0, var queue = takeQueue(key) else { return 0 }
        let free = min(
            configuration.maxConcurrentBatches - queue.busySlots, configuration.maxTotalConcurrentBatches - totalRunning)
        let lent = max(0, min(wanted, free))
        queue.lent += lent
        totalRunning += lent
        store(consume queue, for: key)
        return lent
    }

    /// A slot lent by `lendSlots` is free again.
    @inlinable mutating func returnSlot(key: Key, now: Instant) -> Actions {
        var actions = Actions()
        guard var queue = takeQueue(key), queue.lent > 0 else {
            preconditionFailure("returnSlot without a lent slot")
        }
        queue.lent -= 1
        totalRunning -= 1
        schedule(&queue, key: key, now: now, into: &actions)
        store(consume queue, for: key)
        rescheduleGlobalWaiters(now: now, into: &actions)
        return actions
    }

    /// A dispatched batch finished. Returns its waiters by input position (`nil` where the caller cancelled).
    @inlinable mutating func batchFinished(key: Key, batchID: UInt64, now: Instant) -> ([Waiter?], Actions) {
        var actions = Actions()
        guard var queue = takeQueue(key),
            let index = queue.running.firstIndex(where: { $0.id == batchID })
        else {
            preconditionFailure("batchFinished for a batch that is not running")
        }
        let finished = queue.running.remove(at: index)
        totalRunning -= 1
        promoteBlocked(&queue, key: key, now: now)
        schedule(&queue, key: key, now: now, into: &actions)
        store(consume queue, for: key)
        rescheduleGlobalWaiters(now: now, into: &actions)
        return (finished.waiters, actions)
    }

    /// A caller was cancelled. Returns its waiter if it was still held (pending, suspended or running).
    @inlinable mutating func cancel(key: Key, id: UInt64, now: Instant) -> (Waiter?, Actions) {
        var actions = Actions()
        guard var queue = takeQueue(key) else { return (nil, actions) }
        defer { store(queue, for: key) }
        if let index = queue.pending.firstIndex(where: { $0.id == id }) {
            let item = queue.pending.remove(at: index)
            release(item, from: &queue)
            if queue.pending.isEmpty { queue.draining = nil }
            promoteBlocked(&queue, key: key, now: now)
            schedule(&queue, key: key, now: now, into: &actions)
            return (item.waiter, actions)
        }
        if let index = queue.blocked.firstIndex(where: { $0.id == id }) {
            let item = queue.blocked.remove(at: index)
            if queue.blocked.isEmpty { keysWithBlocked.remove(key) }
            return (item.waiter, actions)
        }
        // Running: take the waiter out so the batch's result for it is dropped.
        for b in queue.running.indices {
            if let position = queue.running[b].itemIDs.firstIndex(of: id) {
                let waiter = queue.running[b].waiters[position]
                queue.running[b].waiters[position] = nil
                return (waiter, actions)
            }
        }
        return (nil, actions)
    }

    /// Flush every pending item of `key` (or of every key when nil) as soon as handler slots allow.
    @inlinable mutating func flush(key: Key?, now: Instant) -> Actions {
        var actions = Actions()
        let keys = key.map { [$0] } ?? allKeys
        for key in keys {
            guard var queue = takeQueue(key) else { continue }
            if !queue.pending.isEmpty, queue.draining == nil { queue.draining = .manual }
            schedule(&queue, key: key, now: now, into: &actions)
            store(consume queue, for: key)
        }
        return actions
    }

    /// Graceful shutdown: refuse new items, flush everything pending (and suspended) as slots allow.
    @inlinable mutating func shutdown(now: Instant) -> Actions {
        var actions = Actions()
        guard lifecycle == .running else { return actions }
        lifecycle = .draining
        for key in allKeys {
            guard var queue = takeQueue(key) else { continue }
            queue.draining = .shutdown
            schedule(&queue, key: key, now: now, into: &actions)
            store(consume queue, for: key)
        }
        return actions
    }

    /// Hard stop: fail every pending and suspended item with `error`; running batches finish on their own.
    @inlinable mutating func forceShutdown(error: any Error) -> Actions {
        var actions = Actions()
        lifecycle = .stopped
        for key in allKeys {
            guard var queue = takeQueue(key) else { continue }
            for item in queue.pending { actions.failed.append((item.waiter, error)) }
            for item in queue.blocked { actions.failed.append((item.waiter, error)) }
            totalPending -= queue.pending.count
            totalPendingWeight -= queue.pendingWeight
            queue.pending.removeAll()
            queue.blocked.removeAll()
            queue.pendingWeight = 0
            queue.earliestDeadline = nil
            store(queue, for: key)
        }
        keysWithBlocked.removeAll()
        waitingForGlobalSlot.removeAll()
        return actions
    }

    /// Sets the batch size the key's adaptive controller recommends (clamped to `1...maxBatchSize`).
    @inlinable mutating func setBatchSizeLimit(key: Key, _ limit: Int, now: Instant) -> Actions {
        var actions = Actions()
        var queue = takeQueue(key) ?? newQueue()
        queue.batchSizeLimit = min(max(limit, 1), configuration.maxBatchSize)
        schedule(&queue, key: key, now: now, into: &actions)
        store(consume queue, for: key)
        return actions
    }

    /// Sets the handler latency the key's deadline flush subtracts from caller deadlines.
    @inlinable mutating func setPredictedLatency(key: Key, _ latency: Duration, now: Instant) -> Actions {
        var actions = Actions()
        var queue = takeQueue(key) ?? newQueue()
        queue.predictedLatency = max(latency, .zero)
        schedule(&queue, key: key, now: now, into: &actions)
        store(consume queue, for: key)
        return actions
    }

    /// The number of pending items of `key` (for tests and metrics).
    @inlinable func pendingCount(key: Key) -> Int { peekQueue(key)?.pending.count ?? 0 }

    /// The number of suspended items of `key`.
    @inlinable func suspendedCount(key: Key) -> Int { peekQueue(key)?.blocked.count ?? 0 }

    /// The number of running batches of `key`, counting reserved eager slots.
    @inlinable func runningCount(key: Key) -> Int { peekQueue(key)?.busySlots ?? 0 }

    /// The current batch size limit of `key`.
    @inlinable func batchSizeLimit(key: Key) -> Int { peekQueue(key)?.batchSizeLimit ?? initialBatchSizeLimit }

    // MARK: - Internals

    /// A key's queue; with `adaptiveBatchSize` its first batch already uses the AIMD controller's starting limit.
    @inlinable func newQueue() -> KeyQueue {
        KeyQueue(batchSizeLimit: initialBatchSizeLimit, predictedLatency: configuration.defaultPredictedLatency)
    }

    /// The batch-size limit of a key that has not finished a batch yet.
    @inlinable var initialBatchSizeLimit: Int {
        guard let adaptive = configuration.adaptiveBatchSize else { return configuration.maxBatchSize }
        return min(AdaptiveBatchSize(configuration: adaptive, upperBound: configuration.maxBatchSize).limit,
                   configuration.maxBatchSize)
    }

    /// Takes the queue of `key` out of the machine (put it back with `store`), so it can be mutated alongside `self`.
    @inlinable mutating func takeQueue(_ key: Key) -> KeyQueue? {
        if let hot = hotKey, hot == key {
            hotKey = nil
            return takeHotQueue()
        }
        return queues.removeValue(forKey: key)
    }

    /// Moves the hot queue out (no copy of its buffers), leaving an empty placeholder.
    @inlinable mutating func takeHotQueue() -> KeyQueue {
        var queue = KeyQueue(batchSizeLimit: 0, predictedLatency: .zero)
        swap(&queue, &hotQueue)
        return queue
    }

    /// The queue of `key`, read only.
    @inlinable func peekQueue(_ key: Key) -> KeyQueue? {
        if let hot = hotKey, hot == key { return hotQueue }
        return queues[key]
    }

    /// Every key with a queue.
    @inlinable var allKeys: [Key] {
        var keys = Array(queues.keys)
        if let hot = hotKey { keys.append(hot) }
        return keys
    }

    /// Puts a taken queue back as the hot one (the previous hot queue goes to the dictionary). An idle queue is
    /// dropped once there are many keys.
    @inlinable mutating func store(_ queue: consuming KeyQueue, for key: Key) {
        let count = queues.count + (hotKey == nil ? 0 : 1)
        if queue.isIdle && queue.armedTimer == nil && count >= maxIdleQueues { return }
        if let hot = hotKey {
            if hot == key {
                hotQueue = queue
                return
            }
            queues[hot] = takeHotQueue()
        }
        hotKey = key
        hotQueue = queue
    }

    @inlinable func hasRoom(_ queue: KeyQueue, weight: Int) -> Bool {
        if queue.pending.count >= configuration.maxPendingItems { return false }
        if totalPending >= configuration.maxTotalPendingItems { return false }
        if let max = configuration.maxPendingWeight, queue.pendingWeight + weight > max, !queue.pending.isEmpty { return false }
        if let max = configuration.maxTotalPendingWeight, totalPendingWeight + weight > max, totalPending > 0 { return false }
        return true
    }

    @inlinable func overloadedError(_ queue: KeyQueue) -> BatcherError {
        if queue.pending.count >= configuration.maxPendingItems {
            return BatcherError(.overloaded, "the key has \(queue.pending.count) pending items (maxPendingItems)")
        }
        if totalPending >= configuration.maxTotalPendingItems {
            return BatcherError(.overloaded, "\(totalPending) items are pending over all keys (maxTotalPendingItems)")
        }
        return BatcherError(.overloaded, "the pending weight limit is reached (maxPendingWeight or maxTotalPendingWeight)")
    }

    @inlinable mutating func enqueue(_ item: consuming Item, in queue: inout KeyQueue, now: Instant) {
        item.enqueuedAt = now
        if let deadline = item.deadline, queue.earliestDeadline.map({ deadline < $0 }) ?? true {
            queue.earliestDeadline = deadline
        }
        queue.pending.append(item)
        queue.pendingWeight += item.weight
        totalPending += 1
        totalPendingWeight += item.weight
    }

    @inlinable mutating func release(_ item: Item, from queue: inout KeyQueue) {
        queue.pendingWeight -= item.weight
        totalPending -= 1
        totalPendingWeight -= item.weight
        if let deadline = item.deadline, deadline == queue.earliestDeadline {
            queue.earliestDeadline = queue.pending.lazy.compactMap(\.deadline).min()
        }
    }

    @inlinable mutating func promoteBlocked(_ queue: inout KeyQueue, key: Key, now: Instant) {
        guard !queue.blocked.isEmpty else { return }
        while let first = queue.blocked.first, hasRoom(queue, weight: first.weight) {
            queue.blocked.removeFirst()
            enqueue(first, in: &queue, now: now)
        }
        if queue.blocked.isEmpty { keysWithBlocked.remove(key) }
    }

    /// The reason the key's next batch should go now, or nil if it should wait.
    @inlinable func dueReason(_ queue: KeyQueue, now: Instant) -> FlushReason? {
        if queue.pending.count >= queue.batchSizeLimit { return .size }
        if let max = configuration.maxBatchWeight, queue.pendingWeight >= max { return .weight }
        if let draining = queue.draining { return draining }
        if configuration.flushPolicy == .eager { return .eager }
        if let first = queue.pending.first, now >= first.enqueuedAt.advanced(by: configuration.maxWait) { return .time }
        if let deadline = queue.earliestDeadline, now >= deadline.advanced(by: .zero - queue.predictedLatency) {
            return .deadline
        }
        return nil
    }

    /// The instant at which the key's pending items become due by time or deadline.
    @inlinable func dueInstant(_ queue: KeyQueue) -> Instant? {
        guard let first = queue.pending.first else { return nil }
        var due = first.enqueuedAt.advanced(by: configuration.maxWait)
        if let deadline = queue.earliestDeadline {
            due = min(due, deadline.advanced(by: .zero - queue.predictedLatency))
        }
        return due
    }

    /// Dispatches every batch that is due and has a slot, then arms a timer for the next due instant.
    @inlinable mutating func schedule(_ queue: inout KeyQueue, key: Key, now: Instant, into actions: inout Actions) {
        while !queue.pending.isEmpty, let reason = dueReason(queue, now: now) {
            // A reserved eager slot takes everything up to the limit when it is claimed (and claiming schedules the
            // rest), so nothing else is due until then, not even a place in the wait for a global slot.
            if reason == .eager, queue.claims > 0 { break }
            guard queue.busySlots < configuration.maxConcurrentBatches else { break }
            guard totalRunning < configuration.maxTotalConcurrentBatches else {
                if !waitingForGlobalSlot.contains(key) { waitingForGlobalSlot.append(key) }
                break
            }
            if reason == .eager {
                // Late binding: reserve the slot; the batch is cut when a worker claims it. One reservation takes
                // everything up to the limit, so a second one waits until the first is claimed (above).
                queue.claims += 1
                totalRunning += 1
                actions.claims.append(key)
                break
            }
            if let batch = takeBatch(&queue, key: key, reason: reason, now: now, into: &actions) {
                actions.dispatch.append(batch)
            }
            promoteBlocked(&queue, key: key, now: now)
        }
        if queue.pending.isEmpty {
            queue.draining = nil
        } else if configuration.flushPolicy == .fillOrWait, queue.draining == nil, let due = dueInstant(queue), due > now,
            queue.armedTimer.map({ due < $0 }) ?? true
        {
            queue.armedTimer = due
            actions.timers.append((key, due))
        }
    }

    /// Takes the next batch off the front of the queue, failing items whose deadline has passed.
    @inlinable mutating func takeBatch(
        _ queue: inout KeyQueue, key: Key, reason: FlushReason, now: Instant, into actions: inout Actions
    ) -> Batch? {
        let sizeLimit = queue.batchSizeLimit
        let weightLimit = configuration.maxBatchWeight ?? .max
        var inputs: [Input] = []
        var waiters: [Waiter?] = []
        var itemIDs: [UInt64] = []
        var deadlines: [Instant?] = []
        var enqueued: [Instant] = []
        let expected = min(sizeLimit, queue.pending.count)
        inputs.reserveCapacity(expected)
        waiters.reserveCapacity(expected)
        itemIDs.reserveCapacity(expected)
        enqueued.reserveCapacity(expected)
        var weight = 0
        var hadDeadline = false
        while inputs.count < sizeLimit, !queue.pending.isEmpty,
            weight + queue.pending[queue.pending.startIndex].weight <= weightLimit
        {
            let item = queue.pending.removeFirst()  // a move, not a copy and a destroy
            queue.pendingWeight -= item.weight
            totalPending -= 1
            totalPendingWeight -= item.weight
            if let deadline = item.deadline {
                if !hadDeadline {
                    hadDeadline = true
                    deadlines = Array(repeating: nil, count: inputs.count)
                    deadlines.reserveCapacity(expected)
                }
                if deadline <= now {
                    actions.failed.append((item.waiter, BatcherError(
                        .deadlineExceeded, "the item's deadline passed before its batch could be sent; it was not sent")))
                    continue
                }
            }
            inputs.append(item.input)
            waiters.append(item.waiter)
            itemIDs.append(item.id)
            if hadDeadline { deadlines.append(item.deadline) }
            enqueued.append(item.enqueuedAt)
            weight += item.weight
        }
        if hadDeadline { queue.earliestDeadline = queue.pending.lazy.compactMap(\.deadline).min() }
        guard !inputs.isEmpty else { return nil }
        nextBatchID += 1
        queue.running.append(RunningBatch(id: nextBatchID, itemIDs: itemIDs, waiters: waiters))
        totalRunning += 1
        return Batch(
            key: key, id: nextBatchID, reason: reason, inputs: inputs, deadlines: deadlines, enqueuedAt: enqueued,
            weight: weight)
    }

    /// After a batch finished anywhere, gives keys held back by the global limit another chance.
    @inlinable mutating func rescheduleGlobalWaiters(now: Instant, into actions: inout Actions) {
        while totalRunning < configuration.maxTotalConcurrentBatches, let key = waitingForGlobalSlot.popFirst() {
            guard var queue = takeQueue(key) else { continue }
            schedule(&queue, key: key, now: now, into: &actions)
            store(consume queue, for: key)
        }
        // Room freed over all keys may let suspended items of other keys in.
        guard !keysWithBlocked.isEmpty, totalPending < configuration.maxTotalPendingItems else { return }
        for key in Array(keysWithBlocked) {
            guard var queue = takeQueue(key) else { continue }
            promoteBlocked(&queue, key: key, now: now)
            schedule(&queue, key: key, now: now, into: &actions)
            store(consume queue, for: key)
        }
    }
}

extension BatcherStateMachine.Batch: Sendable where Key: Sendable, Input: Sendable, Instant: Sendable {}
extension BatcherStateMachine.Item: Sendable where Input: Sendable, Waiter: Sendable, Instant: Sendable {}
extension BatcherStateMachine.Actions: Sendable where Key: Sendable, Input: Sendable, Waiter: Sendable, Instant: Sendable {}
