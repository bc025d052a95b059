/// The request lines of one stored batch, read page by page from the store as an upload consumes them.
public struct StoreRequestLines: AsyncSequence, Sendable {
    public typealias Element = ProviderRequestLine

    let store: any JobStore
    let batch: Int64
    let pageSize: Int

    /// Lines of `batch`, `pageSize` per store read.
    public init(store: any JobStore, batch: Int64, pageSize: Int = 2_000) {
        self.store = store
        self.batch = batch
        self.pageSize = Swift.max(1, pageSize)
    }

    /// Iterates the lines in id order.
    public struct AsyncIterator: AsyncIteratorProtocol {
        let store: any JobStore
        let batch: Int64
        let pageSize: Int
        var page: [ProviderRequestLine] = []
        var index = 0
        var afterID: Int64? = nil
        var done = false

        /// The next line, or nil after the last.
        public mutating func next() async throws -> ProviderRequestLine? {
            if index == page.count {
                if done { return nil }
                let rows = try await store.requestLines(inBatch: batch, afterID: afterID, limit: pageSize)
                if rows.count < pageSize { done = true }
                guard let last = rows.last else { return nil }
                afterID = last.id
                page = rows.map(\.line)
                index = 0
            }
            defer { index += 1 }
            return page[index]
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(store: store, batch: batch, pageSize: pageSize)
    }
}
