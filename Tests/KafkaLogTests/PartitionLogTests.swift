import Bytes
import Codecs
import Foundation
import KafkaLog
import KafkaWire
import Testing

func tempDir(_ name: String) -> String {
    let d = NSTemporaryDirectory() + "pinbench-\(name)-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

/// Seals `n` records "value-<first+i>" into one batch.
func batch(_ first: Int, _ n: Int, codec: CompressionCodec = .none) throws -> ByteBuffer {
    var b = RecordBatchBuilder()
    for i in first..<(first + n) {
        Array("value-\(i)".utf8).withUnsafeBytes { b.append(key: nil, value: $0, timestamp: 1_700_000_000_000) }
    }
    let out = ByteBuffer()
    try b.seal(into: out, codec: codec, compressor: Codec())
    return out
}

func readAll(_ dir: String) throws -> (values: [String], offsets: [Int64]) {
    var values: [String] = []
    var offsets: [Int64] = []
    let codec = Codec(), scratch = ByteBuffer()
    for seg in try listSegments(dir) {
        let scan = try scanSegment(path: seg.path, expectedBase: seg.base, gaps: quarantinedRanges(segmentPath: seg.path)) { _, bytes in
            _ = try RecordBatchReader.forEachRecord(bytes, codec: codec, scratch: scratch) { r in
                values.append(String(decoding: r.value!, as: UTF8.self))
                offsets.append(r.offset)
            }
        }
        #expect(scan.error == nil)
    }
    return (values, offsets)
}

@Suite struct PartitionLogTests {
    @Test func appendsWithRealOffsetsAndRollsBySize() throws {
        let root = tempDir("roll")
        let log = try PartitionLog(topic: "t.pin", partition: 2, config: LogConfig(dataDir: root, segmentBytes: 300, fsync: .segment))
        var total = 0
        for k in 0..<10 {
            let b = try batch(total, 5, codec: k % 2 == 0 ? .none : .lz4)
            let base = try log.append(batch: UnsafeMutableRawBufferPointer(start: b.base, count: b.count))
            #expect(base == Int64(total))
            total += 5
        }
        #expect(log.nextOffset == 50)
        try log.close()
        let segs = try listSegments("\(root)/log/t.pin-2")
        #expect(segs.count > 1, "segments roll at 300 bytes")
        #expect(segs.first!.path.hasSuffix("/00000000000000000000.log"))
        for s in segs { #expect(s.path.hasSuffix(segmentFileName(s.base))) }
        let all = try readAll("\(root)/log/t.pin-2")
        #expect(all.values == (0..<50).map { "value-\($0)" })
        #expect(all.offsets == (0..<50).map { Int64($0) })

        // Reopen: continues at the next offset, no recovery needed.
        let again = try PartitionLog(topic: "t.pin", partition: 2, config: LogConfig(dataDir: root, segmentBytes: 300))
        #expect(again.nextOffset == 50 && again.recovery == nil)
        let b = try batch(50, 3)
        #expect(try again.append(batch: UnsafeMutableRawBufferPointer(start: b.base, count: b.count)) == 50)
        try again.close()
        #expect(try readAll("\(root)/log/t.pin-2").values.count == 53)
    }

    func writeThree(_ root: String) throws -> (path: String, sizes: [Int]) {
        let log = try PartitionLog(topic: "r", partition: 0, config: LogConfig(dataDir: root))
        var sizes: [Int] = []
        for k in 0..<3 {
            let b = try batch(k * 10, 10, codec: .zstd)
            sizes.append(b.count)
            try log.append(batch: UnsafeMutableRawBufferPointer(start: b.base, count: b.count))
        }
        try log.close()
        return ("\(root)/log/r-0/\(segmentFileName(0))", sizes)
    }

    @Test func tornTailIsTruncatedToTheLastGoodBatch() throws {
        let root = tempDir("torn")
        let (path, sizes) = try writeThree(root)
        // Cut the file in the middle of the third batch, as a crash mid-write would.
        let keep = sizes[0] + sizes[1] + sizes[2] / 2
        #expect(truncate(path, off_t(keep)) == 0)
        let log = try PartitionLog(topic: "r", partition: 0, config: LogConfig(dataDir: root))
        #expect(log.recovery?.truncatedBytes == sizes[2] / 2)
        #expect(log.recovery?.keptBytes == sizes[0] + sizes[1])
        #expect(log.nextOffset == 20)
        // The next append reuses the lost offsets; nothing before the cut is lost.
        let b = try batch(20, 10)
        #expect(try log.append(batch: UnsafeMutableRawBufferPointer(start: b.base, count: b.count)) == 20)
        try log.close()
        #expect(try readAll("\(root)/log/r-0").values == (0..<30).map { "value-\($0)" })
    }

    @Test func flippedByteIsDetectedByCRCAndCut() throws {
        let root = tempDir("flip")
        let (path, sizes) = try writeThree(root)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[sizes[0] + 70] ^= 0x40  // inside the second batch's compressed records
        try data.write(to: URL(fileURLWithPath: path))
        let scan = try scanSegment(path: path)
        #expect(scan.batches == 1 && scan.error?.contains("CRC-32C mismatch") == true)
        // Issue 16 item 12: the third batch (offsets 20..<30) is good and chains to the end: it is kept; the
        // bad one's bytes go to a quarantine file named by the offsets they held, which readers accept as a gap.
        let log = try PartitionLog(topic: "r", partition: 0, config: LogConfig(dataDir: root))
        #expect(log.nextOffset == 30)
        #expect(log.recovery?.keptBytes == sizes[0] + sizes[2])
        #expect(log.recovery?.reason.contains("CRC") == true && log.recovery?.reason.contains("kept 1 later batches (offsets 20..<30)") == true,
                "\(log.recovery?.reason ?? "")")
        let q = "\(path).quarantine-10-20"
        #expect((try? Data(contentsOf: URL(fileURLWithPath: q)))?.count == sizes[1])
        // Appends continue after the kept batch.
        var b = RecordBatchBuilder()
        Array("after".utf8).withUnsafeBytes { b.append(key: nil, value: $0, timestamp: 0) }
        let out = ByteBuffer()
        try b.seal(into: out, codec: .none, compressor: Codec(), baseOffset: 0, partitionLeaderEpoch: 0)
        #expect(try log.append(batch: UnsafeMutableRawBufferPointer(start: out.base, count: out.count)) == 30)
        try log.close()
        #expect(try readAll("\(root)/log/r-0").values == (0..<10).map { "value-\($0)" } + (20..<30).map { "value-\($0)" } + ["after"])
        let v = try LogInspector.verify(dataDir: root)
        #expect(v.allSatisfy(\.isHealthy) && v.first?.quarantined.count == 1 && v.first?.records == 21, "\(v)")
    }

    @Test func garbageLengthIsNotTrusted() throws {
        let root = tempDir("len")
        let (path, sizes) = try writeThree(root)
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        // A batch length field that points past the end of the file.
        data[sizes[0] + 8] = 0x7F
        try data.write(to: URL(fileURLWithPath: path))
        // The length is not followed; the good third batch after it is found by its magic and CRC and kept.
        let log = try PartitionLog(topic: "r", partition: 0, config: LogConfig(dataDir: root))
        #expect(log.nextOffset == 30 && log.recovery != nil)
    }
}

/// A crafted segment (CRC-valid, named and based near Int64.max) is reported damaged, and appending after it
/// is refused with an error instead of a trap.
@Suite struct CraftedSegmentTests {
    @Test func offsetsNearTheEndAreRefusedNotTrapped() throws {
        let dir = NSTemporaryDirectory() + "pinbench-crafted-\(UUID().uuidString.prefix(8))"
        let base = Int64.max - 3
        let pdir = "\(dir)/log/t-0"
        try FileManager.default.createDirectory(atPath: pdir, withIntermediateDirectories: true)
        var b = RecordBatchBuilder()
        for i in 0..<5 { Array("v\(i)".utf8).withUnsafeBytes { b.append(key: nil, value: $0, timestamp: 0) } }
        let out = ByteBuffer()
        try b.seal(into: out, codec: .none, compressor: Codec(), baseOffset: base, partitionLeaderEpoch: 0)
        try Data(out.toArray()).write(to: URL(fileURLWithPath: "\(pdir)/\(segmentFileName(base))"))
        let verified = try LogInspector.verify(dataDir: dir)
        #expect(verified.count == 1 && !verified[0].isHealthy)
        let log = try PartitionLog(topic: "t", partition: 0, config: LogConfig(dataDir: dir))
        // The log continues at the segment's base: one record fits below Int64.max, six do not.
        func batch(_ records: Int) throws -> ByteBuffer {
            var next = RecordBatchBuilder()
            for _ in 0..<records { Array("x".utf8).withUnsafeBytes { next.append(key: nil, value: $0, timestamp: 0) } }
            let out = ByteBuffer()
            try next.seal(into: out, codec: .none, compressor: Codec())
            return out
        }
        let six = try batch(6)
        #expect(throws: LogError.self) { try log.append(batch: UnsafeMutableRawBufferPointer(start: six.base, count: six.count)) }
        let one = try batch(1)
        #expect(try log.append(batch: UnsafeMutableRawBufferPointer(start: one.base, count: one.count)) == base)
    }

    /// Issue 16 item 10: a CRC-valid batch with a negative lastOffsetDelta is damage, not "all batches good".
    @Test func aNegativeLastOffsetDeltaIsReportedAsDamage() throws {
        let dir = NSTemporaryDirectory() + "pinbench-negdelta-\(UUID().uuidString.prefix(8))"
        let pdir = "\(dir)/log/t-0"
        try FileManager.default.createDirectory(atPath: pdir, withIntermediateDirectories: true)
        var bytes = try batch(0, 3).toArray()
        withUnsafeBytes(of: Int32(-4).bigEndian) { for (i, x) in $0.enumerated() { bytes[BatchLayout.lastOffsetDelta + i] = x } }
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[BatchLayout.attributes...])) }
        withUnsafeBytes(of: crc.bigEndian) { for (i, x) in $0.enumerated() { bytes[BatchLayout.crc + i] = x } }
        try Data(bytes).write(to: URL(fileURLWithPath: "\(pdir)/\(segmentFileName(0))"))
        let v = try LogInspector.verify(dataDir: dir)
        #expect(v.count == 1 && !v[0].isHealthy, "\(v)")
        #expect(v[0].problems.joined().contains("-4"), "\(v[0].problems)")
        #expect(v[0].nextOffset == 0)
    }
}
