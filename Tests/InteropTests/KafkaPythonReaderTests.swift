import Foundation
import Testing
import TestSupport

/// Our `.log` segments read by an independent implementation: kafka-python's RecordBatch code
/// (`kafka.record.MemoryRecords` / `DefaultRecordBatch`), with CRC checks, every codec.
@Suite struct KafkaPythonReaderTests {
    static let codecs = ["none", "gzip", "snappy", "lz4", "zstd"]

    @Test(arguments: codecs)
    func kafkaPythonReadsEveryBatchAndValue(_ codec: String) throws {
        let dir = tempDir("kp-\(codec)")
        let run = try pinbench("run", "--count", "2000", "--seed", "11", "--data-dir", "\(dir)/data", "--partitions", "3",
                               "--compression", codec, "--batch-bytes", "32k", "--segment-bytes", "200k", "--threads", "2", "--quiet")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try pinbench("emulate", "--count", "2000", "--seed", "11", "--out", "\(dir)/emu").status == 0)
        let script = Bundle.module.path(forResource: "read_kafka_log", ofType: "py", inDirectory: "Peers")!
        let r = try runProcess("/usr/bin/env", ["python3", script, "\(dir)/data", "\(dir)/emu", "pinbench", "3"])
        #expect(r.status == 0, "kafka-python reader: \(r.stdout) \(r.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect(summary?["records"] as? Int == 6000)
        let codecNumber = ["none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4][codec]!
        #expect(summary?["codecs"] as? [Int] == [codecNumber])
        #expect((summary?["batches"] as? Int ?? 0) > 3)
    }
}

/// Issue 16 item 12: one flipped byte in the middle of the active segment. Reopening (`run --append`) keeps
/// the good batches after the bad one, quarantines the bad bytes beside the segment and says both;
/// `log verify` passes and names the gap; kafka-python's own RecordBatch code reads the mended segment
/// (every CRC good, offsets rising, the one gap being the quarantined range).
@Suite struct SalvageTests {
    @Test func goodBatchesAfterABadOneAreKept() throws {
        let dir = tempDir("salvage")
        #expect(try pinbench("run", "--count", "20000", "--partitions", "1", "--data-dir", dir, "--quiet").status == 0)
        let pdir = "\(dir)/log/pinbench.pin-0"
        let seg = try FileManager.default.contentsOfDirectory(atPath: pdir).filter { $0.hasSuffix(".log") }.sorted().last!
        let path = "\(pdir)/\(seg)"
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[data.count / 2] ^= 0x10
        try data.write(to: URL(fileURLWithPath: path))
        let again = try pinbench("run", "--count", "10", "--partitions", "1", "--data-dir", dir, "--append", "--quiet", "--report-json", "\(dir)/r.json")
        #expect(again.status == 0, "\(again.stderr)")
        let report = try String(contentsOfFile: "\(dir)/r.json", encoding: .utf8)
        #expect(report.contains("kept") && report.contains("quarantined"), "\(report.prefix(2000))")
        let q = try FileManager.default.contentsOfDirectory(atPath: pdir).filter { $0.contains(".quarantine-") }
        #expect(q.count == 1, "\(q)")
        let verify = try pinbench("log", "verify", "--data-dir", dir)
        #expect(verify.status == 0 && verify.stdout.contains("quarantined by a recovery"), "\(verify.stdout)")
        let r = try python3(["-c", """
        import sys, glob, os
        from kafka.record import MemoryRecords
        pdir = sys.argv[1]
        seg = sorted(glob.glob(pdir + "/*.log"))[-1]
        q = [f for f in os.listdir(pdir) if ".quarantine-" in f][0]
        gap_from, gap_to = map(int, q.rsplit(".quarantine-", 1)[1].split("-"))
        recs = MemoryRecords(open(seg, "rb").read())
        expected, records, gaps, bad = None, 0, [], 0
        while recs.has_next():
            b = recs.next_batch()
            if not b.validate_crc(): bad += 1
            if expected is not None and b.base_offset != expected: gaps.append((expected, b.base_offset))
            n = sum(1 for _ in b)
            records += n
            expected = b.base_offset + b.last_offset_delta + 1
        print("ok" if bad == 0 and gaps == [(gap_from, gap_to)] else f"bad {bad} gaps {gaps} quarantined {gap_from}-{gap_to}", records)
        """, pdir])
        #expect(r.stdout.hasPrefix("ok"), "\(r.stdout) \(r.stderr)")
        // Records kept: all but the quarantined range, plus the 10 appended.
        let kept = Int(r.stdout.split(separator: " ").last?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "") ?? 0
        let parts = q[0].split(separator: "-").suffix(2).compactMap { Int($0) }
        #expect(parts.count == 2 && kept == 20_010 - (parts[1] - parts[0]), "kept \(kept), quarantined \(parts)")
    }
}
