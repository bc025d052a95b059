import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The requests of a batch as parsed from its spooled input: compact records plus what the batch keeps about them.
struct ParsedRequests: Sendable {
    /// One record per request, in input order.
    var requests: [SpooledRequest] = []
    /// Model names the records' `model` indexes point into.
    var models: [String] = []
    /// Digest of the sorted custom_ids joined by newlines (`EmulatorStats.Batch.customIDDigest`).
    var customIDDigest = ""
}

extension EmulatorCore {
    /// A validation message for a rejected Anthropic create body.
    struct RejectedBody: Error { var text: String }

    /// One parsed request, decoded (a test view of `SpooledRequest`).
    struct Line: Sendable { var customID: String, body: [UInt8], model: String }

    /// Digest of `ids` sorted and joined by newlines, without building the joined text.
    static func customIDDigest(_ ids: [String]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for (n, id) in ids.sorted().enumerated() {
            if n > 0 { h = (h ^ 10) &* 0x100_0000_01b3 }
            for b in id.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        }
        let s = String(h, radix: 16)
        return String(repeating: "0", count: 16 - s.count) + s
    }

    /// Validates the OpenAI input file held in `all[range]`; returns its requests, the `errors.data` entries and the
    /// model. `progress` is called with the offset reached, so a mapped file can drop the pages behind it.
    func validateOpenAI(
        _ all: UnsafeBufferPointer<UInt8>, range: Range<Int>, endpoint: String, expectedLines: Int = 0, progress: (Int) -> Void = { _ in }
    ) -> (ParsedRequests, [[String: Any]], String?) {
        var parsed = ParsedRequests()
        var errors: [[String: Any]] = []
        var seen = Set<String>()
        var ids: [String] = []
        var model: String?
        func err(_ code: String, _ message: String, _ line: Int?) {
            errors.append(["code": code, "message": message, "param": NSNull(), "line": line.map { $0 as Any } ?? NSNull()])
        }
        var n = 0
        var lineNo = 0
        var start = range.lowerBound
        let limit = range.upperBound
        parsed.requests.reserveCapacity(expectedLines)
        ids.reserveCapacity(expectedLines)
        while start <= limit {
            var end = limit
            if start < limit, let base = all.baseAddress, let nl = memchr(base + start, 10, limit - start) {
                end = UnsafeRawPointer(nl) - UnsafeRawPointer(base)
            }
            defer { start = end + 1; progress(start) }
            if end == limit && start == limit && lineNo > 0 { break }
            lineNo += 1
            let chunk = UnsafeBufferPointer(rebasing: all[start..<end])
            if chunk.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) { continue }
            n += 1
            guard let o = FastJSON.scanObject(chunk), let cidRange = o.values["custom_id"],
                  let customID = FastJSON.string(chunk, cidRange), let bodyRange = o.values["body"],
                  chunk[bodyRange.lowerBound] == UInt8(ascii: "{"),
                  bodyRange.count <= Int(UInt32.max), let delta = Int32(exactly: cidRange.lowerBound - bodyRange.lowerBound) else {
                err("invalid_json_line", "This line is not parseable as valid JSON.", lineNo); continue
            }
            let bodyBytes = UnsafeBufferPointer(rebasing: chunk[bodyRange])
            if !seen.insert(customID).inserted { err("duplicate_custom_id", "The custom_id for this request is a duplicate of another request. The custom_id parameter must be unique for each request in a batch.", lineNo) }
            if o.values["url"].flatMap({ FastJSON.string(chunk, $0) }) != endpoint { err("url_mismatch", "The provided URL for this request does not match the batch endpoint.", lineNo) }
            if o.values["method"].flatMap({ FastJSON.string(chunk, $0) }) != "POST" { err("invalid_request", "The method for this request must be POST.", lineNo) }
            let m = FastJSON.scanObject(bodyBytes).flatMap { b in b.values["model"].flatMap { FastJSON.string(bodyBytes, $0) } } ?? ""
            if let model, model != m { err("model_mismatch", "The provided model for this request does not match the other requests in the batch. Each batch file must contain requests to a single model.", lineNo) }
            if model == nil { model = m }
            ids.append(customID)
            parsed.requests.append(SpooledRequest(
                roll: hash("req", customID), bodyStart: start + bodyRange.lowerBound, bodyLength: UInt32(bodyRange.count),
                idDelta: delta, idLength: UInt32(cidRange.count), model: 0))
        }
        if n == 0 { err("empty_file", "The batch input file is empty.", nil) }
        if n > configuration.openAIMaxRequests { err("too_many_tasks", "The batch input file has \(n) requests; the maximum is \(configuration.openAIMaxRequests).", nil) }
        parsed.models = [model ?? ""]
        parsed.customIDDigest = Self.customIDDigest(ids)
        return (parsed, errors, model)
    }

    /// Newlines in `all[range]`; `progress` is called with the offset reached.
    static func lineCount(_ all: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, progress: (Int) -> Void = { _ in }) -> Int {
        guard let base = all.baseAddress else { return 0 }
        var count = 0
        var i = range.lowerBound
        while i < range.upperBound, let nl = memchr(base + i, 10, range.upperBound - i) {
            count += 1
            i = (UnsafeRawPointer(nl) - UnsafeRawPointer(base)) + 1
            progress(i)
        }
        return count
    }

    /// Parses `{"requests":[{"custom_id":…,"params":{…}}]}` with `FastJSON` (no Foundation objects per request);
    /// each request keeps its raw `params` bytes. Fails with the provider's message on the first bad request.
    func parseMessageBatchRequests(_ all: UnsafeBufferPointer<UInt8>) -> Result<[Line], RejectedBody> {
        scanMessageBatch(all).map { parsed in
            parsed.requests.map { r in
                Line(customID: r.customID(in: all), body: Array(r.body(in: all)), model: parsed.models[Int(r.model)])
            }
        }
    }

    /// Validates an Anthropic create body in place and records where each request's parts lie in it; the whole
    /// body is checked as JSON first, as the provider does. `progress` is called with the offset reached.
    func scanMessageBatch(_ all: UnsafeBufferPointer<UInt8>, progress: (Int) -> Void = { _ in }) -> Result<ParsedRequests, RejectedBody> {
        let elements: [Range<Int>]
        switch Self.requestsMember(all, progress: progress) {
        case .invalidJSON: return .failure(.init(text: "Request body is not valid JSON."))
        case .missing: return .failure(.init(text: "requests: Field required"))
        case .notArray: return .failure(.init(text: "requests: Input should be a valid list"))
        case .elements(let e): elements = e
        }
        if elements.isEmpty { return .failure(.init(text: "requests: List should have at least 1 item")) }
        if elements.count > configuration.anthropicMaxRequests {
            return .failure(.init(text: "requests: List should have at most \(configuration.anthropicMaxRequests) items"))
        }
        var seen = Set<String>()
        var ids: [String] = []
        var parsed = ParsedRequests()
        var modelIndex: [String: UInt32] = [:]
        parsed.requests.reserveCapacity(elements.count)
        for (i, range) in elements.enumerated() {
            progress(range.upperBound)
            let element = UnsafeBufferPointer(rebasing: all[range])
            guard let r = FastJSON.scanObject(element) else { return .failure(.init(text: "requests.\(i): Input should be a valid dictionary")) }
            guard let idRange = r.values["custom_id"], let id = FastJSON.string(element, idRange), Self.validAnthropicID(id) else {
                return .failure(.init(text: "requests.\(i).custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"))
            }
            guard seen.insert(id).inserted else { return .failure(.init(text: "Duplicate custom_id '\(id)' in requests.")) }
            guard let paramsRange = r.values["params"] else { return .failure(.init(text: "requests.\(i).params: Field required")) }
            guard element[paramsRange.lowerBound] == UInt8(ascii: "{") else {
                return .failure(.init(text: "requests.\(i).params: Input should be a valid dictionary"))
            }
            let params = UnsafeBufferPointer(rebasing: element[paramsRange])
            let model = FastJSON.scanObject(params).flatMap { p in p.values["model"].flatMap { FastJSON.string(params, $0) } } ?? ""
            let m: UInt32
            if let known = modelIndex[model] {
                m = known
            } else {
                m = UInt32(parsed.models.count)
                modelIndex[model] = m
                parsed.models.append(model)
            }
            guard paramsRange.count <= Int(UInt32.max), let delta = Int32(exactly: idRange.lowerBound - paramsRange.lowerBound) else {
                return .failure(.init(text: "requests.\(i).params: too large"))
            }
            ids.append(id)
            parsed.requests.append(SpooledRequest(
                roll: hash("req", id), bodyStart: range.lowerBound + paramsRange.lowerBound, bodyLength: UInt32(paramsRange.count),
                idDelta: delta, idLength: UInt32(idRange.count), model: m))
        }
        parsed.customIDDigest = Self.customIDDigest(ids)
        return .success(parsed)
    }

    /// What the `requests` member of a create body is.
    enum RequestsMember { case invalidJSON, missing, notArray, elements([Range<Int>]) }

    /// Checks that `all` is one JSON object and finds its last `requests` member (the byte range of each element
    /// when it is an array). Walks the text once, front to back, calling `progress` after each element.
    static func requestsMember(_ all: UnsafeBufferPointer<UInt8>, progress: (Int) -> Void) -> RequestsMember {
        var s = FastJSON.Scanner(b: all, i: 0)
        s.ws()
        guard s.i < all.count, all[s.i] == UInt8(ascii: "{") else { return .invalidJSON }
        var found = RequestsMember.missing
        s.i += 1
        s.ws()
        if s.i < all.count, all[s.i] == UInt8(ascii: "}") {
            s.i += 1
        } else {
            members: while true {
                s.ws()
                let keyStart = s.i
                guard s.string() else { return .invalidJSON }
                let isRequests = FastJSON.string(all, keyStart..<s.i) == "requests"
                s.ws()
                guard s.i < all.count, all[s.i] == UInt8(ascii: ":") else { return .invalidJSON }
                s.i += 1
                s.ws()
                if isRequests, s.i < all.count, all[s.i] == UInt8(ascii: "[") {
                    // The array's elements, scanned as `Scanner.value(depth: 1)` would (elements at depth 2).
                    var elements: [Range<Int>] = []
                    s.i += 1
                    s.ws()
                    if s.i < all.count, all[s.i] == UInt8(ascii: "]") {
                        s.i += 1
                    } else {
                        while true {
                            s.ws()
                            let start = s.i
                            guard s.value(depth: 2) else { return .invalidJSON }
                            elements.append(start..<s.i)
                            progress(s.i)
                            s.ws()
                            guard s.i < all.count else { return .invalidJSON }
                            if all[s.i] == UInt8(ascii: ",") { s.i += 1; continue }
                            if all[s.i] == UInt8(ascii: "]") { s.i += 1; break }
                            return .invalidJSON
                        }
                    }
                    found = .elements(elements)
                } else {
                    guard s.value(depth: 1) else { return .invalidJSON }
                    if isRequests { found = .notArray }
                }
                s.ws()
                guard s.i < all.count else { return .invalidJSON }
                if all[s.i] == UInt8(ascii: ",") { s.i += 1; continue }
                if all[s.i] == UInt8(ascii: "}") { s.i += 1; break members }
                return .invalidJSON
            }
        }
        s.ws()
        guard s.i == all.count else { return .invalidJSON }
        return found
    }

    /// Whether `id` matches `^[a-zA-Z0-9_-]{1,64}$`.
    static func validAnthropicID(_ id: String) -> Bool {
        (1...64).contains(id.utf8.count) && id.utf8.allSatisfy { c in
            (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 95 || c == 45
        }
    }
}
