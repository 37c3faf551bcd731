import AWSClient
import Codecs
import KafkaClient
import KafkaLog
import PinModel
import Platform
import RingBuffers

/// Where a stored record sits.
public enum SinkLocation {
    /// Topic-partition and the first record's offset: record `i` of the outcome is at `baseOffset + i`.
    case offsets(partition: Int32, baseOffset: Int64)
    /// A Kinesis record: its shard id and sequence number (the answer's bytes: copy what you keep; empty
    /// when the sink was not asked to report them). Every token of the outcome shares them (KPL aggregation).
    case shard(id: UnsafeRawBufferPointer, sequence: UnsafeRawBufferPointer)
}

/// Why records were not stored: a typed reason (what callers branch on), a message for people, and whether
/// it is fatal (no later record will fare better: disk full, a wrong stream, credentials; a flood stops).
public struct SinkFailure: Error, Sendable, CustomStringConvertible {
    public enum Reason: Sendable, Equatable {
        /// The embedded log's disk (or quota) is full.
        case diskFull
        /// Another write error of the embedded log, or it could not be opened.
        case logWrite
        /// A batch could not be encoded (a codec failed).
        case encode
        /// The Kafka client's error: the broker's code, or connect, timeout, protocol…
        case kafka(KafkaClientError.Kind)
        /// Kinesis's error code (or the one pinbench gave a record it never sent).
        case kinesis(KinesisErrorCode)
        /// The settings cannot work.
        case config
    }

    public var reason: Reason
    public var message: String
    public var isFatal: Bool

    public init(_ reason: Reason, _ message: String, isFatal: Bool) {
        self.reason = reason
        self.message = message
        self.isFatal = isFatal
    }

    /// The key reports count failed records under: Kafka's error name (`NOT_LEADER_OR_FOLLOWER`), Kinesis's
    /// code (`ResourceNotFoundException`), or the embedded log's (`DiskFull`, `LogWriteFailed`, `EncodeFailed`).
    public var code: String {
        switch reason {
        case .diskFull: "DiskFull"
        case .logWrite: "LogWriteFailed"
        case .encode: "EncodeFailed"
        case .kafka(let k): KafkaClientError(k, "").reason
        case .kinesis(let c): c.name
        case .config: "Config"
        }
    }

    public var description: String { message }

    /// Settings that cannot work: one line for the CLI, fatal.
    public static func config(_ message: String) -> SinkFailure { SinkFailure(.config, message, isFatal: true) }
}

/// How a run of records sent with `RecordSink.send` ended: all stored at one location, or all failed for
/// one reason. Views (`tokens`, the shard bytes) live only for the call.
public struct SinkOutcome {
    public enum Status {
        case stored(SinkLocation)
        case failed(SinkFailure)
    }

    public var kind: RecordKind
    /// The callers' tokens of these records, in the order they were sent.
    public var tokens: UnsafeBufferPointer<UInt64>
    /// Bytes of the records' values.
    public var payloadBytes: Int
    public var status: Status
    /// When the sink learned the outcome (`monotonicNanos`), where that is earlier than its delivery to
    /// `onOutcome` (a Kafka flood takes its delivery reports with its next chunk); 0: at delivery.
    public var doneNs: UInt64

    public init(kind: RecordKind, tokens: UnsafeBufferPointer<UInt64>, payloadBytes: Int, status: Status, doneNs: UInt64 = 0) {
        self.kind = kind
        self.tokens = tokens
        self.payloadBytes = payloadBytes
        self.status = status
        self.doneNs = doneNs
    }

    public var count: Int { tokens.count }
}

/// What a sink did, for reports: per topic-partition counts, the bytes it stored or sent, requests and retries.
public struct SinkReport: Sendable {
    public var partitions: [PartitionCount] = []
    /// Bytes written to the log or sent to the service (after compression): the stored side of the ratio.
    public var storedBytes = 0
    public var batches = 0
    public var requests = 0
    public var retries = 0
    public var retriesByCode: [String: Int] = [:]
    public var recoveries: [RecoveryReport] = []
    public init() {}
}

/// Records and batches of one topic-partition (or stream, partition -1) after a run.
public struct PartitionCount: Sendable, Equatable {
    public var topic: String
    public var partition: Int
    public var records: Int
    public var batches: Int
    /// The log's next offset (embedded log); -1 where the sink does not know it.
    public var nextOffset: Int64

    public init(topic: String, partition: Int, records: Int, batches: Int, nextOffset: Int64) {
        self.topic = topic
        self.partition = partition
        self.records = records
        self.batches = batches
        self.nextOffset = nextOffset
    }
}

/// Where records go: the embedded log, a Kafka cluster or Kinesis. One thread owns a sink (sends, polls
/// and closes it); every record sent ends in exactly one outcome, delivered to `onOutcome` on that thread
/// from `send`, `poll`, `flush` or `close`. `run`, `bench` and `serve` drive the same sinks.
public protocol RecordSink: AnyObject {
    /// Called for every outcome (set before the first send).
    var onOutcome: ((SinkOutcome) -> Void)? { get set }

    /// What a record's latency ends at, in words for reports ("append to the segment file", …).
    var latencyEndpoint: String { get }

    /// Where records go, one line for people ("embedded log in data (3 topics × 3 partitions, lz4)").
    var destination: String { get }

    /// Partitions of a kind's topic; nil where the backend has none to choose (Kinesis).
    func partitionCount(_ kind: RecordKind) -> Int?

    /// Sends one record (bytes are copied). `partition == nil` lets the sink choose: murmur2 of the key as
    /// Kafka's partitioner, a sticky partition for a null key. `timestamp` is the record's wall-clock
    /// CreateTime in ms (`wallMillis()`). May block while the sink's buffers are full (backpressure).
    func send(_ kind: RecordKind, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, partition: Int32?,
              timestamp: Int64, token: UInt64)

    /// Moves work along without waiting: seals batches whose linger passed, completes the I/O that is ready
    /// and delivers outcomes (`wait` is where an owner sleeps). An owner that knows its schedule says it sends
    /// no record before `ns` (monotonic; 0: unknown): a batch whose linger ends by then is sealed now, as it
    /// would be at its deadline with nothing more in it, since waiting would only add latency and a wake-up.
    func poll(noInputBeforeNs ns: UInt64)

    /// Sends everything buffered and waits until every record has its outcome.
    func flush()

    /// Flushes and releases the backend (files, connections). A failure to close is returned as a message.
    func close() -> String?

    /// Records sent whose outcome is still to come.
    var pending: Int { get }

    /// How long the owner may sleep before it must `poll` again (a linger deadline, a retry's backoff; at most
    /// 50 ms), ns. Outcomes that arrive from another thread or the network wake `wait` sooner.
    var idleWaitNs: Int { get }

    /// Sleeps until `ready()` holds (new input: the owner's own condition), `bell` (the one given to
    /// `makeSink`) rings, outcomes arrive, or `idleWaitNs` (at most `atMostNs`) passes; `poll()` then delivers
    /// them. An idle owner wakes only for work: no naps, no spinning.
    func wait(on bell: Doorbell, atMostNs: Int, until ready: () -> Bool)

    /// Counts for reports (after `close`).
    var report: SinkReport { get }
}

extension RecordSink {
    /// `poll` from an owner that does not know when its next record comes.
    public func poll() { poll(noInputBeforeNs: 0) }

    /// `wait(on:atMostNs:until:)` with no cap of the owner's: until the sink's own `idleWaitNs`.
    public func wait(on bell: Doorbell, until ready: () -> Bool) { wait(on: bell, atMostNs: .max, until: ready) }
}

/// The three backends, shared by `run`/`bench` (`RunConfig`) and `serve` (`IngestConfig`).
public enum Backend: Sendable {
    case embedded(LogOptions)
    case kafka(KafkaOptions)
    case kinesis(KinesisOptions)

    public var mode: RunMode {
        switch self {
        case .embedded: .embedded
        case .kafka: .kafka
        case .kinesis: .kinesis
        }
    }
}

/// Which backend a run used.
public enum RunMode: String, Sendable, CaseIterable {
    case embedded, kafka, kinesis
}

/// Settings every backend reads: names, partitions and batching. One set of defaults for every command.
public struct SinkSettings: Sendable {
    /// Topics `<prefix>.pin|geo|user` (Kafka, embedded log).
    public var topicPrefix: String
    /// Partitions per topic (embedded log; Kafka with `createTopics`).
    public var partitions: Int
    public var compression: CompressionCodec
    /// Codec level (nil: gzip 6, lz4 fast, zstd 3).
    public var compressionLevel: Int32?
    /// A partition's batch is sealed at this many bytes (librdkafka's `batch.size` default, 1,000,000).
    public var batchBytes: Int
    /// ... or when its first record has waited this long, ms (nil: 5 for the log and Kafka, 20 for Kinesis).
    public var lingerMs: Double?
    /// A flood's sink stages (threads that each own a share of the sink: the embedded log's topic-partitions
    /// `slot % S`, or Kinesis streams `kind % S`), fed by every generator; nil: the flood's default
    /// (`LogOptions.autoSinkStages`). Kafka has one (its producer has threads of its own).
    public var stages: Int?

    public init(topicPrefix: String = "pinbench", partitions: Int = 3, compression: CompressionCodec = .lz4,
                compressionLevel: Int32? = nil, batchBytes: Int = 1_000_000, lingerMs: Double? = nil) {
        self.topicPrefix = topicPrefix
        self.partitions = partitions
        self.compression = compression
        self.compressionLevel = compressionLevel
        self.batchBytes = batchBytes
        self.lingerMs = lingerMs
    }

    public static let defaultLingerMs = 5.0
    public static let defaultKinesisLingerMs = 20.0

    public func validate() throws(SinkFailure) {
        if partitions < 1 || partitions > 10_000 { throw SinkFailure.config("--partitions must be in 1...10000") }
        if batchBytes < 1024 || batchBytes > 256 << 20 { throw SinkFailure.config("--batch-bytes must be in 1 KiB ... 256 MiB") }
        if let l = lingerMs, !(l >= 0 && l <= 3_600_000) { throw SinkFailure.config("--linger-ms must be in 0 ... 3600000 (an hour)") }
        if let n = stages, n < 1 || n > 256 { throw SinkFailure.config("--sink-stages must be auto or 1...256") }
        if topicPrefix.isEmpty || topicPrefix.contains("/") || topicPrefix.contains("-") {
            throw SinkFailure.config("--topic-prefix must be non-empty without '/' or '-'")
        }
    }
}

/// The embedded log's own settings.
public struct LogOptions: Sendable {
    public var dataDir: String
    public var fsync: FsyncPolicy
    /// Segments roll at this size (Kafka's default, 1 GiB).
    public var segmentBytes: Int
    /// A flood adds to a log made with other partitions or compression (refused without it).
    public var append: Bool
    /// Threads that seal (compress, CRC) and append batches, each owning some topic-partitions; 0: the
    /// owning thread does it; nil: `autoSealThreads` for a flood, 0 behind the ingest API (a worker's extra
    /// hop per request cost single-record posts about 7% of their rate; 500-record posts were the same).
    public var sealThreads: Int?
    public init(dataDir: String = "data", fsync: FsyncPolicy = .never, segmentBytes: Int = 1 << 30, append: Bool = false,
                sealThreads: Int? = nil) {
        self.dataDir = dataDir
        self.fsync = fsync
        self.segmentBytes = segmentBytes
        self.append = append
        self.sealThreads = sealThreads
    }

    /// Half the CPUs this process may use (at least one): the generators and the sink stage take the rest.
    public static var autoSealThreads: Int { max(1, usableCPUs() / 2) }

    /// One sink stage per 8 usable CPUs (at least one): a stage partitions and batches about 9 M records/s
    /// on one core (0.11 CPU s per million, measured on 2 cores with its seal workers apart), so more
    /// stages only pay where generators and seal workers have the cores to outrun one.
    public static var autoSinkStages: Int { max(1, usableCPUs() / 8) }
}

/// Kafka `acks`.
public enum Acks: String, Sendable, CaseIterable {
    case all, leader = "1", none = "0"
    /// The wire value (-1, 1, 0).
    public var value: Int16 {
        switch self {
        case .all: -1
        case .leader: 1
        case .none: 0
        }
    }
}

/// A Kafka cluster's settings beyond the shared ones (defaults as the Java client and librdkafka).
public struct KafkaOptions: Sendable {
    public var bootstrap: [BrokerAddress]
    public var acks: Acks
    public var idempotence: Bool
    /// Create the three topics with `SinkSettings.partitions` first (existing topics are kept).
    public var createTopics: Bool
    public var requestTimeoutMs: Int32
    /// A record not acknowledged by then is reported failed.
    public var deliveryTimeoutMs: Int
    /// `security.protocol`, TLS and SASL (default PLAINTEXT).
    public var security: ConnectionSecurity = .plaintext
    /// `--kafka-config` / `-X` producer settings: applied after the flags above (a property given wins).
    public var properties = KafkaClientProperties()
    /// Threads that compress batches before the sender (nil: the producer's default; 0: the sender does).
    public var compressionThreads: Int?
    /// The sink's owning thread compresses each batch as it seals it (`ProducerConfiguration.compressOnSeal`).
    public var compressOnSeal = false
    /// An I/O thread per broker connection (nil: the producer's default; false: the sender does its own I/O).
    public var ioThreads: Bool?
    /// A sender thread (nil: yes, unless a flood decides otherwise: `RunConfig.senderThread`; false: the
    /// sink's owning thread does the sender's work too, `ProducerConfiguration.inlineSender`).
    public var senderThread: Bool?

    /// The defaults, for tools that show them before any broker is known.
    public static let defaults = KafkaOptions(bootstrap: [])

    public init(bootstrap: [BrokerAddress], acks: Acks = .all, idempotence: Bool = true, createTopics: Bool = false,
                requestTimeoutMs: Int32 = 30_000, deliveryTimeoutMs: Int = 120_000) {
        self.bootstrap = bootstrap
        self.acks = acks
        self.idempotence = idempotence
        self.createTopics = createTopics
        self.requestTimeoutMs = requestTimeoutMs
        self.deliveryTimeoutMs = deliveryTimeoutMs
    }

    /// The producer configuration these settings and the shared ones make.
    public func producerConfiguration(_ s: SinkSettings) throws(SinkFailure) -> ProducerConfiguration {
        var pc = ProducerConfiguration(bootstrap: bootstrap)
        pc.acks = acks.value
        pc.idempotence = idempotence
        pc.compression = s.compression
        pc.compressionLevel = s.compressionLevel
        pc.batchBytes = s.batchBytes
        pc.lingerMs = s.lingerMs ?? SinkSettings.defaultLingerMs
        pc.requestTimeoutMs = requestTimeoutMs
        pc.deliveryTimeoutMs = deliveryTimeoutMs
        pc.security = security
        pc.compressionThreads = compressionThreads
        pc.compressOnSeal = compressOnSeal
        pc.ioThreads = ioThreads
        pc.inlineSender = senderThread == false
        do {
            try properties.apply(to: &pc)
            try pc.validate()
        } catch { throw SinkFailure.config(error.message) }
        return pc
    }
}

/// How Kinesis partition keys are chosen.
public enum PartitionKeyMode: String, Sendable, CaseIterable {
    /// The key the caller gave (a post's index in a flood): a post's three records share a key.
    case index
    /// A random 128-bit hex key per record.
    case random
    /// One key for everything (one shard takes it all).
    case fixed
}

/// Kinesis streams `streaming-<prefix>-pin|geo|user`. Credentials live in `aws` and never in reports.
public struct KinesisOptions: Sendable {
    public var aws: AWSConfig
    public var streamPrefix: String
    public var createStreams: Bool
    public var shards: Int
    public var aggregate: Bool
    public var partitionKey: PartitionKeyMode
    public var fixedKey = "pinbench"
    /// Hold each stream to 1,000 records/s and 1 MiB/s per shard.
    public var shape: Bool
    /// Keep per-key order: one PutRecords call per stream in flight, failed entries first.
    public var ordered: Bool
    public var inFlight: Int
    public var requestTimeoutMs: Int
    public var deliveryTimeoutMs: Int

    public static let defaultStreamPrefix = "pinbench"
    public static let defaultShards = 2
    public static let defaultInFlight = 16

    public init(aws: AWSConfig, streamPrefix: String = defaultStreamPrefix, createStreams: Bool = false, shards: Int = defaultShards, aggregate: Bool = false,
                partitionKey: PartitionKeyMode = .index, shape: Bool = false, ordered: Bool = false, inFlight: Int = defaultInFlight,
                requestTimeoutMs: Int = 30_000, deliveryTimeoutMs: Int = 120_000) {
        self.aws = aws
        self.streamPrefix = streamPrefix
        self.createStreams = createStreams
        self.shards = shards
        self.aggregate = aggregate
        self.partitionKey = partitionKey
        self.shape = shape
        self.ordered = ordered
        self.inFlight = inFlight
        self.requestTimeoutMs = requestTimeoutMs
        self.deliveryTimeoutMs = deliveryTimeoutMs
    }

    public func stream(_ kind: RecordKind) -> String { kind.stream(prefix: streamPrefix) }

    public func validate() throws(SinkFailure) {
        if shards < 1 || shards > 10_000 { throw SinkFailure.config("--shards must be in 1...10000") }
        if inFlight < 1 || inFlight > 256 { throw SinkFailure.config("--in-flight must be in 1...256") }
        if streamPrefix.isEmpty || streamPrefix.contains("/") { throw SinkFailure.config("--stream-prefix must be non-empty without '/'") }
    }
}

/// What a sink is for: a flood measures throughput; the ingest API answers each record with where it went.
public enum SinkRole: Sendable {
    case flood
    case ingest
}

extension Backend {
    /// How many sink stages (or writer shards) share this backend: `settings.stages` when given, else `auto`;
    /// never more than what can be shared out (the embedded log's topic-partitions, Kinesis's streams), and
    /// one for Kafka, whose producer has threads of its own.
    public func sinkStages(_ settings: SinkSettings, auto: Int) -> Int {
        let shares: Int
        switch self {
        case .embedded: shares = RecordKind.allCases.count * max(1, settings.partitions)
        case .kinesis: shares = RecordKind.allCases.count
        case .kafka: return 1
        }
        return max(1, min(shares, settings.stages ?? auto))
    }

    /// One sink per bell: for the embedded log with more than one bell, shards that own the topic-partitions
    /// `slot % bells.count` (`EmbeddedLogSink.shards`, one lock on the log for all of them); for Kinesis, sinks
    /// that own the streams `kind % bells.count` (`KinesisSink.stage`); one bell is one sink (`makeSink`).
    public func makeSinks(_ settings: SinkSettings, role: SinkRole, bells: [Doorbell]) throws(SinkFailure) -> [any RecordSink] {
        guard bells.count > 1 else { return [try makeSink(settings, role: role, bell: bells.first ?? Doorbell())] }
        try settings.validate()
        switch self {
        case .embedded(let o): return try EmbeddedLogSink.shards(settings: settings, options: o, role: role, bells: bells)
        case .kinesis(let o):
            var sinks: [any RecordSink] = []
            for (s, bell) in bells.enumerated() {
                let kinds = RecordKind.allCases.filter { KinesisSink.stage(of: $0, stages: bells.count) == s }
                sinks.append(try KinesisSink(settings: settings, options: o, role: role, bell: bell, kinds: kinds))
            }
            return sinks
        case .kafka: throw SinkFailure.config("--sink-stages applies to the embedded log and Kinesis; the Kafka producer has --compression-threads")
        }
    }

    /// Opens the backend: the embedded log's partitions (recovering torn tails), the Kafka producer (and
    /// topics), or the Kinesis streams (created or described). `bell` is what the owner sleeps on when idle
    /// (`RecordSink.wait`): the sink makes its own events ring it (Kafka's delivery reports) or makes its
    /// ringers wake the sink's own poll (Kinesis's curl); one bell per sink, rung by the owner's producers too.
    public func makeSink(_ settings: SinkSettings, role: SinkRole, bell: Doorbell = Doorbell()) throws(SinkFailure) -> any RecordSink {
        try settings.validate()
        switch self {
        case .embedded(let o): return try EmbeddedLogSink(settings: settings, options: o, role: role, bell: bell)
        case .kafka(let o): return try KafkaSink(settings: settings, options: o, role: role, bell: bell)
        case .kinesis(let o): return try KinesisSink(settings: settings, options: o, role: role, bell: bell)
        }
    }
}
