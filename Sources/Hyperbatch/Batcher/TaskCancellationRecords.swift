#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The concurrency runtime's entry points behind `withTaskCancellationHandler`, so `submit` can register its
/// cancellation handler without that function's generic `operation` closure and its two extra async frames.
///
/// `swift_task_addCancellationHandler` registers a handler in a task-allocated record (calling it at once when the
/// task is already cancelled) and `swift_task_removeCancellationHandler` removes and frees it. Both are exported by
/// the runtime and called from code inlined into clients since Swift 5.5, so their ABI is stable; they are looked up
/// at run time (a `@_silgen_name` declaration of a runtime symbol is deprecated). Nil when the lookup fails (not
/// Linux, or a static executable without exported runtime symbols): callers then use `withTaskCancellationHandler`.
@usableFromInline struct TaskCancellationRecords: Sendable {
    @usableFromInline typealias Add = @convention(thin) (() -> Void) -> UnsafeRawPointer
    @usableFromInline typealias Remove = @convention(thin) (UnsafeRawPointer) -> Void

    /// Registers a handler (which must outlive the record) and returns its record.
    @usableFromInline let add: Add
    /// Removes a record; it must be the current task's latest task allocation.
    @usableFromInline let remove: Remove

    /// The runtime's entry points, or nil.
    @usableFromInline static let runtime: TaskCancellationRecords? = {
        #if os(Linux)
        let process = dlopen(nil, RTLD_NOW)
        guard let add = dlsym(process, "swift_task_addCancellationHandler"),
            let remove = dlsym(process, "swift_task_removeCancellationHandler")
        else { return nil }
        return TaskCancellationRecords(add: unsafeBitCast(add, to: Add.self), remove: unsafeBitCast(remove, to: Remove.self))
        #else
        return nil
        #endif
    }()

    @usableFromInline init(add: Add, remove: Remove) {
        self.add = add
        self.remove = remove
    }
}
