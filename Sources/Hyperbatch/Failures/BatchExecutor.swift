import Foundation
import Logging
import Synchronization

/// Runs a handler on a batch and isolates failures: retries transient ones with backoff on the clock `C`, bisects
/// poison ones until the bad items are alone, fails fatal ones at once, keeps a circuit breaker per key and hands
/// finally failed items to the dead-letter sink.
///
/// Item-level failures (`Result.failure` from the handler) are final for their item and never retried or counted by
/// the breaker. With one poison item among n, bisection costs at most `2·log2(n)` calls beyond the first;
/// k poison items cost O(k log n). A ``Batcher`` given a ``FailurePolicy`` runs every batch through one of these.
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
        var statistics = FailureStatistics()
    }

    /// One item on its way through retries and bisection.
    struct Entry: Sendable {
        var index: Int
        var deadline: C.Instant?
        var attempts = 0
        var firstAttemptAt: Date? = nil
    }

    /// What part of a batch produced.
    struct Partial: Sendable {
        var results: [(Int, Result<Output, any Error>)] = []
        var deadLetters: [DeadLetter] = []
        var succeededCalls = 0
        /// A transient or fatal failure was given up on.
        var unresolved = false
        var cancelled = false

        mutating func merge(_ other: Partial) {
            results.append(contentsOf: other.results)
            deadLetters.append(contentsOf: other.deadLetters)
            succeededCalls += other.succeededCalls
            unresolved = unresolved || other.unresolved
            cancelled = cancelled || other.cancelled
        }
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
            let entries = inputs.indices.map { Entry(index: $0, deadline: deadlines?[$0]) }
            partial = await run(key: key, inputs: inputs, entries: entries, splitCalls: SplitCalls(), slots: slots)
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
        var results = [Result<Output, any Error>?](repeating: nil, count: inputs.count)
        for (index, result) in partial.results { results[index] = result }
        if !partial.deadLetters.isEmpty, let sink = policy.deadLetters {
            state.withLock { $0.statistics.deadLetters += partial.deadLetters.count }
            metrics.key(key.metricsLabel).deadLetters.increment(by: partial.deadLetters.count)
            await sink.record(partial.deadLetters)
        }
        return results.map { $0 ?? .failure(CancellationError()) }
    }

    /// Runs part of a batch: retries while transient, bisects when poison.
    /// Handler calls made by splits of one batch, shared by its parts (for `maxSplitCallsPerBatch`).
    final class SplitCalls: Sendable {
        let count = Atomic<Int>(0)
    }

    /// The parts of a split waiting for a lane.
    final class Pieces: Sendable {
        let pieces: [([Input], [Entry])]
        let next = Atomic<Int>(0)

        init(_ pieces: [([Input], [Entry])]) { self.pieces = pieces }

        func take() -> ([Input], [Entry])? {
            let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
            return index < pieces.count ? pieces[index] : nil
        }
    }

    func run(key: Key, inputs: [Input], entries: [Entry], splitCalls: SplitCalls, slots: SplitSlots?) async -> Partial {
        var inputs = inputs
        var entries = entries
        var partial = Partial()
        var retry = 0
        while true {
            let started = Date()
            for i in entries.indices {
                entries[i].attempts += 1
                if entries[i].firstAttemptAt == nil { entries[i].firstAttemptAt = started }
            }
            state.withLock { state in
                state.statistics.handlerCalls += 1
                if retry == 0 { state.budget.recordCall() }
            }
            let error: any Error
            var kind: BatchFailureKind
            do {
                let output = try await handler(key, inputs)
                if output.count == inputs.count {
                    var itemErrors = 0
                    for (entry, result) in zip(entries, output) {
                        if case .failure = result { itemErrors += 1 }
                        partial.results.append((entry.index, result))
                    }
                    partial.succeededCalls += 1
                    if itemErrors > 0 { state.withLock { $0.statistics.itemErrors += itemErrors } }
                    return partial
                }
                error = BatcherError(
                    .resultCountMismatch, "the handler returned \(output.count) results for \(inputs.count) inputs")
                kind = .fatal
            } catch let thrown {
                error = thrown
                kind = policy.classifier(thrown)
            }
            metrics.key(key.metricsLabel).batchFailed(kind)
            if error is CancellationError || Task.isCancelled {
                partial.cancelled = true
                for entry in entries { partial.results.append((entry.index, .failure(error))) }
                return partial
            }
            if kind == .transient {
                retry += 1
                if retry >= policy.retry.maxAttempts {
                    kind = .fatal
                } else {
                    let wake = clock.now.advanced(by: policy.retry.backoff(retry: retry))
                    // Items whose deadline comes before the retry would run fail now, with the handler's error.
                    let expired = entries.indices.filter { i in entries[i].deadline.map { $0 <= wake } ?? false }
                    if !expired.isEmpty {
                        fail(expired.map { entries[$0] }, key: key, inputs: expired.map { inputs[$0] },
                             error: error, kind: kind, into: &partial)
                        partial.unresolved = true
                        let keep = Set(entries.indices).subtracting(expired).sorted()
                        entries = keep.map { entries[$0] }
                        inputs = keep.map { inputs[$0] }
                        if entries.isEmpty { return partial }
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
                        metrics.key(key.metricsLabel).retries.increment()
                        do {
                            try await clock.sleep(until: wake, tolerance: nil)
                        } catch {
                            partial.cancelled = true
                            for entry in entries { partial.results.append((entry.index, .failure(error))) }
                            return partial
                        }
                        continue
                    }
                    logger.info(
                        "retry budget spent", metadata: ["batch.key": "\(key.metricsLabel)", "error": "\(error)"])
                    kind = .fatal
                }
            }
            if kind == .poison, entries.count > 1, policy.bisect, splitAllowed(entries.count, splitCalls) {
                state.withLock { $0.statistics.bisections += 1 }
                metrics.key(key.metricsLabel).bisections.increment()
                let parts = min(max(2, policy.bisectionFanout), entries.count)
                let bounds = (0...parts).map { $0 * entries.count / parts }
                let pieces = (0..<parts).map { p in
                    (Array(inputs[bounds[p]..<bounds[p + 1]]), Array(entries[bounds[p]..<bounds[p + 1]]))
                }
                // The batch's own slot runs one lane; each slot lent by the batcher runs another. Lanes take parts
                // one after another, so the key never has more calls in flight than slots.
                let extraLanes =
                    !policy.concurrentBisection ? 0 : slots.map { $0.lend(pieces.count - 1) } ?? pieces.count - 1
                if extraLanes > 0 {
                    let queue = Pieces(pieces)
                    await withTaskGroup(of: Partial.self) { group in
                        for lane in 0...extraLanes {
                            group.addTask {
                                var lanePartial = Partial()
                                while let (pieceInputs, pieceEntries) = queue.take() {
                                    lanePartial.merge(
                                        await self.run(
                                            key: key, inputs: pieceInputs, entries: pieceEntries, splitCalls: splitCalls,
                                            slots: slots))
                                }
                                if lane > 0 { slots?.giveBack() }
                                return lanePartial
                            }
                        }
                        for await piece in group { partial.merge(piece) }
                    }
                } else {
                    for (pieceInputs, pieceEntries) in pieces {
                        partial.merge(
                            await run(
                                key: key, inputs: pieceInputs, entries: pieceEntries, splitCalls: splitCalls,
                                slots: slots))
                    }
                }
                return partial
            }
            // Given up: a lone poison item, a fatal failure, or a transient one out of attempts or budget.
            if kind != .poison || entries.count > 1 { partial.unresolved = true }
            fail(entries, key: key, inputs: inputs, error: error, kind: kind == .poison ? .poison : originalKind(error),
                 into: &partial)
            return partial
        }
    }

    /// Whether splitting a part of `count` items stays within `maxSplitCallsPerBatch` (reserving its calls if so).
    private func splitAllowed(_ count: Int, _ splitCalls: SplitCalls) -> Bool {
        guard let limit = policy.maxSplitCallsPerBatch else { return true }
        let parts = min(max(2, policy.bisectionFanout), count)
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
        _ entries: [Entry], key: Key, inputs: [Input], error: any Error, kind: BatchFailureKind,
        into partial: inout Partial
    ) {
        let now = Date()
        let sink = policy.deadLetters != nil
        state.withLock { $0.statistics.failedItems += entries.count }
        for (entry, input) in zip(entries, inputs) {
            partial.results.append((entry.index, .failure(error)))
            if sink {
                partial.deadLetters.append(
                    DeadLetter(
                        key: key.metricsLabel, input: String(describing: input), error: String(describing: error),
                        failure: kind, attempts: entry.attempts, firstAttemptAt: entry.firstAttemptAt ?? now,
                        failedAt: now))
            }
        }
    }

    /// An open breaker's degraded mode: each item alone, one call after another, no retry or bisection.
    func runSingles(key: Key, inputs: [Input]) async -> Partial {
        var partial = Partial()
        for (index, input) in inputs.enumerated() {
            let entry = Entry(index: index, deadline: nil, attempts: 1, firstAttemptAt: Date())
            state.withLock { $0.statistics.handlerCalls += 1 }
            do {
                let output = try await handler(key, [input])
                if output.count == 1 {
                    partial.results.append((index, output[0]))
                    partial.succeededCalls += 1
                    if case .failure = output[0] { state.withLock { $0.statistics.itemErrors += 1 } }
                } else {
                    let error = BatcherError(.resultCountMismatch, "the handler returned \(output.count) results for 1 input")
                    fail([entry], key: key, inputs: [input], error: error, kind: .fatal, into: &partial)
                }
            } catch {
                if error is CancellationError || Task.isCancelled {
                    partial.results.append((index, .failure(error)))
                    continue
                }
                fail([entry], key: key, inputs: [input], error: error, kind: policy.classifier(error), into: &partial)
            }
        }
        return partial
    }
}
