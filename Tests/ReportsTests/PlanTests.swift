import Capacity
import Foundation
import JSON
import Testing
import TestSupport

/// Issue 15 item 6: `plan` against worked examples computed by hand (AWS's own for Express brokers), on
/// fixed reports; a run whose latency kept rising is refused with the reason.
@Suite struct PlanTests {
    func value(_ plan: CapacityPlan, _ key: String) -> Int? {
        if case .int(let v)? = plan.json.first(where: { $0.0 == key })?.1 { return v }
        return nil
    }

    func input(_ body: (inout CapacityPlan.Input) -> Void) -> CapacityPlan.Input {
        var i = CapacityPlan.Input()
        body(&i)
        return i
    }

    /// AWS: "45 MBps of data ingress and 90 MBps data egress ... 3 express.m7g.large brokers" (15.6 and 31.2 MB/s
    /// per broker: 45 / 15.6 = 2.9 → 3, 90 / 31.2 = 2.9 → 3). With 30% headroom: 58.5 / 15.6 = 3.75 → 4 → 6
    /// (a multiple of the 3 AZs).
    @Test func awsExpressExample() throws {
        let base = input { $0.targetBytes = 45e6; $0.egressBytes = 90e6; $0.recordBytes = 1000; $0.headroom = 0 }
        #expect(value(try CapacityPlan.make(base, measured: Measured()), "brokers") == 3)
        var h = base
        h.headroom = 0.3
        #expect(value(try CapacityPlan.make(h, measured: Measured()), "brokers") == 6)
    }

    /// AWS's egress-bound example: 100 MB/s in read by 5 consumer groups is 500 MB/s out; express.m7g.2xlarge
    /// takes 125 MB/s out: 4 brokers → 6.
    @Test func egressBoundExpress() throws {
        let i = input { $0.targetBytes = 100e6; $0.consumerGroups = 5; $0.recordBytes = 1000; $0.headroom = 0; $0.brokerType = "express.m7g.2xlarge" }
        #expect(value(try CapacityPlan.make(i, measured: Measured()), "brokers") == 6)
    }

    /// 3,000 records/s of 2,000 bytes into the three streams: per stream 1,000 records/s (1 shard) and 2 MB/s
    /// (1.91 MiB/s: 2 shards) → 2 per stream, 6 shards. Cost: 6 × 0.015 × 730 = 65.70, plus 3,000 × 730 × 3,600
    /// = 7,884 million PUT payload units × 0.014 = 110.38: 176 a month.
    @Test func kinesisShardsAndCost() throws {
        let i = input { $0.targetRecords = 3000; $0.recordBytes = 2000; $0.headroom = 0; $0.backend = .kinesis }
        let plan = try CapacityPlan.make(i, measured: Measured())
        #expect(value(plan, "shards") == 6 && value(plan, "shards_per_stream") == 2)
        #expect(plan.monthlyUSD.map { abs($0 - 176.076) < 0.01 } == true, "\(plan.monthlyUSD ?? -1)")
    }

    /// Fixed reports: a run of 280,000 records/s over 9 partitions (p = 31,111 per partition) with records of
    /// 500 bytes, and a consumer read-back of 50,000 records/s per partition (c). For 1 M records/s and no
    /// headroom: hosts 1,000,000 / 280,000 = 3.6 → 4; per topic t = 333,333: t/p = 10.7, t/c = 6.7 → 11
    /// partitions per topic, 33 in all; express.m7g.large: 500 MB/s / 15.6 = 32.1 → 33 brokers (egress 500 /
    /// 31.2 = 16.1; partitions 99 / 1,000 = 1), already a multiple of 3.
    @Test func partitionsHostsAndBrokersFromReports() throws {
        let dir = tempDir("plan")
        let parts = (0..<9).map { #"{"topic":"pinbench.pin","partition":\#($0),"records":1000}"# }.joined(separator: ",")
        let steady = (1...12).map { #"{"t":\#($0),"p99_ms":5.\#($0 % 3),"count":100}"# }.joined(separator: ",")
        try #"{"records_per_s":280000,"payload_bytes":500000000,"records_out":1000000,"partitions":[\#(parts)],"latency_by_second":[\#(steady)],"config":{"warmup_s":0}}"#
            .write(toFile: "\(dir)/run.json", atomically: true, encoding: .utf8)
        try #"{"backend":"kafka","median_partition_records_per_s":50000}"#.write(toFile: "\(dir)/consumer.json", atomically: true, encoding: .utf8)
        let m = try Measured.read(["\(dir)/run.json", "\(dir)/consumer.json"])
        #expect(m.recordBytes == 500)
        let plan = try CapacityPlan.make(input { $0.targetRecords = 1_000_000; $0.headroom = 0 }, measured: m)
        #expect(value(plan, "producer_hosts") == 4)
        #expect(value(plan, "partitions_per_topic") == 11 && value(plan, "partitions") == 33)
        #expect(value(plan, "brokers") == 33)
    }

    @Test func aRunWithRisingLatencyIsRefused() throws {
        let dir = tempDir("plan-rising")
        let rising = (1...12).map { #"{"t":\#($0),"p99_ms":\#(5 * $0),"count":100}"# }.joined(separator: ",")
        try #"{"records_per_s":280000,"payload_bytes":5000,"records_out":10,"partitions":[],"latency_by_second":[\#(rising)],"config":{"warmup_s":0}}"#
            .write(toFile: "\(dir)/run.json", atomically: true, encoding: .utf8)
        #expect(throws: PlanError.self) { try Measured.read(["\(dir)/run.json"]) }
        do { _ = try Measured.read(["\(dir)/run.json"]) } catch {
            #expect(error.description.contains("not a steady run: p99 rose from 15.0 ms in its first third to 55.0 ms"), "\(error)")
        }
    }

    /// The command, end to end: a real run's report feeds the plan; the JSON has the sized rows.
    @Test func planCommandReadsARealRun() throws {
        let dir = tempDir("plan-cli")
        #expect(try pinbench("run", "--count", "3000", "--data-dir", "\(dir)/d", "--report-json", "\(dir)/r.json", "--quiet").status == 0)
        let r = try pinbench("plan", "--target", "2M/s", "--from", "\(dir)/r.json", "--format", "json")
        #expect(r.status == 0, "\(r.stderr)")
        let j = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8))) as? [String: Any] ?? [:]
        #expect((j["producer_hosts"] as? Int ?? 0) >= 1 && (j["brokers"] as? Int ?? 0) >= 3 && (j["partitions"] as? Int ?? 0) >= 3, "\(j)")
        let bad = try pinbench("plan", "--target", "fast")
        #expect(bad.status == 64 && bad.stderr.contains("--target needs a rate"), "\(bad.stderr)")
    }
}
