import Dispatch
import Foundation
import Testing
import Analytics
import Cleaning
import TableStore
import TestSupport
import Codecs
import PinModel
import KafkaLog
import KafkaWire
import Bytes
import Platform

typealias CompressionCodecValue = CompressionCodec

@Suite struct KernelTests {
    func fc(_ s: String) -> Int64? {
        var s = s
        return s.withUTF8 { Kernels.parseFollowerCount(UnsafeRawBufferPointer($0)) }
    }

    @Test func followerCounts() {
        #expect(fc("437") == 437)
        #expect(fc("0") == 0)
        #expect(fc("124k") == 124_000)
        #expect(fc("6M") == 6_000_000)
        #expect(fc("1.2k") == 1200)
        #expect(fc("2.25M") == 2_250_000)
        #expect(fc("1.2") == nil)  // not a whole number of followers
        #expect(fc("User Info Error") == nil)
        #expect(fc("12K") == nil)
        #expect(fc("k") == nil)
        #expect(fc("") == nil)
        #expect(fc("99999999999999999999") == nil)
        // Whole part fits once multiplied, the fraction pushes it past Int64: null, not a trap.
        #expect(fc("9223372036854775.9k") == nil)
        #expect(fc("9223372036854.9M") == nil)
        #expect(fc("-9223372036854775.9k") == nil)
    }

    @Test func timestamps() {
        #expect(UTCTime.parseMicros("1970-01-01 00:00:00") == 0)
        #expect(UTCTime.parseMicros("2020-08-28 03:52:47") == 1_598_586_767_000_000)
        #expect(UTCTime.parseMicros("2020-08-28T03:52:47") == 1_598_586_767_000_000)
        #expect(UTCTime.parseMicros("2020-08-28T03:52:47.5Z") == 1_598_586_767_500_000)
        #expect(UTCTime.parseMicros("2020-08-28T05:52:47+02:00") == 1_598_586_767_000_000)
        #expect(UTCTime.parseMicros("2020-02-30 00:00:00") == nil)
        #expect(UTCTime.parseMicros("2020-13-01 00:00:00") == nil)
        #expect(UTCTime.parseMicros("yesterday") == nil)
        #expect(UTCTime.year(micros: 1_598_586_767_000_000) == 2020)
        #expect(UTCTime.year(micros: -1) == 1969)
        #expect(UTCTime.iso(micros: 1_598_586_767_000_001, roundUp: true) == "2020-08-28T03:52:47.001Z")
    }

    @Test func placeholdersPrefixAndNames() {
        let c = StringColumn()
        for s in ["Untitled", "", "Nice", "No description available", "No description availablex"] { c.append(s) }
        let n = Kernels.nullPlaceholders(c, [Array("No description available".utf8), Array("Untitled".utf8)])
        #expect(n == 3)
        #expect((0..<c.count).map { c.string($0) } == [nil, nil, "Nice", nil, "No description availablex"])
        let s = StringColumn()
        s.append("Local save in /data/art")
        s.append("/data/x")
        Kernels.stripPrefix(s, Array("Local save in ".utf8))
        #expect(s.string(0) == "/data/art")
        #expect(s.string(1) == "/data/x")
        let f = StringColumn(), l = StringColumn(), out = StringColumn()
        f.append("Ada"); l.append("Lovelace")
        f.appendNull(); l.append("Solo")
        f.append("First"); l.appendNull()
        f.appendNull(); l.appendNull()
        Kernels.joinNames(f, l, into: out)
        #expect((0..<4).map { out.string($0) } == ["Ada Lovelace", "Solo", "First", nil])
        #expect(Analysis.median([1, 2, 3, 4]) == 2.5)
        #expect(Analysis.median([7]) == 7)
        #expect(Analysis.ageGroup(50) == "36-50" && Analysis.ageGroup(51) == "50+" && Analysis.ageGroup(17) == nil)
    }
}

@Suite struct ParquetRoundTripTests {
    /// Our writer → our reader, every codec, with nulls, dictionary and PLAIN strings, several row groups.
    @Test(arguments: ["snappy", "zstd", "gzip", "none"])
    func roundTrip(_ codecName: String) throws {
        let dir = tempDir("pq-\(codecName)")
        let schema = TableSchema(name: "t", columns: [
            ColumnSpec("i", .int64), ColumnSpec("s", .string, dictionary: true), ColumnSpec("p", .string), ColumnSpec("ts", .timestamp),
            ColumnSpec("d", .double),
        ])
        let batch = ColumnBatch(schema: schema, capacity: 10)
        guard case .int64(let i) = batch.columns[0], case .string(let s) = batch.columns[1], case .string(let p) = batch.columns[2],
              case .timestamp(let ts) = batch.columns[3], case .double(let d) = batch.columns[4] else { Issue.record("schema"); return }
        let n = 5000
        for k in 0..<n {
            if k % 7 == 0 { i.appendNull() } else { i.append(Int64(k) * 1_000_003) }
            if k % 11 == 0 { s.appendNull() } else { s.append("v\(k % 13)") }
            p.append("unique-\(k)-\(String(repeating: "x", count: k % 50))")
            ts.append(Int64(k) * 1_000_000)
            if k % 5 == 0 { d.appendNull() } else { d.append(Double(k) / 3) }
        }
        let codec = CompressionCodecParse.parse(codecName)
        let w = try ParquetWriter(path: "\(dir)/f.parquet", schema: schema, codec: codec)
        // Two row groups of the same rows.
        try w.writeRowGroup(batch, columns: [0, 1, 2, 3, 4])
        try w.writeRowGroup(batch, columns: [0, 1, 2, 3, 4])
        let summary = try w.close()
        #expect(summary.rows == 2 * n)
        #expect(summary.columns[0].nullCount == Int64(2 * ((n + 6) / 7)))
        let f = try ParquetFile(path: "\(dir)/f.parquet")
        #expect(f.rowCount == 2 * n)
        guard case .int64(let ri) = try f.readColumn("i", as: .int64), case .string(let rs) = try f.readColumn("s", as: .string),
              case .string(let rp) = try f.readColumn("p", as: .string), case .timestamp(let rt) = try f.readColumn("ts", as: .timestamp),
              case .double(let rd) = try f.readColumn("d", as: .double) else { Issue.record("types"); return }
        for k in 0..<(2 * n) {
            let j = k % n
            #expect(ri.value(k) == i.value(j))
            #expect(rs.string(k) == s.string(j))
            #expect(rp.string(k) == p.string(j))
            #expect(rt.value(k) == ts.value(j))
            #expect(rd.value(k) == d.value(j))
            if ri.value(k) != i.value(j) || rs.string(k) != s.string(j) { break }
        }
    }
}

/// Issue 16 item 18: string columns address their bytes with 32-bit offsets, so a row group is cut by its
/// string bytes as well as its rows (records may be up to 1 GiB; 131,072 rows of them would pass 2 GiB and
/// trap). Here with a 64 KiB bound: 200 rows of 10 kB appended 50 at a time make four row groups, where the
/// row bound alone made one, and every row is kept. (A row group may overshoot by one appended batch; the
/// cleaner cuts its batches at 64 MiB of input, so a buffer stays far under 2 GiB.)
@Suite struct RowGroupBytesTests {
    @Test func aRowGroupIsCutByItsStringBytes() throws {
        let dir = tempDir("rg-bytes")
        let schema = TableSchema(name: "t", columns: [ColumnSpec("i", .int64), ColumnSpec("s", .string)])
        var options = TableWriteOptions(codec: .snappy)
        options.rowGroupBytes = 64 << 10
        let w = try PartitionedTableWriter(table: "\(dir)/t", schema: schema, options: options)
        for part in 0..<4 {
            let batch = ColumnBatch(schema: schema, capacity: 50)
            guard case .int64(let i) = batch.columns[0], case .string(let s) = batch.columns[1] else { Issue.record("schema"); return }
            for k in part * 50..<(part + 1) * 50 {
                i.append(Int64(k))
                s.append(String(repeating: Character(UnicodeScalar(UInt8(97 + k % 26))), count: 10_000))
            }
            try w.append(batch)
        }
        let adds = try w.finish()
        #expect(adds.count == 1 && adds.first?.rows == 200)
        guard let add = adds.first else { return }
        let f = try ParquetFile(path: "\(dir)/t/\(add.path)")
        #expect(f.rowCount == 200)
        #expect(f.rowGroupCount == 4, "\(f.rowGroupCount) row groups")
        guard case .int64(let ri) = try f.readColumn("i", as: .int64), case .string(let rs) = try f.readColumn("s", as: .string) else {
            Issue.record("types"); return
        }
        for k in 0..<200 {
            #expect(ri.value(k) == Int64(k) && rs.string(k)?.count == 10_000 && rs.string(k)?.first == Character(UnicodeScalar(UInt8(97 + k % 26))))
            if ri.value(k) != Int64(k) { break }
        }
    }
}

/// Issue 13 item 4: row groups are encoded and written by several threads; each partition value's files stay
/// with one thread, so the table holds exactly what one thread writes: the same files, each with the same
/// rows in the same order, also when the open-file bound finishes files early (c000, c001, …).
@Suite struct ParallelEncodeTests {
    func write(_ dir: String, threads: Int) throws -> [String: [String]] {
        let schema = TableSchema(name: "t", columns: [ColumnSpec("i", .int64), ColumnSpec("s", .string), ColumnSpec("k", .string)])
        var options = TableWriteOptions(codec: .zstd, partitionBy: "k")
        options.rowGroupBytes = 8 << 10
        options.maxOpenFiles = 3
        options.encodeThreads = threads
        let w = try PartitionedTableWriter(table: dir, schema: schema, options: options)
        for part in 0..<20 {
            let batch = ColumnBatch(schema: schema, capacity: 500)
            guard case .int64(let i) = batch.columns[0], case .string(let s) = batch.columns[1], case .string(let k) = batch.columns[2] else {
                Issue.record("schema"); return [:]
            }
            for r in part * 500..<(part + 1) * 500 {
                i.append(Int64(r))
                s.append("row \(r) " + String(repeating: "x", count: r % 97))
                k.append("c\((r * 7919) % 11)")
            }
            try w.append(batch)
        }
        var out: [String: [String]] = [:]
        for add in try w.finish() {
            let f = try ParquetFile(path: "\(dir)/\(add.path)")
            guard case .int64(let ri) = try f.readColumn("i", as: .int64), case .string(let rs) = try f.readColumn("s", as: .string) else { continue }
            // The run id differs between runs: the file is named by its folder, slot and start number.
            let name = add.path.replacingOccurrences(of: w.runId, with: "RUN")
            out[name] = (0..<f.rowCount).map { "\(ri.value($0) ?? -1):\(rs.string($0) ?? "nil")" }
            #expect(add.rows == f.rowCount)
        }
        return out
    }

    @Test func fourEncodersWriteWhatOneWrites() throws {
        let one = try write(tempDir("enc-1"), threads: 1)
        let four = try write(tempDir("enc-4"), threads: 4)
        #expect(one.values.reduce(0) { $0 + $1.count } == 10_000)
        #expect(one.keys.count > 11, "the open-file bound split partitions into several files: \(one.keys.count)")
        #expect(one == four)
    }
}

/// Issue 13 item 4: one table's jsonl file parsed by several threads, a byte range each, gives what one thread
/// gives: the same rows in the same files in the same order, the same duplicates dropped, the same dead
/// letters with the same line numbers, the same counts.
@Suite struct ParallelParseTests {
    func input(_ dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var lines: [String] = []
        let cats = ["art", "travel", "food", "diy", ""]
        for i in 0..<3000 {
            switch i % 97 {
            case 5: lines.append("{\"index\": \(i), \"title\": ")  // not JSON
            case 6: lines.append("")  // an empty line counts as a line
            case 7: lines.append("{\"title\": \"no key \(i)\"}")
            default:
                // Every 50th line repeats the one before (a duplicate row).
                if i % 50 == 1, let last = lines.last {
                    lines.append(last)
                    continue
                }
                lines.append("{\"index\":\(i),\"title\":\"t\(i)\",\"follower_count\":\"\(i % 13)k\",\"category\":\"\(cats[i % 5])\",\"description\":\"\(String(repeating: "d", count: i % 300))\"}")
            }
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir)/pin.jsonl", atomically: true, encoding: .utf8)
    }

    func clean(_ inp: String, _ out: String, threads: Int, landing: Bool = false, embedded: Bool = false) throws -> (KindReport, [String: [String]], [String]) {
        var o = CleanOptions(tablesDir: out)
        o.kinds = [.pin]
        o.parseThreads = threads
        o.rangeBytes = 16 << 10
        let source: CleanSource = embedded ? .embedded(inp, topicPrefix: "t") : landing ? .landing(inp, topicPrefix: "t") : .jsonl(inp)
        let r = try Cleaner.run(source: source, options: o)
        let pin = try #require(r.tables.first)
        var files: [String: [String]] = [:]
        let root = "\(out)/pin"
        for sub in try FileManager.default.subpathsOfDirectory(atPath: root) where sub.hasSuffix(".parquet") {
            let f = try ParquetFile(path: "\(root)/\(sub)")
            guard case .int64(let ind) = try f.readColumn("ind", as: .int64), case .string(let t) = try f.readColumn("title", as: .string),
                  case .int64(let fc) = try f.readColumn("follower_count", as: .int64) else { continue }
            // File names carry the run id; the folder and slot number stay.
            let name = sub.replacingOccurrences(of: #"-[0-9a-f-]{36}\."#, with: ".", options: .regularExpression)
            files[name] = (0..<f.rowCount).map { "\(ind.value($0) ?? -1):\(t.string($0) ?? "nil"):\(fc.value($0) ?? -1)" }
        }
        let dead = try pin.deadLetterPath.map { try String(contentsOfFile: $0, encoding: .utf8).split(separator: "\n").map(String.init) } ?? []
        return (pin, files, dead)
    }

    @Test func threeThreadsCleanWhatOneCleans() throws {
        let dir = tempDir("parallel-parse")
        try input("\(dir)/in")
        let (one, oneFiles, oneDead) = try clean("\(dir)/in", "\(dir)/one", threads: 1)
        let (three, threeFiles, threeDead) = try clean("\(dir)/in", "\(dir)/three", threads: 3)
        #expect(one.recordsIn == three.recordsIn && one.written == three.written && one.duplicates == three.duplicates)
        #expect(one.deadLettered == three.deadLettered && one.deadLetterReasons == three.deadLetterReasons)
        #expect(one.nulled == three.nulled && one.wrongType == three.wrongType && one.inputBytes == three.inputBytes)
        #expect(one.duplicates > 0 && one.deadLettered > 0 && oneFiles.count == 5)
        #expect(oneFiles == threeFiles)
        #expect(oneDead.count == Int(one.deadLettered) && oneDead == threeDead, "\(oneDead.prefix(2)) vs \(threeDead.prefix(2))")
    }

    /// CRLF endings, blank lines and a last line of a lone `\r` with no newline, in a file larger than the
    /// one-thread reader's 8 MiB window (lines cross it): one thread (the file read 8 MiB at a time) and three
    /// (ranges in memory) take the same records and write the same rows. The one-thread reader used to keep
    /// that last `\r` and dead-letter it.
    @Test func crlfLinesAcrossTheReadWindowCleanTheSameOnOneThreadAndThree() throws {
        let dir = tempDir("crlf-window")
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        var text = ""
        var records = 0
        while text.utf8.count < 9 << 20 {
            text += "{\"index\":\(records),\"title\":\"t\(records)\",\"description\":\"\(String(repeating: "d", count: records % 900))\"}\r\n"
            if records % 97 == 0 { text += "\r\n\n" }
            records += 1
        }
        text += "\r"
        try text.write(toFile: "\(dir)/in/pin.jsonl", atomically: true, encoding: .utf8)
        let (one, oneFiles, oneDead) = try clean("\(dir)/in", "\(dir)/one", threads: 1)
        let (three, threeFiles, threeDead) = try clean("\(dir)/in", "\(dir)/three", threads: 3)
        #expect(one.recordsIn == records && three.recordsIn == records)
        #expect(one.deadLettered == 0 && three.deadLettered == 0, "\(oneDead.prefix(2)) \(threeDead.prefix(2))")
        #expect(one.written == three.written && oneFiles == threeFiles)
    }

    /// A landing root: the same lines cut into objects of two partitions; line numbers count within each object.
    @Test func aLandingRootToo() throws {
        let dir = tempDir("parallel-landing")
        try input("\(dir)/src")
        let lines = try String(contentsOfFile: "\(dir)/src/pin.jsonl", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        for p in 0..<2 {
            let part = "\(dir)/in/topics/t.pin/partition=\(p)"
            try FileManager.default.createDirectory(atPath: part, withIntermediateDirectories: true)
            var offset = 0
            for chunk in stride(from: p * 1500, to: (p + 1) * 1500, by: 400) {
                let text = lines[chunk..<min(chunk + 400, (p + 1) * 1500)].joined(separator: "\n") + "\n"
                try text.write(toFile: "\(part)/t.pin+\(p)+\(String(format: "%010d", offset)).json", atomically: true, encoding: .utf8)
                offset += 400
            }
        }
        let (one, oneFiles, oneDead) = try clean("\(dir)/in", "\(dir)/one", threads: 1, landing: true)
        let (three, threeFiles, threeDead) = try clean("\(dir)/in", "\(dir)/three", threads: 3, landing: true)
        #expect(one.recordsIn == three.recordsIn && one.written == three.written && one.duplicates == three.duplicates)
        #expect(one.deadLettered > 0 && one.deadLettered == three.deadLettered && oneFiles == threeFiles && oneDead == threeDead)
    }

    /// The embedded log: the same lines as the records of two partitions, each in several segments of many
    /// lz4 batches, cut at batch starts; dead letters carry topic-partition@offset. A damaged batch fails
    /// both the same way, naming the same file and byte.
    @Test func anEmbeddedLogToo() throws {
        let dir = tempDir("parallel-log")
        try input("\(dir)/src")
        let lines = try String(contentsOfFile: "\(dir)/src/pin.jsonl", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        let config = LogConfig(dataDir: "\(dir)/in", segmentBytes: 48 << 10)
        let codec = Codec()
        for p in 0..<2 {
            let log = try PartitionLog(topic: "t.pin", partition: p, config: config)
            var b = RecordBatchBuilder()
            let out = ByteBuffer(capacity: 1 << 16)
            func flush() throws {
                guard !b.isEmpty else { return }
                out.reset()
                try b.seal(into: out, codec: .lz4, compressor: codec)
                _ = try log.append(batch: UnsafeMutableRawBufferPointer(start: out.base, count: out.count))
                b.reset()
            }
            for (i, line) in lines.enumerated() where i % 2 == p {
                Array(line.utf8).withUnsafeBytes { b.append(key: nil, value: $0, timestamp: 1_767_225_600_000) }
                if b.count == 40 { try flush() }
            }
            try flush()
            try log.close()
            // Two segments, the first about 48 KiB: three ranges of 16 KiB within it, one more after.
            #expect(try listSegments("\(dir)/in/log/t.pin-\(p)").count == 2)
        }
        let (one, oneFiles, oneDead) = try clean("\(dir)/in", "\(dir)/one", threads: 1, embedded: true)
        let (three, threeFiles, threeDead) = try clean("\(dir)/in", "\(dir)/three", threads: 3, embedded: true)
        #expect(one.recordsIn == lines.count && one.recordsIn == three.recordsIn)
        #expect(one.written == three.written && one.duplicates == three.duplicates && one.inputBytes == three.inputBytes)
        #expect(one.deadLettered > 0 && one.deadLettered == three.deadLettered && one.deadLetterReasons == three.deadLetterReasons)
        #expect(oneFiles.count == 5 && oneFiles == threeFiles)
        #expect(oneDead == threeDead && oneDead.contains { $0.contains("t.pin-1@") }, "\(oneDead.prefix(2)) vs \(threeDead.prefix(2))")

        // One byte in the middle of partition 1's first segment (a range after the first), flipped: the CRC no
        // longer matches.
        let seg = try listSegments("\(dir)/in/log/t.pin-1")[0].path
        var bytes = try #require(FileManager.default.contents(atPath: seg))
        bytes[bytes.count / 2] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: seg))
        func failure(_ threads: Int) -> String {
            do { _ = try clean("\(dir)/in", "\(dir)/bad\(threads)", threads: threads, embedded: true) } catch { return "\(error)" }
            return "no error"
        }
        let sequential = failure(1)
        #expect(sequential.contains(seg) && sequential.contains("at byte"), "\(sequential)")
        #expect(failure(3) == sequential)
    }
}

enum CompressionCodecParse {
    static func parse(_ s: String) -> CompressionCodecValue { CompressionCodecValue(name: s)! }
}

@Suite struct DeltaCommitTests {
    /// Eight writers append to one new table at once: every commit gets its own version, none is lost,
    /// and exactly one of them created the table (protocol + metaData once).
    @Test func concurrentWritersNeverShareAVersion() throws {
        let dir = tempDir("delta-race")
        let schema = TableSchema(name: "t", columns: [ColumnSpec("i", .int64)])
        let versions = VersionBox()
        DispatchQueue.concurrentPerform(iterations: 8) { k in
            let add = AddAction(path: "f\(k).parquet", partitionValues: [], size: 1, rows: 1, stats: [])
            let v = try? DeltaLog(table: "\(dir)/t").commitAppend(schema: schema, partitionColumns: [], files: [add], nowMs: 1)
            versions.add(v ?? nil)
        }
        #expect(versions.all.compactMap { $0 }.sorted() == Array(0..<8))
        let snap = try #require(try DeltaLog(table: "\(dir)/t").snapshot())
        #expect(snap.files.count == 8)
        let text = try (0..<8).map { try String(contentsOfFile: "\(dir)/t/_delta_log/\(DeltaLog.versionFileName($0))", encoding: .utf8) }.joined()
        #expect(text.components(separatedBy: "\"metaData\"").count == 2)
        // A txn already in the log makes the same commit a no-op.
        let t1 = try DeltaLog(table: "\(dir)/t").commitAppend(schema: schema, partitionColumns: [], files: [], txn: ("day", 0), nowMs: 1)
        let t2 = try DeltaLog(table: "\(dir)/t").commitAppend(schema: schema, partitionColumns: [], files: [], txn: ("day", 0), nowMs: 1)
        #expect(t1 == 8 && t2 == nil)
        // Another schema is refused.
        #expect(throws: StorageError.self) {
            try DeltaLog(table: "\(dir)/t").commitAppend(schema: TableSchema(name: "t", columns: [ColumnSpec("j", .int64)]),
                                                     partitionColumns: [], files: [], nowMs: 1)
        }
    }
}

final class VersionBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int?] = []
    func add(_ v: Int?) { lock.lock(); items.append(v); lock.unlock() }
    var all: [Int?] { lock.lock(); defer { lock.unlock() }; return items }
}
