import Synchronization

/// The port an emulator's HTTP server bound, for tasks that wait until it is listening.
///
/// `bound(_:)` and `failed(_:)` are called once by `Emulator.run()`; `wait()` returns the port (or throws the
/// failure) as soon as it is known, and throws `CancellationError` if the waiting task is cancelled first.
final class ListeningPort: Sendable {
    private enum State {
        case waiting([Int: CheckedContinuation<Int, any Error>])
        case bound(Int)
        case failed(any Error)
    }

    private let state = Mutex<(state: State, nextWaiter: Int)>((.waiting([:]), 0))

    /// Records the bound port and wakes every waiter.
    func bound(_ port: Int) { settle(.success(port)) }

    /// Records why the server will never listen (or stopped) and wakes every waiter with it.
    func failed(_ error: any Error) { settle(.failure(error)) }

    private func settle(_ result: Result<Int, any Error>) {
        let waiters = state.withLock { s -> [CheckedContinuation<Int, any Error>] in
            guard case .waiting(let w) = s.state else {
                // A later failure (the server stopped) replaces a bound port, so new waiters do not get a dead port.
                if case .failure(let e) = result { s.state = .failed(e) }
                return []
            }
            switch result {
            case .success(let p): s.state = .bound(p)
            case .failure(let e): s.state = .failed(e)
            }
            return Array(w.values)
        }
        for w in waiters { w.resume(with: result) }
    }

    /// The bound port, once known.
    func wait() async throws -> Int {
        let id = state.withLock { s in s.nextWaiter += 1; return s.nextWaiter }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (c: CheckedContinuation<Int, any Error>) in
                let ready = state.withLock { s -> Result<Int, any Error>? in
                    switch s.state {
                    case .bound(let p): return .success(p)
                    case .failed(let e): return .failure(e)
                    case .waiting(var w):
                        if Task.isCancelled { return .failure(CancellationError()) }
                        w[id] = c
                        s.state = .waiting(w)
                        return nil
                    }
                }
                if let ready { c.resume(with: ready) }
            }
        } onCancel: {
            let c = state.withLock { s -> CheckedContinuation<Int, any Error>? in
                guard case .waiting(var w) = s.state, let c = w.removeValue(forKey: id) else { return nil }
                s.state = .waiting(w)
                return c
            }
            c?.resume(throwing: CancellationError())
        }
    }
}

/// Errors of the emulator's HTTP front end.
public enum EmulatorError: Error, Equatable {
    /// The server stopped (or never started listening), so it has no endpoint.
    case notListening
}
