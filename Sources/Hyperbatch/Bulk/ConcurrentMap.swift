extension Sequence where Element: Sendable {
    /// Runs `transform` on every element with at most `maxConcurrency` child tasks alive at once and
    /// returns one `Result` per element, in input order. A failing item does not affect the others.
    /// If the calling task is cancelled, items not yet started get `CancellationError`.
    /// - Precondition: `maxConcurrency >= 1`.
    public func concurrentMap<T: Sendable>(
        maxConcurrency: Int,
        _ transform: @escaping @Sendable (Element) async throws -> T
    ) async -> [Result<T, any Error>] {
        precondition(maxConcurrency >= 1, "concurrentMap: maxConcurrency must be >= 1, got \(maxConcurrency)")
        let items = Array(self)
        var results = [Result<T, any Error>?](repeating: nil, count: items.count)
        await withTaskGroup(of: (Int, Result<T, any Error>).self) { group in
            var next = 0
            func addNext() {
                let index = next
                let item = items[index]
                next += 1
                group.addTask {
                    if Task.isCancelled { return (index, .failure(CancellationError())) }
                    do { return (index, .success(try await transform(item))) }
                    catch { return (index, .failure(error)) }
                }
            }
            while next < items.count && next < maxConcurrency { addNext() }
            while let (index, result) = await group.next() {
                results[index] = result
                if next < items.count { addNext() }
            }
        }
        return results.map { $0 ?? .failure(CancellationError()) }
    }

    /// Runs `body` on every element with at most `maxConcurrency` child tasks alive at once;
    /// returns the per-item outcomes in input order (`.success(())` or the item's error).
    /// - Precondition: `maxConcurrency >= 1`.
    public func concurrentForEach(
        maxConcurrency: Int,
        _ body: @escaping @Sendable (Element) async throws -> Void
    ) async -> [Result<Void, any Error>] {
        await concurrentMap(maxConcurrency: maxConcurrency, body)
    }
}
