import AWSClient
import Codecs
import KafkaLog
import PinModel
import JSON

/// Settings of one flood into the embedded log. Defaults follow librdkafka where a Kafka client has the
/// same knob (batch 1,000,000 bytes, linger 5 ms) and Kafka's broker for segments (1 GiB).
public struct RunConfig: Sendable {
    /// Posts to send (each post is three records: pin, geo, user). Nil with `duration` for a timed run.
    public var count: Int?
    /// Seconds to run when `count` is nil.
    public var duration: Double?
    /// Seconds at the start whose records are measured apart (warm-up): their latencies go to a separate
    /// histogram and throughput figures are taken after it. Part of `duration`.
    public var warmup: Double = 0
    /// Posts per second, open loop (nil: as fast as the pipeline takes them).
    public var rate: Double?
    public var users: Int = 11_000
    public var seed: UInt64 = 1
    public var dataDir: String = "data"
    public var topicPrefix: String = "pinbench"
    public var partitions: Int = 3
    public var compression: CompressionCodec = .lz4
    public var compressionLevel: Int32? = nil
    /// A partition's batch is sealed when it reaches this many bytes (uncompressed).
    public var batchBytes: Int = 1_000_000
    /// ... or when its first record has waited this long.
    public var lingerMs: Double = 5
    /// Generator threads (the log stage has its own thread).
    public var threads: Int = 1
    public var fsync: FsyncPolicy = .never
    public var segmentBytes: Int = 1 << 30
    public var pinCPUs: Bool = false
    /// Posts per chunk handed between stages.
    public var chunkPosts: Int = 256
    /// Chunks in flight per generator (ring capacity).
    public var chunksPerGenerator: Int = 8
    public var style: JSONStyle = .compact
    /// Kafka bootstrap brokers ("host:port,..."): nil floods the embedded log instead.
    public var kafka: String? = nil
    /// Kafka `acks`: -1 (all), 1 or 0.
    public var acks: Int16 = -1
    public var idempotence: Bool = true
    /// Create the three topics (with `partitions`) before flooding; existing topics are kept.
    public var createTopics: Bool = false
    public var requestTimeoutMs: Int32 = 30_000
    public var deliveryTimeoutMs: Int = 120_000
    /// Flood Kinesis streams `streaming-<prefix>-pin|geo|user` instead (nil: embedded log or Kafka).
    public var kinesis: KinesisSettings? = nil

    public init() {}

    public func topic(_ kind: RecordKind) -> String { kind.topic(prefix: topicPrefix) }

    /// Checks the settings; the message is one line for the CLI.
    public func validate() throws(ConfigError) {
        if count == nil && duration == nil { throw ConfigError("give --count or --duration") }
        if let c = count, c < 0 { throw ConfigError("--count must be ≥ 0") }
        if let d = duration, !(d > 0) { throw ConfigError("--duration must be > 0") }
        if let r = rate, !(r > 0) { throw ConfigError("--rate must be > 0") }
        if warmup < 0 { throw ConfigError("--warmup must be ≥ 0") }
        if let d = duration, warmup >= d { throw ConfigError("--warmup must be shorter than the run") }
        if users < 1 { throw ConfigError("--users must be ≥ 1") }
        if partitions < 1 || partitions > 10_000 { throw ConfigError("--partitions must be in 1...10000") }
        if batchBytes < 1024 || batchBytes > 256 << 20 { throw ConfigError("--batch-bytes must be in 1 KiB ... 256 MiB") }
        if lingerMs < 0 { throw ConfigError("--linger-ms must be ≥ 0") }
        if threads < 1 || threads > 256 { throw ConfigError("--threads must be in 1...256") }
        if segmentBytes < 1024 { throw ConfigError("--segment-bytes must be ≥ 1024") }
        if topicPrefix.isEmpty || topicPrefix.contains("/") || topicPrefix.contains("-") {
            throw ConfigError("--topic-prefix must be non-empty without '/' or '-'")
        }
    }

    public var summary: JSONValue {
        .object([
            ("count", count.map { .int($0) } ?? .null),
            ("duration_s", duration.map { .double($0) } ?? .null),
            ("rate", rate.map { .double($0) } ?? .null),
            ("warmup_s", .double(warmup)),
            ("users", .int(users)),
            ("seed", .int(Int(truncatingIfNeeded: seed))),
            ("data_dir", .string(dataDir)),
            ("topic_prefix", .string(topicPrefix)),
            ("partitions", .int(partitions)),
            ("compression", .string(compression.description)),
            ("compression_level", .int(Int(compressionLevel ?? compression.defaultLevel))),
            ("batch_bytes", .int(batchBytes)),
            ("linger_ms", .double(lingerMs)),
            ("threads", .int(threads)),
            ("fsync", .string(fsync.rawValue)),
            ("segment_bytes", .int(segmentBytes)),
            ("pin_cpus", .bool(pinCPUs)),
            ("chunk_posts", .int(chunkPosts)),
            ("kafka", kafka.map { .string($0) } ?? .null),
            ("acks", .string(acks == -1 ? "all" : String(acks))),
            ("idempotence", .bool(idempotence)),
            ("create_topics", .bool(createTopics)),
            ("kinesis", kinesis?.summary ?? .null),
        ])
    }
}

public enum PartitionKeyMode: String, Sendable, CaseIterable {
    /// The post's index (the original client's choice): a post's three records share a key.
    case index
    /// A random 128-bit hex key per record.
    case random
    /// One key for everything (one shard takes it all).
    case fixed
}

/// Where and how `run --kinesis` floods Kinesis. Credentials live in `aws` and never in reports.
public struct KinesisSettings: Sendable {
    public var aws: AWSConfig
    public var streamPrefix = "pinbench"
    public var createStreams = false
    public var shards = 2
    public var aggregate = false
    public var partitionKey: PartitionKeyMode = .index
    public var fixedKey = "pinbench"
    public var shape = false
    public var ordered = false
    public var inFlight = 16
    public var lingerMs = 20.0

    public init(aws: AWSConfig) { self.aws = aws }

    public func stream(_ kind: RecordKind) -> String { kind.stream(prefix: streamPrefix) }

    public var summary: JSONValue {
        .object([
            ("endpoint", .string(aws.endpoint ?? "aws")), ("region", .string(aws.region)),
            ("credentials", .string(aws.credentials.description)),
            ("stream_prefix", .string(streamPrefix)), ("create_streams", .bool(createStreams)), ("shards", .int(shards)),
            ("aggregate", .bool(aggregate)), ("partition_key", .string(partitionKey.rawValue)), ("shape", .bool(shape)),
            ("ordered", .bool(ordered)), ("in_flight", .int(inFlight)), ("linger_ms", .double(lingerMs)),
        ])
    }
}

public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
