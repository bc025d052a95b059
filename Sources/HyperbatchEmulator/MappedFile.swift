import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A read-only memory map of a spooled file, so parsers and renderers work on its bytes in place.
///
/// Mapped pages count toward the process's resident memory while they stay mapped, so readers hand them back as
/// they go (``release(before:)`` for a forward scan, ``releaseAll()`` for random access): the pages stay in the
/// page cache and come back on the next touch. Resident memory is then bounded by `window`, not by the file size.
final class MappedFile: @unchecked Sendable {
    /// The mapped bytes (empty for an empty file).
    let bytes: UnsafeBufferPointer<UInt8>
    /// Forward scans release pages once this many bytes lie behind them.
    let window: Int
    private var released = 0

    /// Maps the file at `path` whole.
    init(path: String, window: Int = 8 << 20) throws {
        self.window = window
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw EmulatorStorageError.io("cannot open \(path)", errno) }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw EmulatorStorageError.io("cannot stat \(path)", errno) }
        let size = Int(st.st_size)
        guard size > 0 else {
            bytes = UnsafeBufferPointer(start: nil, count: 0)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw EmulatorStorageError.io("cannot map \(path)", errno)
        }
        bytes = UnsafeBufferPointer(start: p.assumingMemoryBound(to: UInt8.self), count: size)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// During a forward scan now at `offset`: drops the pages before it once a window's worth has piled up.
    func release(before offset: Int) {
        guard offset - released >= window, let base = bytes.baseAddress else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let end = offset / page * page
        let start = released / page * page
        if end > start {
            madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, Int32(MADV_DONTNEED))
        }
        released = end
    }

    /// Drops every resident page and starts a new forward scan from the beginning.
    func rewind() {
        if let base = bytes.baseAddress, released < bytes.count {
            madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, Int32(MADV_DONTNEED))
        }
        released = 0
    }

    /// Drops every resident page of the map (random-access readers call this every few thousand lines when the
    /// file is larger than `window`).
    func releaseAll() {
        guard bytes.count > window, let base = bytes.baseAddress else { return }
        madvise(UnsafeMutableRawPointer(mutating: base), bytes.count, Int32(MADV_DONTNEED))
    }
}
