import Bytes
import Codecs
import KafkaWire
import Platform

/// What `verify` found in one topic-partition.
public struct PartitionVerification: Sendable {
    public var topic: String
    public var partition: Int
    public var segments: Int
    public var batches: Int
    public var records: Int
    public var bytes: Int
    public var firstOffset: Int64?
    public var nextOffset: Int64?
    public var problems: [String]
    /// Offset ranges a recovery cut out (their bytes kept beside the segment): a consistent log, with a loss said.
    public var quarantined: [String] = []
    public var isHealthy: Bool { problems.isEmpty }
}

/// Reads an embedded log: checks every batch (header, CRC-32C, offsets, decompression, record framing)
/// and walks record values.
public enum LogInspector {
    public static func verify(dataDir: String) throws(LogError) -> [PartitionVerification] {
        var out: [PartitionVerification] = []
        let codec = Codec()
        let scratch = ByteBuffer(capacity: 1 << 20)
        let file = ByteBuffer(capacity: 1 << 20)
        for (topic, partition, dir) in try listPartitions(dataDir: dataDir) {
            var v = PartitionVerification(
                topic: topic, partition: partition, segments: 0, batches: 0, records: 0, bytes: 0, firstOffset: nil, nextOffset: nil, problems: [])
            var expected: Int64? = nil
            for seg in try listSegments(dir) {
                v.segments += 1
                if let e = expected, e != seg.base {
                    v.problems.append("\(seg.path): segment starts at offset \(seg.base), previous ended at \(e)")
                }
                let gaps = quarantinedRanges(segmentPath: seg.path)
                for g in gaps { v.quarantined.append("offsets \(g.from)..<\(g.to) of \(seg.path) quarantined by a recovery (\(seg.path).quarantine-\(g.from)-\(g.to))") }
                let scan = try scanSegment(path: seg.path, expectedBase: seg.base, gaps: gaps, buffer: file) { h, bytes in
                    var n = 0
                    _ = try RecordBatchReader.forEachRecord(bytes, codec: codec, scratch: scratch, verifyCRC: false) { _ in n += 1 }
                    if n != Int(h.recordsCount) { throw BatchError.corruptRecord(index: n) }
                }
                if v.firstOffset == nil && scan.batches > 0 { v.firstOffset = seg.base }
                v.batches += scan.batches
                v.records += scan.records
                v.bytes += scan.validBytes
                if let e = scan.error { v.problems.append("\(seg.path) \(e) (\(scan.fileBytes - scan.validBytes) bytes unreadable)") }
                expected = scan.nextOffset ?? seg.base
                v.nextOffset = expected
            }
            out.append(v)
        }
        return out
    }

    /// Calls `body` with every record of a topic (partition by partition, in offset order).
    public static func forEachRecord(
        dataDir: String, topic: String, partition: Int? = nil, _ body: (Int, RecordView) throws -> Void
    ) throws {
        let codec = Codec()
        let scratch = ByteBuffer(capacity: 1 << 20)
        let file = ByteBuffer(capacity: 1 << 20)
        var found = false
        let all = try listPartitions(dataDir: dataDir)
        for (t, p, dir) in all where t == topic && (partition == nil || partition == p) {
            found = true
            for seg in try listSegments(dir) {
                try readFile(seg.path, into: file)
                try forEachRecord(inSegment: seg.path, bytes: file.bytes, firstByte: 0, expectedBase: seg.base,
                                  gaps: quarantinedRanges(segmentPath: seg.path), codec: codec, scratch: scratch) { r in try body(p, r) }
            }
        }
        if !found {
            let have = Array(Set(all.map(\.topic))).sorted()
            throw InspectError.noSuchTopic(partition.map { "\(topic)\" partition \"\($0)" } ?? topic, have: have)
        }
    }
}

extension LogInspector {
    /// Calls `body` with every record of the batches in `bytes`: the part of segment `path` from byte
    /// `firstByte` on, starting at a batch whose base offset should be `expectedBase` (a whole segment, or a
    /// range `segmentRanges` cut). A body's error is rethrown; damage (a bad header or CRC, offsets out of line)
    /// is `InspectError.damaged` naming the file and byte, after the records before it.
    public static func forEachRecord(
        inSegment path: String, bytes: UnsafeRawBufferPointer, firstByte: Int, expectedBase: Int64?, gaps: [(from: Int64, to: Int64)],
        codec: Codec, scratch: ByteBuffer, _ body: (RecordView) throws -> Void
    ) throws {
        var failure: (any Error)?
        let scan = scanBatches(bytes, firstByte: firstByte, expectedBase: expectedBase, gaps: gaps) { _, batch in
            do {
                _ = try RecordBatchReader.forEachRecord(batch, codec: codec, scratch: scratch, verifyCRC: false, body)
            } catch {
                failure = error
                throw error
            }
        }
        if let failure { throw failure }
        if let e = scan.error { throw InspectError.damaged("\(path) \(e)") }
    }
}

public enum InspectError: Error, CustomStringConvertible {
    case noSuchTopic(String, have: [String])
    case damaged(String)

    public var description: String {
        switch self {
        case .noSuchTopic(let t, let have):
            "no topic \"\(t)\" in this data dir; " + (have.isEmpty ? "it holds no topics" : "it holds \(have.joined(separator: ", "))")
        case .damaged(let s): "damaged log: \(s)"
        }
    }
}

extension LogInspector {
    /// The `log verify` table: one row per topic-partition, its problems under it, and a total line.
    public static func table(_ parts: [PartitionVerification]) -> String {
        let w = (parts.map { "\($0.topic)-\($0.partition)".count }.max() ?? 15) + 2
        func pad(_ s: String, _ n: Int, left: Bool = false) -> String {
            s.count >= n ? s : (left ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count))
        }
        var out = pad("topic-partition", w) + "segments  batches    records  next-offset  bytes\n"
        var damaged = 0, total = 0
        for p in parts {
            let cols = [pad(String(p.segments), 8, left: true), pad(String(p.batches), 9, left: true), pad(String(p.records), 10, left: true),
                        pad(String(p.nextOffset ?? 0), 12, left: true), "  " + formatBytes(p.bytes)]
            out += pad("\(p.topic)-\(p.partition)", w) + cols.joined(separator: " ") + (p.isHealthy ? "" : "  DAMAGED") + "\n"
            for problem in p.problems { out += "  ! \(problem)\n" }
            for q in p.quarantined { out += "  ~ \(q)\n" }
            if !p.isHealthy { damaged += 1 }
            total += p.records
        }
        out += "\(parts.count) partitions, \(total) records, \(damaged == 0 ? "all batches good" : "\(damaged) damaged")\n"
        return out
    }
}
