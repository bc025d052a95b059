import HyperbatchJobs
import NIOCore

/// An HTTP request body produced on the fly from request lines: `prefix`, each encoded line (joined by
/// `separator`), then `suffix`, in buffers of about 64 KiB. Nothing but one buffer is held in memory.
struct RequestLinesBody<Lines: AsyncSequence & Sendable>: AsyncSequence, Sendable
where Lines.Element == ProviderRequestLine {
    typealias Element = ByteBuffer

    let prefix: [UInt8]
    let separator: [UInt8]
    let suffix: [UInt8]
    let lines: Lines
    let encode: @Sendable (ProviderRequestLine, inout [UInt8]) -> Void
    var bufferSize = 64 * 1024

    func makeAsyncIterator() -> Iterator {
        Iterator(body: self, base: lines.makeAsyncIterator())
    }

    struct Iterator: AsyncIteratorProtocol {
        let body: RequestLinesBody
        var base: Lines.AsyncIterator
        var started = false
        var wroteLine = false
        var finished = false

        mutating func next() async throws -> ByteBuffer? {
            if finished { return nil }
            var out: [UInt8] = []
            out.reserveCapacity(body.bufferSize + 1024)
            if !started {
                out.append(contentsOf: body.prefix)
            }
            while out.count < body.bufferSize {
                guard let line = try await base.next() else {
                    out.append(contentsOf: body.suffix)
                    finished = true
                    break
                }
                if wroteLine { out.append(contentsOf: body.separator) }
                wroteLine = true
                body.encode(line, &out)
            }
            started = true
            return ByteBuffer(bytes: out)
        }
    }
}
