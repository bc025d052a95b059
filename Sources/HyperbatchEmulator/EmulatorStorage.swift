import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The directory where the emulator keeps file bytes (uploads, Anthropic create bodies, result files), the way a
/// provider keeps them on disk rather than in memory.
///
/// A new subdirectory of `parent` (the system temporary directory by default), created on first use and removed
/// with everything in it by ``removeAll()`` (called when the emulator shuts down) or when the storage is released.
public final class EmulatorStorage: Sendable {
    /// The storage directory (it exists once something was written).
    public let directory: String
    private let state = Mutex<(created: Bool, removed: Bool, next: Int)>((false, false, 0))

    /// A storage in a new, uniquely named subdirectory of `parent` (nil: the system temporary directory).
    public init(parent: String?) {
        var base = parent ?? NSTemporaryDirectory()
        while base.count > 1, base.hasSuffix("/") { base.removeLast() }
        directory = base + "/hyperbatch-emulator-\(getpid())-\(UUID().uuidString.prefix(8).lowercased())"
    }

    deinit { removeAll() }

    /// A new path in the storage for a file named after `name` (the directory is created if needed).
    func newPath(_ name: String) throws -> String {
        let n = try state.withLock { s -> Int in
            if s.removed { throw EmulatorStorageError.removed }
            if !s.created {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                s.created = true
                Self.removeLeftovers(besides: directory)
            }
            s.next += 1
            return s.next
        }
        return directory + "/\(n)-\(name)"
    }

    /// Writes `bytes` to a new file; returns its path.
    func write(_ bytes: [UInt8], name: String) throws -> String {
        let path = try newPath(name)
        let writer = try SpoolWriter(path: path)
        try writer.append(bytes)
        try writer.close()
        return path
    }

    /// Removes storage directories next to `directory` left by emulators whose process is gone (killed before
    /// they could clean up).
    static func removeLeftovers(besides directory: String) {
        let parent = (directory as NSString).deletingLastPathComponent
        for name in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where name.hasPrefix("hyperbatch-emulator-") {
            let fields = name.split(separator: "-")
            guard fields.count == 4, let pid = Int32(fields[2]), pid != getpid(), kill(pid, 0) != 0, errno == ESRCH else { continue }
            try? FileManager.default.removeItem(atPath: parent + "/" + name)
        }
    }

    /// Removes the directory and every file in it; later writes fail. Files still open or mapped stay readable
    /// until closed.
    public func removeAll() {
        let created = state.withLock { s -> Bool in
            defer { s.removed = true }
            return s.created && !s.removed
        }
        if created { try? FileManager.default.removeItem(atPath: directory) }
    }
}

/// Why the storage refused a write.
enum EmulatorStorageError: Error, CustomStringConvertible {
    case removed
    case io(String, Int32)

    var description: String {
        switch self {
        case .removed: "the emulator's storage was removed (the emulator has shut down)"
        case .io(let what, let code): "\(what): \(String(cString: strerror(code)))"
        }
    }
}

/// Appends bytes to a new file through a 1 MB buffer (one `write` per megabyte).
final class SpoolWriter {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private var open = true
    /// Bytes appended so far.
    private(set) var count = 0

    /// Creates (or truncates) the file at `path`.
    init(path: String) throws {
        fd = Glibc.open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw EmulatorStorageError.io("cannot create \(path)", errno) }
        buffer.reserveCapacity(1 << 20)
    }

    deinit { if open { Glibc.close(fd) } }

    /// Appends `bytes`.
    func append(_ bytes: some Collection<UInt8>) throws {
        buffer.append(contentsOf: bytes)
        count += bytes.count
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Appends raw bytes directly, bypassing the buffer when they are large.
    func append(_ raw: UnsafeRawBufferPointer) throws {
        if raw.count >= 1 << 18 {
            try flush()
            try writeAll(raw)
            count += raw.count
        } else {
            try append(raw.bindMemory(to: UInt8.self))
        }
    }

    /// Lets `body` append to the buffer directly (e.g. a rendered result line); flushes after a megabyte.
    func withBuffer<T>(_ body: (inout [UInt8]) throws -> T) throws -> T {
        let before = buffer.count
        let value = try body(&buffer)
        count += buffer.count - before
        if buffer.count >= 1 << 20 { try flush() }
        return value
    }

    /// Writes what is buffered.
    func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ raw: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw EmulatorStorageError.io("write", errno)
            }
            done += n
        }
    }

    /// Flushes and closes the file.
    func close() throws {
        guard open else { return }
        defer { open = false; Glibc.close(fd) }
        try flush()
    }
}
