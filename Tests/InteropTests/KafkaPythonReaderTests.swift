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
