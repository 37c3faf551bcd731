#if canImport(Glibc)
import Glibc
#endif
import Bytes
import JSON
import Platform
import AWSAuth

public struct KinesisProducerConfig: Sendable {
    /// Stream names; `send` takes an index into this list.
    public var streams: [String]
    /// PutRecords calls in flight across all streams.
    public var maxInFlight = 16
    /// Keep per-key order: one call in flight per stream, failed entries go out again before anything newer.
    public var ordered = false
    /// A batch goes out when it is full or when its first record is this old.
    public var lingerMs = 20.0
    public var maxBatchRecords = 500
    /// Data plus partition keys per call (the service's 5 MiB limit).
    public var maxBatchBytes = 5 << 20
    /// Data plus partition key per record (1 MiB unless DescribeStreamSummary reports a larger MaxRecordSizeInKiB).
    public var maxRecordBytes = 1 << 20
    /// KPL-compatible aggregation: many user records in one Kinesis record, up to `aggregateBytes`.
    public var aggregate = false
    public var aggregateBytes = 50 * 1024
    /// Client-side shaping to the per-shard write limits (1,000 records/s and 1 MiB/s per shard): the shard
    /// count of each stream, or nil for no shaping.
    public var shapeShards: [Int]?
    /// A record not accepted by then is reported failed (code `Timeout`).
    public var deliveryTimeoutMs = 120_000.0
    public var requestTimeoutMs = 30_000
    /// Sealed batches waiting to go out before `send` blocks (polls) for room.
    public var maxQueuedBatches = 64
    /// Keep the highest acknowledged sequence number per shard (`stats.lastSequence`); off, an answer with
    /// FailedRecordCount 0 is only counted, not read entry by entry.
    public var trackSequences = false
    /// Report every accepted Kinesis record's shard id and sequence number (the ingest API answers with
    /// them); off, a call whose entries were all accepted is reported without reading its answer's entries.
    public var reportEntries = false

    public init(streams: [String]) { self.streams = streams }
}

/// What the producer did, counted in user records (an aggregated Kinesis record counts each post in it).
public struct KinesisProducerStats: Sendable {
    public var accepted = 0
    public var acceptedKinesisRecords = 0
    public var failed: [String: Int] = [:]
    /// Retries by error code (per record; a record retried twice counts twice).
    public var retried: [String: Int] = [:]
    public var requests = 0
    public var payloadBytes = 0
    /// stream/shard → the highest sequence number acknowledged (kept as text: they are 128-bit).
    public var lastSequence: [String: String] = [:]
    public var failedTotal: Int { failed.values.reduce(0, +) }
    public init() {}
}

/// One PutRecords call's worth of entries, kept as the request body itself (`{"StreamName":…,"Records":[`,
/// entries, `]}`), so sending copies nothing and a retry of some entries copies their JSON text instead of
/// encoding again. Batches are pooled: their buffers keep their capacity from call to call.
final class PutBatch {
    var stream = 0
    let body = ByteBuffer(capacity: 256 * 1024)
    /// Per entry (start, end, user records, data bytes) as four native Ints; tokens of the user records,
    /// entry after entry, as native UInt64s (pointer-backed buffers: no exclusivity or uniqueness checks per append).
    let meta = ByteBuffer(capacity: 500 * PutBatch.stride)
    static let stride = 32
    /// Data bytes of the user records (keys not counted).
    var dataBytes = 0
    let tokenBytes = ByteBuffer(capacity: 500 * 8)
    var rawBytes = 0
    var createdMs = 0.0
    var attempt = 0
    var notBeforeMs = 0.0
    var sealed = false

    func reset(stream: Int, header: [UInt8], now: Double) {
        self.stream = stream
        body.reset()
        body.append(contentsOf: header)
        meta.reset()
        tokenBytes.reset()
        rawBytes = 0
        dataBytes = 0
        createdMs = now
        attempt = 0
        notBeforeMs = 0
        sealed = false
    }

    var count: Int { meta.count / PutBatch.stride }
    var records: Int { tokenBytes.count / 8 }
    func entryRecords(_ i: Int) -> Int { meta.load(Int.self, at: i * PutBatch.stride + 16) }
    func entryDataBytes(_ i: Int) -> Int { meta.load(Int.self, at: i * PutBatch.stride + 24) }
    /// Tokens [from, to) (user-record positions).
    func tokens(_ r: Range<Int>) -> UnsafeBufferPointer<UInt64> {
        UnsafeBufferPointer(start: UnsafeRawPointer(tokenBytes.base + r.lowerBound * 8).assumingMemoryBound(to: UInt64.self), count: r.count)
    }

    /// Ends the entry begun by `beginEntry` (its JSON text is body[start..<body.count]).
    func endEntry(records: Int, dataBytes: Int) {
        meta.append(native: body.count)
        meta.append(native: records)
        meta.append(native: dataBytes)
        self.dataBytes += dataBytes
    }

    func entry(_ i: Int) -> UnsafeRawBufferPointer {
        let start: Int = meta.load(Int.self, at: i * PutBatch.stride), end: Int = meta.load(Int.self, at: i * PutBatch.stride + 8)
        return UnsafeRawBufferPointer(start: body.base + start, count: end - start)
    }

    /// Starts an entry (the comma before all but the first).
    func beginEntry() {
        if meta.count > 0 { body.append(UInt8(ascii: ",")) }
        meta.append(native: body.count)
    }

    /// Appends entry `i` of `b` (its JSON text as sent, its tokens and data bytes): a retry of what failed.
    func copyEntry(_ i: Int, of b: PutBatch, tokens: Range<Int>) {
        beginEntry()
        body.append(b.entry(i))
        endEntry(records: tokens.count, dataBytes: b.entryDataBytes(i))
        for tok in b.tokens(tokens) { tokenBytes.append(native: tok) }
        rawBytes += b.rawBytes / max(1, b.count)
    }

    func seal() {
        guard !sealed else { return }
        body.append("]}")
        sealed = true
    }
}

/// KPL aggregation format: magic F3 89 9A C2, a protobuf `AggregatedRecord` (partition_key_table = 1,
/// records = 3 with partition_key_index = 1 and data = 3), then the MD5 of the protobuf bytes.
public struct KPLAggregator {
    public static let magic: [UInt8] = [0xF3, 0x89, 0x9A, 0xC2]
    var keys = ByteBuffer(capacity: 4096)
    var recs = ByteBuffer(capacity: 64 * 1024)
    var keyCount = 0
    public var firstKey: [UInt8] = []
    public var tokens: [UInt64] = []
    /// Bytes of the user records' data inside (what the records weigh before aggregation).
    public var dataBytes = 0
    public var firstMs = 0.0
    public var isEmpty: Bool { keyCount == 0 }

    public init() {}

    static func varintSize(_ v: Int) -> Int { var n = 1, x = UInt64(v); while x >= 0x80 { x >>= 7; n += 1 }; return n }
    static func putVarint(_ v: Int, _ b: ByteBuffer) { var x = UInt64(v); while x >= 0x80 { b.append(UInt8(x & 0x7F) | 0x80); x >>= 7 }; b.append(UInt8(x)) }

    /// The size of the aggregated record after adding this one (magic and MD5 included).
    public func sizeAfterAdding(key: Int, data: Int) -> Int {
        let inner = 1 + KPLAggregator.varintSize(keyCount) + 1 + KPLAggregator.varintSize(data) + data
        return 4 + keys.count + recs.count + 1 + KPLAggregator.varintSize(key) + key + 1 + KPLAggregator.varintSize(inner) + inner + 16
    }

    public mutating func add(key: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, token: UInt64, nowMs: Double) {
        if keyCount == 0 { firstKey = Array(key); firstMs = nowMs }
        keys.append(0x0A); KPLAggregator.putVarint(key.count, keys); keys.append(key)
        let inner = 1 + KPLAggregator.varintSize(keyCount) + 1 + KPLAggregator.varintSize(data.count) + data.count
        recs.append(0x1A); KPLAggregator.putVarint(inner, recs)
        recs.append(0x08); KPLAggregator.putVarint(keyCount, recs)
        recs.append(0x1A); KPLAggregator.putVarint(data.count, recs); recs.append(data)
        keyCount += 1
        dataBytes += data.count
        tokens.append(token)
    }

    /// The aggregated record's bytes; resets the aggregator.
    public mutating func seal() -> [UInt8] {
        var out = KPLAggregator.magic
        out.append(contentsOf: keys.bytes)
        out.append(contentsOf: recs.bytes)
        var pb = Array(keys.bytes); pb.append(contentsOf: recs.bytes)
        out.append(contentsOf: pb.withUnsafeBytes { Digest.md5($0) })
        keys.reset(); recs.reset(); keyCount = 0; dataBytes = 0; tokens.removeAll(keepingCapacity: true); firstKey = []
        return out
    }

    /// The user records (key, data) inside an aggregated record, or nil when `bytes` is not one (no magic,
    /// or the MD5 does not match: then it is an ordinary record).
    public static func deaggregate(_ bytes: [UInt8]) -> [(key: String, data: [UInt8])]? {
        guard bytes.count >= 20, Array(bytes[0..<4]) == magic else { return nil }
        let pb = Array(bytes[4..<(bytes.count - 16)])
        guard pb.withUnsafeBytes({ Digest.md5($0) }) == Array(bytes[(bytes.count - 16)...]) else { return nil }
        var keys: [String] = []
        var out: [(key: String, data: [UInt8])] = []
        var i = 0
        func varint(_ p: [UInt8], _ i: inout Int) -> Int? {
            var v: UInt64 = 0, shift: UInt64 = 0
            while i < p.count {
                let b = p[i]; i += 1
                v |= UInt64(b & 0x7F) << shift
                if b < 0x80 { return Int(v) }
                shift += 7
                if shift > 63 { return nil }
            }
            return nil
        }
        while i < pb.count {
            guard let tag = varint(pb, &i) else { return nil }
            let wire = tag & 7, field = tag >> 3
            switch wire {
            case 0: guard varint(pb, &i) != nil else { return nil }
            case 2:
                guard let n = varint(pb, &i), i + n <= pb.count else { return nil }
                let sub = Array(pb[i..<(i + n)]); i += n
                if field == 1 { keys.append(String(decoding: sub, as: UTF8.self)) }
                if field == 3 {
                    var j = 0, keyIndex = 0
                    var data: [UInt8] = []
                    while j < sub.count {
                        guard let t = varint(sub, &j) else { return nil }
                        if t & 7 == 0 { guard let v = varint(sub, &j) else { return nil }; if t >> 3 == 1 { keyIndex = v } }
                        else if t & 7 == 2 {
                            guard let m = varint(sub, &j), j + m <= sub.count else { return nil }
                            if t >> 3 == 3 { data = Array(sub[j..<(j + m)]) }
                            j += m
                        } else { return nil }
                    }
                    out.append((key: String(keyIndex), data: data))
                }
            default: return nil
            }
        }
        return out.map { r in (key: Int(r.key).flatMap { $0 < keys.count ? keys[$0] : nil } ?? "", data: r.data) }
    }
}

/// The Kinesis producer: batches records per stream within every PutRecords limit, keeps several calls in
/// flight on one curl multi handle, retries only the entries that failed (with jittered backoff), and
/// reports each record once, accepted or failed. Owned by one thread: `send`, `poll` and `flush` are
/// called from it.
public final class KinesisProducer {
    public let config: KinesisProducerConfig
    public let service: AWSService
    var counters = KinesisProducerStats()
    /// What the producer did so far (lastSequence filled from the per-shard table).
    public var stats: KinesisProducerStats {
        var s = counters
        for (si, table) in highest.enumerated() {
            for (_, v) in table { s.lastSequence["\(config.streams[si])/\(v.shard)"] = String(decoding: v.seq, as: UTF8.self) }
        }
        return s
    }
    /// Per stream: shard id hash → (shard id, highest sequence number acknowledged, as its digits).
    var highest: [[UInt64: (shard: String, seq: [UInt8])]]
    /// Called once for every record: accepted (with the Kinesis record's shard and sequence number when
    /// `config.reportEntries`, else empty) or failed for good. Arguments: stream index, the records' tokens,
    /// their data bytes, and how they ended (its byte views are the answer's: copy what you keep).
    public var onDelivery: ((_ stream: Int, _ tokens: UnsafeBufferPointer<UInt64>, _ dataBytes: Int, _ delivery: KinesisDelivery) -> Void)?

    var building: [PutBatch?]
    var aggregators: [KPLAggregator]
    var queue: [PutBatch] = []
    var flights: [Int: PutBatch] = [:]
    var inFlightPerStream: [Int]
    var nextTag = 1
    var buckets: [(records: Double, bytes: Double, atMs: Double)]
    var pool: [PutBatch] = []
    var sendsSincePump = 0
    var sealedSincePump = false
    /// `{"StreamName":"<name>","Records":[` per stream.
    let headers: [[UInt8]]

    /// Sealed batches that may wait. Ordered, a stream has one call in flight, so two waiting per stream keep
    /// every stream busy; more would only hold records longer (their latency counts) and touch more memory.
    let queueBound: Int

    public init(service: AWSService, config: KinesisProducerConfig) {
        self.service = service
        self.config = config
        queueBound = config.ordered ? max(1, min(config.maxQueuedBatches, 2 * config.streams.count)) : config.maxQueuedBatches
        building = Array(repeating: nil, count: config.streams.count)
        aggregators = (0..<config.streams.count).map { _ in KPLAggregator() }
        inFlightPerStream = Array(repeating: 0, count: config.streams.count)
        highest = Array(repeating: [:], count: config.streams.count)
        buckets = Array(repeating: (0, 0, 0), count: config.streams.count)
        headers = config.streams.map { name in
            let h = ByteBuffer(capacity: 64 + name.utf8.count)
            h.append(#"{"StreamName":"#)
            JSONWriter.appendQuoted(name, to: h)
            h.append(#","Records":["#)
            return Array(h.bytes)
        }
    }

    /// Buffers one record (copied). Blocks, polling the network, while too many batches wait.
    public func send(stream: Int, key: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, token: UInt64) {
        if key.isEmpty || key.count > 256 {
            fail(stream, .invalidPartitionKey, "partition keys are 1 to 256 characters (got \(key.count))", dataBytes: data.count, token: token)
            return
        }
        if key.count + data.count > config.maxRecordBytes {
            fail(stream, .recordTooLarge, "record of \(data.count) bytes plus a \(key.count)-byte key is over the \(config.maxRecordBytes)-byte limit", dataBytes: data.count, token: token)
            return
        }
        if config.aggregate && key.count + data.count + 64 < config.aggregateBytes {
            if aggregators[stream].sizeAfterAdding(key: key.count, data: data.count) > config.aggregateBytes { sealAggregate(stream) }
            aggregators[stream].add(key: key, data: data, token: token, nowMs: aggregators[stream].isEmpty ? monotonicMs() : 0)
        } else {
            addEntry(stream, key: key, data: data, tokens: CollectionOfOne(token), dataBytes: data.count)
        }
        while queue.count >= queueBound { pump(waitMs: 50) }
        // Move the network when a batch is ready to go, else every 256 records: each pump is a curl_multi_perform
        // (a recv or send per transfer) and a few clock reads, too much to pay per record.
        sendsSincePump += 1
        if flights.count < config.maxInFlight && (sealedSincePump || sendsSincePump >= 256) { pump(waitMs: 0) }
    }

    func sealAggregate(_ s: Int) {
        guard !aggregators[s].isEmpty else { return }
        let key = aggregators[s].firstKey
        let tokens = aggregators[s].tokens
        let bytes = aggregators[s].dataBytes
        let data = aggregators[s].seal()
        key.withUnsafeBytes { k in data.withUnsafeBytes { d in addEntry(s, key: k, data: d, tokens: tokens, dataBytes: bytes) } }
    }

    /// Appends one entry to the stream's building batch; the clock is read only when a new batch starts.
    func addEntry(_ s: Int, key: UnsafeRawBufferPointer, data: UnsafeRawBufferPointer, tokens: some Collection<UInt64>, dataBytes: Int) {
        let raw = key.count + data.count
        if let b = building[s], b.count + 1 > config.maxBatchRecords || b.rawBytes + raw > config.maxBatchBytes { seal(s) }
        let b = building[s] ?? { let n = newBatch(s, now: monotonicMs()); building[s] = n; return n }()
        let e = b.body
        b.beginEntry()
        e.append(#"{"Data":""#)
        Base64.encode(data, into: e)
        e.append(#"","PartitionKey":"#)
        JSONWriter.appendQuoted(key, to: e)
        e.append(UInt8(ascii: "}"))
        b.endEntry(records: tokens.count, dataBytes: dataBytes)
        for t in tokens { b.tokenBytes.append(native: t) }
        b.rawBytes += raw
        if b.count >= config.maxBatchRecords { seal(s) }
    }

    func seal(_ s: Int) {
        guard let b = building[s] else { return }
        building[s] = nil
        b.seal()
        queue.append(b)
        sealedSincePump = true
    }

    func newBatch(_ s: Int, now: Double) -> PutBatch {
        let b = pool.popLast() ?? PutBatch()
        b.reset(stream: s, header: headers[s], now: now)
        return b
    }

    func recycle(_ b: PutBatch) { if pool.count < 4 * config.maxInFlight + 8 { pool.append(b) } }

    /// Moves the network: completes finished calls, seals lingering batches, starts what may start.
    /// An owner that knows it sends nothing before `noInputBeforeNs` (monotonic) has the batches and aggregates
    /// whose linger ends by then (or within an eighth of the linger after, at most 0.5 ms: a paced flood's
    /// chunks come a moment after their due time, and a batch opened by one would otherwise miss by that moment
    /// and take the chunk after the next as well) sealed now: they would go out as they are, only later.
    public func poll(timeoutMs: Int = 0, noInputBeforeNs: UInt64 = 0) { pump(waitMs: timeoutMs, noInputBeforeMs: Double(noInputBeforeNs) / 1e6) }

    /// How long the owner may sleep before a timer of the producer is due: a batch's or an aggregate's linger,
    /// a retry's backoff, the shaper's refill (at most 50 ms); answers and `wakeUp` end the sleep sooner. ns.
    public var idleWaitNs: Int {
        var due = Double.infinity
        for s in 0..<config.streams.count {
            if !aggregators[s].isEmpty { due = min(due, aggregators[s].firstMs + config.lingerMs) }
            if let b = building[s] { due = min(due, b.createdMs + config.lingerMs) }
        }
        if flights.count < config.maxInFlight {
            // A batch held back only by its stream's call in flight (`ordered`) waits for that answer, not a timer;
            // one held by the shaper looks again in 5 ms.
            let shaperRetry = monotonicMs() + 5
            for b in queue where !(config.ordered && inFlightPerStream[b.stream] > 0) {
                due = min(due, config.shapeShards == nil ? b.notBeforeMs : shaperRetry)
            }
        }
        return idleSleepNs(until: due.isFinite ? UInt64(max(0, due) * 1e6) : .max)
    }

    /// Sleeps in curl until an answer arrives, `wakeUp` is called, or `timeoutNs` passes; `poll` then
    /// moves what came.
    public func waitForEvents(timeoutNs: Int) { service.http.waitForEvents(timeoutMs: (timeoutNs + 999_999) / 1_000_000) }

    /// Ends `waitForEvents` from another thread (a flood's generator with a new chunk, a request).
    public var wakeUp: @Sendable () -> Void { service.http.wakeUp }

    /// Sends everything buffered and waits until every record is accepted or failed.
    public func flush() {
        for s in 0..<config.streams.count { sealAggregate(s); seal(s) }
        while !queue.isEmpty || !flights.isEmpty { pump(waitMs: 50) }
    }

    public var pendingRecords: Int {
        queue.reduce(0) { $0 + $1.records } + flights.values.reduce(0) { $0 + $1.records }
            + building.reduce(0) { $0 + ($1?.records ?? 0) } + aggregators.reduce(0) { $0 + $1.tokens.count }
    }

    func pump(waitMs: Int, noInputBeforeMs: Double = 0) {
        sendsSincePump = 0
        sealedSincePump = false
        let now = monotonicMs()
        let horizon = max(now, noInputBeforeMs > 0 ? noInputBeforeMs + min(config.lingerMs / 8, 0.5) : 0)
        for s in 0..<config.streams.count {
            if !aggregators[s].isEmpty && aggregators[s].firstMs + config.lingerMs <= horizon { sealAggregate(s) }
            if let b = building[s], b.createdMs + config.lingerMs <= horizon { seal(s) }
        }
        startReady(now: now)
        var done = service.http.stash
        service.http.stash.removeAll()
        if done.isEmpty { done = service.http.poll(timeoutMs: flights.isEmpty ? 0 : waitMs) }
        for d in done { complete(tag: d.tag, d.response) }
        if flights.isEmpty && waitMs > 0 && !queue.isEmpty {
            // Everything waits on a backoff or the shaper: sleep a little instead of spinning.
            let next = queue.map(\.notBeforeMs).min() ?? now
            let ms = max(1.0, min(Double(waitMs), next - monotonicMs()))
            sleepMs(ms)
        }
        startReady(now: monotonicMs())
    }

    func shapeAllows(_ b: PutBatch, now: Double) -> Bool {
        guard let shards = config.shapeShards else { return true }
        let s = b.stream
        let rateRec = 1000.0 * Double(max(1, shards[s])), rateBytes = 1_048_576.0 * Double(max(1, shards[s]))
        var k = buckets[s]
        if k.atMs == 0 { k = (rateRec, rateBytes, now) }
        let dt = (now - k.atMs) / 1000
        k.records = min(rateRec, k.records + dt * rateRec)
        k.bytes = min(rateBytes, k.bytes + dt * rateBytes)
        k.atMs = now
        let full = k.records >= rateRec && k.bytes >= rateBytes
        let ok = full || (k.records >= Double(b.count) && k.bytes >= Double(b.rawBytes))
        if ok { k.records -= Double(b.count); k.bytes -= Double(b.rawBytes) }
        buckets[s] = k
        return ok
    }

    func startReady(now: Double) {
        var i = 0
        while i < queue.count && flights.count < config.maxInFlight {
            let b = queue[i]
            if b.notBeforeMs > now || (config.ordered && inFlightPerStream[b.stream] > 0) || !shapeAllows(b, now: now) {
                i += 1
                continue
            }
            queue.remove(at: i)
            start(b)
        }
    }

    func start(_ b: PutBatch) {
        let req = service.request(method: "POST", path: "/", headers: KinesisClient.headers("PutRecords"), body: [], bodyBuffer: b.body)
        let tag = nextTag
        nextTag += 1
        do {
            try service.http.start(req, timeoutMs: config.requestTimeoutMs, tag: tag)
        } catch {
            retryOrFail(b, code: KinesisErrorCode(error.code), message: error.message, retriable: false)
            return
        }
        counters.requests += 1
        flights[tag] = b
        inFlightPerStream[b.stream] += 1
    }

    func complete(tag: Int, _ r: HTTPResponse) {
        guard let b = flights.removeValue(forKey: tag) else { return }
        inFlightPerStream[b.stream] -= 1
        if let e = service.check(r, operation: "PutRecords") {
            retryOrFail(b, code: KinesisErrorCode(e.code), message: e.message, retriable: e.isRetriable)
            return
        }
        var retry: PutBatch?
        var t = 0, okStart = 0, i = 0
        let now = monotonicMs()
        var mismatch = false
        // Highest sequence number per shard in this answer, as byte ranges, found by a hash of the shard id.
        if !config.trackSequences && !config.reportEntries,
           r.body.withUnsafeBytes({ PutRecordsScanner.allAccepted($0, entries: b.count) }) {
            completeAllAccepted(b)
            return
        }
        var best = ShardHighs()
        var accepted = 0, acceptedEntries = 0, acceptedBytes = 0
        // Accepted entries not yet reported: tokens [okStart, t), data bytes okBytes (reported together).
        var okBytes = 0
        func reportAccepted() {
            if t > okStart { onDelivery?(b.stream, b.tokens(okStart..<t), okBytes, .accepted(shard: Self.none, sequence: Self.none)) }
            okBytes = 0
        }
        let parsed: Bool = r.body.withUnsafeBytes { p in
            var sc = PutRecordsScanner(p)
            let ok = sc.scan { e in
                guard i < b.count else { mismatch = true; return }
                let n = b.entryRecords(i), bytes = b.entryDataBytes(i)
                if let seq = e.sequence {
                    accepted += n
                    acceptedEntries += 1
                    acceptedBytes += bytes
                    if config.reportEntries {
                        onDelivery?(b.stream, b.tokens(t..<(t + n)), bytes,
                                    .accepted(shard: UnsafeRawBufferPointer(rebasing: p[e.shard ?? 0..<0]), sequence: UnsafeRawBufferPointer(rebasing: p[seq])))
                        okStart = t + n
                    } else {
                        okBytes += bytes
                    }
                    best.note(p, shard: e.shard ?? 0..<0, sequence: seq)
                } else {
                    reportAccepted()
                    let code = KinesisErrorCode(e.errorCode.map { String(decoding: p[$0], as: UTF8.self) } ?? "Unknown")
                    if code.isRetriable && now - b.createdMs < config.deliveryTimeoutMs {
                        counters.retried[code.name, default: 0] += n
                        let rb = retry ?? { let x = newBatch(b.stream, now: b.createdMs); x.attempt = b.attempt + 1; return x }()
                        retry = rb
                        rb.copyEntry(i, of: b, tokens: t..<(t + n))
                    } else {
                        let message = e.errorMessage.map { String(decoding: p[$0], as: UTF8.self) } ?? ""
                        fail(b.stream, code.isRetriable ? .timeout : code, "kinesis PutRecords: \(code): \(message)", dataBytes: bytes, tokens: b.tokens(t..<(t + n)))
                    }
                    okStart = t + n
                }
                t += n
                i += 1
            }
            counters.accepted += accepted
            counters.acceptedKinesisRecords += acceptedEntries
            if ok && !mismatch && i == b.count { best.merge(p, into: &highest[b.stream]) }
            return ok && !mismatch && i == b.count
        }
        reportAccepted()
        okStart = t
        if !parsed {
            // Entries past what the answer covered are unknown: report them failed (never retried blindly).
            fail(b.stream, .badResponse, "kinesis PutRecords: an answer that does not match the \(b.count) entries sent (\(b.records - t) records unknown)",
                 dataBytes: 0, tokens: b.tokens(t..<b.records))
        }
        counters.payloadBytes += acceptedBytes
        if let rb = retry {
            rb.seal()
            rb.notBeforeMs = now + backoffMs(rb.attempt)
            queue.insert(rb, at: 0)
        }
        recycle(b)
    }

    /// A call whose entries were all accepted (the answer says so without reading each entry).
    func completeAllAccepted(_ b: PutBatch) {
        counters.accepted += b.records
        counters.acceptedKinesisRecords += b.count
        counters.payloadBytes += b.dataBytes
        onDelivery?(b.stream, b.tokens(0..<b.records), b.dataBytes, .accepted(shard: Self.none, sequence: Self.none))
        recycle(b)
    }

    func backoffMs(_ attempt: Int) -> Double { service.config.retryPolicy.delayMs(attempt: attempt) }

    func retryOrFail(_ b: PutBatch, code: KinesisErrorCode, message: String, retriable: Bool) {
        let now = monotonicMs()
        if retriable && now - b.createdMs < config.deliveryTimeoutMs {
            counters.retried[code.name, default: 0] += b.records
            b.attempt += 1
            b.notBeforeMs = now + backoffMs(b.attempt)
            queue.insert(b, at: 0)
        } else {
            fail(b.stream, retriable ? .timeout : code, message, dataBytes: b.dataBytes, tokens: b.tokens(0..<b.records))
            recycle(b)
        }
    }

    func fail(_ stream: Int, _ code: KinesisErrorCode, _ message: String, dataBytes: Int, token: UInt64) {
        withUnsafePointer(to: token) { fail(stream, code, message, dataBytes: dataBytes, tokens: UnsafeBufferPointer(start: $0, count: 1)) }
    }

    func fail(_ stream: Int, _ code: KinesisErrorCode, _ message: String, dataBytes: Int, tokens: UnsafeBufferPointer<UInt64>) {
        counters.failed[code.name, default: 0] += tokens.count
        onDelivery?(stream, tokens, dataBytes, .failed(code, message: message))
    }

    nonisolated(unsafe) static let none = UnsafeRawBufferPointer(start: nil, count: 0)
}

/// What `putLines` did.
public struct LinesPut: Sendable {
    public var sent = 0
    public var accepted = 0
    public var failures: [String: Int] = [:]
    /// Stopped (Ctrl-C) before every line was sent; what was sent has its outcome.
    public var interrupted = false
}

extension LinesPut {
    /// The one JSON line `pinbench put-records` prints.
    public func json(_ stats: KinesisProducerStats, peer: String, seconds: Double, cpuSeconds: Double) -> JSONValue {
        .object([
            ("peer", .string(peer)), ("records", .int(sent)), ("accepted", .int(accepted)), ("interrupted", .bool(interrupted)),
            ("failed", .object(failures.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("retried", .object(stats.retried.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("requests", .int(stats.requests)), ("seconds", .double(seconds)), ("cpu_seconds", .double(cpuSeconds)),
        ])
    }
}

extension KinesisProducer {
    /// Sends every line of `text` to `stream` (which must exist) with PutRecords. A file's records are all
    /// there at once: batches are sealed when full (or at the end), never by linger, so the calls do not
    /// depend on how fast this machine encodes.
    public static func putFile(_ text: UnsafeRawBufferPointer, stream: String, client: KinesisClient, inFlight: Int,
                               aggregate: Bool, progress: ProgressCounter? = nil, stop: StopFlag? = nil) throws(AWSError) -> (LinesPut, KinesisProducerStats) {
        let summary = try client.describeStreamSummary(stream)
        var pc = KinesisProducerConfig(streams: [stream])
        pc.maxInFlight = inFlight
        pc.aggregate = aggregate
        pc.lingerMs = 3_600_000
        if let kib = summary.maxRecordSizeKiB { pc.maxRecordBytes = max(pc.maxRecordBytes, kib * 1024) }
        let producer = KinesisProducer(service: client.service, config: pc)
        let r = producer.putLines(text, progress: progress, stop: stop)
        return (r, producer.stats)
    }

    /// Sends every line of `text` (`Lines`) to stream 0, keyed by its index among them, and waits for every outcome.
    public func putLines(_ text: UnsafeRawBufferPointer, progress: ProgressCounter? = nil, stop: StopFlag? = nil) -> LinesPut {
        var r = LinesPut()
        onDelivery = { _, tokens, _, delivery in
            progress?.add(tokens.count)
            switch delivery {
            case .accepted: r.accepted += tokens.count
            case .failed(let code, _): r.failures[code.name, default: 0] += tokens.count
            }
        }
        let key = ByteBuffer(capacity: 32)
        _ = Lines.forEach(in: text) { (line, _) throws(Never) -> Bool in
            key.reset()
            key.appendDecimal(r.sent)
            send(stream: 0, key: key.bytes, data: line, token: 0)
            r.sent += 1
            if r.sent & 1023 == 0, stop?.isSet == true { r.interrupted = true; return false }
            return true
        }
        flush()
        onDelivery = nil
        return r
    }
}


/// The highest sequence number per shard in one PutRecords answer, as byte ranges into it, found by a hash
/// of the shard id; merged into the producer's per-stream table once the answer was read whole.
struct ShardHighs {
    var best: [(shard: Range<Int>, seq: Range<Int>)] = []
    var index: [UInt64: Int] = [:]

    mutating func note(_ p: UnsafeRawBufferPointer, shard: Range<Int>, sequence seq: Range<Int>) {
        let h = PutRecordsScanner.hash(p, shard)
        if let k = index[h], PutRecordsScanner.same(p, best[k].shard, shard) {
            if PutRecordsScanner.less(p, best[k].seq, seq) { best[k].seq = seq }
        } else if index[h] == nil {
            index[h] = best.count
            best.append((shard, seq))
        }
    }

    /// Raises `table`'s entries (shard id hash → shard id, highest sequence digits) to what this answer holds.
    func merge(_ p: UnsafeRawBufferPointer, into table: inout [UInt64: (shard: String, seq: [UInt8])]) {
        for (sh, seq) in best {
            let h = PutRecordsScanner.hash(p, sh)
            let newer = UnsafeRawBufferPointer(rebasing: p[seq])
            guard let have = table[h]?.seq else {
                table[h] = (String(decoding: p[sh], as: UTF8.self), Array(newer))
                continue
            }
            let isNewer = have.count < newer.count
                || (have.count == newer.count && !newer.isEmpty && have.withUnsafeBytes { memcmp($0.baseAddress!, newer.baseAddress!, newer.count) < 0 })
            if isNewer { table[h]?.seq = Array(newer) }
        }
    }
}
