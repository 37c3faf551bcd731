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
        let parsed = Self.parseRecords(all, binary: binary, into: &pack)
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
        accept(kind: kind, pack, bodyBytes: all.count, respond: respond) { [self] outcomes in json(200, Self.offsetsAnswer(outcomes)) }
    }

    /// One validating pass over a `{"records":[…]}` body; each record's value is compacted into `pack` as it
    /// is met (base64-decoded for the binary format). Returns the number of records, nil without `records`.
    static func parseRecords(_ all: UnsafeRawBufferPointer, binary: Bool, into pack: inout RecordPack) -> Result<Int?, JSONError> {
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
    }

    /// The REST Proxy v2 answer: one offsets entry per record, in order (an error entry for a refused one).
    static func offsetsAnswer(_ outcomes: [RecordOutcome]) -> [UInt8] {
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
        return out.bytes
    }
}
