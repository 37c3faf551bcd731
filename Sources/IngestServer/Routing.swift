import AWSClient
import Bytes
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Platform
import Sinks
import Synchronization
import JSON
import PinModel

// Routing: which API a request path leads to, the API key check, and the hand-over of a request's records
// to the writer (accounting, 429 when the writer's queue is full).

extension IngestService {
    /// With `--api-key`, every route needs the key (X-API-Key, or Authorization: Bearer), compared in constant
    /// time: a wrong key's answer takes as long whatever its first differing byte.
    func authorised(_ header: (String) -> String?) -> Bool {
        guard let key = config.apiKey else { return true }
        let x = header("x-api-key").map { constantTimeEqual($0, key) } ?? false
        let bearer = header("authorization").map { constantTimeEqual($0, "Bearer " + key) } ?? false
        return x || bearer
    }

    /// Where a request path leads: /topics, /streams, /metrics, /topics/NAME, /streams/NAME/record(s); a
    /// query string and one trailing slash are ignored.
    struct Route {
        enum Kind { case topics, streams, metrics, topic, record, records, none }
        var kind = Kind.none
        var name: Substring = ""
        var path: Substring

        init(_ full: String) {
            var p = Substring(full)
            let u = p.utf8
            if let q = u.firstIndex(of: UInt8(ascii: "?")) { p = p[..<q] }
            if p.utf8.count > 1 && p.utf8.last == UInt8(ascii: "/") { p = p[..<p.utf8.index(before: p.utf8.endIndex)] }
            path = p
            let b = p.utf8
            func after(_ prefix: StaticString) -> Substring? {
                let n = prefix.utf8CodeUnitCount
                guard b.count > n, b.starts(with: UnsafeBufferPointer(start: prefix.utf8Start, count: n)) else { return nil }
                return p[b.index(b.startIndex, offsetBy: n)...]
            }
            if b.elementsEqual("/topics".utf8) { kind = .topics } else if b.elementsEqual("/streams".utf8) { kind = .streams }
            else if b.elementsEqual("/metrics".utf8) { kind = .metrics }
            else if let t = after("/topics/") {
                if !t.utf8.contains(UInt8(ascii: "/")) { kind = .topic; name = t }
            } else if let rest = after("/streams/"), let slash = rest.utf8.firstIndex(of: UInt8(ascii: "/")) {
                let tail = rest[rest.utf8.index(after: slash)...]
                name = rest[..<slash]
                if !name.isEmpty && tail.utf8.elementsEqual("record".utf8) { kind = .record }
                else if !name.isEmpty && tail.utf8.elementsEqual("records".utf8) { kind = .records }
            }
        }
    }

    /// Routes one complete request; `respond` is called exactly once (now, or from the writer when the
    /// records are stored).
    func handle(method: HTTPMethod, path: String, header: (String) -> String?, body: UnsafeRawBufferPointer?, bodyTooLarge: Bool,
                respond done: Responder) {
        metrics.requests.add(1, ordering: .relaxed)
        // Routing on the path's bytes: splitting it into Substrings cost 6% of a single-record request.
        let r = Route(path)
        if r.kind == .topics || r.kind == .streams || r.kind == .metrics, !authorised(header) {
            return done(error(401, 40101, "missing or wrong API key"))
        }
        switch (method, r.kind) {
        case (.GET, .topics):
            done(json(200, "[" + topics.map { "\"\($0)\"" }.joined(separator: ",") + "]"))
        case (.GET, .streams):
            done(json(200, "{\"StreamNames\":[" + streams.map { "\"\($0)\"" }.joined(separator: ",") + "]}"))
        case (.GET, .metrics):
            done(prometheus())
        case (.POST, .topic):
            if bodyTooLarge { return done(error(413, 413, "request body over \(config.maxBodyBytes) bytes")) }
            restProxy(topic: r.name, header: header, body: body ?? UnsafeRawBufferPointer(start: nil, count: 0), respond: done)
        case (.PUT, .record), (.PUT, .records):
            if bodyTooLarge { return done(error(413, 413, "request body over \(config.maxBodyBytes) bytes")) }
            kinesis(stream: r.name, many: r.kind == .records, header: header, body: body ?? UnsafeRawBufferPointer(start: nil, count: 0), respond: done)
        default:
            done(error(404, 404, "no route \(method) \(r.path)"))
        }
    }

    /// Counts the records as accepted and hands them to the writer; `then` gets each record's outcome once
    /// stored or failed. A full queue (429, with Retry-After) un-counts them and becomes the error answer.
    func accept(kind: RecordKind, _ pack: RecordPack, bodyBytes: Int,
                respond: Responder, then: @escaping @Sendable ([RecordOutcome]) -> Reply) {
        let n = pack.count
        guard n <= PendingJobs.maxRecordsPerJob else {
            return respond(error(413, 413, "\(n) records in one request: at most \(PendingJobs.maxRecordsPerJob) (split the request)", records: n))
        }
        // The queue is bounded by bytes too (a job's bytes stay held until its records are stored or failed):
        // past --max-queue-bytes a request is answered 429 before it is accepted (one alone always fits).
        let cost = pack.bytes.count
        let queued = queuedBytes.add(cost, ordering: .relaxed).newValue
        if queued > config.maxQueueBytes && queued != cost {
            queuedBytes.subtract(cost, ordering: .relaxed)
            return respond(error(429, 42901, "ingest queue holds over \(config.maxQueueBytes) bytes, retry later", records: n, headers: [("Retry-After", "1")]))
        }
        metrics.recordsAccepted.add(n, ordering: .relaxed)
        metrics.bytes.add(bodyBytes, ordering: .relaxed)
        let m = metrics
        let job = IngestJob(kind: kind, pack: pack) { [self] r in
            queuedBytes.subtract(cost, ordering: .relaxed)
            switch r {
            case .success(let outcomes):
                // Records the backend refused are not stored: they move from accepted to rejected, by code.
                var failed = 0
                outcomes.withUnsafeBufferPointer { os in for i in os.indices where os[i].error != nil { failed += 1 } }
                if failed > 0 {
                    m.recordsAccepted.subtract(failed, ordering: .relaxed)
                    m.recordsRejected.add(failed, ordering: .relaxed)
                    m.errors.withLock { $0[50002, default: 0] += failed }
                }
                // The answer is formatted on the connection's event loop, not on the writer thread.
                respond.later { then(outcomes) }
            case .failure(let e):
                m.recordsAccepted.subtract(n, ordering: .relaxed)
                respond(self.error(e.status, e.code, e.message, records: n))
            }
        }
        if !store.submit(job) {
            queuedBytes.subtract(cost, ordering: .relaxed)
            metrics.recordsAccepted.subtract(n, ordering: .relaxed)
            respond(error(429, 42901, "ingest queue full, retry later", records: n, headers: [("Retry-After", "1")]))
        }
    }
}

/// Equality whose time depends only on the lengths, not on where the bytes first differ.
func constantTimeEqual(_ a: String, _ b: String) -> Bool {
    let x = Array(a.utf8), y = Array(b.utf8)
    var diff = UInt8(x.count == y.count ? 0 : 1)
    for i in 0..<max(x.count, y.count) { diff |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0) }
    return diff == 0
}
