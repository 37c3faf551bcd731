import Bytes
import Platform
import JSON

/// One record read back from a stream.
public struct KinesisRecord: Sendable {
    public var sequenceNumber: String
    public var partitionKey: String
    public var data: [UInt8]
    public var arrivalTimestamp: Double?
}

public struct StreamSummary: Sendable {
    public var name: String
    public var status: String
    public var openShards: Int
    /// `MaxRecordSizeInKiB` when the service reports it (streams may allow records above 1 MiB).
    public var maxRecordSizeKiB: Int?
}

/// Kinesis Data Streams control plane and reads (JSON 1.1 protocol, `X-Amz-Target: Kinesis_20131202.*`).
public final class KinesisClient {
    public let service: AWSService

    public init(config: AWSConfig, http: HTTPEngine? = nil) throws(AWSError) {
        service = try AWSService(config: config, service: "kinesis", http: http)
    }

    static func headers(_ op: String) -> [(String, String)] {
        [("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "Kinesis_20131202.\(op)")]
    }

    /// Calls `op` with a JSON body and parses the JSON answer.
    public func call(_ op: String, _ body: JSONValue) throws(AWSError) -> JSONValue {
        let r = try service.call(op, method: "POST", path: "/", headers: KinesisClient.headers(op), body: Array(body.serialized(pretty: false).utf8))
        if r.body.isEmpty { return .object([]) }
        do {
            return try r.body.withUnsafeBytes { b throws(JSONError) in try JSONValue.parse(b) }
        } catch {
            throw AWSError(.protocolError, "kinesis \(op): unreadable answer: \(error)")
        }
    }

    public func createStream(_ name: String, shards: Int) throws(AWSError) {
        _ = try call("CreateStream", .object([("StreamName", .string(name)), ("ShardCount", .int(shards))]))
    }

    public func deleteStream(_ name: String) throws(AWSError) {
        _ = try call("DeleteStream", .object([("StreamName", .string(name)), ("EnforceConsumerDeletion", .bool(true))]))
    }

    public func describeStreamSummary(_ name: String) throws(AWSError) -> StreamSummary {
        let v = try call("DescribeStreamSummary", .object([("StreamName", .string(name))]))
        guard let d = v["StreamDescriptionSummary"] else { throw AWSError(.protocolError, "kinesis DescribeStreamSummary: no StreamDescriptionSummary") }
        return StreamSummary(name: name, status: d["StreamStatus"]?.stringValue ?? "?", openShards: d["OpenShardCount"]?.intValue ?? 0,
                             maxRecordSizeKiB: d["MaxRecordSizeInKiB"]?.intValue)
    }

    /// Creates the stream when it does not exist, then waits until it is ACTIVE.
    public func ensureStream(_ name: String, shards: Int, timeoutMs: Double = 120_000) throws(AWSError) -> StreamSummary {
        do {
            try createStream(name, shards: shards)
        } catch {
            guard case .service(_, "ResourceInUseException") = error.kind else { throw error }
        }
        return try waitActive(name, timeoutMs: timeoutMs)
    }

    public func waitActive(_ name: String, timeoutMs: Double = 120_000) throws(AWSError) -> StreamSummary {
        let end = monotonicMs() + timeoutMs
        while true {
            let s = try describeStreamSummary(name)
            if s.status == "ACTIVE" || s.status == "UPDATING" { return s }
            if monotonicMs() > end { throw AWSError(.service(status: 0, code: "Timeout"), "kinesis: stream \(name) still \(s.status) after \(Int(timeoutMs / 1000)) s") }
            service.backoff(attempt: 3)
        }
    }

    public func listShards(_ name: String) throws(AWSError) -> [String] {
        var out: [String] = []
        var token: String?
        repeat {
            let body: JSONValue = token.map { .object([("NextToken", .string($0))]) } ?? .object([("StreamName", .string(name))])
            let v = try call("ListShards", body)
            for s in v["Shards"]?.arrayValue ?? [] { if let id = s["ShardId"]?.stringValue { out.append(id) } }
            token = v["NextToken"]?.stringValue
        } while token != nil
        return out
    }

    public enum IteratorStart: Sendable {
        case trimHorizon
        case latest
        case afterSequenceNumber(String)
        case atSequenceNumber(String)
    }

    public func shardIterator(stream: String, shard: String, from start: IteratorStart) throws(AWSError) -> String {
        var fields: [(String, JSONValue)] = [("StreamName", .string(stream)), ("ShardId", .string(shard))]
        switch start {
        case .trimHorizon: fields.append(("ShardIteratorType", .string("TRIM_HORIZON")))
        case .latest: fields.append(("ShardIteratorType", .string("LATEST")))
        case .afterSequenceNumber(let s):
            fields.append(("ShardIteratorType", .string("AFTER_SEQUENCE_NUMBER"))); fields.append(("StartingSequenceNumber", .string(s)))
        case .atSequenceNumber(let s):
            fields.append(("ShardIteratorType", .string("AT_SEQUENCE_NUMBER"))); fields.append(("StartingSequenceNumber", .string(s)))
        }
        let v = try call("GetShardIterator", .object(fields))
        guard let it = v["ShardIterator"]?.stringValue else { throw AWSError(.protocolError, "kinesis GetShardIterator: no ShardIterator") }
        return it
    }

    public struct Page: Sendable {
        public var records: [KinesisRecord]
        /// nil when the shard is closed and read to its end.
        public var nextIterator: String?
        public var millisBehindLatest: Int
    }

    public func getRecords(iterator: String, limit: Int = 10_000) throws(AWSError) -> Page {
        let v = try call("GetRecords", .object([("ShardIterator", .string(iterator)), ("Limit", .int(limit))]))
        var recs: [KinesisRecord] = []
        let buf = ByteBuffer(capacity: 4096)
        for r in v["Records"]?.arrayValue ?? [] {
            guard let seq = r["SequenceNumber"]?.stringValue, let d = r["Data"]?.stringValue else {
                throw AWSError(.protocolError, "kinesis GetRecords: a record without SequenceNumber or Data")
            }
            buf.reset()
            var dd = d
            let ok = dd.withUTF8 { Base64.decode(UnsafeRawBufferPointer($0), into: buf) }
            guard ok else { throw AWSError(.protocolError, "kinesis GetRecords: record \(seq) has invalid base64 data") }
            recs.append(KinesisRecord(sequenceNumber: seq, partitionKey: r["PartitionKey"]?.stringValue ?? "", data: buf.toArray(),
                                      arrivalTimestamp: r["ApproximateArrivalTimestamp"]?.doubleValue))
        }
        return Page(records: recs, nextIterator: v["NextShardIterator"]?.stringValue, millisBehindLatest: v["MillisBehindLatest"]?.intValue ?? 0)
    }
}

/// Sequence numbers are decimal strings of up to 128 bits: compare by length, then text.
public func sequenceLess(_ a: String, _ b: String) -> Bool {
    a.utf8.count != b.utf8.count ? a.utf8.count < b.utf8.count : a < b
}
