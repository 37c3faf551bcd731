import Bytes
import Codecs
import KafkaWire
import Platform

/// A consumer that fetches given partitions from given offsets (no group coordination). Records are
/// handed to the caller as views into the fetched (or decompressed) bytes: nothing is copied per record.
/// CRCs are checked on every batch.
public final class KafkaConsumer {
    public let bootstrap: [BrokerAddress]
    let clientId: String
    var control: BrokerConnection
    var brokers: [Int32: BrokerAddress] = [:]
    var leaders: [String: [Int32: Int32]] = [:]
    var conns: [Int32: BrokerConnection] = [:]
    let codec = Codec()
    let scratch = ByteBuffer(capacity: 1 << 20)
    let response = ByteBuffer(capacity: 1 << 20)
    public var maxWaitMs: Int32 = 500
    public var maxBytes: Int32 = 16 << 20

    public let security: ConnectionSecurity

    public init(bootstrap: [BrokerAddress], clientId: String = "pinbench-consumer", security: ConnectionSecurity = .plaintext) throws(KafkaClientError) {
        self.bootstrap = bootstrap
        self.clientId = clientId
        self.security = security
        var last: KafkaClientError?
        var c: BrokerConnection?
        for a in bootstrap {
            do throws(KafkaClientError) { c = try BrokerConnection(a, clientId: clientId, security: security); break } catch { last = error }
        }
        guard let c else { throw last ?? KafkaClientError(.connect, "no bootstrap broker given") }
        control = c
    }

    /// Partitions of `topic` and their leaders.
    public func partitions(_ topic: String) throws(KafkaClientError) -> [Int32] {
        let v = try control.requireVersion(.metadata)
        let resp = try control.roundTrip(.metadata, version: v) { MetadataMessage.encodeRequest($0, version: v, topics: [topic]) }
        var r = resp.reader
        let m: MetadataMessage.Response
        do { m = try MetadataMessage.decodeResponse(&r, version: v) } catch {
            throw KafkaClientError(.protocolViolation, "bad Metadata response: \(error)")
        }
        for b in m.brokers { brokers[b.nodeId] = BrokerAddress(host: b.host, port: Int(b.port)) }
        guard let t = m.topics.first(where: { $0.name == topic }), !t.errorCode.isError, !t.partitions.isEmpty else {
            throw KafkaClientError(.broker(.unknownTopicOrPartition), "topic \(topic) does not exist on the cluster")
        }
        var l: [Int32: Int32] = [:]
        for p in t.partitions { l[p.partition] = p.leader }
        leaders[topic] = l
        return t.partitions.map(\.partition)
    }

    func connection(_ topic: String, _ partition: Int32) throws(KafkaClientError) -> BrokerConnection {
        if leaders[topic] == nil { _ = try partitions(topic) }
        guard let leader = leaders[topic]?[partition], leader >= 0, let addr = brokers[leader] else {
            throw KafkaClientError(.broker(.leaderNotAvailable), "no leader for \(topic)-\(partition)")
        }
        if let c = conns[leader], c.isOpen { return c }
        let c = try BrokerConnection(addr, clientId: clientId, security: security)
        conns[leader] = c
        return c
    }

    /// The earliest (`ListOffsetsMessage.earliest`) or next (`.latest`) offset of a partition.
    public func offset(_ topic: String, _ partition: Int32, _ which: Int64) throws(KafkaClientError) -> Int64 {
        let c = try connection(topic, partition)
        let v = try c.requireVersion(.listOffsets)
        let resp = try c.roundTrip(.listOffsets, version: v) {
            ListOffsetsMessage.encodeRequest($0, version: v, topic: topic, partitions: [partition], timestamp: which)
        }
        var r = resp.reader
        do {
            let res = try ListOffsetsMessage.decodeResponse(&r, version: v)
            guard let x = res.first else { throw KafkaClientError(.protocolViolation, "empty ListOffsets response") }
            if x.error.isError { throw KafkaClientError(.broker(x.error), "ListOffsets \(topic)-\(partition): \(x.error)") }
            return x.offset
        } catch let e as ProtocolError {
            throw KafkaClientError(.protocolViolation, "bad ListOffsets response: \(e)")
        } catch let e as KafkaClientError {
            throw e
        } catch {
            throw KafkaClientError(.protocolViolation, "\(error)")
        }
    }

    /// Fetches once from `offset` and calls `body` for each record at or after it. Returns the next offset
    /// to fetch and the partition's high watermark.
    public func fetch(
        _ topic: String, _ partition: Int32, from offset: Int64, _ body: (RecordView) throws -> Void
    ) throws -> (next: Int64, highWatermark: Int64) {
        let c = try connection(topic, partition)
        let v = try c.requireVersion(.fetch)
        let maxWait = maxWaitMs, maxB = maxBytes
        try c.send(.fetch, version: v) {
            FetchMessage.encodeRequest($0, version: v, maxWaitMs: maxWait, minBytes: 1, maxBytes: maxB,
                                       partitions: [FetchMessage.Request(topic: topic, partition: partition, offset: offset, maxBytes: maxB)])
        }
        let resp = try c.receive(into: response, timeoutMs: maxWait + c.timeoutMs)
        var r = resp.reader
        let (top, results) = try FetchMessage.decodeResponse(&r, version: v)
        if top.isError { throw KafkaClientError(.broker(top), "Fetch failed: \(top)") }
        guard let res = results.first(where: { $0.partition == partition }) else { return (offset, -1) }
        if res.errorCode.isError {
            if res.errorCode == .notLeaderOrFollower || res.errorCode == .unknownTopicOrPartition { leaders[topic] = nil }
            throw KafkaClientError(.broker(res.errorCode), "Fetch \(topic)-\(partition): \(res.errorCode)")
        }
        return (try records(res.records, of: topic, partition, from: offset, body), res.highWatermark)
    }

    /// The records at or after `offset` in a fetched partition's batches; returns the next offset to fetch.
    /// A batch the broker sent that cannot be read is a protocol violation naming the partition and offset.
    func records(_ records: UnsafeRawBufferPointer?, of topic: String, _ partition: Int32, from offset: Int64,
                 _ body: (RecordView) throws -> Void) throws -> Int64 {
        do {
            return try self.records(records, from: offset, body)
        } catch let e as BatchError {
            throw KafkaClientError(.protocolViolation, "Fetch \(topic)-\(partition) from offset \(offset): the broker sent an unreadable batch: \(e)")
        }
    }

    func records(_ records: UnsafeRawBufferPointer?, from offset: Int64, _ body: (RecordView) throws -> Void) throws -> Int64 {
        var next = offset
        guard let records else { return next }
        var pos = 0
        while pos + BatchLayout.headerSize <= records.count {
            let rest = UnsafeRawBufferPointer(rebasing: records[pos...])
            // A partial batch at the end of a fetch is normal (the broker cuts at max bytes).
            let parsed = Result { () throws(BatchError) in try RecordBatchReader.header(rest) }
            if case .failure(.truncated) = parsed { break }
            let h = try parsed.get()
            if h.isControl {
                pos += h.totalSize
                next = max(next, h.nextOffset)
                continue
            }
            _ = try RecordBatchReader.forEachRecord(UnsafeRawBufferPointer(rebasing: rest[0..<h.totalSize]), codec: codec, scratch: scratch) { rec in
                if rec.offset >= offset { try body(rec) }
            }
            next = max(next, h.nextOffset)
            pos += h.totalSize
        }
        return next
    }

    /// One Fetch per leader for many partitions at once (a follower of many partitions waits once, not once
    /// per partition): `next` holds each partition's offset and is advanced; `body` gets each record.
    /// Partitions whose leader moved or that failed retriably are skipped this round.
    public func fetchMany(_ next: inout [PartitionOffset], _ body: (String, Int32, RecordView) throws -> Void) throws {
        var byLeader: [Int32: [Int]] = [:]
        for (i, p) in next.enumerated() {
            if leaders[p.topic] == nil { _ = try partitions(p.topic) }
            byLeader[leaders[p.topic]?[p.partition] ?? -1, default: []].append(i)
        }
        for (_, idx) in byLeader.sorted(by: { $0.key < $1.key }) {
            let first = next[idx[0]]
            let conn: BrokerConnection?
            do { conn = try connection(first.topic, first.partition) } catch { if error.isRetriable { conn = nil } else { throw error } }
            guard let c = conn else { continue }
            let v = try c.requireVersion(.fetch)
            let maxWait = maxWaitMs, maxB = maxBytes
            let reqs = idx.map { FetchMessage.Request(topic: next[$0].topic, partition: next[$0].partition, offset: next[$0].offset, maxBytes: maxB) }
            try c.send(.fetch, version: v) {
                FetchMessage.encodeRequest($0, version: v, maxWaitMs: maxWait, minBytes: 1, maxBytes: maxB, partitions: reqs)
            }
            let resp = try c.receive(into: response, timeoutMs: maxWait + c.timeoutMs)
            var r = resp.reader
            let (top, results) = try FetchMessage.decodeResponse(&r, version: v)
            if top.isError { throw KafkaClientError(.broker(top), "Fetch failed: \(top)") }
            for res in results {
                guard let i = idx.first(where: { next[$0].topic == res.topic && next[$0].partition == res.partition }) else { continue }
                if res.errorCode.isError {
                    if res.errorCode == .notLeaderOrFollower || res.errorCode == .unknownTopicOrPartition { leaders[res.topic] = nil; continue }
                    throw KafkaClientError(.broker(res.errorCode), "Fetch \(res.topic)-\(res.partition): \(res.errorCode)")
                }
                let topic = res.topic, partition = res.partition, from = next[i].offset
                let to = try records(res.records, of: topic, partition, from: from) { rec in try body(topic, partition, rec) }
                next[i].offset = to
                next[i].highWatermark = res.highWatermark
            }
        }
    }
}

/// A partition a consumer reads and where it is.
public struct PartitionOffset: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// From the last fetch (-1 before one).
    public var highWatermark: Int64 = -1
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}

extension KafkaConsumer {
    /// Reads `partitions` of `topic` from the earliest (or the latest) offset, in offset order per partition,
    /// calling `body` for each record until it returns false or no record came for `idleSeconds`.
    public func follow(_ topic: String, partitions: [Int32], fromBeginning: Bool, idleSeconds: Double,
                       _ body: (Int32, RecordView) throws -> Bool) throws {
        var next: [Int32: Int64] = [:]
        for p in partitions { next[p] = try offset(topic, p, fromBeginning ? ListOffsetsMessage.earliest : ListOffsetsMessage.latest) }
        var lastRecord = monotonicSeconds()
        while true {
            var got = 0
            for p in partitions {
                var more = true
                do {
                    let r = try fetch(topic, p, from: next[p] ?? 0) { rec in
                        guard more else { return }
                        more = try body(p, rec)
                        got += 1
                    }
                    next[p] = r.next
                } catch let e as KafkaClientError where e.isRetriable {
                    continue
                }
                if !more { return }
            }
            if got > 0 { lastRecord = monotonicSeconds() } else if monotonicSeconds() - lastRecord > idleSeconds { return }
        }
    }
}
