import Foundation

/// How often live provider batches are polled: fast at first, slower the longer a batch runs.
///
/// The n-th poll of a batch (n = 0, 1, …) waits `min(maximum, initial × growth^n)` after the previous one.
public struct PollSchedule: Sendable, Hashable {
    /// Delay before the first poll after a create.
    public var initial: Duration
    /// Factor applied to the delay after each poll (≥ 1).
    public var growth: Double
    /// Longest delay between two polls of one batch.
    public var maximum: Duration
    /// Delay after a failed poll (429/5xx/transport), doubled per consecutive failure up to ``maximum``.
    public var errorDelay: Duration

    /// Creates a schedule.
    public init(initial: Duration = .seconds(5), growth: Double = 1.5, maximum: Duration = .seconds(300), errorDelay: Duration = .seconds(5)) {
        self.initial = initial
        self.growth = max(1, growth)
        self.maximum = maximum
        self.errorDelay = errorDelay
    }

    /// The delay before poll number `poll` (0-based).
    public func delay(poll: Int) -> Duration {
        var d = initial
        for _ in 0..<max(0, poll) {
            d = d * growth
            if d >= maximum { return maximum }
        }
        return min(d, maximum)
    }

    /// The delay after `failures` consecutive failed polls (≥ 1).
    public func errorDelay(failures: Int) -> Duration {
        var d = errorDelay
        for _ in 1..<max(1, failures) {
            d = d * 2
            if d >= maximum { return maximum }
        }
        return min(d, maximum)
    }
}

/// Stages of the pipeline a test can observe (and interrupt) through ``PipelineConfiguration/onPhase``.
public enum PipelinePhase: String, Sendable, Hashable, CaseIterable {
    /// The batch row and tag were recorded and its requests `packed`; nothing sent yet.
    case claimed
    /// The input file was uploaded and its id recorded (OpenAI).
    case uploaded
    /// The provider created the batch; its id is not recorded yet.
    case created
    /// The provider batch id was recorded.
    case submitted
    /// A polled status was recorded.
    case polled
    /// A chunk of results was applied.
    case appliedChunk
    /// Reconciliation finished.
    case reconciled
}

/// Settings of the dispatcher, poller and reconciler.
public struct PipelineConfiguration: Sendable {
    /// Most pending requests considered per `(job, key)` in one dispatch pass.
    public var candidatesPerPass: Int = 200_000
    /// The default in-flight budget per compatibility key (one model of one provider, endpoint and tenant), across
    /// jobs: most requests and estimated tokens `packed` + `submitted` (the provider's enqueued limits).
    public var inFlightBudget: InFlightBudget = .init()
    /// Budgets for particular models (by the key's model name), overriding ``inFlightBudget``.
    public var inFlightBudgetByModel: [String: InFlightBudget] = [:]
    /// How request tokens are estimated for token budgets.
    public var tokenEstimate: RequestTokenEstimate = .init()
    /// Most provider batches uploaded/created, polled or reconciled at once (≥ 1). Each batch keeps its own
    /// write-ahead order; only different batches overlap.
    public var maxConcurrentBatches: Int = 4
    /// Lines read from the store per page while streaming an upload.
    public var uploadPageSize: Int = 2_000
    /// The poll schedule.
    public var poll: PollSchedule = .init()
    /// How long the runner sleeps when a pass did nothing and no poll is due sooner.
    public var idleDelay: Duration = .seconds(1)
    /// How the runner's loops retry after a transient store error (default: no error is transient).
    public var storeRetry: StoreRetryPolicy = .init()
    /// How far before a batch's claim time recovery looks for a create whose answer was lost (clock skew).
    public var lookupSkew: TimeInterval = 300
    /// Called after each phase of a batch with the store's batch id; throwing stops the runner there (tests).
    public var onPhase: (@Sendable (PipelinePhase, Int64) async throws -> Void)? = nil

    /// Most requests in flight per compatibility key (the default budget's ``InFlightBudget/maxRequests``).
    public var maxInFlightPerKey: Int {
        get { inFlightBudget.maxRequests }
        set { inFlightBudget.maxRequests = newValue }
    }

    /// The budget of `key`: its model's override, else the default.
    public func budget(for key: CompatibilityKey) -> InFlightBudget {
        inFlightBudgetByModel[key.model] ?? inFlightBudget
    }

    /// Creates the default configuration.
    public init() {}
}
