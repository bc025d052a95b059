import DequeModule
import Logging
import ServiceLifecycle
import Synchronization

/// A per-key micro-batcher on the continuous clock: the type applications use.
///
/// ```swift
/// struct EmbedKey: BatchKey { var model: String; var tenant: String }
/// try await Batcher<EmbedKey, String, [Float]>.withBatcher(
///     configuration: .init(maxBatchSize: 64, maxWait: .milliseconds(5)),
///     handler: { key, texts in try await embed(texts, model: key.model) }  // [[Float]], one per text
/// ) { batcher in
///     let vector = try await batcher.submit("hello", key: EmbedKey(model: "m", tenant: "t"))
/// }
/// ```
public typealias Batcher<Key: BatchKey, Input: Sendable, Output: Sendable> = ClockedBatcher<
    Key, Input, Output, ContinuousClock
>

/// A per-key micro-batcher driven by the clock `C` (``Batcher`` uses `ContinuousClock`; tests use a manual clock).
///
/// Callers `submit` items with a compatibility key; items of one key are flushed together to the handler on size,
/// weight, max wait, caller deadline, a free handler slot (eager policy), `flush()` or shutdown, and each caller gets
/// its own result. Items of different keys never share a batch.
///
/// The batcher is a `Service`: `run()` drives timers and handlers until graceful shutdown, then flushes every key,
/// waits for running batches and returns; items submitted after that fail with ``BatcherError/Code-swift.enum/shutDown``.
/// Items submitted before `run()` starts wait for it. For scripts and tests use
/// ``withBatcher(configuration:clock:weigh:logger:handler:_:)``.
///
/// Cancellation: a caller cancelled while its item waits is removed (its weight returned) and gets
/// `CancellationError`; a caller cancelled while its batch runs gets `CancellationError` at once and the batch's result
/// for it is dropped.
public final class ClockedBatcher<Key: BatchKey, Input: Sendable, Output: Sendable, C: Clock>: Service, Sendable
where C.Duration == Duration {
    /// The handler: one result per input, in input order. Throwing fails the whole batch.
    public typealias Handler = @Sendable (Key, [Input]) async throws -> [Result<Output, any Error>]

    @usableFromInline typealias Machine = BatcherStateMachine<Key, Input, Waiter, BatcherInstant>

    /// Where a result goes: the continuation of a `submit` caller, or a slot of a `submit(contentsOf:)` collector.
    ///
    /// Trivially copyable (no reference counting), so items and queues holding it are copied with plain moves: an
    /// enum with a class payload made the compiler copy every item through runtime value witnesses (about 5% of a
    /// submit). The collector is kept alive by the reference it holds on itself until its last result arrives.
    @usableFromInline struct Waiter: Sendable {
        @usableFromInline let continuation: UnsafeContinuation<Output, any Error>?
        @usableFromInline let collector: Unmanaged<BulkCollector<Output>>?
        @usableFromInline let index: Int

        @inlinable init(
            continuation: UnsafeContinuation<Output, any Error>?, collector: Unmanaged<BulkCollector<Output>>?,
            index: Int
        ) {
            self.continuation = continuation
            self.collector = collector
            self.index = index
        }

        /// The caller of `submit(_:key:deadline:)`.
        @inlinable static func single(_ continuation: UnsafeContinuation<Output, any Error>) -> Waiter {
            Waiter(continuation: continuation, collector: nil, index: 0)
        }

        /// Input `index` of a `submit(contentsOf:)` call.
        @inlinable static func bulk(_ collector: BulkCollector<Output>, _ index: Int) -> Waiter {
            Waiter(continuation: nil, collector: Unmanaged.passUnretained(collector), index: index)
        }

        @inlinable func resume(with result: Result<Output, any Error>) {
            if let continuation {
                continuation.resume(with: result)
            } else if let collector {
                let last = collector._withUnsafeGuaranteedRef { $0.deliver(result, at: index) }
                if last { collector.release() }  // the collector's reference on itself
            }
        }
    }

    /// Work for a worker: a batch cut by the machine, or an eager slot whose batch is cut when the worker claims it.
    @usableFromInline enum Ready: Sendable {
        case batch(Machine.Batch)
        case claim(Key)
    }

    @usableFromInline enum Work: Sendable {
        /// Start one more worker task (there are ready batches and no idle worker).
        case worker
        case timer(Key, BatcherInstant)
    }

    @usableFromInline struct State {
        @usableFromInline var machine: Machine
        @usableFromInline var work: [Work] = []
        @usableFromInline var runWaiter: UnsafeContinuation<[Work]?, Never>?
        @usableFromInline var runStarted = false
        /// Dispatched batches and eager claims no worker has taken yet.
        @usableFromInline var readyBatches: Deque<Ready> = []
        /// Workers waiting for a batch.
        @usableFromInline var idleWorkers: [UnsafeContinuation<Ready?, Never>] = []
        /// Workers started or requested.
        @usableFromInline var workers = 0
        /// Workers that will look at `readyBatches` before going idle (just started, or just finished a batch with
        /// nothing of their own next): ready work they will take needs no new worker.
        @usableFromInline var lookingWorkers = 0
        /// The latest instant read from the clock: the `enqueuedAt` of items that do not need the current one (see
        /// `BatcherStateMachine.submitNeedsCurrentInstant`), so most submits under load read no clock.
        @usableFromInline var lastInstant = BatcherInstant(offset: .zero)
        /// Per-key AIMD limit and latency fit (only with `adaptiveBatchSize` or `learnsHandlerLatency`).
        @usableFromInline var adaptation: [Key: KeyAdaptation<C.Instant>] = [:]
    }

    /// The configuration, validated.
    public let configuration: BatchConfiguration
    @usableFromInline let clock: C
    /// The clock's `now` at creation: the machine's instants are offsets from it (see ``BatcherInstant``).
    @usableFromInline let epoch: C.Instant
    @usableFromInline let weigh: (@Sendable (Input) -> Int)?
    @usableFromInline let handler: Handler
    /// Runs batches with retry, bisection, breaker and dead letters when a ``FailurePolicy`` was given.
    @usableFromInline let executor: BatchExecutor<Key, Input, Output, C>?
    @usableFromInline let logger: Logger
    @usableFromInline let metrics: HyperbatchMetrics
    @usableFromInline let state: Mutex<State>
    @usableFromInline let nextItemID = Atomic<UInt64>(0)

    /// Creates a batcher. Throws ``BatcherError`` (`invalidConfiguration`) when the configuration is nonsensical.
    ///
    /// - Parameters:
    ///   - configuration: batch size, weight, wait, backpressure and concurrency limits.
    ///   - clock: the clock timers sleep on.
    ///   - weigh: the weight of an input (for example its tokens); each input weighs 1 when nil.
    ///   - logger: receives debug logs per flush; the batcher never bootstraps logging.
    ///   - failurePolicy: retry, bisection, circuit breaker and dead letters for batch-level failures; nil (the
    ///     default) fails every item of a batch whose handler throws.
    ///   - handler: runs one batch; returns one result per input, in order.
    public init(
        configuration: BatchConfiguration = .init(), clock: C, weigh: (@Sendable (Input) -> Int)? = nil,
        logger: Logger = Logger(label: "hyperbatch.batcher"), failurePolicy: FailurePolicy? = nil,
        handler: @escaping Handler
    ) throws(BatcherError) {
        try configuration.validate()
        self.configuration = configuration
        self.clock = clock
        self.epoch = clock.now
        self.weigh = weigh
        self.handler = handler
        let metrics = HyperbatchMetrics()
        self.metrics = metrics
        self.executor = failurePolicy.map {
            BatchExecutor(policy: $0, clock: clock, logger: logger, metrics: metrics, handler: handler)
        }
        self.logger = logger
        self.state = Mutex(State(machine: Machine(configuration: configuration)))
    }

    // MARK: - Time

    /// `instant` as the machine sees it.
    @inlinable func machineInstant(_ instant: C.Instant) -> BatcherInstant {
        BatcherInstant(offset: epoch.duration(to: instant))
    }

    /// The clock's instant of a machine instant.
    @inlinable func clockInstant(_ instant: BatcherInstant) -> C.Instant { epoch.advanced(by: instant.offset) }

    /// The clock's current instant as the machine sees it.
    @inlinable var now: BatcherInstant { machineInstant(clock.now) }

    // MARK: - Submitting

    /// Submits one input and waits for its own result.
    ///
    /// - Parameter deadline: when the caller stops caring. The key flushes early enough for the handler's predicted
    ///   latency to meet it; an item whose deadline passes before it is sent fails with `deadlineExceeded`.
    /// - Throws: the handler's error for this item, a ``BatcherError``, or `CancellationError`.
    @inlinable public func submit(_ input: Input, key: Key, deadline: C.Instant?) async throws -> Output {
        try await submit(input, key: key, machineDeadline: deadline.map(machineInstant))
    }

    /// Submits one input without a deadline and waits for its own result.
    ///
    /// The same as `submit(_:key:deadline:)` with a nil deadline, without handling an optional clock instant (a
    /// resilient type, handled through runtime calls) on every call.
    /// - Throws: the handler's error for this item, a ``BatcherError``, or `CancellationError`.
    @inlinable public func submit(_ input: Input, key: Key) async throws -> Output {
        try await submit(input, key: key, machineDeadline: nil)
    }

    @inlinable @inline(__always)
    func submit(_ input: Input, key: Key, machineDeadline deadline: BatcherInstant?) async throws -> Output {
        let weight = weigh?(input) ?? 1
        let id = nextItemID.wrappingAdd(1, ordering: .relaxed).newValue
        // The closures capture little and call a synchronous method: every async frame of a submit comes from the
        // task's stack allocator, and small frames keep a submit within its first slab.
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Output, any Error>) in
                enqueue(input, key: key, weight: weight, deadline: deadline, id: id, continuation: continuation)
            }
        } onCancel: {
            cancel(key: key, id: id)
        }
    }

    /// Hands the item of a `submit` to the machine; its continuation is resumed now (rejected, cancelled) or later.
    @inlinable func enqueue(
        _ input: Input, key: Key, weight: Int, deadline: BatcherInstant?, id: UInt64,
        continuation: UnsafeContinuation<Output, any Error>
    ) {
        let (outcome, effects) = state.withLock { state -> (Machine.SubmitOutcome, Effects) in
            if Task.isCancelled { return (.rejected(BatcherError(.shutDown, "")), Effects(cancelled: true)) }
            let now: BatcherInstant
            if state.machine.submitNeedsCurrentInstant(key: key, hasDeadline: deadline != nil) {
                now = self.now
                if state.lastInstant < now { state.lastInstant = now }
            } else {
                now = state.lastInstant
            }
            let item = Machine.Item(
                id: id, input: input, weight: weight, deadline: deadline, enqueuedAt: now,
                waiter: .single(continuation))
            let (outcome, actions) = state.machine.submit(key: key, item: item, now: now)
            return (outcome, Self.collect(actions, into: &state))
        }
        if effects.cancelled {
            continuation.resume(throwing: CancellationError())
            return
        }
        if case .rejected(let error) = outcome { continuation.resume(throwing: error) }
        effects.perform()
    }

    /// Submits several inputs of one key and waits for all their results, in input order.
    ///
    /// Each input is its own item (it may land in a different batch than its neighbours); a failure of one never
    /// fails the others.
    @inlinable public func submit(contentsOf inputs: [Input], key: Key, deadline: C.Instant? = nil) async -> [Result<
        Output, any Error
    >] {
        guard !inputs.isEmpty else { return [] }
        let weights = inputs.map { weigh?($0) ?? 1 }
        let firstID = nextItemID.wrappingAdd(UInt64(inputs.count), ordering: .relaxed).newValue - UInt64(inputs.count) + 1
        let deadline = deadline.map(machineInstant)
        return await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<[Result<Output, any Error>], Never>) in
                let collector = BulkCollector<Output>.make(count: inputs.count, continuation: continuation)
                let now = self.now
                var rejected: [(Int, any Error)] = []
                let effects = state.withLock { state -> Effects in
                    var effects = Effects(cancelled: Task.isCancelled)
                    for index in inputs.indices {
                        if effects.cancelled {
                            rejected.append((index, CancellationError()))
                            continue
                        }
                        let item = Machine.Item(
                            id: firstID + UInt64(index), input: inputs[index], weight: weights[index],
                            deadline: deadline, enqueuedAt: now, waiter: .bulk(collector, index))
                        let (outcome, actions) = state.machine.submit(key: key, item: item, now: now)
                        if case .rejected(let error) = outcome { rejected.append((index, error)) }
                        effects.merge(Self.collect(actions, into: &state))
                    }
                    return effects
                }
                for (index, error) in rejected {
                    if collector.deliver(.failure(error), at: index) { Unmanaged.passUnretained(collector).release() }
                }
                effects.perform()
            }
        } onCancel: {
            for index in inputs.indices { cancel(key: key, id: firstID + UInt64(index)) }
        }
    }

    /// Flushes every pending item of `key` (of every key when nil) as soon as handler slots allow, without waiting
    /// for the batch to fill.
    @inlinable public func flush(key: Key? = nil) {
        let now = self.now
        state.withLock { state in Self.collect(state.machine.flush(key: key, now: now), into: &state) }.perform()
    }

    /// Begins graceful shutdown: refuses new items, flushes every key; `run()` returns once running batches finish.
    @inlinable public func shutdown() {
        let now = self.now
        state.withLock { state in
            var effects = Self.collect(state.machine.shutdown(now: now), into: &state)
            effects.wakeIfFinished(&state)
            return effects
        }.perform()
    }

    /// Items of `key` waiting for a batch (not counting suspended or running ones).
    @inlinable public func pendingCount(for key: Key) -> Int { state.withLock { $0.machine.pendingCount(key: key) } }

    /// Items of `key` suspended by backpressure, waiting for room.
    @inlinable public func suspendedCount(for key: Key) -> Int { state.withLock { $0.machine.suspendedCount(key: key) } }

    /// Batches of `key` running now.
    @inlinable public func runningBatchCount(for key: Key) -> Int { state.withLock { $0.machine.runningCount(key: key) } }

    // MARK: - Running

    /// Drives timers and handlers until graceful shutdown, then drains every key and returns.
    ///
    /// Cancelling `run()` is a hard stop: pending items fail with `CancellationError`, running handlers are cancelled.
    @inlinable public func run() async throws {
        state.withLock { state in
            precondition(!state.runStarted, "run() may be called only once")
            state.runStarted = true
        }
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                while let work = await nextWork() {
                    for item in work {
                        switch item {
                        case .worker:
                            group.addTask { await self.workerLoop() }
                        case .timer(let key, let instant):
                            group.addTask {
                                do { try await self.clock.sleep(until: self.clockInstant(instant), tolerance: .zero) } catch { return }
                                self.timerFired(key: key, at: instant)
                            }
                        }
                    }
                }
                group.cancelAll()  // sleeping timers of a finished batcher
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
    }

    /// Waits for work to start; nil once the batcher has shut down and drained.
    @inlinable func nextWork() async -> [Work]? {
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<[Work]?, Never>) in
                let (ready, effects) = state.withLock { state -> ([Work]??, Effects) in
                    var effects = Effects()
                    if Task.isCancelled { effects = Self.forceShutdown(&state) }
                    if !state.work.isEmpty {
                        defer { state.work = [] }
                        return (.some(state.work), effects)
                    }
                    if state.machine.isFinished { return (.some(nil), effects) }
                    state.runWaiter = continuation
                    return (nil, effects)
                }
                effects.perform()
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            state.withLock { state in Self.forceShutdown(&state) }.perform()
        }
    }

    @inlinable static func forceShutdown(_ state: inout State) -> Effects {
        var effects = collect(state.machine.forceShutdown(error: CancellationError()), into: &state)
        effects.wakeIfFinished(&state)
        return effects
    }

    @inlinable func timerFired(key: Key, at instant: BatcherInstant) {
        let now = self.now
        state.withLock { state in
            Self.collect(state.machine.timerFired(key: key, at: instant, now: now), into: &state)
        }.perform()
    }

    @inlinable func cancel(key: Key, id: UInt64) {
        let now = self.now
        let (waiter, effects) = state.withLock { state -> (Waiter?, Effects) in
            let (waiter, actions) = state.machine.cancel(key: key, id: id, now: now)
            return (waiter, Self.collect(actions, into: &state))
        }
        waiter?.resume(with: .failure(CancellationError()))
        effects.perform()
    }

    /// A long-lived worker: runs batches one after another. Under load it takes its next batch in the same lock as
    /// the end of the last one, so a busy key costs no task switch per batch.
    ///
    /// Under load (its last batch had at least 4 items) a worker yields once before cutting an eager batch, so the
    /// callers it just resumed can submit again and join it: batches grow to the number of callers instead of staying
    /// at a few items. A lone caller's batches stay at 1 item and pay no yield.
    @inlinable func workerLoop() async {
        var next: Ready? = nil
        var lastSize = 0
        while true {
            if next == nil { next = await nextBatch() }
            switch next {
            case nil: return
            case .batch(let batch):
                lastSize = batch.inputs.count
                next = await execute(batch)
            case .claim(let key):
                if lastSize >= 4 { await Task.yield() }
                next = claim(key)
            }
        }
    }

    /// Cuts the batch of a reserved eager slot now, taking everything that accumulated since the slot was reserved.
    /// Returns it, or other ready work when nothing was left.
    @inlinable func claim(_ key: Key) -> Ready? {
        let now = self.now
        let (next, effects) = state.withLock { state -> (Ready?, Effects) in
            if state.lastInstant < now { state.lastInstant = now }
            let (batch, actions) = state.machine.claim(key: key, now: now)
            var effects = Self.collect(actions, into: &state)
            if let batch { return (.batch(batch), effects) }
            let next = state.readyBatches.popFirst()
            if next == nil { state.lookingWorkers += 1 }
            effects.wakeIfFinished(&state)
            return (next, effects)
        }
        effects.perform()
        return next
    }

    /// Waits for a dispatched batch; nil once the batcher has finished.
    @inlinable func nextBatch() async -> Ready? {
        // Work that became ready while this worker was on its way back is taken without suspending.
        let ready = state.withLock { state -> Ready?? in
            guard let batch = state.readyBatches.popFirst() else { return nil }
            state.lookingWorkers -= 1
            return .some(batch)
        }
        if let ready { return ready }
        return await withUnsafeContinuation { (continuation: UnsafeContinuation<Ready?, Never>) in
            let ready = state.withLock { state -> Ready?? in
                state.lookingWorkers -= 1
                if let batch = state.readyBatches.popFirst() { return .some(batch) }
                if state.machine.isFinished { return .some(nil) }
                state.idleWorkers.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Runs one batch, delivers its results, and returns the next batch this worker should run (if any is ready).
    @inlinable func execute(_ batch: Machine.Batch) async -> Ready? {
        if logger.logLevel <= .debug {
            logger.debug(
                "flush",
                metadata: [
                    "batch.key": "\(batch.key.metricsLabel)", "batch.size": "\(batch.inputs.count)",
                    "batch.weight": "\(batch.weight)", "batch.reason": "\(batch.reason.rawValue)",
                ])
        }
        let started = clock.now
        let machineStarted = machineInstant(started)
        let results: [Result<Output, any Error>]
        if let executor {
            results = await executor.execute(
                key: batch.key, inputs: batch.inputs,
                deadlines: batch.deadlines.isEmpty ? nil : batch.deadlines.map { $0.map(clockInstant) },
                slots: splitSlots(batch.key))
        } else { do {
            let output = try await handler(batch.key, batch.inputs)
            if output.count == batch.inputs.count {
                results = output
            } else {
                let error = BatcherError(
                    .resultCountMismatch,
                    "the handler returned \(output.count) results for \(batch.inputs.count) inputs")
                results = Array(repeating: .failure(error), count: batch.inputs.count)
            }
        } catch {
            results = Array(repeating: .failure(error), count: batch.inputs.count)
        } }
        let now = clock.now
        let machineNow = machineInstant(now)
        let failed = results.reduce(0) { count, result in
            if case .failure = result { count + 1 } else { count }
        }
        let handlerDuration = started.duration(to: now)
        var pending = 0
        var limit = 0
        var predicted: Duration? = nil
        let (waiters, next, effects) = state.withLock { state -> ([Waiter?], Ready?, Effects) in
            let adapted = Self.adapt(
                &state, batch: batch, failed: failed, latency: handlerDuration, now: now, machineNow: machineNow)
            pending = state.machine.pendingCount(key: batch.key)
            limit = state.machine.batchSizeLimit(key: batch.key)
            if state.machine.configuration.learnsHandlerLatency {
                predicted = state.adaptation[batch.key]?.latency.predict(weight: batch.weight)
            }
            var (waiters, actions) = state.machine.batchFinished(key: batch.key, batchID: batch.id, now: machineNow)
            if let adapted { actions.merge(adapted) }
            // This worker keeps a batch or claim of its own; a claim is cut after the results are delivered, so the
            // items submitted meanwhile join it.
            let mine: Ready? =
                !actions.dispatch.isEmpty ? .batch(actions.dispatch.removeFirst())
                : !actions.claims.isEmpty ? .claim(actions.claims.removeFirst()) : nil
            var effects = Self.collect(actions, into: &state)
            let next = mine ?? state.readyBatches.popFirst()
            if next == nil { state.lookingWorkers += 1 }
            effects.wakeIfFinished(&state)
            return (waiters, next, effects)
        }
        effects.perform()
        metrics.batchFinished(
            label: batch.key.metricsLabel, reason: batch.reason, size: batch.inputs.count, weight: batch.weight,
            failed: failed, queueTimes: metrics.recordsPerItem ? batch.enqueuedAt.map { $0.duration(to: machineStarted) } : [],
            handlerDuration: handlerDuration, pending: pending,
            batchSizeLimit: limit, predictedLatency: predicted)
        // Callers last: a worker that goes idle right after resuming them leaves its thread to them (no cross-thread
        // wake-up for a lone caller).
        for (waiter, result) in zip(waiters, results) { waiter?.resume(with: result) }
        return next
    }

    /// The key's idle slots, lent to the split calls of a running batch so they stay within the concurrency limits.
    @inlinable func splitSlots(_ key: Key) -> BatchExecutor<Key, Input, Output, C>.SplitSlots {
        .init(
            lend: { wanted in self.state.withLock { $0.machine.lendSlots(key: key, wanted: wanted) } },
            giveBack: {
                let now = self.now
                self.state.withLock { state in
                    var effects = Self.collect(state.machine.returnSlot(key: key, now: now), into: &state)
                    effects.wakeIfFinished(&state)
                    return effects
                }.perform()
            })
    }

    /// Feeds a finished batch to its key's AIMD controller and latency fit and hands the results to the machine.
    @inlinable static func adapt(
        _ state: inout State, batch: Machine.Batch, failed: Int, latency: Duration, now: C.Instant,
        machineNow: BatcherInstant
    ) -> Machine.Actions? {
        let configuration = state.machine.configuration
        if state.adaptation.count >= 4096, state.adaptation[batch.key] == nil { state.adaptation.removeAll() }
        var adaptation = state.adaptation[batch.key] ?? KeyAdaptation(configuration: configuration)
        adaptation.recordHealth(size: batch.inputs.count, failed: failed, latency: latency, now: now)
        guard configuration.adaptiveBatchSize != nil || configuration.learnsHandlerLatency else {
            state.adaptation[batch.key] = adaptation
            return nil
        }
        var actions = Machine.Actions()
        if adaptation.size != nil {
            let limit = adaptation.size!.record(size: batch.inputs.count, failedItems: failed, latency: latency)
            actions = state.machine.setBatchSizeLimit(key: batch.key, limit, now: machineNow)
        }
        if configuration.learnsHandlerLatency {
            adaptation.latency.record(weight: batch.weight, latency: latency)
            if let predicted = adaptation.latency.predict(weight: configuration.maxBatchWeight ?? batch.weight) {
                actions.merge(state.machine.setPredictedLatency(key: batch.key, predicted, now: machineNow))
            }
        }
        state.adaptation[batch.key] = adaptation
        return actions
    }

    /// A snapshot of every key that has finished a batch (up to 4,096 keys), and of the whole batcher.
    public func health() -> HealthStatus<Key, C.Instant> {
        let breakerStates = executor.map { executor in executor.state.withLock { $0.breakers.mapValues(\.state) } } ?? [:]
        return state.withLock { state in
            var keys: [Key: HealthStatus<Key, C.Instant>.KeyStatus] = [:]
            for (key, adaptation) in state.adaptation {
                let breaker = breakerStates[key] ?? .closed
                keys[key] = .init(
                    isHealthy: breaker == .closed && adaptation.errorRate < 0.5, breakerState: breaker,
                    batchSizeLimit: state.machine.batchSizeLimit(key: key), errorRate: adaptation.errorRate,
                    averageLatency: adaptation.averageLatency, lastSuccessfulFlush: adaptation.lastSuccess,
                    pending: state.machine.pendingCount(key: key))
            }
            return HealthStatus(isHealthy: !state.machine.isFinished && keys.values.allSatisfy(\.isHealthy), keys: keys)
        }
    }

    /// The current batch-size limit of `key` (below `maxBatchSize` when the AIMD controller shrank it).
    @inlinable public func batchSizeLimit(for key: Key) -> Int { state.withLock { $0.machine.batchSizeLimit(key: key) } }

    /// The handler latency `key` predicts for a batch of `weight` (nil until it has finished a batch, or when
    /// `learnsHandlerLatency` is off).
    @inlinable public func predictedLatency(for key: Key, weight: Int) -> Duration? {
        state.withLock { $0.adaptation[key]?.latency.predict(weight: weight) }
    }

    // MARK: - Effects

    /// What to do outside the lock after an event.
    @usableFromInline struct Effects {
        @usableFromInline var cancelled = false
        @usableFromInline var wake: (UnsafeContinuation<[Work]?, Never>, [Work]?)?
        @usableFromInline var failed: [(waiter: Waiter, error: any Error)] = []
        /// Batches handed to idle workers (nil: the batcher finished, the worker ends).
        @usableFromInline var handoffs: [(UnsafeContinuation<Ready?, Never>, Ready?)] = []

        @inlinable init(cancelled: Bool = false) { self.cancelled = cancelled }

        @inlinable mutating func merge(_ other: Effects) {
            if let wake = other.wake { self.wake = wake }
            failed.append(contentsOf: other.failed)
            handoffs.append(contentsOf: other.handoffs)
        }

        /// Wakes the run loop and idle workers with `nil` if the batcher has drained.
        @inlinable mutating func wakeIfFinished(_ state: inout State) {
            guard state.machine.isFinished else { return }
            for worker in state.idleWorkers { handoffs.append((worker, nil)) }
            state.idleWorkers = []
            guard wake == nil, state.work.isEmpty, let waiter = state.runWaiter else { return }
            state.runWaiter = nil
            wake = (waiter, nil)
        }

        @inlinable consuming func perform() {
            for (worker, batch) in handoffs { worker.resume(returning: batch) }
            if let (continuation, work) = wake { continuation.resume(returning: work) }
            for (waiter, error) in failed { waiter.resume(with: .failure(error)) }
        }
    }

    /// Moves the machine's actions into the work queue (waking the run loop if it waits).
    @inlinable static func collect(_ actions: consuming Machine.Actions, into state: inout State) -> Effects {
        var effects = Effects()
        effects.failed = actions.failed
        guard !actions.dispatch.isEmpty || !actions.claims.isEmpty || !actions.timers.isEmpty else { return effects }
        func hand(_ ready: Ready) {
            if let worker = state.idleWorkers.popLast() {
                effects.handoffs.append((worker, ready))
                return
            }
            state.readyBatches.append(ready)
            // A new worker only when the workers about to look for work cannot take it all (a lone caller's item
            // then costs no extra task while the worker that answered it is on its way back).
            if state.readyBatches.count > state.lookingWorkers,
                state.workers < state.machine.configuration.maxTotalConcurrentBatches
            {
                state.workers += 1
                state.lookingWorkers += 1
                state.work.append(.worker)
            }
        }
        for batch in actions.dispatch { hand(.batch(batch)) }
        for key in actions.claims { hand(.claim(key)) }
        for timer in actions.timers { state.work.append(.timer(timer.key, timer.at)) }
        if !state.work.isEmpty, let waiter = state.runWaiter {
            state.runWaiter = nil
            effects.wake = (waiter, state.work)
            state.work = []
        }
        return effects
    }
}

/// Gathers the results of `submit(contentsOf:)` and resumes its caller once all have arrived.
///
/// It holds a reference on itself from creation until its last result arrives, so the unretained references of the
/// items' waiters stay valid.
@usableFromInline final class BulkCollector<Output: Sendable>: Sendable {
    @usableFromInline struct State {
        @usableFromInline var results: [Result<Output, any Error>?]
        @usableFromInline var remaining: Int

        @inlinable init(results: [Result<Output, any Error>?], remaining: Int) {
            self.results = results
            self.remaining = remaining
        }
    }
    @usableFromInline let state: Mutex<State>
    @usableFromInline let continuation: UnsafeContinuation<[Result<Output, any Error>], Never>

    /// A collector of `count` results (at least 1), alive until the last one arrives.
    @inlinable static func make(
        count: Int, continuation: UnsafeContinuation<[Result<Output, any Error>], Never>
    ) -> BulkCollector {
        precondition(count > 0)
        let collector = BulkCollector(count: count, continuation: continuation)
        _ = Unmanaged.passRetained(collector)  // released by the last `deliver`
        return collector
    }

    @inlinable init(count: Int, continuation: UnsafeContinuation<[Result<Output, any Error>], Never>) {
        self.state = Mutex(State(results: Array(repeating: nil, count: count), remaining: count))
        self.continuation = continuation
    }

    /// Records the result of input `index`; the last one resumes the caller and returns true: the caller then
    /// releases the collector's reference on itself (``make(count:continuation:)``).
    @discardableResult @inlinable func deliver(_ result: Result<Output, any Error>, at index: Int) -> Bool {
        let done = state.withLock { state -> [Result<Output, any Error>]? in
            guard state.results[index] == nil else { return nil }
            state.results[index] = result
            state.remaining -= 1
            return state.remaining == 0 ? state.results.map { $0! } : nil
        }
        guard let done else { return false }
        continuation.resume(returning: done)
        return true
    }
}
