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

/// Settings of `pinbench serve`.
public struct IngestConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 8082
    /// Topics `<prefix>.pin|geo|user` and streams `streaming-<prefix>-pin|geo|user` (the paths clients post to),
    /// partitions and batching of the backend.
    public var sink = SinkSettings()
    /// Requests must carry it (`X-API-Key` or `Authorization: Bearer`), when set.
    public var apiKey: String?
    public var maxBodyBytes = 10 << 20
    public var maxRecordBytes = 1 << 20
    /// Requests the writer may hold before new ones get 429.
    public var queueCapacity = 4096
    /// Idle or half-open connections are closed after this many seconds.
    public var idleTimeoutSeconds: Int64 = 30
    /// Where accepted records go: the embedded log (default), a Kafka cluster or Kinesis.
    public var backend: Backend = .embedded(LogOptions())
    /// SwiftNIO event-loop threads (HTTP parsing and routing); the backend has its own writer thread.
    public var eventLoops = max(1, System.coreCount)
    public init() {}
}

/// Counters for /metrics and for the accounting `accepted == stored + rejected`.
final class IngestMetrics: Sendable {
    let requests = Atomic<Int>(0)
    let recordsAccepted = Atomic<Int>(0)
    let recordsRejected = Atomic<Int>(0)
    let bytes = Atomic<Int>(0)
    let errors = Mutex<[Int: Int]>([:])
    /// Request latency buckets (seconds) for a Prometheus histogram.
    static let buckets: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
    let latency = Mutex<(counts: [Int], sum: Double, n: Int)>(([Int](repeating: 0, count: 10), 0, 0))

    func observe(_ seconds: Double) {
        latency.withLock { l in
            for (i, b) in Self.buckets.enumerated() where seconds <= b { l.counts[i] += 1 }
            l.sum += seconds
            l.n += 1
        }
    }
}

/// The ingest HTTP API: Kafka REST Proxy v2 (`POST /topics/{topic}`) and the API Gateway shapes in front of
/// Kinesis (`PUT /streams/{stream}/record(s)`), routed to the configured backend by one writer thread.
public final class IngestService: Sendable {
    public let config: IngestConfig
    let store: IngestWriter
    let metrics = IngestMetrics()
    let topics: [String]
    let streams: [String]
    /// The same names as bytes, for matching request paths without String comparison.
    let topicBytes: [[UInt8]]
    let streamBytes: [[UInt8]]

    public init(config: IngestConfig) throws(SinkFailure) {
        self.config = config
        topics = RecordKind.topics(prefix: config.sink.topicPrefix)
        streams = RecordKind.streams(prefix: config.sink.topicPrefix)
        topicBytes = topics.map { Array($0.utf8) }
        streamBytes = streams.map { Array($0.utf8) }
        var backend = config.backend
        // Behind the API, the streams' names follow the topic prefix.
        if case .kinesis(var k) = backend {
            k.streamPrefix = config.sink.topicPrefix
            backend = .kinesis(k)
        }
        store = try IngestWriter(backend: backend, settings: config.sink, capacity: config.queueCapacity)
    }

    public var accepted: Int { metrics.recordsAccepted.load(ordering: .relaxed) }
    public var stored: Int { store.storedCount }
    public var rejected: Int { metrics.recordsRejected.load(ordering: .relaxed) }

    /// Runs until SIGTERM/SIGINT; then stops accepting connections, waits for the requests in flight,
    /// drains what was accepted and closes the backend.
    public func run(onStarted: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.eventLoops)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Our own lean request decoder (one complete request per hop) and handler (answers encoded
                    // once, pipelined requests kept in order): NIO's HTTP codec, pipelining and error handlers
                    // cost a pipeline hop each per request part and a String per header.
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(IngestRequestDecoder(maxBody: self.config.maxBodyBytes)))
                    try channel.pipeline.syncOperations.addHandler(IngestHTTPHandler(service: self))
                }
            }
        let server = try await bootstrap.bind(host: config.host, port: config.port).get()
        onStarted(server.localAddress?.port ?? 0)
        // SIGTERM / SIGINT: stop accepting, let requests in flight finish.
        let stopping = Atomic<Bool>(false)
        let sources = [SIGTERM, SIGINT].map { sig -> any DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler {
                if !stopping.exchange(true, ordering: .relaxed) { server.close(promise: nil) }
            }
            src.resume()
            return src
        }
        try await server.closeFuture.get()
        let deadline = DispatchTime.now().uptimeNanoseconds + 30_000_000_000
        while inFlight.load(ordering: .relaxed) > 0 && DispatchTime.now().uptimeNanoseconds < deadline {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        for s in sources { s.cancel() }
        store.shutdown()
        try await group.shutdownGracefully()
    }

    /// Requests read but not yet answered (SIGTERM waits for them).
    let inFlight = Atomic<Int>(0)

    /// A request was answered: its latency goes to the histogram, and it no longer counts as in flight.
    func finished(startedNs: UInt64) {
        metrics.observe(Double(DispatchTime.now().uptimeNanoseconds - startedNs) / 1e9)
        inFlight.subtract(1, ordering: .relaxed)
    }

    func json(_ status: Int, _ body: String, headers: [(String, String)] = []) -> Reply {
        Reply(status: status, contentType: "application/json", body: body, headers: headers)
    }

    func json(_ status: Int, _ body: [UInt8], headers: [(String, String)] = []) -> Reply {
        Reply(status: status, contentType: "application/json", body: body, headers: headers)
    }

    /// The REST proxy's error shape.
    func error(_ status: Int, _ code: Int, _ message: String, records: Int = 0, headers: [(String, String)] = []) -> Reply {
        metrics.errors.withLock { $0[code, default: 0] += 1 }
        if records > 0 { metrics.recordsRejected.add(records, ordering: .relaxed) }
        return json(status, "{\"error_code\":\(code),\"message\":\(jsonString(message))}", headers: headers)
    }

    func authorised(_ header: (String) -> String?) -> Bool {
        guard let key = config.apiKey else { return true }
        if header("x-api-key") == key { return true }
        if header("authorization") == "Bearer \(key)" { return true }
        return false
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
        metrics.recordsAccepted.add(n, ordering: .relaxed)
        metrics.bytes.add(bodyBytes, ordering: .relaxed)
        let m = metrics
        let job = IngestJob(kind: kind, pack: pack) { [self] r in
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
            metrics.recordsAccepted.subtract(n, ordering: .relaxed)
            respond(error(429, 42901, "ingest queue full, retry later", records: n, headers: [("Retry-After", "1")]))
        }
    }

    // MARK: Kafka REST Proxy v2

    static let recordsKeys = JSONKeyTable(["records"])
    static let recordKeys = JSONKeyTable(["value", "key", "partition"])

    func restProxy(topic: Substring, header: (String) -> String?, body all: UnsafeRawBufferPointer, respond: Responder) {
        guard authorised(header) else { return respond(error(401, 40101, "missing or wrong API key")) }
        let ct = header("content-type") ?? ""
        let binary: Bool
        if ct.hasPrefix("application/vnd.kafka.json.v2+json") { binary = false } else if ct.hasPrefix("application/vnd.kafka.binary.v2+json") || ct.hasPrefix("application/vnd.kafka.v2+json") {
            binary = true
        } else {
            return respond(error(415, 415, "HTTP 415 Unsupported Media Type: use application/vnd.kafka.json.v2+json"))
        }
        guard let k = topicBytes.firstIndex(where: { topic.utf8.elementsEqual($0) }), let kind = RecordKind(rawValue: k) else {
            return respond(error(404, 40401, "Topic \(topic) not found."))
        }
        var pack = RecordPack(capacity: all.count + 64)
        let parsed: Result<Int?, JSONError> =
            Result { () throws(JSONError) in
                guard all.count > 0 else { throw JSONError(offset: 0, reason: .truncated) }
                // One validating pass over the body; each record's value is compacted into the pack as it is met.
                var s = JSONScanner(all)
                let rd = s  // reads fields while `s` scans (field offsets are into the whole body)
                return try withUnsafeTemporaryAllocation(of: JSONField.self, capacity: 3) { (rf: UnsafeMutableBufferPointer<JSONField>) throws(JSONError) -> Int? in
                    var mark = 0  // where the next record's compacted value starts in the pack
                    return try s.scanArrayOfObjects(arrayKeys: Self.recordsKeys, elementKeys: Self.recordKeys, fields: rf,
                                                    compactSlot: binary ? -1 : 0, compact: binary ? nil : pack.bytes) { (i, rf, r) throws(JSONError) in
                        if i == 0 && !pack.isEmpty { pack.restart(keepingFrom: mark); mark = 0 }
                        guard rf[0].kind != .absent else { throw JSONError(offset: r.lowerBound, reason: .missingField("value")) }
                        var partition: Int32 = -1
                        if rf[2].kind == .number { partition = Int32(clamping: try rd.int(rf[2], name: "partition")) }
                        let hasKey = rf[1].kind != .absent && rf[1].kind != .null
                        let stringKey = rf[1].kind == .string
                        let writeKey: ((Bytes.ByteBuffer) throws(JSONError) -> Void)? = !hasKey ? nil : { (out) throws(JSONError) in
                            if stringKey {
                                if rf[1].escaped { out.append(contentsOf: Array(try rd.string(rf[1], name: "key").utf8)) } else {
                                    out.append(UnsafeRawBufferPointer(start: rd.base + Int(rf[1].start), count: Int(rf[1].end - rf[1].start)))
                                }
                            } else {
                                rd.compactValue(rf[1], into: out)
                            }
                        }
                        if binary {
                            try pack.add(partition: partition, writeValue: { (out) throws(JSONError) in
                                guard rf[0].kind == .string, let d = Base64.decode(try rd.string(rf[0], name: "value")) else {
                                    throw JSONError(offset: r.lowerBound + Int(rf[0].start), reason: .wrongType(field: "value", expected: "base64 text"))
                                }
                                d.withUnsafeBytes { out.append($0) }
                            }, writeKey: writeKey)
                        } else {
                            // The scan already wrote the value, compacted, at `mark`.
                            try pack.addWritten(partition: partition, valueStart: mark, writeKey: writeKey)
                        }
                        mark = pack.bytes.count
                    }
                }
            }
        switch parsed {
        case .failure(let e): return respond(error(422, 42201, "Unprocessable Entity: \(e)", records: max(pack.count, 1)))
        case .success(nil): return respond(error(422, 42201, "Unprocessable Entity: \(JSONError(offset: 0, reason: .missingField("records")))", records: 1))
        case .success: break
        }
        if pack.isEmpty { return respond(error(422, 42201, "no records in the request", records: 0)) }
        // Records without a partition are partitioned by the sink (murmur2 of the key, sticky without one).
        let partitionCount = store.partitionCounts[kind.rawValue]
        for i in 0..<pack.count {
            let r = pack.records[i]
            if r.valueCount > config.maxRecordBytes { return respond(error(413, 40005, "record \(i) is \(r.valueCount) bytes, over the \(config.maxRecordBytes)-byte limit", records: pack.count)) }
            if r.partition >= 0 && r.partition >= Int32(partitionCount ?? 0) { return respond(error(404, 40402, "Partition \(r.partition) not found.", records: pack.count)) }
        }
        accept(kind: kind, pack, bodyBytes: all.count, respond: respond) { [self] outcomes in
            let out = JSONBytes(capacity: 64 + outcomes.count * 72)
            out.append("{\"offsets\":[")
            // Fields read in place: copying a RecordOutcome (four optional strings) costs retains per record.
            outcomes.withUnsafeBufferPointer { os in
                for i in os.indices {
                    if i > 0 { out.append(",") }
                    out.append("{\"partition\":")
                    out.append(Int64(os[i].partition))
                    if os[i].error != nil {
                        out.append(",\"offset\":null,\"error_code\":50002,\"error\":")
                        out.appendString(os[i].error ?? "")
                        out.append("}")
                    } else if os[i].offset >= 0 {
                        out.append(",\"offset\":")
                        out.append(os[i].offset)
                        out.append(",\"error_code\":null,\"error\":null}")
                    } else {
                        out.append(",\"offset\":null,\"error_code\":null,\"error\":null}")
                    }
                }
            }
            out.append("],\"key_schema_id\":null,\"value_schema_id\":null}")
            return json(200, out.bytes)
        }
    }

    // MARK: API Gateway → Kinesis

    static let putRecordKeys = JSONKeyTable(["Data", "PartitionKey", "StreamName"])
    static let putRecordsKeys = JSONKeyTable(["records", "Records"])
    static let entryKeys = JSONKeyTable(["data", "partition-key", "Data", "PartitionKey"])

    func kinesis(stream: Substring, many: Bool, header: (String) -> String?, body all: UnsafeRawBufferPointer, respond: Responder) {
        guard authorised(header) else { return respond(error(401, 40101, "missing or wrong API key")) }
        guard let k = streamBytes.firstIndex(where: { stream.utf8.elementsEqual($0) }), let kind = RecordKind(rawValue: k) else {
            return respond(error(404, 40401, "Stream \(stream) not found."))
        }
        var pack = RecordPack(capacity: all.count + 64)
        let parsed: Result<Int?, JSONError> =
            Result { () throws(JSONError) in
                guard all.count > 0 else { throw JSONError(offset: 0, reason: .truncated) }
                let rd = JSONScanner(all)  // field offsets are into the whole body
                func entry(_ f: UnsafeMutableBufferPointer<JSONField>, data: Int, pkey: Int, altData: Int? = nil, altKey: Int? = nil) throws(JSONError) {
                    var d = f[data]
                    if d.kind == .absent, let a = altData { d = f[a] }
                    var k = f[pkey]
                    if k.kind == .absent, let a = altKey { k = f[a] }
                    guard d.kind != .absent else { throw JSONError(offset: 0, reason: .missingField("Data")) }
                    try pack.add(partition: -1, writeValue: { (out) throws(JSONError) in rd.compactValue(d, into: out) },
                                 writeKey: k.kind != .string ? nil : { (out) throws(JSONError) in
                                     if k.escaped { out.append(contentsOf: Array(try rd.string(k, name: "PartitionKey").utf8)) } else {
                                         out.append(UnsafeRawBufferPointer(start: rd.base + Int(k.start), count: Int(k.end - k.start)))
                                     }
                                 })
                }
                if many {
                    var s = JSONScanner(all)
                    return try withUnsafeTemporaryAllocation(of: JSONField.self, capacity: 4) { (f: UnsafeMutableBufferPointer<JSONField>) throws(JSONError) -> Int? in
                        try s.scanArrayOfObjects(arrayKeys: Self.putRecordsKeys, elementKeys: Self.entryKeys, fields: f) { (i, f, _) throws(JSONError) in
                            if i == 0 { pack.reset() }
                            try entry(f, data: 0, pkey: 1, altData: 2, altKey: 3)
                        }
                    }
                } else {
                    var s = JSONScanner(all)
                    try withUnsafeTemporaryAllocation(of: JSONField.self, capacity: 3) { (f: UnsafeMutableBufferPointer<JSONField>) throws(JSONError) in
                        try s.scanObject(keys: Self.putRecordKeys, into: f)
                        try entry(f, data: 0, pkey: 1)
                    }
                    return 1
                }
            }
        switch parsed {
        case .failure(let e): return respond(error(422, 42201, "Unprocessable Entity: \(e)", records: max(pack.count, 1)))
        case .success(nil): return respond(error(422, 42201, "Unprocessable Entity: \(JSONError(offset: 0, reason: .missingField("records")))", records: 1))
        case .success: break
        }
        if pack.isEmpty { return respond(error(422, 42201, "no records in the request")) }
        if let big = pack.records.firstIndex(where: { $0.valueCount > config.maxRecordBytes }) {
            return respond(error(413, 40005, "record \(big) is over the \(config.maxRecordBytes)-byte limit", records: pack.count))
        }
        accept(kind: kind, pack, bodyBytes: all.count, respond: respond) { [self] outcomes in
        func seq(_ o: RecordOutcome) -> String {
            if let e = o.error {
                return "{\"ErrorCode\":\(jsonString(o.errorCode ?? "InternalFailure")),\"ErrorMessage\":\(jsonString(e))}"
            }
            if let sq = o.sequence, let sh = o.shard { return "{\"SequenceNumber\":\(jsonString(sq)),\"ShardId\":\(jsonString(sh))}" }
            let shard = String(o.partition)
            return "{\"SequenceNumber\":\"\(o.offset)\",\"ShardId\":\"shardId-\(String(repeating: "0", count: max(0, 12 - shard.count)) + shard)\"}"
        }
        if many {
            let failed = outcomes.filter { $0.error != nil }.count
            return json(200, "{\"FailedRecordCount\":\(failed),\"Records\":[" + outcomes.map(seq).joined(separator: ",") + "]}")
        }
        if let e = outcomes[0].error {
            let code = outcomes[0].errorCode ?? "InternalFailure"
            let status = KinesisErrorCode(code).isThrottling ? 503 : 500
            return json(status, "{\"__type\":\(jsonString(code)),\"message\":\(jsonString(e))}", headers: status == 503 ? [("Retry-After", "1")] : [])
        }
        return json(200, seq(outcomes[0]))
        }
    }

    func jsonString(_ s: String) -> String { JSONWriter.quoted(s) }

    // MARK: metrics

    func prometheus() -> Reply {
        var s = "# HELP pinbench_ingest_requests_total HTTP requests received.\n# TYPE pinbench_ingest_requests_total counter\n"
        s += "pinbench_ingest_requests_total \(metrics.requests.load(ordering: .relaxed))\n"
        s += "# TYPE pinbench_ingest_records_accepted_total counter\npinbench_ingest_records_accepted_total \(accepted)\n"
        s += "# TYPE pinbench_ingest_records_stored_total counter\npinbench_ingest_records_stored_total \(stored)\n"
        s += "# TYPE pinbench_ingest_records_rejected_total counter\npinbench_ingest_records_rejected_total \(rejected)\n"
        s += "# TYPE pinbench_ingest_bytes_total counter\npinbench_ingest_bytes_total \(metrics.bytes.load(ordering: .relaxed))\n"
        s += "# TYPE pinbench_ingest_errors_total counter\n"
        for (code, n) in metrics.errors.withLock({ $0 }).sorted(by: { $0.key < $1.key }) { s += "pinbench_ingest_errors_total{code=\"\(code)\"} \(n)\n" }
        let l = metrics.latency.withLock { $0 }
        s += "# TYPE pinbench_ingest_request_seconds histogram\n"
        for (i, b) in IngestMetrics.buckets.enumerated() { s += "pinbench_ingest_request_seconds_bucket{le=\"\(b)\"} \(l.counts[i])\n" }
        s += "pinbench_ingest_request_seconds_bucket{le=\"+Inf\"} \(l.n)\npinbench_ingest_request_seconds_sum \(l.sum)\npinbench_ingest_request_seconds_count \(l.n)\n"
        return Reply(status: 200, contentType: "text/plain; version=0.0.4", body: s, headers: [])
    }
}
