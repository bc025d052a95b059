import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One request of a batch as the emulator keeps it: where its parts lie in the spooled input file, plus the
/// seeded roll that decides whether it errors. 32 bytes, themselves kept on disk (`SpooledRequestIndex`).
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

/// A batch's `SpooledRequest` records, kept in a file in the emulator's storage (written once when the batch is
/// created) and mapped only while a call reads them, so a batch holds no per-request memory between calls.
struct SpooledRequestIndex: Sendable {
    /// The records' file; nil when there are none.
    let path: String?
    /// Number of records.
    let count: Int

    /// Writes `records` to a new file in `storage`.
    init(writing records: [SpooledRequest], to storage: EmulatorStorage) throws {
        count = records.count
        guard !records.isEmpty else {
            path = nil
            return
        }
        let path = try storage.newPath("requests.index")
        let writer = try SpoolWriter(path: path)
        try records.withUnsafeBytes { try writer.append($0) }
        try writer.close()
        self.path = path
    }

    /// Maps the records for reading.
    func open() throws -> MappedRequests {
        try MappedRequests(file: path.map { try MappedFile(path: $0) }, count: count)
    }

    /// Runs `body` with the records mapped.
    func withRecords<T>(_ body: (UnsafeBufferPointer<SpooledRequest>) throws -> T) throws -> T {
        let mapped = try open()
        return try withExtendedLifetime(mapped) { try body(mapped.records) }
    }
}

/// A mapped `SpooledRequestIndex`: the records stay readable while this object lives.
final class MappedRequests: @unchecked Sendable {
    let file: MappedFile?
    /// The records, in input order.
    let records: UnsafeBufferPointer<SpooledRequest>

    init(file: MappedFile?, count: Int) throws {
        self.file = file
        guard let file, let base = file.bytes.baseAddress else {
            records = UnsafeBufferPointer(start: nil, count: 0)
            return
        }
        guard file.bytes.count == count * MemoryLayout<SpooledRequest>.stride else {
            throw EmulatorStorageError.io("request index has \(file.bytes.count) bytes, expected \(count) records", EIO)
        }
        records = UnsafeBufferPointer(start: UnsafeRawPointer(base).assumingMemoryBound(to: SpooledRequest.self), count: count)
    }
}
