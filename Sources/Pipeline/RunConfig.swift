import JSON
import KafkaClient
import PinModel
import Sinks
import Codecs
import KafkaLog
import AWSClient
import AWSAuth

/// Settings of one flood: the generators' side (how many posts, how fast, how many threads) and the sink's
/// (`sink`: names, partitions, batching; `backend`: where the records go). Defaults follow librdkafka where a
/// Kafka client has the same knob (batch 1,000,000 bytes, linger 5 ms) and Kafka's broker for segments (1 GiB).
public struct RunConfig: Sendable {
    /// Posts to send (each post is three records: pin, geo, user). Nil with `duration` for a timed run.
    public var count: Int?
    /// Seconds to run when `count` is nil.
    public var duration: Double?
    /// Seconds at the start whose records are measured apart (warm-up): their latencies go to a separate
    /// histogram and throughput figures are taken after it. Part of `duration`.
    public var warmup: Double = 0
    /// Posts per second, open loop (nil: as fast as the sink takes them).
    public var rate: Double?
    public var users: Int = 11_000
    public var seed: UInt64 = 1
    /// Generator threads (the sink stage has its own).
    public var threads: Int = 1
    public var pinCPUs: Bool = false
    /// Stop (cleanly: the report written, the log consistent) once this many payload bytes were generated.
    /// The embedded log also stops before its disk would fill, whatever this says.
    public var maxBytes: Int?
    /// One worker of a fleet: this process floods post indexes `i` with `i % count == index` (`count`
    /// and `rate` are then this worker's share), so N workers with one seed write exactly what one process
    /// would.
    public var worker: WorkerSlice?
    /// With `worker`: the fleet's `--count` (this worker's is its share).
    public var fleetCount: Int?
    /// `--hlog FILE`: the latency histogram of every second as an HdrHistogram interval log.
    public var hlogPath: String?
    /// Publish latency buckets to `LiveStats.latencySnapshot` once a second (for `--metrics-listen`).
    public var publishLatency = false
    /// Posts per chunk handed between stages.
    public var chunkPosts: Int = 256
    /// Chunks in flight per generator (ring capacity).
    public var chunksPerGenerator: Int = 8
    public var style: JSONStyle = .compact
    /// Names, partitions, compression and batching, shared by every backend.
    public var sink = SinkSettings()
    /// Where the records go: the embedded log (default), a Kafka cluster or Kinesis.
    public var backend: Backend = .embedded(LogOptions())

    public init() {}

    public var mode: RunMode { backend.mode }

    public func topic(_ kind: RecordKind) -> String { kind.topic(prefix: sink.topicPrefix) }

    /// Checks the settings; the message is one line for the CLI.
    public func validate() throws(ConfigError) {
        if count == nil && duration == nil { throw ConfigError("give --count or --duration") }
        if let c = count, c < 0 { throw ConfigError("--count must be ≥ 0") }
        if let d = duration, !(d > 0) { throw ConfigError("--duration must be > 0") }
        if let r = rate, !(r > 0) { throw ConfigError("--rate must be > 0") }
        if !(warmup >= 0) { throw ConfigError("--warmup must be ≥ 0") }
        if let d = duration, warmup >= d { throw ConfigError("--warmup must be shorter than the run") }
        if users < 1 { throw ConfigError("--users must be ≥ 1") }
        if let m = maxBytes, m < 1 { throw ConfigError("--max-bytes must be ≥ 1") }
        if threads < 1 || threads > 256 { throw ConfigError("--threads must be in 1...256") }
        do throws(SinkFailure) {
            try sink.validate()
            switch backend {
            case .embedded(let o): if o.segmentBytes < 1024 { throw SinkFailure.config("--segment-bytes must be ≥ 1024") }
            case .kafka(let o): _ = try o.producerConfiguration(sink)
            case .kinesis(let o): try o.validate()
            }
        } catch { throw ConfigError(error.message) }
    }

    /// The embedded log's seal threads for this flood: as given, else none under a `--rate` the sink stage
    /// seals alone with room to spare (up to 100,000 posts/s: a worker's hand-offs cost a paced flood about
    /// 13% more CPU), else `LogOptions.autoSealThreads`.
    public func sealThreads(_ o: LogOptions) -> Int {
        if let n = o.sealThreads { return n }
        if isModestlyPaced { return 0 }
        return LogOptions.autoSealThreads
    }

    /// The sink stages of this flood (`Backend.sinkStages`): as given, else one under a modest `--rate`, else
    /// `LogOptions.autoSinkStages`; never more than the backend can share out (Kafka: one).
    public var sinkStages: Int {
        backend.sinkStages(sink, auto: isModestlyPaced ? 1 : LogOptions.autoSinkStages)
    }

    /// The Kafka producer's compression threads for this flood: as given, else none under a `--rate` one
    /// thread compresses with room to spare (the same bound as `sealThreads`: the hand-offs cost a paced flood
    /// CPU it does not need; the sink stage compresses, `compressOnSeal`), else nil (the producer's default).
    public func compressionThreads(_ o: KafkaOptions) -> Int? {
        if let n = o.compressionThreads { return n }
        return isModestlyPaced ? 0 : nil
    }

    /// Whether the Kafka producer's owner (the sink stage) compresses each batch as it seals it: under a modest
    /// `--rate` with the compression threads left to pinbench (the batch is compressed on the core that just
    /// filled it, with no uncompressed copy and no other core reading it).
    public func compressOnSeal(_ o: KafkaOptions) -> Bool { o.compressionThreads == nil && isModestlyPaced }

    /// The Kafka producer's I/O threads for this flood: as given, else none under a modest `--rate` (the sender
    /// reads and writes its sockets itself: a hand-off per request costs a paced flood CPU it does not need),
    /// else nil (the producer's default: one per broker when more than one CPU is usable).
    public func ioThreads(_ o: KafkaOptions) -> Bool? {
        if let b = o.ioThreads { return b }
        return isModestlyPaced ? false : nil
    }

    /// Whether the Kafka producer has a sender thread: as given, else none under a modest `--rate` with neither
    /// compression nor I/O threads asked for (the sink stage does the sender's work itself, `inlineSender`). Each tick's batches then go
    /// out from the thread that sealed them, which sleeps on the brokers' sockets between ticks: one thread
    /// woken per tick and per answer, where a sender thread was woken for each hand-over as well.
    public func senderThread(_ o: KafkaOptions) -> Bool? {
        if let b = o.senderThread { return b }
        return isModestlyPaced && o.compressionThreads == nil && o.ioThreads != true ? false : nil
    }

    /// A `--rate` of at most 100,000 posts/s: one thread seals and compresses it with room to spare, so
    /// hand-offs to helper threads only add CPU.
    public var isModestlyPaced: Bool {
        guard let r = rate else { return false }
        return r <= 100_000
    }

    /// Whether the one sink stage makes the posts itself (`Flood.inline`): one generator (auto under a modest
    /// `--rate`, or `--threads 1`), one sink stage, and a modest `--rate`, which one thread makes and sinks with
    /// room to spare; a thread more only adds a wake-up and a hand-off per tick.
    public func generatesInSinkStage(stages: Int) -> Bool { isModestlyPaced && threads == 1 && stages == 1 }

    public var summary: JSONValue {
        var fields: [(String, JSONValue)] = [
            ("mode", .string(mode.rawValue)),
            ("count", count.map { .int($0) } ?? .null),
            ("duration_s", duration.map { .double($0) } ?? .null),
            ("rate", rate.map { .double($0) } ?? .null),
            ("warmup_s", .double(warmup)),
            ("users", .int(users)),
            ("seed", .int(Int(truncatingIfNeeded: seed))),
            ("threads", .int(threads)),
            ("pin_cpus", .bool(pinCPUs)),
            ("chunk_posts", .int(chunkPosts)),
            ("max_bytes", maxBytes.map { .int($0) } ?? .null),
            ("worker", worker.map { .string("\($0.index)/\($0.count)") } ?? .null),
            ("fleet_count", fleetCount.map { .int($0) } ?? .null),
            ("sink_stages", .int(sinkStages)),
            ("generator_in_sink_stage", .bool(generatesInSinkStage(stages: sinkStages))),
        ]
        switch backend {
        case .embedded(let o):
            fields += [
                ("data_dir", .string(o.dataDir)), ("topic_prefix", .string(sink.topicPrefix)), ("partitions", .int(sink.partitions)),
                ("compression", .string(sink.compression.description)),
                ("compression_level", .int(Int(sink.compressionLevel ?? sink.compression.defaultLevel))),
                ("batch_bytes", .int(sink.batchBytes)), ("linger_ms", .double(sink.lingerMs ?? SinkSettings.defaultLingerMs)),
                ("fsync", .string(o.fsync.rawValue)), ("segment_bytes", .int(o.segmentBytes)),
                ("sink_threads", .int(min(RecordKind.allCases.count * sink.partitions, sealThreads(o)))),
            ]
        case .kafka(let o):
            // The producer threads this flood gets, as the producer decides them from its configuration.
            var pc = ProducerConfiguration(bootstrap: o.bootstrap)
            pc.compression = sink.compression
            pc.compressionThreads = compressionThreads(o)
            pc.compressOnSeal = compressOnSeal(o)
            pc.ioThreads = ioThreads(o)
            pc.inlineSender = senderThread(o) == false
            fields += [
                ("kafka", .string(o.bootstrap.map { "\($0.host):\($0.port)" }.joined(separator: ","))),
                ("topic_prefix", .string(sink.topicPrefix)), ("partitions", .int(sink.partitions)),
                ("compression", .string(sink.compression.description)),
                ("compression_level", .int(Int(sink.compressionLevel ?? sink.compression.defaultLevel))),
                ("batch_bytes", .int(sink.batchBytes)), ("linger_ms", .double(sink.lingerMs ?? SinkSettings.defaultLingerMs)),
                ("acks", .string(o.acks.rawValue)), ("idempotence", .bool(o.idempotence)), ("create_topics", .bool(o.createTopics)),
                ("compression_threads", .int(pc.effectiveCompressionThreads)),
                ("compress_on_seal", .bool(pc.compressesOnSeal)),
                ("io_threads", .bool(pc.effectiveIOThreads)),
                ("sender_thread", .bool(!pc.inlineSender)),
                ("request_timeout_ms", .int(Int(o.requestTimeoutMs))), ("delivery_timeout_ms", .int(o.deliveryTimeoutMs)),
            ]
        case .kinesis(let o):
            fields += [
                ("kinesis", .object([
                    ("endpoint", .string(o.aws.endpoint ?? "aws")), ("region", .string(o.aws.region)),
                    ("credentials", .string(o.aws.credentials.description)),
                    ("stream_prefix", .string(o.streamPrefix)), ("create_streams", .bool(o.createStreams)), ("shards", .int(o.shards)),
                    ("aggregate", .bool(o.aggregate)), ("partition_key", .string(o.partitionKey.rawValue)), ("shape", .bool(o.shape)),
                    ("ordered", .bool(o.ordered)), ("in_flight", .int(o.inFlight)),
                    ("linger_ms", .double(sink.lingerMs ?? SinkSettings.defaultKinesisLingerMs)),
                ])),
            ]
        }
        return .object(fields)
    }
}

public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var message: String
    /// The settings themselves cannot work (a usage error, exit 64), as opposed to a backend that failed.
    public var isUsage: Bool
    public init(_ message: String, isUsage: Bool = true) {
        self.message = message
        self.isUsage = isUsage
    }
    public var description: String { message }
}

/// Worker `index` of `count` (0-based): a deterministic, disjoint slice of the post indexes.
public struct WorkerSlice: Sendable, Equatable {
    public let index: Int
    public let count: Int

    /// nil unless 0 ≤ index < count.
    public init?(index: Int, count: Int) {
        guard count >= 1, index >= 0, index < count else { return nil }
        self.index = index
        self.count = count
    }

    /// "I/N".
    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else { return nil }
        self.init(index: i, count: n)
    }

    /// The fleet-wide post index of this worker's `local`-th post.
    @inlinable public func global(_ local: Int) -> Int { local &* count &+ index }

    /// The worker index a Kubernetes Indexed Job gives each pod (`JOB_COMPLETION_INDEX`), or nil.
    public static func jobIndex(_ environment: [String: String]) -> Int? { environment["JOB_COMPLETION_INDEX"].flatMap { Int($0) } }

    /// This worker's posts of a fleet-wide `total`.
    public func share(of total: Int) -> Int { total > index ? (total - index + count - 1) / count : 0 }
}
