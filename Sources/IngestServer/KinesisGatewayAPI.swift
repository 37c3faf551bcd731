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

extension IngestService {
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
}
