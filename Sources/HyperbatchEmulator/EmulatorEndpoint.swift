/// How clients reach a running emulator, plus its admin functions.
public struct EmulatorEndpoint: Sendable {
    /// The bound port.
    public let port: Int
    let core: EmulatorCore
    let now: @Sendable () -> Double

    /// OpenAI base URL, including `/v1`.
    public var openAIBaseURL: String { "http://127.0.0.1:\(port)/v1" }
    /// Anthropic base URL, without `/v1`.
    public var anthropicBaseURL: String { "http://127.0.0.1:\(port)" }
    /// Replaces the injected faults.
    public func setFaults(_ faults: EmulatorFaults) { core.setFaults(faults) }
    /// Bytes of streamed response bodies the server has handed to its sockets so far (counted before each write),
    /// so a test can tell how far ahead of a reading client the server is.
    public var streamedBodyBytesSent: Int { core.streamedBodyBytesSent }
    /// Stops every streamed body once `bytes` of it are written, until ``releaseStreamedBodies()`` (a stalled download).
    public func holdStreamedBodies(after bytes: Int) { core.holdStreamedBodies(after: bytes) }
    /// Lets held streamed bodies go on.
    public func releaseStreamedBodies() { core.releaseStreamedBodies() }
    /// Every batch created so far.
    public func stats() -> EmulatorStats { core.stats(now: now()) }
}
