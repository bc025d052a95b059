import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// Drives the durable pipeline for one provider: recovery, dispatch, polling and reconciliation, in passes.
///
/// Each pass: ``Recovery`` resumes `building`/`uploading` batches (lookup by tag first), the ``Dispatcher`` packs and
/// submits pending requests, the ``Poller`` polls submitted batches that are due, and the ``Reconciler`` applies the
/// results of ended ones. Everything durable is in the store, so a new runner over the same store resumes where a
/// stopped (or killed) one left off. As a `Service`, ``run()`` works on every job until graceful shutdown; the CLI
/// uses ``runUntilDone(job:onProgress:)``.
public final class JobRunner<P: BatchProvider, C: Clock>: Service, Sendable where C.Duration == Duration {
    public let store: any JobStore
    public let provider: P
    public let configuration: PipelineConfiguration
    public let clock: C
    public let logger: Logger
    let now: @Sendable () -> Date

    private let storeRetries = Counter(label: "hyperbatch_runner_store_retries_total")

    /// The parts, exposed for callers that drive a single step.
    public let dispatcher: Dispatcher<P>
    public let recovery: Recovery<P>
    public let poller: Poller<P>
    public let reconciler: Reconciler<P>

    /// Creates a runner; `now` stamps store records (wall time in production).
    public init(
        store: any JobStore, provider: P, configuration: PipelineConfiguration = .init(), clock: C, logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.provider = provider
        self.configuration = configuration
        self.clock = clock
        self.logger = logger
        self.now = now
        self.dispatcher = Dispatcher(store: store, provider: provider, configuration: configuration, logger: logger, now: now)
        self.recovery = Recovery(dispatcher: dispatcher)
        self.poller = Poller(store: store, provider: provider, schedule: configuration.poll, logger: logger, now: now)
        self.reconciler = Reconciler(store: store, provider: provider, logger: logger, onPhase: configuration.onPhase, now: now)
    }

    /// In-memory poll bookkeeping of one runner (lost on restart: a restarted runner polls every live batch at once).
    public struct PollBook: Sendable {
        var next: [Int64: C.Instant] = [:]
        var polls: [Int64: Int] = [:]
        var failures: [Int64: Int] = [:]

        /// Empty bookkeeping.
        public init() {}

        /// The earliest scheduled poll, if any.
        public var earliest: C.Instant? { next.values.min() }
    }

    /// What one pass did.
    public struct PassSummary: Sendable, Hashable {
        /// Batches claimed (and sent) by the dispatcher.
        public var claimed = 0
        /// Polls made.
        public var polled = 0
        /// Batches reconciled.
        public var reconciled = 0
        /// Whether the pass changed durable state in a way that warrants another pass at once.
        public var progressed: Bool { claimed > 0 || reconciled > 0 }
    }

    /// What polling (and maybe reconciling) one batch found, for the pass to record in its ``PollBook``.
    enum BatchWork: Sendable {
        case running
        case pollFailed
        case ended(reconciled: Bool)
        case gone
    }

    /// One pass over `job` (all jobs when nil). Batches due for a poll, and ended ones, are worked on up to
    /// ``PipelineConfiguration/maxConcurrentBatches`` at a time (poll, then reconcile when it ended).
    public func pass(job: JobID?, book: inout PollBook) async throws -> PassSummary {
        var summary = PassSummary()
        try await recovery.resume(job: job)
        summary.claimed = try await dispatcher.dispatch(job: job)
        var due: [ProviderBatchRecord] = []
        let instant = clock.now
        for batch in try await store.liveBatches(job: job) where batch.key.provider == provider.kind {
            switch batch.state {
            case .submitted:
                if let next = book.next[batch.id], next > instant { continue }
                due.append(batch)
            case .ended:
                due.append(batch)
            case .building, .uploading, .reconciled, .abandoned:
                continue
            }
        }
        let width = max(1, configuration.maxConcurrentBatches)
        try await withThrowingTaskGroup(of: (ProviderBatchRecord, BatchWork).self) { group in
            var running = 0
            var results: [(ProviderBatchRecord, BatchWork)] = []
            for batch in due {
                try Task.checkCancellation()
                if running == width, let done = try await group.next() {
                    results.append(done)
                    running -= 1
                }
                group.addTask { (batch, try await self.work(on: batch)) }
                running += 1
            }
            while let done = try await group.next() { results.append(done) }
            for (batch, work) in results {
                switch work {
                case .running:
                    summary.polled += 1
                    let n = book.polls[batch.id, default: 0]
                    book.polls[batch.id] = n + 1
                    book.failures[batch.id] = nil
                    book.next[batch.id] = clock.now.advanced(by: configuration.poll.delay(poll: n))
                case .pollFailed:
                    summary.polled += 1
                    let f = book.failures[batch.id, default: 0] + 1
                    book.failures[batch.id] = f
                    book.next[batch.id] = clock.now.advanced(by: configuration.poll.errorDelay(failures: f))
                case .gone:
                    summary.polled += 1
                    summary.reconciled += 1
                    book.next[batch.id] = nil
                case .ended(let reconciled):
                    if batch.state == .submitted { summary.polled += 1 }
                    book.next[batch.id] = nil
                    if reconciled { summary.reconciled += 1 }
                }
            }
        }
        return summary
    }

    /// Polls a submitted batch (reconciling it when it ended) or reconciles an ended one.
    private func work(on batch: ProviderBatchRecord) async throws -> BatchWork {
        guard batch.state == .submitted else { return .ended(reconciled: try await reconcile(batch, status: nil)) }
        switch try await poller.poll(batch) {
        case .running:
            try await configuration.onPhase?(.polled, batch.id)
            return .running
        case .failed:
            return .pollFailed
        case .gone:
            _ = try await store.finishReconcile(batch: batch.id, missing: .expired, at: now())
            return .gone
        case .ended(let status):
            try await configuration.onPhase?(.polled, batch.id)
            return .ended(reconciled: try await reconcile(batch, status: status))
        }
    }

    private func reconcile(_ batch: ProviderBatchRecord, status: ProviderBatchStatus?) async throws -> Bool {
        do {
            try await reconciler.reconcile(batch, status: status)
            return true
        } catch let error as PipelineStop {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            logger.warning("reconcile failed; will retry", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
            return false
        }
    }

    /// Whether every request of the job is terminal and none of its batches still needs work.
    public func isDone(job: JobID) async throws -> Bool {
        let counts = try await store.requestCounts(job: job)
        guard counts.terminal == counts.total else { return false }
        return try await store.liveBatches(job: job).isEmpty
    }

    /// Runs passes over `job` until every request is terminal; sleeps on the injected clock between passes that
    /// made no progress (until the next poll is due, at most ``PipelineConfiguration/idleDelay``).
    /// Returns the final counts per state.
    @discardableResult
    public func runUntilDone(job: JobID, onProgress: (@Sendable (RequestStateCounts) -> Void)? = nil) async throws -> RequestStateCounts {
        var book = PollBook()
        var retry = StoreRetryState(policy: configuration.storeRetry)
        while true {
            try Task.checkCancellation()
            do {
                let summary = try await pass(job: job, book: &book)
                let counts = try await store.requestCounts(job: job)
                recovered(&retry)
                onProgress?(counts)
                if counts.terminal == counts.total, try await store.liveBatches(job: job).isEmpty { return counts }
                if !summary.progressed { try await idle(book) }
            } catch {
                try await backOff(after: error, retry: &retry)
            }
        }
    }

    /// Rethrows `error` unless the policy calls it transient and allows another attempt; then logs, counts and
    /// sleeps on the injected clock before the loop runs again.
    private func backOff(after error: any Error, retry: inout StoreRetryState) async throws {
        if error is CancellationError || error is PipelineStop || Task.isCancelled { throw error }
        switch retry.failed(configuration.storeRetry.classify(error)) {
        case .stop:
            if retry.consecutiveFailures > 0 {
                logger.error("store error; giving up", metadata: ["attempts": "\(retry.consecutiveFailures)", "error": "\(error)"])
            }
            throw error
        case .retry(let delay, let attempt):
            storeRetries.increment()
            logger.warning(
                "transient store error; retrying",
                metadata: ["attempt": "\(attempt)", "delay": "\(delay)", "error": "\(error)"]
            )
            try await clock.sleep(for: delay)
        }
    }

    private func recovered(_ retry: inout StoreRetryState) {
        let failures = retry.succeeded()
        if failures > 0 { logger.info("store reachable again", metadata: ["failedAttempts": "\(failures)"]) }
    }

    private func idle(_ book: PollBook) async throws {
        var delay = configuration.idleDelay
        if let earliest = book.earliest {
            let untilDue = clock.now.duration(to: earliest)
            delay = max(.zero, min(delay, untilDue))
        }
        if delay > .zero { try await clock.sleep(for: delay) }
    }

    /// Works on every job until graceful shutdown (the long-running `worker`). Errors the configuration's
    /// ``PipelineConfiguration/storeRetry`` calls transient are retried with backoff; others end the runner.
    public func run() async throws {
        try await cancelWhenGracefulShutdown {
            var book = PollBook()
            var retry = StoreRetryState(policy: self.configuration.storeRetry)
            while !Task.isCancelled {
                do {
                    let summary = try await self.pass(job: nil, book: &book)
                    self.recovered(&retry)
                    if !summary.progressed { try await self.idle(book) }
                } catch is CancellationError {
                    return
                } catch {
                    do {
                        try await self.backOff(after: error, retry: &retry)
                    } catch is CancellationError {
                        return
                    }
                }
            }
        }
    }

    /// Cancels the job: pending requests `canceled`, live provider batches cancelled at the provider (their results
    /// are still applied by later passes), batches claimed but never sent settled by
    /// ``Recovery/settleCanceled(_:)`` (their requests end `canceled`).
    public func cancel(job: JobID) async throws {
        for batch in try await store.cancelJob(job, at: now()) where batch.key.provider == provider.kind {
            if let id = batch.providerBatchID {
                do {
                    _ = try await provider.cancelBatch(id: id)
                } catch {
                    logger.warning("provider cancel failed", metadata: ["batch": "\(batch.id)", "error": "\(error)"])
                }
            } else {
                try await recovery.settleCanceled(batch)
            }
        }
    }
}
