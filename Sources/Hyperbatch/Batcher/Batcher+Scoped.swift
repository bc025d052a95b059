import Logging

extension ClockedBatcher {
    /// Creates a batcher, runs it while `body` runs, then shuts it down gracefully (every accepted item is flushed and
    /// answered) and returns `body`'s result. For scripts and tests; services run the batcher in a `ServiceGroup`.
    @inlinable public static func withBatcher<R: Sendable>(
        configuration: BatchConfiguration = .init(), clock: C, weigh: (@Sendable (Input) -> Int)? = nil,
        logger: Logger = Logger(label: "hyperbatch.batcher"), failurePolicy: FailurePolicy? = nil,
        handler: @escaping Handler, _ body: (ClockedBatcher) async throws -> R
    ) async throws -> R {
        let batcher = try ClockedBatcher(
            configuration: configuration, clock: clock, weigh: weigh, logger: logger, failurePolicy: failurePolicy,
            handler: handler)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await batcher.run() }
            let result: Result<R, any Error>
            do { result = .success(try await body(batcher)) } catch { result = .failure(error) }
            batcher.shutdown()
            try await group.waitForAll()
            return try result.get()
        }
    }

    /// Like ``withBatcher(configuration:clock:weigh:logger:handler:_:)`` for a handler that returns one output per
    /// input and fails the whole batch by throwing.
    @inlinable public static func withBatcher<R: Sendable>(
        configuration: BatchConfiguration = .init(), clock: C, weigh: (@Sendable (Input) -> Int)? = nil,
        logger: Logger = Logger(label: "hyperbatch.batcher"), failurePolicy: FailurePolicy? = nil,
        allOrNothing handler: @escaping @Sendable (Key, [Input]) async throws -> [Output],
        _ body: (ClockedBatcher) async throws -> R
    ) async throws -> R {
        try await withBatcher(
            configuration: configuration, clock: clock, weigh: weigh, logger: logger,
            failurePolicy: failurePolicy, handler: Self.allOrNothing(handler), body)
    }

    /// Creates a batcher whose handler returns one output per input and fails the whole batch by throwing.
    @inlinable public convenience init(
        configuration: BatchConfiguration = .init(), clock: C, weigh: (@Sendable (Input) -> Int)? = nil,
        logger: Logger = Logger(label: "hyperbatch.batcher"), failurePolicy: FailurePolicy? = nil,
        allOrNothing handler: @escaping @Sendable (Key, [Input]) async throws -> [Output]
    ) throws(BatcherError) {
        try self.init(
            configuration: configuration, clock: clock, weigh: weigh, logger: logger, failurePolicy: failurePolicy,
            handler: Self.allOrNothing(handler))
    }

    @inlinable static func allOrNothing(_ handler: @escaping @Sendable (Key, [Input]) async throws -> [Output]) -> Handler {
        { key, inputs in try await handler(key, inputs).map { .success($0) } }
    }
}

extension ClockedBatcher where C == ContinuousClock {
    /// Creates a batcher on the continuous clock.
    @inlinable public convenience init(
        configuration: BatchConfiguration = .init(), weigh: (@Sendable (Input) -> Int)? = nil,
        logger: Logger = Logger(label: "hyperbatch.batcher"), failurePolicy: FailurePolicy? = nil,
        handler: @escaping Handler
    ) throws(BatcherError) {
        try self.init(
            configuration: configuration, clock: ContinuousClock(), weigh: weigh, logger: logger,
            failurePolicy: failurePolicy, handler: handler)
    }

    /// Creates a batcher on the continuous clock whose handler returns one output per input (all or nothing).
    @inlinable public convenience init(
        configuration: BatchConfiguration = .init(), weigh: (@Sendable (Input) -> Int)? = nil,
        logger: Logger = Logger(label: "hyperbatch.batcher"), failurePolicy: FailurePolicy? = nil,
        allOrNothing handler: @escaping @Sendable (Key, [Input]) async throws -> [Output]
    ) throws(BatcherError) {
        try self.init(
            configuration: configuration, clock: ContinuousClock(), weigh: weigh, logger: logger,
            failurePolicy: failurePolicy, handler: Self.allOrNothing(handler))
    }

    /// ``withBatcher(configuration:clock:weigh:logger:handler:_:)`` on the continuous clock.
    @inlinable public static func withBatcher<R: Sendable>(
        configuration: BatchConfiguration = .init(), weigh: (@Sendable (Input) -> Int)? = nil,
        logger: Logger = Logger(label: "hyperbatch.batcher"), failurePolicy: FailurePolicy? = nil,
        handler: @escaping Handler, _ body: (ClockedBatcher) async throws -> R
    ) async throws -> R {
        try await withBatcher(
            configuration: configuration, clock: ContinuousClock(), weigh: weigh, logger: logger,
            failurePolicy: failurePolicy, handler: handler, body)
    }

    /// ``withBatcher(configuration:clock:weigh:logger:allOrNothing:_:)`` on the continuous clock.
    @inlinable public static func withBatcher<R: Sendable>(
        configuration: BatchConfiguration = .init(), weigh: (@Sendable (Input) -> Int)? = nil,
        logger: Logger = Logger(label: "hyperbatch.batcher"), failurePolicy: FailurePolicy? = nil,
        allOrNothing handler: @escaping @Sendable (Key, [Input]) async throws -> [Output],
        _ body: (ClockedBatcher) async throws -> R
    ) async throws -> R {
        try await withBatcher(
            configuration: configuration, clock: ContinuousClock(), weigh: weigh, logger: logger,
            failurePolicy: failurePolicy, handler: Self.allOrNothing(handler), body)
    }
}
