import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 server (one thread per connection, `Connection: close`) in front of `EmulatorCore`.
///
/// Stand-in until the Hummingbird front end lands; enough for the official SDKs over loopback.
final class SocketServer: Sendable {
    let fd: Int32
    /// The bound port.
    let port: Int
    let handler: @Sendable (EmulatorRequest) -> EmulatorResponse

    init(host: String, port: Int, handler: @escaping @Sendable (EmulatorRequest) -> EmulatorResponse) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw EmulatorError.socket("socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let ok = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0, listen(fd, 256) == 0 else { close(fd); throw EmulatorError.socket("bind \(host):\(port)") }
        var bound = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: bound.sin_port))
        self.handler = handler
    }

    /// Starts the accept loop on its own thread.
    func start() {
        let fd = self.fd
        let handler = self.handler
        let t = Thread {
            while true {
                let c = accept(fd, nil, nil)
                if c < 0 { if errno == EINTR { continue } else { return } }
                let t = Thread { Self.serve(c, handler: handler) }
                t.start()
            }
        }
        t.start()
    }

    /// Stops accepting connections.
    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
    }

    /// Decodes a complete chunked body; nil while more bytes are needed.
    static func decodeChunked(_ raw: [UInt8]) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        while true {
            guard let lineEnd = Multipart.find([13, 10], in: raw, from: i) else { return nil }
            let sizeText = String(decoding: raw[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { return out }
            let start = lineEnd + 2
            if size == 0 {
                // Trailers (usually none) end with an empty line.
                return Multipart.find([13, 10], in: raw, from: start) != nil ? out : nil
            }
            guard raw.count >= start + size + 2 else { return nil }
            out += raw[start..<(start + size)]
            i = start + size + 2
        }
    }

    private static func serve(_ c: Int32, handler: @Sendable (EmulatorRequest) -> EmulatorResponse) {
        defer { close(c) }
        var buf = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 65_536)
        var headerEnd: Int?
        while headerEnd == nil {
            let n = read(c, &chunk, chunk.count)
            if n <= 0 { return }
            buf += chunk[0..<n]
            headerEnd = Multipart.find([13, 10, 13, 10], in: buf, from: max(0, buf.count - n - 3))
        }
        let head = String(decoding: buf[0..<headerEnd!], as: UTF8.self).components(separatedBy: "\r\n")
        let first = head[0].split(separator: " ")
        guard first.count >= 2 else { return }
        var headers: [String: String] = [:]
        for h in head.dropFirst() {
            guard let i = h.firstIndex(of: ":") else { continue }
            headers[h[..<i].lowercased()] = h[h.index(after: i)...].trimmingCharacters(in: .whitespaces)
        }
        if headers["expect"]?.lowercased() == "100-continue" { _ = "HTTP/1.1 100 Continue\r\n\r\n".withCString { write(c, $0, strlen($0)) } }
        var body = Array(buf[(headerEnd! + 4)...])
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            // Streaming clients (AsyncHTTPClient with a streamed body) send chunked bodies.
            var decoded: [UInt8]?
            while true {
                // Parse only once the terminal chunk may have arrived, so a large upload is decoded once.
                if body.count >= 5, body[(body.count - 5)...].elementsEqual([48, 13, 10, 13, 10]),
                    let parsed = Self.decodeChunked(body)
                {
                    decoded = parsed
                    break
                }
                let n = read(c, &chunk, chunk.count)
                if n <= 0 { return }
                body += chunk[0..<n]
            }
            body = decoded ?? []
        } else {
            let length = Int(headers["content-length"] ?? "0") ?? 0
            while body.count < length {
                let n = read(c, &chunk, chunk.count)
                if n <= 0 { return }
                body += chunk[0..<n]
            }
        }
        let target = String(first[1])
        var path = target
        var query: [String: String] = [:]
        if let q = target.firstIndex(of: "?") {
            path = String(target[..<q])
            for pair in target[target.index(after: q)...].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                query[kv[0]] = kv.count > 1 ? kv[1] : ""
            }
        }
        let response = handler(EmulatorRequest(method: String(first[0]), path: path, query: query, headers: headers, body: body))
        var out = "HTTP/1.1 \(response.status) \(response.status < 400 ? "OK" : "Error")\r\n"
        for (k, v) in response.headers { out += "\(k): \(v)\r\n" }
        out += "content-length: \(response.body.count)\r\nconnection: close\r\n\r\n"
        let bytes = Array(out.utf8) + response.body
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(c, $0.baseAddress, $0.count) }
            if n <= 0 { return }
            sent += n
        }
    }
}

/// Errors starting the emulator.
public enum EmulatorError: Error {
    /// A socket call failed.
    case socket(String)
}
