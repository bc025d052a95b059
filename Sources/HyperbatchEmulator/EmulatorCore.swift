import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The emulator's state and request handling, independent of any HTTP server.
///
/// Every call passes the current emulated time (seconds since the Unix epoch); the lifecycle of each batch is
/// derived from it (`BatchLifecycle`), so nothing runs in the background.
///
/// File bytes live on disk in `storage`, as a provider keeps them: uploads and Anthropic create bodies are spooled
/// there, each batch keeps one 32-byte `SpooledRequest` per request (where its parts lie in the spooled file), and
/// OpenAI result files are written there line by line when a batch ends; downloads read them back piece by piece.
/// Memory therefore grows by a few dozen bytes per request, not with file sizes.
public final class EmulatorCore: Sendable {
    struct StoredFile: Sendable {
        var id: String, seq: Int, bytes: Int, createdAt: Double, filename: String, purpose: String
        /// Where the content lies: `bytes` bytes from `offset` of the file at `path` in `storage`.
        var path: String, offset: Int
    }
    struct OpenAIBatch: @unchecked Sendable {
        var id: String, seq: Int, endpoint: String, model: String?, inputFileID: String
        var metadata: [String: String], lifecycle: BatchLifecycle, errors: [[String: Any]]
        /// The spooled input (the upload's file) and its requests.
        var inputPath: String, requests: SpooledRequestIndex, customIDDigest: String
        var outputFileID: String?, errorFileID: String?, materialized = false
    }
    struct AnthropicBatch: Sendable {
        var id: String, seq: Int, lifecycle: BatchLifecycle
        /// The spooled create body and its requests.
        var path: String, requests: SpooledRequestIndex, models: [String], customIDDigest: String
        var deleted = false
    }
    struct State: @unchecked Sendable {
        var nextID = 0
        var files: [String: StoredFile] = [:]
        var batches: [String: OpenAIBatch] = [:]
        var messageBatches: [String: AnthropicBatch] = [:]
        var faults: EmulatorFaults
        var calls: UInt64 = 0
        var http429Sent = 0
        var http5xxSent = 0
        var slowRolls: UInt64 = 0
        var slowSent = 0
        mutating func newID(_ prefix: String) -> (String, Int) {
            nextID += 1
            return (prefix + String(format: "%012x", nextID), nextID)
        }
    }

    private let state: Mutex<State>
    /// Bytes of streamed (chunked or sliced) response bodies handed to the server so far.
    private let streamedBytes = Atomic<Int>(0)
    /// The configuration the core was created with (faults change at run time).
    public let configuration: EmulatorConfiguration
    /// Where file bytes are kept (a new directory under `configuration.storageDirectory`).
    public let storage: EmulatorStorage

    /// Creates an empty emulator.
    public init(configuration: EmulatorConfiguration) {
        self.configuration = configuration
        self.state = Mutex(State(faults: configuration.faults))
        self.storage = EmulatorStorage(parent: configuration.storageDirectory)
    }

    /// Removes every stored file (the emulator calls it when it shuts down; also done when the core is released).
    public func removeStorage() { storage.removeAll() }

    /// Bytes of streamed response bodies (result files, Anthropic results) handed to the HTTP server so far: an
    /// upper bound on what any client has received of them. Counted before each piece is written.
    public var streamedBodyBytesSent: Int { streamedBytes.load(ordering: .relaxed) }

    /// Counts `bytes` of a streamed response body about to be written.
    func noteStreamed(_ bytes: Int) { streamedBytes.add(bytes, ordering: .relaxed) }

    struct StreamHold {
        var afterBytes: Int?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }
    private let streamHold = Mutex(StreamHold())

    /// From now on, every streamed body stops once `bytes` of it are written, until ``releaseStreamedBodies()``
    /// (a test hook: a stalled download, so a test can check what a client delivers before the body ends).
    public func holdStreamedBodies(after bytes: Int) { streamHold.withLock { $0.afterBytes = bytes } }

    /// Lets every held streamed body go on, and stops holding new ones.
    public func releaseStreamedBodies() {
        let waiters = streamHold.withLock { hold in
            hold.afterBytes = nil
            defer { hold.waiters = [] }
            return hold.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Suspends a streamed body that has written `bodyOffset` bytes while a hold at or below that offset is set.
    func waitIfHeld(bodyOffset: Int) async {
        guard streamHold.withLock({ $0.afterBytes.map { bodyOffset >= $0 } ?? false }) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let held = streamHold.withLock { hold -> Bool in
                guard let after = hold.afterBytes, bodyOffset >= after else { return false }
                hold.waiters.append(continuation)
                return true
            }
            if !held { continuation.resume() }
        }
    }

    /// Replaces the injected faults.
    public func setFaults(_ faults: EmulatorFaults) { state.withLock { $0.faults = faults } }

    /// The injected faults in force.
    public var faults: EmulatorFaults { state.withLock { $0.faults } }

    /// Answers one API call at emulated time `now`.
    ///
    /// Under the slow-response fault the answer carries `delaySeconds`; the HTTP front end waits that long.
    public func handle(_ request: EmulatorRequest, now: Double) -> EmulatorResponse {
        var response = route(request, now: now)
        guard !request.path.hasPrefix("/_emulator") else { return response }
        let (f, n) = state.withLock { s -> (EmulatorFaults, UInt64) in s.slowRolls += 1; return (s.faults, s.slowRolls) }
        if f.slowResponseRate > 0, unit(hash("slow", n)) < f.slowResponseRate {
            response.delaySeconds = max(0, f.slowResponseSeconds)
            state.withLock { $0.slowSent += 1 }
        }
        return response
    }

    /// The 413 answer, in the provider's shape, for a request whose body is over every size limit (the front end
    /// stops reading it, so it never reaches `handle`).
    public func tooLarge(_ request: EmulatorRequest) -> EmulatorResponse {
        request.path.hasPrefix("/v1/messages")
            ? anError(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
            : oaError(413, "Request body too large.", type: "invalid_request_error", code: nil)
    }

    private func route(_ request: EmulatorRequest, now: Double) -> EmulatorResponse {
        let parts = request.path.split(separator: "/").map(String.init)
        let anthropic = parts.count >= 2 && parts[0] == "v1" && parts[1] == "messages"
        // Unknown paths and wrong methods, in the provider's error shape.
        guard let known = EmulatorRoute.matching(request.path) else {
            return anthropic ? anError(404, "not_found_error", "Not found: \(request.method) \(request.path)")
                : oaError(404, "Invalid URL (\(request.method) \(request.path))", type: "invalid_request_error", code: nil)
        }
        guard known.methods.contains(request.method) else {
            var r = anthropic ? anError(405, "invalid_request_error", "Method \(request.method) not allowed on \(request.path)")
                : oaError(405, "Method not allowed (\(request.method) \(request.path))", type: "invalid_request_error", code: nil)
            r.headers["allow"] = known.methods.joined(separator: ", ")
            return r
        }
        if parts.first == "_emulator" { return admin(request, parts: parts, now: now) }
        // Authentication.
        if anthropic {
            // The SDK sends `x-api-key`, or `Authorization: Bearer` when configured with an auth token.
            let bearer = (request.headers["authorization"] ?? "").hasPrefix("Bearer ")
            if (request.headers["x-api-key"] ?? "").isEmpty && !bearer {
                return anError(401, "authentication_error", "x-api-key header is required")
            }
        } else {
            let auth = request.headers["authorization"] ?? ""
            if !auth.hasPrefix("Bearer ") || auth.count <= 7 {
                return oaError(401, "You didn't provide an API key.", type: "invalid_request_error", code: nil)
            }
        }
        // Call-level faults.
        let (f, call) = state.withLock { s -> (EmulatorFaults, UInt64) in s.calls += 1; return (s.faults, s.calls) }
        let roll = unit(hash("call", call))
        if roll < f.http429Rate {
            state.withLock { $0.http429Sent += 1 }
            var r = anthropic ? anError(429, "rate_limit_error", "Rate limited (emulated)")
                : oaError(429, "Rate limit reached (emulated).", type: "rate_limit_error", code: "rate_limit_exceeded")
            r.headers["retry-after"] = String(f.retryAfterSeconds)
            return r
        }
        if roll < f.http429Rate + f.http5xxRate {
            state.withLock { $0.http5xxSent += 1 }
            var r = anthropic ? anError(500, "api_error", "Internal server error (emulated)")
                : oaError(500, "The server had an error (emulated).", type: "server_error", code: nil)
            r.headers["x-should-retry"] = "true"
            return r
        }
        if anthropic { return anthropicRoute(request, parts: Array(parts.dropFirst(3)), now: now) }
        guard parts.first == "v1", parts.count >= 2 else { return oaError(404, "Invalid URL (\(request.method) \(request.path))", type: "invalid_request_error", code: nil) }
        switch (request.method, parts[1], parts.count) {
        case ("POST", "files", 2): return uploadFile(request, now: now)
        case ("GET", "files", 2): return listFiles(request)
        case ("GET", "files", 3): return fileObject(parts[2])
        case ("GET", "files", 4) where parts[3] == "content": return fileContent(parts[2], now: now)
        case ("DELETE", "files", 3): return deleteFile(parts[2])
        case ("POST", "batches", 2): return createBatch(request, now: now)
        case ("GET", "batches", 2): return listBatches(request, now: now)
        case ("GET", "batches", 3): return retrieveBatch(parts[2], now: now)
        case ("POST", "batches", 4) where parts[3] == "cancel": return cancelBatch(parts[2], now: now)
        default: return oaError(404, "Invalid URL (\(request.method) \(request.path))", type: "invalid_request_error", code: nil)
        }
    }

    // MARK: OpenAI files

    /// The request's body as a file in `storage`: the front end's spool, or the in-memory body written out. The
    /// caller removes `path` when done unless it took the file over (by renaming it).
    private func bodyFile(_ request: EmulatorRequest) throws -> (path: String, count: Int) {
        if let spooled = request.spooledBody { return (spooled.path, spooled.count) }
        return (try storage.write(request.body, name: "body"), request.body.count)
    }

    /// Moves a spooled file to a path of its own in `storage` (so the spooler's clean-up leaves it alone).
    private func keep(_ path: String, as name: String) throws -> String {
        let kept = try storage.newPath(name)
        guard rename(path, kept) == 0 else { throw EmulatorStorageError.io("cannot keep \(path)", errno) }
        return kept
    }

    private func storageFailed(_ error: any Error, anthropic: Bool) -> EmulatorResponse {
        anthropic ? anError(500, "api_error", "Emulator storage failed: \(error)")
            : oaError(500, "Emulator storage failed: \(error)", type: "server_error", code: nil)
    }

    private func uploadFile(_ request: EmulatorRequest, now: Double) -> EmulatorResponse {
        do {
            let (path, _) = try bodyFile(request)
            defer { unlink(path) }
            let map = try MappedFile(path: path)
            defer { withExtendedLifetime(map) {} }
            let form = Multipart.parse(body: map.bytes, contentType: request.headers["content-type"] ?? "", progress: map.release(before:))
            guard let file = form["file"] else { return oaError(400, "Missing file.", type: "invalid_request_error", param: "file", code: nil) }
            let purpose = form["purpose"].map { String(decoding: UnsafeBufferPointer(rebasing: map.bytes[$0.range]), as: UTF8.self) } ?? ""
            guard purpose == "batch" else { return oaError(400, "Invalid purpose '\(purpose)'.", type: "invalid_request_error", param: "purpose", code: nil) }
            if file.range.count > configuration.openAIMaxBytes {
                return oaError(413, "File too large.", type: "invalid_request_error", param: "file", code: nil)
            }
            let kept = try keep(path, as: "upload.jsonl")
            let stored = state.withLock { s -> StoredFile in
                let (id, seq) = s.newID("file-")
                let f = StoredFile(id: id, seq: seq, bytes: file.range.count, createdAt: now, filename: file.filename ?? "upload.jsonl", purpose: "batch",
                                   path: kept, offset: file.range.lowerBound)
                s.files[id] = f
                return f
            }
            return json(200, fileJSON(stored))
        } catch {
            return storageFailed(error, anthropic: false)
        }
    }

    private func fileJSON(_ f: StoredFile) -> [String: Any] {
        ["id": f.id, "object": "file", "bytes": f.bytes, "created_at": Int(f.createdAt),
         "expires_at": Int(f.createdAt) + 30 * 86_400, "filename": f.filename, "purpose": f.purpose, "status": "processed"]
    }

    private func listFiles(_ request: EmulatorRequest) -> EmulatorResponse {
        let files = state.withLock { s in s.files.values.sorted { $0.seq > $1.seq } }
            .filter { f in request.query["purpose"].map { $0 == f.purpose } ?? true }
        return json(200, page(files.map(fileJSON), ids: files.map(\.id), after: request.query["after"], limit: Int(request.query["limit"] ?? "") ?? 10_000))
    }

    private func fileObject(_ id: String) -> EmulatorResponse {
        guard let f = state.withLock({ $0.files[id] }) else { return fileNotFound(id) }
        return json(200, fileJSON(f))
    }

    private func fileContent(_ id: String, now: Double) -> EmulatorResponse {
        guard let f = state.withLock({ $0.files[id] }) else { return fileNotFound(id) }
        var r = EmulatorResponse(status: 200, headers: ["content-type": "application/octet-stream"])
        r.file = EmulatorFileBody(path: f.path, offset: f.offset, count: f.bytes)
        return r
    }

    private func deleteFile(_ id: String) -> EmulatorResponse {
        let removed = state.withLock { s -> (StoredFile, inUse: Bool)? in
            guard let f = s.files.removeValue(forKey: id) else { return nil }
            // A batch still reads its input from the file's bytes: they stay on disk until shutdown.
            return (f, s.batches.values.contains { $0.inputPath == f.path })
        }
        guard let removed else { return fileNotFound(id) }
        if !removed.inUse { unlink(removed.0.path) }
        return json(200, ["id": id, "object": "file", "deleted": true])
    }

    private func fileNotFound(_ id: String) -> EmulatorResponse {
        oaError(404, "No such File object: \(id)", type: "invalid_request_error", param: "id", code: nil)
    }

    // MARK: OpenAI batches

    private func createBatch(_ request: EmulatorRequest, now: Double) -> EmulatorResponse {
        guard let obj = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any] else {
            return oaError(400, "We could not parse the JSON body of your request.", type: "invalid_request_error", code: nil)
        }
        guard let fileID = obj["input_file_id"] as? String else { return oaError(400, "Missing required parameter: 'input_file_id'.", type: "invalid_request_error", param: "input_file_id", code: "missing_required_parameter") }
        guard let endpoint = obj["endpoint"] as? String else { return oaError(400, "Missing required parameter: 'endpoint'.", type: "invalid_request_error", param: "endpoint", code: "missing_required_parameter") }
        guard (obj["completion_window"] as? String) == "24h" else { return oaError(400, "Invalid completion_window: only '24h' is supported.", type: "invalid_request_error", param: "completion_window", code: nil) }
        let metadata = (obj["metadata"] as? [String: String]) ?? [:]
        if metadata.count > 16 { return oaError(400, "Invalid 'metadata': too many properties (max 16).", type: "invalid_request_error", param: "metadata", code: nil) }
        guard let file = state.withLock({ $0.files[fileID] }) else {
            return oaError(400, "Cannot find file \(fileID), or project does not have access to it.", type: "invalid_request_error", param: "file_id", code: nil)
        }
        let parsed: ParsedRequests, errors: [[String: Any]], model: String?, index: SpooledRequestIndex
        do {
            let map = try MappedFile(path: file.path)
            defer { withExtendedLifetime(map) {} }
            let range = file.offset..<(file.offset + file.bytes)
            // A line count first, so the records take one allocation of the right size.
            let lines = Self.lineCount(map.bytes, range, progress: map.release(before:)) + 1
            map.rewind()
            (parsed, errors, model) = validateOpenAI(map.bytes, range: range, endpoint: endpoint, expectedLines: lines, progress: map.release(before:))
            index = try SpooledRequestIndex(writing: parsed.requests, to: storage)
        } catch {
            return storageFailed(error, anthropic: false)
        }
        let cfg = configuration
        let f = faults
        let b = state.withLock { s -> OpenAIBatch in
            let (id, seq) = s.newID("batch_")
            var lc = BatchLifecycle(createdAt: now, total: parsed.requests.count, rate: cfg.requestsPerSecond, validationSeconds: cfg.validationSeconds, finalizingSeconds: cfg.finalizingSeconds, windowSeconds: cfg.completionWindowSeconds)
            lc.validationFails = !errors.isEmpty
            lc.expireAfterFraction = f.expireAfterFraction
            let b = OpenAIBatch(id: id, seq: seq, endpoint: endpoint, model: model, inputFileID: fileID, metadata: metadata, lifecycle: lc, errors: errors,
                                inputPath: file.path, requests: index, customIDDigest: parsed.customIDDigest)
            s.batches[id] = b
            return b
        }
        return json(200, batchJSON(b, now: now))
    }

    private func retrieveBatch(_ id: String, now: Double) -> EmulatorResponse {
        guard let b = materialize(id, now: now) else { return batchNotFound(id) }
        return json(200, batchJSON(b, now: now))
    }

    private func cancelBatch(_ id: String, now: Double) -> EmulatorResponse {
        guard var b = materialize(id, now: now) else { return batchNotFound(id) }
        switch b.lifecycle.phase(at: now).phase {
        case .validating, .inProgress, .finalizing:
            if b.lifecycle.phase(at: now).phase != .finalizing {
                b.lifecycle.cancelRequestedAt = now
                state.withLock { $0.batches[id]?.lifecycle.cancelRequestedAt = now }
            }
            return json(200, batchJSON(b, now: now))
        case .cancelling:
            return json(200, batchJSON(b, now: now))
        default:
            return oaError(400, "Cannot cancel a batch with status '\(openAIStatus(b.lifecycle.phase(at: now).phase))'.", type: "invalid_request_error", code: nil)
        }
    }

    private func listBatches(_ request: EmulatorRequest, now: Double) -> EmulatorResponse {
        let ids = state.withLock { s in s.batches.values.sorted { $0.seq > $1.seq }.map(\.id) }
        let limit = min(100, max(1, Int(request.query["limit"] ?? "") ?? 20))
        let objects = ids.compactMap { materialize($0, now: now) }.map { batchJSON($0, now: now) }
        return json(200, page(objects, ids: ids, after: request.query["after"], limit: limit))
    }

    private func batchNotFound(_ id: String) -> EmulatorResponse {
        oaError(404, "No batch found with id '\(id)'.", type: "invalid_request_error", code: nil)
    }

    func openAIStatus(_ p: BatchLifecycle.Phase) -> String {
        switch p {
        case .validating: "validating"
        case .failed: "failed"
        case .inProgress: "in_progress"
        case .finalizing: "finalizing"
        case .completed: "completed"
        case .cancelling: "cancelling"
        case .cancelled: "cancelled"
        case .expired: "expired"
        }
    }

    /// Whether request `customID` errors under the current faults.
    func requestErrors(_ customID: String, faults f: EmulatorFaults) -> Bool {
        requestErrors(roll: hash("req", customID), faults: f)
    }

    /// Whether the request whose roll (`hash("req", custom_id)`) is `roll` errors under the current faults.
    func requestErrors(roll: UInt64, faults f: EmulatorFaults) -> Bool {
        f.onlyErrorFile || unit(roll) < f.requestErrorRate
    }

    /// Writes the output and error files to `storage` once the batch is terminal; returns the batch.
    private func materialize(_ id: String, now: Double) -> OpenAIBatch? {
        guard var b = state.withLock({ $0.batches[id] }) else { return nil }
        let phase = b.lifecycle.phase(at: now)
        guard !b.materialized, [.completed, .cancelled, .expired].contains(phase.phase) else { return b }
        guard let written = try? writeResultFiles(b, phase: phase, done: b.lifecycle.processed(at: now)) else { return b }
        var lost: [String] = []
        b = state.withLock { s -> OpenAIBatch in
            guard var cur = s.batches[id], !cur.materialized else {
                lost = [written.output, written.errors].compactMap { $0?.path }
                return s.batches[id]!
            }
            for (file, name) in [(written.output, "batch_output.jsonl"), (written.errors, "batch_errors.jsonl")] {
                guard let (path, bytes) = file else { continue }
                let (fid, seq) = s.newID("file-")
                s.files[fid] = StoredFile(id: fid, seq: seq, bytes: bytes, createdAt: phase.since, filename: name, purpose: "batch_output", path: path, offset: 0)
                if name == "batch_output.jsonl" { cur.outputFileID = fid } else { cur.errorFileID = fid }
            }
            cur.materialized = true
            s.batches[id] = cur
            return cur
        }
        for path in lost { unlink(path) }
        return b
    }

    /// Renders the result lines of an ended batch from its spooled input, in a deterministic order that is not the
    /// input order, straight into an output file and an error file; returns each non-empty file's path and size.
    private func writeResultFiles(
        _ b: OpenAIBatch, phase: (phase: BatchLifecycle.Phase, since: Double), done: Int
    ) throws -> (output: (path: String, bytes: Int)?, errors: (path: String, bytes: Int)?) {
        let map = try MappedFile(path: b.inputPath)
        let input = map.bytes
        let mapped = try b.requests.open()
        let requests = mapped.records
        // `input` and `requests` point into these maps.
        defer { withExtendedLifetime((map, mapped)) {} }
        let f = faults
        let ids = requests.map { $0.customID(in: input) }
        let keys = ids.map { hash("order", $0) }
        let order = ids.indices.sorted { keys[$0] < keys[$1] }
        let outPath = try storage.newPath("batch_output.jsonl"), errPath = try storage.newPath("batch_errors.jsonl")
        let out = try SpoolWriter(path: outPath), errs = try SpoolWriter(path: errPath)
        let created = Int(phase.since)
        let model = b.model ?? ""
        for (k, i) in order.enumerated() {
            if k % 4096 == 4095 { map.releaseAll() }
            let r = requests[i]
            let customID = ids[i]
            let reqID = "batch_req_\(SyntheticResponse.digest(Array(b.id.utf8) + customID.utf8))"
            if i >= done {
                let code = phase.phase == .expired ? "batch_expired" : "batch_cancelled"
                let msg = phase.phase == .expired ? "This request could not be executed before the completion window expired." : "This request was not executed because the batch was cancelled."
                try errs.withBuffer { errData in
                    FastJSON.write(["id": reqID, "custom_id": customID, "response": NSNull(), "error": ["code": code, "message": msg]] as [String: Any], to: &errData)
                    errData.append(10)
                }
            } else if requestErrors(roll: r.roll, faults: f) {
                try errs.withBuffer { errData in
                    FastJSON.write(["id": reqID, "custom_id": customID, "error": NSNull(),
                                    "response": ["status_code": 400, "request_id": "req_" + reqID.suffix(16),
                                                 "body": ["error": ["message": "Invalid request (emulated fault).", "type": "invalid_request_error", "param": NSNull(), "code": NSNull()]]]] as [String: Any], to: &errData)
                    errData.append(10)
                }
            } else {
                try out.withBuffer { outData in
                    outData.append(contentsOf: #"{"custom_id":"#.utf8)
                    FastJSON.writeString(customID, to: &outData)
                    outData.append(contentsOf: #","error":null,"id":"#.utf8)
                    FastJSON.writeString(reqID, to: &outData)
                    outData.append(contentsOf: #","response":{"body":"#.utf8)
                    SyntheticResponse.writeOpenAIBody(endpoint: b.endpoint, customID: customID, model: model, body: r.body(in: input), created: created, to: &outData)
                    outData.append(contentsOf: #","request_id":"#.utf8)
                    FastJSON.writeString("req_" + reqID.suffix(16), to: &outData)
                    outData.append(contentsOf: #","status_code":200}}"#.utf8)
                    outData.append(10)
                }
            }
        }
        try out.close()
        try errs.close()
        if out.count == 0 { unlink(outPath) }
        if errs.count == 0 { unlink(errPath) }
        return (out.count > 0 ? (outPath, out.count) : nil, errs.count > 0 ? (errPath, errs.count) : nil)
    }

    func batchJSON(_ b: OpenAIBatch, now: Double) -> [String: Any] {
        let lc = b.lifecycle
        let (phase, since) = lc.phase(at: now)
        let done = lc.processed(at: now)
        let f = faults
        // The records are read only when some work is done.
        let (errored, usageIn) = done == 0 ? (0, 0) : ((try? b.requests.withRecords { records in
            records.prefix(done).reduce((0, 0)) { sum, r in (sum.0 + (requestErrors(roll: r.roll, faults: f) ? 1 : 0), sum.1 + r.inputTokens) }
        }) ?? (0, 0))
        let failedCount = phase == .failed ? 0 : errored
        func ts(_ t: Double?) -> Any { t.map { Int($0) as Any } ?? NSNull() }
        let started = phase != .validating && phase != .failed && now >= lc.startAt
        let finalizing: Double? = [.finalizing, .completed].contains(phase) ? lc.workEndAt : nil
        var o: [String: Any] = [
            "id": b.id, "object": "batch", "endpoint": b.endpoint, "model": b.model as Any? ?? NSNull(),
            "errors": phase == .failed ? ["object": "list", "data": b.errors] as Any : NSNull(),
            "input_file_id": b.inputFileID, "completion_window": "24h", "status": openAIStatus(phase),
            "output_file_id": b.outputFileID as Any? ?? NSNull(), "error_file_id": b.errorFileID as Any? ?? NSNull(),
            "created_at": Int(lc.createdAt), "in_progress_at": started ? ts(lc.startAt) : NSNull(),
            "expires_at": Int(lc.createdAt + lc.windowSeconds),
            "finalizing_at": ts(finalizing), "completed_at": phase == .completed ? ts(since) : NSNull(),
            "failed_at": phase == .failed ? ts(since) : NSNull(), "expired_at": phase == .expired ? ts(since) : NSNull(),
            "cancelling_at": ts(lc.cancelRequestedAt), "cancelled_at": phase == .cancelled ? ts(since) : NSNull(),
            "request_counts": ["total": phase == .validating || phase == .failed ? 0 : b.requests.count, "completed": done - failedCount, "failed": failedCount],
            "usage": ["input_tokens": usageIn, "input_tokens_details": ["cached_tokens": 0], "output_tokens": done * 4,
                      "output_tokens_details": ["reasoning_tokens": 0], "total_tokens": usageIn + done * 4],
            "metadata": b.metadata.isEmpty ? NSNull() as Any : b.metadata,
        ]
        if phase == .expired || phase == .cancelled { o["request_counts"] = ["total": b.requests.count, "completed": done - failedCount, "failed": failedCount + b.requests.count - done] }
        return o
    }

    // MARK: Anthropic

    private func anthropicRoute(_ request: EmulatorRequest, parts: [String], now: Double) -> EmulatorResponse {
        switch (request.method, parts.count) {
        case ("POST", 0): return createMessageBatch(request, now: now)
        case ("GET", 0): return listMessageBatches(request, now: now)
        case ("GET", 1): return withMessageBatch(parts[0]) { json(200, messageBatchJSON($0, now: now)) }
        case ("DELETE", 1):
            return withMessageBatch(parts[0]) { b in
                guard b.lifecycle.phase(at: now).phase.isTerminal else {
                    return anError(400, "invalid_request_error", "Batch \(b.id) is still processing; cancel it before deleting.")
                }
                state.withLock { $0.messageBatches[b.id]?.deleted = true }
                return json(200, ["id": b.id, "type": "message_batch_deleted"])
            }
        case ("POST", 2) where parts[1] == "cancel":
            return withMessageBatch(parts[0]) { b in
                var b = b
                if !b.lifecycle.phase(at: now).phase.isTerminal && b.lifecycle.cancelRequestedAt == nil {
                    b.lifecycle.cancelRequestedAt = now
                    state.withLock { $0.messageBatches[b.id]?.lifecycle.cancelRequestedAt = now }
                }
                return json(200, messageBatchJSON(b, now: now))
            }
        case ("GET", 2) where parts[1] == "results":
            return withMessageBatch(parts[0]) { b in
                guard b.lifecycle.phase(at: now).phase.isTerminal else {
                    return anError(400, "invalid_request_error", "Batch \(b.id) has not ended; results are not available yet.")
                }
                var r = EmulatorResponse(status: 200, headers: ["content-type": "application/x-jsonl"])
                do { r.chunks = try anthropicResults(b, now: now) } catch { return storageFailed(error, anthropic: true) }
                return r
            }
        default: return anError(404, "not_found_error", "Not found: \(request.method) \(request.path)")
        }
    }

    private func withMessageBatch(_ id: String, _ body: (AnthropicBatch) -> EmulatorResponse) -> EmulatorResponse {
        guard let b = state.withLock({ $0.messageBatches[id] }), !b.deleted else {
            return anError(404, "not_found_error", "Message batch \(id) not found.")
        }
        return body(b)
    }

    private func createMessageBatch(_ request: EmulatorRequest, now: Double) -> EmulatorResponse {
        if (request.spooledBody?.count ?? request.body.count) > configuration.anthropicMaxBytes {
            return anError(413, "request_too_large", "Request exceeds the maximum allowed number of bytes.")
        }
        let parsed: ParsedRequests, kept: String, index: SpooledRequestIndex
        do {
            let (path, _) = try bodyFile(request)
            defer { unlink(path) }
            let map = try MappedFile(path: path)
            defer { withExtendedLifetime(map) {} }
            switch scanMessageBatch(map.bytes, progress: map.release(before:)) {
            case .failure(let message): return anError(400, "invalid_request_error", message.text)
            case .success(let p): parsed = p
            }
            kept = try keep(path, as: "message_batch.json")
            index = try SpooledRequestIndex(writing: parsed.requests, to: storage)
        } catch {
            return storageFailed(error, anthropic: true)
        }
        let cfg = configuration
        let f = faults
        let b = state.withLock { s -> AnthropicBatch in
            let (n, seq) = s.newID("")
            var lc = BatchLifecycle(createdAt: now, total: parsed.requests.count, rate: cfg.requestsPerSecond, validationSeconds: 0, finalizingSeconds: cfg.finalizingSeconds, windowSeconds: cfg.completionWindowSeconds)
            lc.expireAfterFraction = f.expireAfterFraction
            let b = AnthropicBatch(id: "msgbatch_" + n, seq: seq, lifecycle: lc, path: kept, requests: index, models: parsed.models,
                                   customIDDigest: parsed.customIDDigest)
            s.messageBatches[b.id] = b
            return b
        }
        return json(200, messageBatchJSON(b, now: now))
    }

    private func anthropicResultKind(_ b: AnthropicBatch, index i: Int, roll: UInt64, now: Double) -> String {
        let (phase, _) = b.lifecycle.phase(at: now)
        if i >= b.lifecycle.processed(at: now) { return phase == .expired ? "expired" : "canceled" }
        return requestErrors(roll: roll, faults: faults) ? "errored" : "succeeded"
    }

    func messageBatchJSON(_ b: AnthropicBatch, now: Double) -> [String: Any] {
        let (phase, since) = b.lifecycle.phase(at: now)
        let ended = phase.isTerminal
        var counts = ["processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0]
        if ended {
            _ = try? b.requests.withRecords { records in
                for (i, r) in records.enumerated() { counts[anthropicResultKind(b, index: i, roll: r.roll, now: now), default: 0] += 1 }
            }
        } else {
            counts["processing"] = b.requests.count
        }
        let status = ended ? "ended" : (phase == .cancelling ? "canceling" : "in_progress")
        return ["id": b.id, "type": "message_batch", "processing_status": status, "request_counts": counts,
                "ended_at": ended ? rfc3339(since) : NSNull(), "created_at": rfc3339(b.lifecycle.createdAt),
                "expires_at": rfc3339(b.lifecycle.createdAt + b.lifecycle.windowSeconds),
                "archived_at": NSNull(), "cancel_initiated_at": b.lifecycle.cancelRequestedAt.map { rfc3339($0) as Any } ?? NSNull(),
                "results_url": ended ? "/v1/messages/batches/\(b.id)/results" as Any : NSNull()]
    }

    /// The results JSONL of an ended batch, rendered from its spooled create body a thousand lines at a time as
    /// the front end sends it, in a deterministic order that is not the input order.
    private func anthropicResults(_ b: AnthropicBatch, now: Double) throws -> EmulatorBodyChunks {
        let map = try MappedFile(path: b.path)
        let mapped = try b.requests.open()
        let keys = mapped.records.map { hash("order", $0.customID(in: map.bytes)) }
        let order = keys.indices.sorted { keys[$0] < keys[$1] }
        return EmulatorBodyChunks(count: order.count, itemsPerChunk: 1000) { [self] range in
            defer { map.releaseAll() }
            var out: [UInt8] = []
            for k in range {
                let r = mapped.records[order[k]]
                let customID = r.customID(in: map.bytes)
                let kind = anthropicResultKind(b, index: order[k], roll: r.roll, now: now)
                let result: [String: Any]
                switch kind {
                case "succeeded": result = ["type": "succeeded", "message": SyntheticResponse.anthropicMessage(customID: customID, model: b.models[Int(r.model)], body: Array(r.body(in: map.bytes)))]
                case "errored": result = ["type": "errored", "error": ["type": "error", "error": ["type": "invalid_request_error", "message": "Invalid request (emulated fault)."], "request_id": NSNull()]]
                default: result = ["type": kind]
                }
                FastJSON.write(["custom_id": customID, "result": result] as [String: Any], to: &out)
                out.append(10)
            }
            return out
        }
    }

    private func listMessageBatches(_ request: EmulatorRequest, now: Double) -> EmulatorResponse {
        let all = state.withLock { s in s.messageBatches.values.filter { !$0.deleted }.sorted { $0.seq > $1.seq } }
        let limit = min(1000, max(1, Int(request.query["limit"] ?? "") ?? 20))
        var slice = all[...]
        var hasMore = false
        if let before = request.query["before_id"], let i = all.firstIndex(where: { $0.id == before }) {
            slice = all[..<i]
            hasMore = slice.count > limit
            slice = slice.suffix(limit)
        } else {
            if let after = request.query["after_id"], let i = all.firstIndex(where: { $0.id == after }) { slice = all[(i + 1)...] }
            hasMore = slice.count > limit
            slice = slice.prefix(limit)
        }
        return json(200, ["data": slice.map { messageBatchJSON($0, now: now) }, "has_more": hasMore,
                          "first_id": slice.first?.id as Any? ?? NSNull(), "last_id": slice.last?.id as Any? ?? NSNull()])
    }

    // MARK: Admin

    private func admin(_ request: EmulatorRequest, parts: [String], now: Double) -> EmulatorResponse {
        switch (request.method, parts.count > 1 ? parts[1] : "") {
        case ("GET", "stats"):
            let data = (try? JSONEncoder().encode(stats(now: now))) ?? Data()
            return EmulatorResponse(status: 200, headers: ["content-type": "application/json"], body: [UInt8](data))
        case ("GET", "faults"):
            return EmulatorResponse(status: 200, headers: ["content-type": "application/json"], body: [UInt8]((try? JSONEncoder().encode(faults)) ?? Data()))
        case ("PUT", "faults"):
            guard let f = try? JSONDecoder().decode(EmulatorFaults.self, from: Data(request.body)) else {
                return oaError(400, "Body must be an EmulatorFaults JSON object.", type: "invalid_request_error", code: nil)
            }
            setFaults(f)
            return EmulatorResponse(status: 200, headers: ["content-type": "application/json"], body: request.body)
        default: return oaError(404, "Unknown admin endpoint.", type: "invalid_request_error", code: nil)
        }
    }

    /// Every batch created so far, oldest first.
    public func stats(now: Double) -> EmulatorStats {
        let (oa, an, sent429, sent5xx, slow) = state.withLock { s in
            (Array(s.batches.values), Array(s.messageBatches.values), s.http429Sent, s.http5xxSent, s.slowSent)
        }
        var rows: [EmulatorStats.Batch] = []
        var seqs: [Int] = []
        for b in oa {
            rows.append(.init(provider: "openai", id: b.id, status: openAIStatus(b.lifecycle.phase(at: now).phase), requestCount: b.requests.count,
                              metadata: b.metadata, customIDDigest: b.customIDDigest))
            seqs.append(b.seq)
        }
        for b in an {
            let (p, _) = b.lifecycle.phase(at: now)
            rows.append(.init(provider: "anthropic", id: b.id, status: p.isTerminal ? "ended" : (p == .cancelling ? "canceling" : "in_progress"), requestCount: b.requests.count,
                              metadata: [:], customIDDigest: b.customIDDigest))
            seqs.append(b.seq)
        }
        let ordered = zip(seqs, rows).sorted { $0.0 < $1.0 }.map(\.1)
        return EmulatorStats(batches: ordered, http429Sent: sent429, http5xxSent: sent5xx, slowResponsesSent: slow)
    }

    // MARK: Helpers

    func hash(_ salt: String, _ value: some CustomStringConvertible) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ configuration.seed &* 0x9E37_79B9_7F4A_7C15
        for b in salt.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        h = (h ^ 58) &* 0x100_0000_01b3
        for b in value.description.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        h ^= h >> 33; h = h &* 0xff51_afd7_ed55_8ccd; h ^= h >> 33
        return h
    }

    private func unit(_ h: UInt64) -> Double { Double(h >> 11) / Double(1 << 53) }

    private func page(_ objects: [[String: Any]], ids: [String], after: String?, limit: Int) -> [String: Any] {
        var start = 0
        if let after, let i = ids.firstIndex(of: after) { start = i + 1 }
        let end = min(ids.count, start + max(1, limit))
        let slice = start < end ? Array(objects[start..<end]) : []
        return ["object": "list", "data": slice, "first_id": start < end ? ids[start] as Any : NSNull(),
                "last_id": start < end ? ids[end - 1] as Any : NSNull(), "has_more": end < ids.count]
    }

    private func json(_ status: Int, _ object: [String: Any]) -> EmulatorResponse {
        EmulatorResponse(status: status, headers: ["content-type": "application/json"], body: FastJSON.data(object))
    }

    private func oaError(_ status: Int, _ message: String, type: String, param: String? = nil, code: String?) -> EmulatorResponse {
        json(status, ["error": ["message": message, "type": type, "param": param as Any? ?? NSNull(), "code": code as Any? ?? NSNull()]])
    }

    private func anError(_ status: Int, _ type: String, _ message: String) -> EmulatorResponse {
        json(status, ["type": "error", "error": ["type": type, "message": message], "request_id": "req_emulated"])
    }

    private func rfc3339(_ t: Double) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: t))
    }
}

extension BatchLifecycle.Phase {
    /// Whether nothing more will happen to the batch.
    var isTerminal: Bool { [.failed, .completed, .cancelled, .expired].contains(self) }
}

/// What the emulator has seen: every batch created, so tests can prove none was created twice.
public struct EmulatorStats: Sendable, Codable, Equatable {
    /// One created batch.
    public struct Batch: Sendable, Codable, Equatable {
        /// `openai` or `anthropic`.
        public var provider: String
        /// Provider batch id.
        public var id: String
        /// Provider status string now.
        public var status: String
        /// Number of requests.
        public var requestCount: Int
        /// OpenAI metadata (holds the idempotency tag); empty for Anthropic.
        public var metadata: [String: String]
        /// Digest of the sorted custom_ids joined by newlines.
        public var customIDDigest: String
    }
    /// Batches in creation order.
    public var batches: [Batch]
    /// Emulated rate-limit (429) responses sent so far.
    public var http429Sent: Int = 0
    /// Emulated server-error (500) responses sent so far.
    public var http5xxSent: Int = 0
    /// Answers delayed by the slow-response fault so far.
    public var slowResponsesSent: Int = 0

    /// Whether two batches hold the same packed requests (the same sorted custom_ids): a duplicate submission.
    public var duplicateSubmissions: Int {
        var seen: Set<String> = []
        return batches.filter { !seen.insert($0.provider + ":" + $0.customIDDigest).inserted }.count
    }
}
