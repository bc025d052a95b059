/// One request of a batch as the emulator keeps it: where its parts lie in the spooled input file, plus the
/// seeded roll that decides whether it errors. 32 bytes; the bytes themselves stay on disk.
struct SpooledRequest: Sendable {
    /// `hash("req", custom_id)`: the request errors when its unit value is under the error rate.
    var roll: UInt64
    /// Offset of the request body (OpenAI `body`, Anthropic `params`) in the spooled file.
    var bodyStart: Int
    /// Length of the request body.
    var bodyLength: UInt32
    /// Offset of the raw `custom_id` JSON string (with its quotes) relative to `bodyStart`.
    var idDelta: Int32
    /// Length of the raw `custom_id` JSON string, quotes included.
    var idLength: UInt32
    /// Index of the request's model in its batch's model table.
    var model: UInt32

    /// The request body's bytes in `file`.
    func body(in file: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: file[bodyStart..<(bodyStart + Int(bodyLength))])
    }

    /// The decoded `custom_id` (as parsed at create time) from `file`.
    func customID(in file: UnsafeBufferPointer<UInt8>) -> String {
        let start = bodyStart + Int(idDelta)
        return FastJSON.string(file, start..<(start + Int(idLength))) ?? ""
    }

    /// Prompt tokens of the synthetic answer (one per 4 bytes of body, at least 1).
    var inputTokens: Int { max(1, Int(bodyLength) / 4) }
}
