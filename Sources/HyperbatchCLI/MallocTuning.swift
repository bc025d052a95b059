#if canImport(Glibc)
import Glibc
#endif

/// Allocator settings for the `hyperbatch` process (glibc only; the libraries never touch them).
///
/// A job pipeline allocates and frees tens of MB at a time (chunks of result lines, SQLite's statement buffers) on
/// many threads. With glibc's defaults each thread may get its own arena and the mmap threshold grows to 32 MB after
/// the first large free, so freed memory stays in the arenas: a million-request run peaked near 300 MB where about 190
/// were live. Two arenas and a fixed 1 MB mmap threshold (large blocks go back to the system when freed) keep the
/// resident size near what is in use. Skipped when the user configured glibc's allocator through the environment.
enum MallocTuning {
    /// Applies the settings once, before any work starts.
    static func apply() {
        #if canImport(Glibc)
        guard getenv("GLIBC_TUNABLES") == nil, getenv("MALLOC_ARENA_MAX") == nil, getenv("MALLOC_MMAP_THRESHOLD_") == nil else { return }
        // `mallopt` is in <malloc.h>, which the Glibc module does not export: looked up by name.
        guard let symbol = dlsym(nil, "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        _ = mallopt(mArenaMax, 2)
        _ = mallopt(mMmapThreshold, 1 << 20)
        #endif
    }

    /// `M_ARENA_MAX` and `M_MMAP_THRESHOLD` of <malloc.h>.
    private static let mArenaMax: Int32 = -8
    private static let mMmapThreshold: Int32 = -3
}
