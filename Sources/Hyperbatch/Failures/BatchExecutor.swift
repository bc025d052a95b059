import Foundation
import Logging
import Synchronization

/// Runs a handler on a batch and isolates failures: retries transient ones with backoff on the clock `C`, bisects
/// poison ones until the bad items are alone, fails fatal ones at once, keeps a circuit breaker per key and hands
/// finally failed items to the dead-letter sink.
///
/// Item-level failures (`Result.failure` from the handler) are final for their item and never retried or counted by
/// the breaker. With one poison item among n, a split in f parts per level costs at most `f·ceil(log_f(n))` calls
/// beyond the first (16 for n = 256 with f = 2 or 4, 32 with f = 16); k poison items cost O(k log n). The fanout is
/// ``FailurePolicy/bisectionFanout`` or, with ``FailurePolicy/adaptiveFanout``, chosen per split from the key's
/// measured call latency (fewer levels, more calls: see ``AdaptiveFanout``). A ``Batcher`` given a ``FailurePolicy``
/// runs every batch through one of these.
///
/// ```swift
/// let executor = BatchExecutor<String, Int, Int, ContinuousClock>(policy: .init(), clock: .continuous) { key, xs in
///     try await callDownstream(xs)
/// }
/// let results = await executor.execute(key: "k", inputs: [1, 2, 3])
/// ```
public final class BatchExecutor<Key: BatchKey, Input: Sendable, Output: Sendable, C: Clock>: Sendable
where C.Duration == Duration {
    /// The handler: one result per input, in input order. Throwing is a batch-level failure.
    public typealias Handler = @Sendable (Key, [Input]) async throws -> [Result<Output, any Error>]

    struct State {
        var budget: RetryBudget
        var breakers: [Key: CircuitBreaker<C.Instant>] = [:]
        /// Per key, handler latency against item count (only with ``FailurePolicy/adaptiveFanout``).
        var latency: [Key: LatencyModel] = [:]
        /// Per key, moving average of how far apart the first calls of a split's concurrent parts end, per part
        /// (seconds): the start-up, timer and wake-up work each further part adds.
        var partDelay: [Key: Double] = [:]
        var statistics = FailureStatistics()
    }

    /// Where a part's items sit in its batch, ascending: a range until a deadline removes items from the middle.
    enum Positions: Sendable {
        case range(Range<Int>)
        case list([Int])

        var count: Int {
            switch self {
            case .range(let r): r.count
            case .list(let l): l.count
            }
        }

        subscript(offset: Int) -> Int {
            switch self {
            case .range(let r): r.lowerBound + offset
            case .list(let l): l[offset]
            }
        }

        /// The positions at `offsets` (a range of offsets into this part).
        func slice(_ offsets: Range<Int>) -> Positions {
            switch self {
            case .range(let r): .range(r.lowerBound + offsets.lowerBound..<r.lowerBound + offsets.upperBound)
            case .list(let l): .list(Array(l[offsets]))
            }
        }

        /// The positions at `offsets` (ascending offsets into this part).
        func keeping(_ offsets: [Int]) -> Positions { .list(offsets.map { self[$0] }) }
    }

    /// Results of a part: the handler's, in order, or one error for every item.
    enum Outcome: Sendable {
        case results([Result<Output, any Error>])
        case failure(any Error)
    }

    /// What part of a batch produced.
    struct Partial: Sendable {
        var chunks: [(positions: Positions, outcome: Outcome)] = []
        var deadLetters: [DeadLetter] = []
        var succeededCalls = 0
        /// A transient or fatal failure was given up on.
        var unresolved = false
        var cancelled = false

        mutating func merge(_ other: Partial) {
            chunks.append(contentsOf: other.chunks)
            deadLetters.append(contentsOf: other.deadLetters)
            succeededCalls += other.succeededCalls
            unresolved = unresolved || other.unresolved
            cancelled = cancelled || other.cancelled
        }

        /// One result per position of a batch of `count`, in order.
        func results(count: Int) -> [Result<Output, any Error>] {
            // A batch that succeeded at once: the handler's array as is.
            if chunks.count == 1, case .range(let r) = chunks[0].positions, r == 0..<count,
                case .results(let results) = chunks[0].outcome
            {
                return results
            }
            // Split parts (in order unless a deadline took items out): concatenate.
            let starts = chunks.map { $0.positions.count > 0 ? $0.positions[0] : -1 }
            let sorted = starts.indices.filter { starts[$0] >= 0 }.sorted { starts[$0] < starts[$1] }.map { chunks[$0] }
            var end = 0
            var contiguous = true
            for chunk in sorted {
                guard case .range(let r) = chunk.positions, r.lowerBound == end else {
                    contiguous = false
                    break
                }
                end = r.upperBound
            }
            if contiguous && end == count {
                var out: [Result<Output, any Error>] = []
                out.reserveCapacity(count)
                for chunk in sorted {
                    switch chunk.outcome {
                    case .results(let results): out.append(contentsOf: results)
                    case .failure(let error): out.append(contentsOf: repeatElement(.failure(error), count: chunk.positions.count))
                    }
                }
                return out
            }
            var out = [Result<Output, any Error>?](repeating: nil, count: count)
            for chunk in chunks {
                for offset in 0..<chunk.positions.count {
                    switch chunk.outcome {
                    case .results(let results): out[chunk.positions[offset]] = results[offset]
                    case .failure(let error): out[chunk.positions[offset]] = .failure(error)
                    }
                }
            }
            return out.map { $0 ?? .failure(CancellationError()) }
        }
    }

    /// How splits of one batch choose their fanout: fixed, or from the key's latency fit read at the first split.
    enum FanoutPlan: Sendable {
        case fixed(Int)
        case fitted(perItem: Double, fixed: Double, perPart: Double, AdaptiveFanout)
    }

    /// What the parts of one batch share.
    struct Context: Sendable {
        let key: Key
        let deadlines: [C.Instant?]?
        let slots: SplitSlots?
        /// Handler calls made by splits (only with `maxSplitCallsPerBatch`).
        let splitCalls: SplitCalls?
        /// When the batch's first call started (only with a dead-letter sink).
        let firstAttemptAt: Date?
        /// Set at the first split, inherited by the parts.
        var plan: FanoutPlan? = nil
        /// The key's metric objects, looked up at the first failure and inherited by the parts.
        var keyMetrics: HyperbatchMetrics.Key? = nil
    }

    /// Idle handler slots of the key that split calls may borrow (a ``Batcher`` lends its key's free slots, so split
    /// calls stay within `maxConcurrentBatches`).
    @usableFromInline struct SplitSlots: Sendable {
        /// Lends up to the given number of slots; returns how many were lent.
        @usableFromInline let lend: @Sendable (Int) -> Int
        /// Gives one lent slot back.
        @usableFromInline let giveBack: @Sendable () -> Void

        @usableFromInline init(lend: @escaping @Sendable (Int) -> Int, giveBack: @escaping @Sendable () -> Void) {
            self.lend = lend
            self.giveBack = giveBack
        }
    }

    /// The policy.
    public let policy: FailurePolicy
    let clock: C
    let handler: Handler
    let logger: Logger
    let state: Mutex<State>
    let metrics: HyperbatchMetrics

    /// Creates an executor.
    ///
    /// - Parameters:
    ///   - policy: classification, retry, bisection, breaker and dead-letter settings.
    ///   - clock: the clock backoff sleeps and the breaker's recovery timeout use.
    ///   - logger: receives info logs on retries given up and breakers opening.
    ///   - handler: runs one batch (or part of one).
    public convenience init(
        policy: FailurePolicy = .init(), clock: C, logger: Logger = Logger(label: "hyperbatch.executor"),
        handler: @escaping Handler
    ) {
        self.init(policy: policy, clock: clock, logger: logger, metrics: HyperbatchMetrics(), handler: handler)
    }

    @usableFromInline init(
        policy: FailurePolicy, clock: C, logger: Logger, metrics: HyperbatchMetrics, handler: @escaping Handler
    ) {
        self.policy = policy
        self.clock = clock
        self.handler = handler
        self.logger = logger
        self.metrics = metrics
        self.state = Mutex(State(budget: policy.retry.makeBudget()))
    }

    /// Counters since creation.
    public var statistics: FailureStatistics { state.withLock { $0.statistics } }

    /// Retry tokens left in the budget.
    public var retryTokens: Double { state.withLock { $0.budget.tokens } }

    /// The breaker state of `key` (`closed` when the policy has no breaker or the key never failed).
    public func breakerState(for key: Key) -> CircuitBreakerState {
        state.withLock { $0.breakers[key]?.state ?? .closed }
    }

    /// Runs `inputs` of `key` and returns one result per input, in order. Never throws: every failure is per item.
    ///
    /// - Parameter deadlines: per input, when its caller stops caring (nil entries or a nil array: no deadline);
    ///   no retry is made for an item past its deadline.
    ///
    /// Run alone (not by a ``Batcher``), the parts of a split batch all run concurrently.
    public func execute(key: Key, inputs: [Input], deadlines: [C.Instant?]? = nil) async -> [Result<Output, any Error>] {
        await execute(key: key, inputs: inputs, deadlines: deadlines, slots: nil)
    }

    /// Runs `inputs`; the parts of a split batch run concurrently only on slots `slots` lends (the rest one after
    /// another on the batch's own slot).
    @usableFromInline func execute(
        key: Key, inputs: [Input], deadlines: [C.Instant?]?, slots: SplitSlots?
    ) async -> [Result<Output, any Error>] {
        guard !inputs.isEmpty else { return [] }
        let permission = state.withLock { state -> CircuitBreaker<C.Instant>.Permission in
            state.statistics.batches += 1
            guard let configuration = policy.circuitBreaker else { return .allow }
            let now = clock.now
            if state.breakers.count >= 4096, state.breakers[key] == nil {
                // Bound memory when keys are many: forget breakers with nothing to remember.
                state.breakers = state.breakers.filter { $0.value.state != .closed || $0.value.consecutiveFailures > 0 }
            }
            let permission = state.breakers[key, default: CircuitBreaker(configuration: configuration)].acquire(now: now)
            if permission == .reject { state.statistics.circuitRejections += 1 }
            return permission
        }
        if policy.circuitBreaker != nil {
            let m = metrics.key(key.metricsLabel)
            if permission == .reject { m.circuitRejections.increment() }
            m.breaker(permission == .reject ? .open : permission == .probe ? .halfOpen : .closed)
        }
        var partial: Partial
        if permission == .reject {
            switch policy.circuitBreaker?.whenOpen ?? .failFast {
            case .failFast:
                let error = BatcherError(
                    .circuitOpen, "the circuit breaker of key '\(key.metricsLabel)' is open; the batch was not sent")
                return Array(repeating: .failure(error), count: inputs.count)
            case .degradeToSingleItems:
                partial = await runSingles(key: key, inputs: inputs)
            }
        } else {
            let context = Context(
                key: key, deadlines: deadlines, slots: slots,
                splitCalls: policy.maxSplitCallsPerBatch == nil ? nil : SplitCalls(),
                firstAttemptAt: policy.deadLetters == nil ? nil : Date())
            partial = await run(inputs: inputs, positions: .range(0..<inputs.count), attempts: 0, context: context)
            if policy.circuitBreaker != nil {
                let outcome: CircuitBreaker<C.Instant>.Outcome =
                    partial.cancelled ? .neutral
                    : partial.unresolved ? .failure
                    : partial.succeededCalls > 0 ? .success : .neutral
                let now = clock.now
                let (opened, after) = state.withLock { state -> (Bool, CircuitBreakerState) in
                    guard var breaker = state.breakers[key] else { return (false, .closed) }
                    let before = breaker.state
                    breaker.record(outcome, permission: permission, now: now)
                    state.breakers[key] = breaker
                    return (before != .open && breaker.state == .open, breaker.state)
                }
                metrics.key(key.metricsLabel).breaker(after)
                if opened {
                    logger.info("circuit breaker opened", metadata: ["batch.key": "\(key.metricsLabel)"])
                }
            }
        }
        if !partial.deadLetters.isEmpty, let sink = policy.deadLetters {
            state.withLock { $0.statistics.deadLetters += partial.deadLetters.count }
            metrics.key(key.metricsLabel).deadLetters.increment(by: partial.deadLetters.count)
            await sink.record(partial.deadLetters)
        }
        return partial.results(count: inputs.count)
    }

    /// Handler calls made by splits of one batch, shared by its parts (for `maxSplitCallsPerBatch`).
    final class SplitCalls: Sendable {
        let count = Atomic<Int>(0)
    }

    /// The parts of a split waiting for a lane, what they produced, and when their first calls ended.
    final class Pieces: Sendable {
        let pieces: [([Input], Positions)]
        let next = Atomic<Int>(0)
        let ends = Mutex<(first: C.Instant?, last: C.Instant?)>((nil, nil))
        /// What the parts run by other lanes produced.
        let collected = Mutex(Partial())

        /// A part's first call ended at `instant`.
        func ended(at instant: C.Instant) {
            ends.withLock { ends in
                if ends.first.map({ instant < $0 }) ?? true { ends.first = instant }
                if ends.last.map({ instant > $0 }) ?? true { ends.last = instant }
            }
        }

        init(_ pieces: [([Input], Positions)]) { self.pieces = pieces }

        /// The next part.
        func take() -> (inputs: [Input], positions: Positions)? {
            let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
            return index < pieces.count ? (pieces[index].0, pieces[index].1) : nil
        }
    }

    /// Runs part of a batch: retries while transient, splits when poison. `attempts`: calls its items already had;
    /// `piece`: the split this part belongs to, told when the part's first call ends (only while learning).
    func run(
        inputs: [Input], positions: Positions, attempts: Int, context: Context, piece: Pieces? = nil
    ) async -> Partial {
        var inputs = inputs
        var positions = positions
        var attempts = attempts
        var context = context
        var partial = Partial()
        var retry = 0
        let key = context.key
        let learns = policy.adaptiveFanout != nil
        while true {
            attempts += 1
            state.withLock { state in
                state.statistics.handlerCalls += 1
                if retry == 0 { state.budget.recordCall() }
            }
            let started = learns ? clock.now : nil
            let error: any Error
            var kind: BatchFailureKind
            do {
                let output = try await handler(key, inputs)
                if output.count == inputs.count {
                    if let started { recordLatency(key, items: inputs.count, since: started, piece: retry == 0 ? piece : nil) }
                    var itemErrors = 0
                    for result in output {
                        if case .failure = result { itemErrors += 1 }
                    }
                    if itemErrors > 0 { state.withLock { $0.statistics.itemErrors += itemErrors } }
                    partial.chunks.append((positions, .results(output)))
                    partial.succeededCalls += 1
                    return partial
                }
                error = BatcherError(
                    .resultCountMismatch, "the handler returned \(output.count) results for \(inputs.count) inputs")
                kind = .fatal
            } catch let thrown {
                error = thrown
                kind = policy.classifier(thrown)
                // A poison failure ran the whole part: its time says what a call of this size costs.
                if kind == .poison, let started {
                    recordLatency(key, items: inputs.count, since: started, piece: retry == 0 ? piece : nil)
                }
            }
            let keyMetrics = context.keyMetrics ?? metrics.key(key.metricsLabel)
            context.keyMetrics = keyMetrics
            keyMetrics.batchFailed(kind)
            if error is CancellationError || Task.isCancelled {
                partial.cancelled = true
                partial.chunks.append((positions, .failure(error)))
                return partial
            }
            if kind == .transient {
                retry += 1
                if retry >= policy.retry.maxAttempts {
                    kind = .fatal
                } else {
                    let wake = clock.now.advanced(by: policy.retry.backoff(retry: retry))
                    // Items whose deadline comes before the retry would run fail now, with the handler's error.
                    if let deadlines = context.deadlines {
                        var expired: [Int] = []
                        var keep: [Int] = []
                        for offset in 0..<positions.count {
                            if let deadline = deadlines[positions[offset]], deadline <= wake {
                                expired.append(offset)
                            } else {
                                keep.append(offset)
                            }
                        }
                        if !expired.isEmpty {
                            fail(
                                positions.keeping(expired), inputs: expired.map { inputs[$0] }, attempts: attempts,
                                error: error, kind: kind, context: context, into: &partial)
                            partial.unresolved = true
                            positions = positions.keeping(keep)
                            inputs = keep.map { inputs[$0] }
                            if inputs.isEmpty { return partial }
                        }
                    }
                    let granted = state.withLock { state -> Bool in
                        guard state.budget.tryRetry() else {
                            state.statistics.retriesDenied += 1
                            return false
                        }
                        state.statistics.retries += 1
                        return true
                    }
                    if granted {
                        keyMetrics.retries.increment()
                        do {
                            try await clock.sleep(until: wake, tolerance: nil)
                        } catch {
                            partial.cancelled = true
                            partial.chunks.append((positions, .failure(error)))
                            return partial
                        }
                        continue
                    }
                    logger.info(
                        "retry budget spent", metadata: ["batch.key": "\(key.metricsLabel)", "error": "\(error)"])
                    kind = .fatal
                }
            }
            if kind == .poison, inputs.count > 1, policy.bisect,
                let (parts, lent) = splitPlan(count: inputs.count, context: &context)
            {
                state.withLock { $0.statistics.bisections += 1 }
                keyMetrics.bisections.increment()
                let count = inputs.count
                let pieces = (0..<parts).map { p in
                    let offsets = p * count / parts..<(p + 1) * count / parts
                    return (Array(inputs[offsets]), positions.slice(offsets))
                }
                let context = context
                let attempts = attempts
                // This task runs one lane; each lent slot runs another. Lanes take parts one after another, so the
                // key never has more calls in flight than slots.
                if lent > 0 {
                    let queue = Pieces(pieces)
                    // A discarding group: lanes hand their results to the queue, so this task wakes once when all are
                    // done rather than once per lane.
                    await withDiscardingTaskGroup { group in
                        for _ in 0..<lent {
                            group.addTask {
                                while let piece = queue.take() {
                                    let piecePartial = await self.run(
                                        inputs: piece.inputs, positions: piece.positions, attempts: attempts,
                                        context: context, piece: learns ? queue : nil)
                                    queue.collected.withLock { $0.merge(piecePartial) }
                                }
                                context.slots?.giveBack()
                            }
                        }
                        while let piece = queue.take() {
                            partial.merge(
                                await run(
                                    inputs: piece.inputs, positions: piece.positions, attempts: attempts,
                                    context: context, piece: learns ? queue : nil))
                        }
                    }
                    partial.merge(queue.collected.withLock { $0 })
                    // All parts ran at once: how far apart their first calls ended is what each further part costs.
                    if learns, lent + 1 >= parts, case (let first?, let last?) = queue.ends.withLock({ $0 }) {
                        let perPart = first.duration(to: last).inSeconds / Double(parts - 1)
                        state.withLock { state in
                            state.partDelay[key] = state.partDelay[key].map { $0 * 0.8 + perPart * 0.2 } ?? perPart
                        }
                    }
                } else {
                    for (pieceInputs, piecePositions) in pieces {
                        partial.merge(
                            await run(
                                inputs: pieceInputs, positions: piecePositions, attempts: attempts, context: context))
                    }
                }
                return partial
            }
            // Given up: a lone poison item, a fatal failure, or a transient one out of attempts or budget.
            if kind != .poison || inputs.count > 1 { partial.unresolved = true }
            fail(
                positions, inputs: inputs, attempts: attempts, error: error,
                kind: kind == .poison ? .poison : originalKind(error), context: context, into: &partial)
            return partial
        }
    }

    /// Records how long a call of `items` items took in the key's latency fit, and how late its part started.
    private func recordLatency(_ key: Key, items: Int, since started: C.Instant, piece: Pieces?) {
        let now = clock.now
        piece?.ended(at: now)
        let latency = started.duration(to: now)
        state.withLock { state in
            if state.latency.count >= 4096, state.latency[key] == nil {
                state.latency.removeAll()
                state.partDelay.removeAll()
            }
            state.latency[key, default: LatencyModel()].record(weight: items, latency: latency)
        }
    }

    /// What the executor learned about `key`'s calls to choose a split's fanout (``FailurePolicy/adaptiveFanout``):
    /// the fit `t ≈ perItem·items + perCall` and how much later each further concurrent part of a split finishes;
    /// nil before a call of `key` was timed.
    public func learnedCosts(for key: Key) -> (perItem: Duration, perCall: Duration, perPart: Duration)? {
        let (fit, perPart) = state.withLock { ($0.latency[key]?.coefficients, $0.partDelay[key] ?? 0) }
        guard let (a, b) = fit else { return nil }
        return (.seconds(a), .seconds(b), .seconds(perPart))
    }

    /// The key's fitted handler cost per item and per call (seconds), if the executor learned any.
    func latencyCoefficients(for key: Key) -> (perItem: Double, fixed: Double)? {
        state.withLock { $0.latency[key]?.coefficients }.map { (perItem: $0.perWeight, fixed: $0.fixed) }
    }

    /// How the splits of a batch of `key` choose their fanout: from the latency fit when there is one.
    private func fanoutPlan(_ key: Key) -> FanoutPlan {
        guard let choice = policy.adaptiveFanout else { return .fixed(policy.bisectionFanout) }
        let (fit, perPart) = state.withLock { ($0.latency[key]?.coefficients, $0.partDelay[key] ?? 0) }
        guard let (a, b) = fit, a + b > 0 else { return .fixed(policy.bisectionFanout) }
        return .fitted(perItem: a, fixed: b, perPart: perPart, choice)
    }

    /// The parts to split a failed part of `count` items into and the slots lent to run them (lanes besides this
    /// task's); nil when `maxSplitCallsPerBatch` forbids the split. The first split of a batch fixes its plan.
    private func splitPlan(count: Int, context: inout Context) -> (parts: Int, lent: Int)? {
        let plan = context.plan ?? fanoutPlan(context.key)
        context.plan = plan
        let concurrent = policy.concurrentBisection
        switch plan {
        case .fixed(let fanout):
            let parts = min(max(2, fanout), count)
            guard splitAllowed(parts, context.splitCalls) else { return nil }
            let lent = !concurrent ? 0 : context.slots.map { $0.lend(parts - 1) } ?? parts - 1
            return (parts, lent)
        case .fitted(let perItem, let fixed, let perPart, let choice):
            let widest = min(max(2, choice.maxFanout), count)
            var lent = !concurrent ? 0 : context.slots.map { $0.lend(widest - 1) } ?? widest - 1
            let lanes = concurrent && context.slots == nil ? Int.max : lent + 1
            let parts = choice.fanout(items: count, perItem: perItem, fixed: fixed, perPart: perPart, lanes: lanes)
            while lent > parts - 1 {
                context.slots?.giveBack()
                lent -= 1
            }
            guard splitAllowed(parts, context.splitCalls) else {
                for _ in 0..<lent { context.slots?.giveBack() }
                return nil
            }
            return (parts, lent)
        }
    }

    /// Whether splitting in `parts` stays within `maxSplitCallsPerBatch` (reserving its calls if so).
    private func splitAllowed(_ parts: Int, _ splitCalls: SplitCalls?) -> Bool {
        guard let limit = policy.maxSplitCallsPerBatch, let splitCalls else { return true }
        let after = splitCalls.count.add(parts, ordering: .relaxed).newValue
        if after <= limit { return true }
        splitCalls.count.subtract(parts, ordering: .relaxed)
        return false
    }

    /// The classifier's verdict, for dead letters of a batch given up as fatal after transient retries.
    private func originalKind(_ error: any Error) -> BatchFailureKind {
        if error is BatcherError, (error as! BatcherError).code == .resultCountMismatch { return .fatal }
        return policy.classifier(error)
    }

    private func fail(
        _ positions: Positions, inputs: [Input], attempts: Int, error: any Error, kind: BatchFailureKind,
        context: Context, into partial: inout Partial
    ) {
        state.withLock { $0.statistics.failedItems += inputs.count }
        partial.chunks.append((positions, .failure(error)))
        guard policy.deadLetters != nil else { return }
        let now = Date()
        for input in inputs {
            partial.deadLetters.append(
                DeadLetter(
                    key: context.key.metricsLabel, input: String(describing: input), error: String(describing: error),
                    failure: kind, attempts: attempts, firstAttemptAt: context.firstAttemptAt ?? now, failedAt: now))
        }
    }

    /// An open breaker's degraded mode: each item alone, one call after another, no retry or bisection.
    func runSingles(key: Key, inputs: [Input]) async -> Partial {
        var partial = Partial()
        let context = Context(key: key, deadlines: nil, slots: nil, splitCalls: nil, firstAttemptAt: nil)
        for (index, input) in inputs.enumerated() {
            let position = Positions.range(index..<index + 1)
            state.withLock { $0.statistics.handlerCalls += 1 }
            do {
                let output = try await handler(key, [input])
                if output.count == 1 {
                    partial.chunks.append((position, .results(output)))
                    partial.succeededCalls += 1
                    if case .failure = output[0] { state.withLock { $0.statistics.itemErrors += 1 } }
                } else {
                    let error = BatcherError(.resultCountMismatch, "the handler returned \(output.count) results for 1 input")
                    fail(position, inputs: [input], attempts: 1, error: error, kind: .fatal, context: context, into: &partial)
                }
            } catch {
                if error is CancellationError || Task.isCancelled {
                    partial.chunks.append((position, .failure(error)))
                    continue
                }
                fail(
                    position, inputs: [input], attempts: 1, error: error, kind: policy.classifier(error),
                    context: context, into: &partial)
            }
        }
        return partial
    }
}
