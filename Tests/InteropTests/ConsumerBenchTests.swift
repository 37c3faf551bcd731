import Foundation
import Testing
import TestSupport

// Issue 15 item 9: `bench --consume` reads what the flood writes while it runs (end-to-end latency from each
// record's timestamp) and then reads every partition or shard back alone (per-partition consumer
// throughput). The counts are checked against the flood's report and against independent readers
// (kafka-python, boto3); no timing is asserted.

private func object(_ path: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))) as? [String: Any] ?? [:]
}

/// The flood's acknowledged records, from a bench report folder.
private func floodRecordsOut(_ dir: String) -> Int {
    let scenarios = object("\(dir)/report.json")["scenarios"] as? [[String: Any]] ?? []
    return (scenarios.first?["figures"] as? [String: Any])?["records_out"] as? Int ?? -1
}

@Suite(.serialized) struct ConsumerBenchTests {
    @Test func kafkaConsumerReadsEveryRecordLiveAndPerPartition() throws {
        let tansu = try Tansu.get()
        let dir = tempDir("consume-kafka")
        let r = try pinbench("bench", "--scenario", "kafka", "--kafka", tansu.bootstrap, "--consume", "--duration", "2s", "--warmup", "1s",
                             "--rate", "1500", "--threads", "1", "--out", "\(dir)/b", "--quiet")
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        #expect(r.stdout.contains("consumer (kafka): live"), "\(r.stdout)")
        let c = object("\(dir)/b/consumer.json")
        let out = floodRecordsOut("\(dir)/b")
        let live = c["live"] as? [String: Any] ?? [:]
        let parts = c["per_partition"] as? [[String: Any]] ?? []
        #expect(out > 0 && live["records"] as? Int == out && c["records_read_back"] as? Int == out, "flood \(out), consumer \(c)")
        #expect((live["latency_ms"] as? [String: Any])?["count"] as? Int == out)
        #expect(parts.count == 9, "3 topics × 3 partitions: \(parts.map { $0["name"] ?? "" })")
        // kafka-python counts each partition on its own: the same numbers.
        let names = parts.compactMap { $0["name"] as? String }
        let counts = try python3(["-c", """
        import sys, kafka
        c = kafka.KafkaConsumer(bootstrap_servers=sys.argv[1], api_version=(2, 8), consumer_timeout_ms=3000)
        out = []
        for n in sys.argv[2:]:
            topic, p = n.rsplit("-", 1)
            tp = kafka.TopicPartition(topic, int(p))
            c.assign([tp]); c.seek_to_beginning(tp)
            end = c.end_offsets([tp])[tp]
            k = 0
            while c.position(tp) < end:
                for recs in c.poll(timeout_ms=1000).values(): k += len(recs)
            out.append(f"{n}={k}")
        print(" ".join(out))
        """, tansu.bootstrap] + names)
        let mine = parts.map { "\($0["name"] as? String ?? "")=\($0["records"] as? Int ?? -1)" }.joined(separator: " ")
        #expect(counts.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == mine, "\(counts.stderr)")
    }

    @Test func kinesisConsumerReadsEveryRecordLiveAndPerShard() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("consume-kinesis")
        let env = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"]
        let r = try runProcess(pinbenchBinary(), ["bench", "--scenario", "kinesis", "--kinesis", "--aws-endpoint", moto.endpoint, "--shards", "2",
                                                  "--ordered", "--consume", "--duration", "2s", "--warmup", "1s", "--rate", "300", "--threads", "1",
                                                  "--out", "\(dir)/b", "--quiet"], environment: env)
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let c = object("\(dir)/b/consumer.json")
        let out = floodRecordsOut("\(dir)/b")
        let live = c["live"] as? [String: Any] ?? [:]
        let parts = c["per_partition"] as? [[String: Any]] ?? []
        #expect(out > 0 && live["records"] as? Int == out && c["records_read_back"] as? Int == out, "flood \(out), consumer \(c)")
        #expect(parts.count == 6, "3 streams × 2 shards: \(parts.map { $0["name"] ?? "" })")
        // boto3 reads each shard from its start: the same numbers.
        let names = parts.compactMap { $0["name"] as? String }
        let counts = try runProcess("/usr/bin/env", ["python3", "-c", """
        import sys, boto3
        k = boto3.client("kinesis", endpoint_url=sys.argv[1], region_name="us-east-1")
        out = []
        for n in sys.argv[2:]:
            stream, shard = n.split("/")
            it = k.get_shard_iterator(StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            total = 0
            while it:
                page = k.get_records(ShardIterator=it, Limit=10000)
                total += len(page["Records"])
                it = page.get("NextShardIterator")
                if not page["Records"] and page.get("MillisBehindLatest", 0) == 0: break
            out.append(f"{n}={total}")
        print(" ".join(out))
        """, moto.endpoint] + names, environment: env)
        let mine = parts.map { "\($0["name"] as? String ?? "")=\($0["records"] as? Int ?? -1)" }.joined(separator: " ")
        #expect(counts.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == mine, "\(counts.stderr)")
    }

    @Test func consumeNeedsAClusterScenario() throws {
        let r = try pinbench("bench", "--consume", "--duration", "1s", "--out", "\(tempDir("consume-bad"))/b")
        #expect(r.status == 64 && r.stderr.contains("--consume reads a cluster's topics or streams"), "\(r.stderr)")
    }
}
