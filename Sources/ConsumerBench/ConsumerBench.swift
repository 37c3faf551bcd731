import AWSClient
import Histogram
import JSON
import KafkaClient
import KafkaWire
import Pipeline
import PinModel
import Platform
import Sinks
import Synchronization

/// `bench --consume`: the consumer side of a flood. While the flood writes, a follower reads the same topics
/// (Kafka Fetch, one request per leader for all partitions) or streams (Kinesis GetRecords, every shard) and
/// measures end-to-end latency from each record's timestamp; after it, every partition or shard is read
/// again from its start, alone and timed: the throughput one consumer gets from one partition (the `c` of
/// Confluent's partition rule, which `plan` uses).
public struct PartitionRead: Sendable {
    /// `topic-partition` or `stream/shard`.
    public var name: String
    public var records: Int
    public var bytes: Int
    public var seconds: Double
    public var recordsPerSecond: Double { seconds > 0 ? Double(records) / seconds : 0 }
    public var mbPerSecond: Double { seconds > 0 ? Double(bytes) / seconds / 1e6 : 0 }
}

public struct ConsumerFigures: Sendable {
    public var backend: String
    /// End-to-end latency of the records read while the flood ran, µs.
    public var live: Histogram<UInt64>
    public var liveRecords = 0
    /// What the latency counts from.
    public var latencyFrom: String
    /// Records the flood acknowledged that the live follower had not read when it gave up (0: it kept up).
    public var liveBehind = 0
    public var reads: [PartitionRead] = []

    public var totalRecords: Int { reads.reduce(0) { $0 + $1.records } }

    func ms(_ p: Double) -> Double { live.totalCount == 0 ? 0 : Double(live.valueAtPercentile(p)) / 1000 }

    /// The median partition's read rate (records/s and MB/s): what `plan` takes as c.
    public var medianPerPartition: (records: Double, mb: Double) {
        guard !reads.isEmpty else { return (0, 0) }
        let r = reads.map(\.recordsPerSecond).sorted(), m = reads.map(\.mbPerSecond).sorted()
        return (r[r.count / 2], m[m.count / 2])
    }

    public var json: JSONValue {
        return .object([
            ("backend", .string(backend)),
            ("live", .object([
                ("records", .int(liveRecords)), ("behind_at_end", .int(liveBehind)),
                ("latency_ms", .object([
                    ("p50", .double(ms(50))), ("p90", .double(ms(90))), ("p99", .double(ms(99))), ("p999", .double(ms(99.9))),
                    ("max", .double(live.totalCount == 0 ? 0 : Double(live.max) / 1000)), ("count", .int(Int(live.totalCount))),
                    ("measured_from", .string(latencyFrom)), ("measured_to", .string("the consumer reading it")),
                ])),
            ])),
            ("per_partition", .array(reads.map {
                .object([("name", .string($0.name)), ("records", .int($0.records)), ("bytes", .int($0.bytes)),
                         ("seconds", .double(round3($0.seconds))), ("records_per_s", .double($0.recordsPerSecond.rounded())),
                         ("mb_per_s", .double(round3($0.mbPerSecond)))])
            })),
            ("median_partition_records_per_s", .double(medianPerPartition.records.rounded())),
            ("median_partition_mb_per_s", .double(round3(medianPerPartition.mb))),
            ("records_read_back", .int(totalRecords)),
        ])
    }

    public var summary: String {
        var s = "consumer (\(backend)): live, \(formatCount(Double(liveRecords))) records read while the flood ran, end-to-end p50 \(fmt(ms(50), 1)) ms, p99 \(fmt(ms(99), 1)) ms (from \(latencyFrom))"
        if liveBehind > 0 { s += "; \(formatCount(Double(liveBehind))) records behind when the flood ended" }
        s += "\n  read back alone, per partition: median \(formatCount(medianPerPartition.records)) records/s, \(fmt(medianPerPartition.mb, 1)) MB/s over \(reads.count) partitions (\(formatCount(Double(totalRecords))) records)\n"
        return s
    }
}

public struct ConsumerBenchError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ d: String) { description = d }
}

/// Follows a flood's topics or streams on its own thread while the flood runs, then reads every partition
/// or shard back alone.
public final class ConsumerBench: @unchecked Sendable {
    enum Source {
        case kafka(KafkaOptions, topics: [String])
        case kinesis(KinesisOptions, streams: [String])
    }

    let source: Source
    let stopAt = Atomic<Int64>(0)  // wall ms after which the follower gives up (0: the flood still runs)
    let target = Atomic<Int>(Int.max)  // records the flood acknowledged
    var figures: ConsumerFigures
    var error: String?
    var thread: StageThread?

    /// For the flood of `base` into `backend` (a Kafka or Kinesis backend with its topic or stream names fixed).
    public init?(backend: Backend, topicPrefix: String) {
        switch backend {
        case .kafka(let k):
            source = .kafka(k, topics: RecordKind.allCases.map { $0.topic(prefix: topicPrefix) })
            figures = ConsumerFigures(backend: "kafka", live: newLatencyHistogram(), latencyFrom: "each record's timestamp (the producer's CreateTime, ms)")
        case .kinesis(let k):
            source = .kinesis(k, streams: RecordKind.allCases.map { k.stream($0) })
            figures = ConsumerFigures(backend: "kinesis", live: newLatencyHistogram(),
                                      latencyFrom: "each record's ApproximateArrivalTimestamp (Kinesis's arrival time; a Kinesis record holds no send time)")
        default:
            return nil
        }
    }

    /// Starts following (before the flood: it waits for the topics or streams the flood creates).
    public func start() {
        thread = StageThread(name: "consumer-follow") { [self] in
            do {
                switch source {
                case .kafka(let k, let topics): try followKafka(k, topics)
                case .kinesis(let k, let streams): try followKinesis(k, streams)
                }
            } catch {
                self.error = "live consumer: \(error)"
            }
        }
    }

    /// After the flood (which acknowledged `records`): lets the follower catch up for at most `graceSeconds`,
    /// then reads every partition or shard back alone.
    public func finish(acknowledged records: Int, graceSeconds: Double = 10) throws(ConsumerBenchError) -> ConsumerFigures {
        target.store(records, ordering: .relaxed)
        stopAt.store(wallMillis() + Int64(graceSeconds * 1000), ordering: .relaxed)
        thread?.join()
        if let e = error { throw ConsumerBenchError(e) }
        figures.liveBehind = max(0, records - figures.liveRecords)
        do {
            switch source {
            case .kafka(let k, let topics): figures.reads = try readBackKafka(k, topics)
            case .kinesis(let k, let streams): figures.reads = try readBackKinesis(k, streams)
            }
        } catch {
            throw ConsumerBenchError("reading back: \(error)")
        }
        return figures
    }

    var giveUp: Bool {
        let s = stopAt.load(ordering: .relaxed)
        return s > 0 && (figures.liveRecords >= target.load(ordering: .relaxed) || wallMillis() >= s)
    }

    func record(latencyMs: Double) {
        figures.liveRecords += 1
        _ = figures.live.record(UInt64(max(0, latencyMs * 1000)))
    }

    // MARK: Kafka

    func followKafka(_ k: KafkaOptions, _ topics: [String]) throws {
        let consumer = try KafkaConsumer(bootstrap: k.bootstrap, clientId: "pinbench-bench-consumer", security: k.security)
        consumer.maxWaitMs = 20
        var next: [PartitionOffset] = []
        // The flood creates the topics: wait for them (fresh topics: everything from offset 0 is the flood's).
        for t in topics {
            var parts: [Int32] = []
            while parts.isEmpty {
                if giveUp { return }
                do { parts = try consumer.partitions(t) } catch { sleepMs(50) }
            }
            next += parts.map { PartitionOffset(topic: t, partition: $0, offset: 0) }
        }
        while !giveUp {
            try consumer.fetchMany(&next) { _, _, rec in
                self.record(latencyMs: Double(wallMillis() - rec.timestamp))
            }
        }
    }

    func readBackKafka(_ k: KafkaOptions, _ topics: [String]) throws -> [PartitionRead] {
        let consumer = try KafkaConsumer(bootstrap: k.bootstrap, clientId: "pinbench-bench-consumer", security: k.security)
        consumer.maxWaitMs = 100
        var out: [PartitionRead] = []
        for t in topics {
            for p in try consumer.partitions(t) {
                let end = try consumer.offset(t, p, ListOffsetsMessage.latest)
                var at = try consumer.offset(t, p, ListOffsetsMessage.earliest)
                var records = 0, bytes = 0
                let t0 = monotonicNanos()
                while at < end {
                    let r = try consumer.fetch(t, p, from: at) { rec in
                        records += 1
                        bytes += rec.value?.count ?? 0
                    }
                    if r.next == at { break }  // nothing more comes (a gap at the end)
                    at = r.next
                }
                out.append(PartitionRead(name: "\(t)-\(p)", records: records, bytes: bytes, seconds: Double(monotonicNanos() - t0) / 1e9))
            }
        }
        return out
    }

    // MARK: Kinesis

    func followKinesis(_ k: KinesisOptions, _ streams: [String]) throws {
        let client = try KinesisClient(config: k.aws)
        var iterators: [String?] = []
        for s in streams {
            var shards: [String] = []
            while shards.isEmpty {
                if giveUp { return }
                do {
                    if try client.describeStreamSummary(s).status == "ACTIVE" { shards = try client.listShards(s) } else { sleepMs(100) }
                } catch { sleepMs(100) }
            }
            for sh in shards { iterators.append(try client.shardIterator(stream: s, shard: sh, from: .trimHorizon)) }
        }
        while !giveUp {
            var got = 0
            for i in iterators.indices {
                guard let it = iterators[i] else { continue }
                let page = try client.getRecords(iterator: it)
                let now = Double(wallMillis()) / 1000
                for r in page.records {
                    record(latencyMs: ((now - (r.arrivalTimestamp ?? now)) * 1000))
                }
                got += page.records.count
                iterators[i] = page.nextIterator
            }
            if got == 0 { sleepMs(20) }
        }
    }

    func readBackKinesis(_ k: KinesisOptions, _ streams: [String]) throws -> [PartitionRead] {
        let client = try KinesisClient(config: k.aws)
        var out: [PartitionRead] = []
        for s in streams {
            for sh in try client.listShards(s) {
                var it: String? = try client.shardIterator(stream: s, shard: sh, from: .trimHorizon)
                var records = 0, bytes = 0
                let t0 = monotonicNanos()
                while let i = it {
                    let page = try client.getRecords(iterator: i)
                    records += page.records.count
                    bytes += page.records.reduce(0) { $0 + $1.data.count }
                    it = page.nextIterator
                    if page.records.isEmpty && page.millisBehindLatest == 0 { break }
                }
                out.append(PartitionRead(name: "\(s)/\(sh)", records: records, bytes: bytes, seconds: Double(monotonicNanos() - t0) / 1e9))
            }
        }
        return out
    }
}
