import AWSAuth
import AWSClient
import BatchJob
import ArgumentParser
import Codecs
import Foundation
import IngestServer
import JSON
import KafkaClient
import KafkaLog
import Pipeline
import Platform
import Sinks

// Shared option groups: every command that floods, serves or produces reads the same flags with the same
// defaults (`SinkSettings`, `LogOptions`, `KafkaOptions`, `KinesisOptions` document them).

extension CompressionCodec: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.description) }
    public var defaultValueDescription: String { description }
}

/// A Parquet page codec (`clean`, `batch`): every codec but lz4, which pinbench does not write to Parquet.
struct ParquetCodec: ExpressibleByArgument {
    var codec: CompressionCodec
    init(_ c: CompressionCodec) { codec = c }
    init?(argument: String) {
        guard let c = CompressionCodec(name: argument), c != .lz4 else { return nil }
        codec = c
    }
    static var allValueStrings: [String] { CompressionCodec.allCases.filter { $0 != .lz4 }.map(\.description) }
    var defaultValueDescription: String { codec.description }
}

extension FsyncPolicy: ExpressibleByArgument {}
extension JSONStyle: ExpressibleByArgument {}
extension PartitionKeyMode: ExpressibleByArgument {}
extension AnalysisScope: ExpressibleByArgument {}
extension Acks: ExpressibleByArgument {
    public init?(argument: String) { self.init(rawValue: argument == "-1" ? "all" : argument) }
}

/// `30s`, `2m`, `500ms`, `1h`, or a bare number of seconds: the one rule for every duration option
/// (options named `-ms` take milliseconds).
struct Seconds: ExpressibleByArgument {
    var value: Double
    init(_ v: Double) { value = v }
    init?(argument: String) {
        guard let v = parseSeconds(argument), v.isFinite else { return nil }
        value = v
    }
    var defaultValueDescription: String { value == value.rounded() ? "\(Int(value))s" : "\(value)s" }
}

/// `16384`, `16k`, `256k`, `1m`, `1g` (binary multiples).
struct ByteSize: ExpressibleByArgument {
    var bytes: Int
    init(_ b: Int) { bytes = b }
    init?(argument: String) {
        guard let b = parseByteSize(argument) else { return nil }
        bytes = b
    }
    var defaultValueDescription: String { formatByteSize(bytes) }
}

/// A thread count: `auto` (chosen from the CPUs this process may use) or a number.
enum ThreadCount: ExpressibleByArgument, Equatable {
    case auto
    case fixed(Int)

    init?(argument: String) {
        if argument == "auto" { self = .auto } else if let n = Int(argument), n >= 0 { self = .fixed(n) } else { return nil }
    }

    var count: Int? {
        if case .fixed(let n) = self { return n }
        return nil
    }

    /// As a generator count for `c` (its `--rate` set): auto is one under a modest `--rate` (the sink stage
    /// then makes the posts itself: `RunConfig.generatesInSinkStage`), else the usable CPUs less the sink
    /// stage's one.
    func generators(for c: RunConfig) -> Int { count ?? (c.isModestlyPaced ? 1 : max(1, usableCPUs() - 1)) }

    var defaultValueDescription: String {
        switch self {
        case .auto: "auto"
        case .fixed(let n): String(n)
        }
    }
}

/// auto, true or false: a setting whose default is chosen from the machine or the run.
enum AutoBool: String, ExpressibleByArgument, CaseIterable {
    case auto
    case on = "true"
    case off = "false"

    var value: Bool? {
        switch self {
        case .auto: nil
        case .on: true
        case .off: false
        }
    }
}

/// What the generators do: how many posts, how fast, from how many threads.
struct FloodOptions: ParsableArguments {
    @Option(help: "Posts to send (3 records each). Give this or --duration.") var count: Int?
    @Option(help: "How long to run, e.g. 30s, 2m. Give this or --count.") var duration: Seconds?
    @Option(help: "Posts per second, open loop (default: unbounded).") var rate: Double?
    @Option(help: "Distinct users.") var users: Int = 11_000
    @Option(help: "Random seed; the same seed gives the same posts.") var seed: UInt64 = 1
    @Option(help: "Generator threads: auto (the usable CPUs - 1; one under a --rate of at most 100,000 posts/s) or N (the sink stage has its own thread; with one generator, one sink stage and such a rate, the stage makes the posts itself).") var threads: ThreadCount = .auto
    @Flag(help: "Pin stage threads to CPUs (libnuma keeps memory local where present).") var pinCpus = false
    @Option(help: "Stop cleanly after this much payload, e.g. 2g (the embedded log also stops before its disk fills).") var maxBytes: ByteSize?
    @OptionGroup var fleet: FleetOptions

    func validate() throws {
        if count == nil && duration == nil { throw ValidationError("give --count N or --duration D (e.g. --duration 20s): an unbounded flood fills the disk") }
        if let c = count, c < 0 { throw ValidationError("--count must be ≥ 0") }
        if let d = duration, !(d.value > 0) { throw ValidationError("--duration must be > 0 (got \(d.value) s)") }
        if let r = rate, !(r > 0) { throw ValidationError("--rate must be > 0") }
        if users < 1 { throw ValidationError("--users must be ≥ 1") }
        if let t = threads.count, t < 1 || t > 256 { throw ValidationError("--threads must be auto or 1...256") }
    }

    func apply(to c: inout RunConfig) {
        c.count = count
        c.duration = duration?.value
        c.maxBytes = maxBytes?.bytes
        c.rate = rate
        c.users = users
        c.seed = seed
        c.threads = threads.generators(for: c)
        c.pinCPUs = pinCpus
        fleet.apply(to: &c)
    }
}

/// A fleet's worker (`--worker I/N`, or `--workers N` with JOB_COMPLETION_INDEX), its common start, its
/// HdrHistogram log and live metrics: what `run` and `bench` take alike.
struct FleetOptions: ParsableArguments {
    @Option(help: "Be worker I of N (0-based) of a fleet: flood posts i with i % N == I, at --rate / N; --count is the fleet's total.") var worker: String?
    @Option(help: "Fleet size with JOB_COMPLETION_INDEX as this worker's index (a Kubernetes Indexed Job).") var workers: Int?
    @Option(help: "Start at this wall-clock time (Unix seconds, or ISO 8601 with Z or an offset), so every worker starts together.") var startAt: String?
    @Option(help: "Write the latency of every second as an HdrHistogram interval log (format 1.3) to this file.") var hlog: String?
    @Option(help: "Serve Prometheus metrics (GET /metrics) on HOST:PORT while the run goes on.") var metricsListen: String?
    @Option(help: "Keep serving the final metrics this long after the run, e.g. 15s (a last scrape).") var metricsHold: Seconds?


    func validate() throws {
        _ = try slice()
        if let m = metricsListen, FleetOptions.hostPort(m) == nil { throw ValidationError("--metrics-listen needs HOST:PORT, got '\(m)'") }
        if let s = startAt, FleetOptions.parseTime(s) == nil { throw ValidationError("--start-at needs Unix seconds or an ISO 8601 time (2026-12-01T10:00:00Z, 2026-12-01T11:00:00+01:00), got '\(s)'") }
    }

    /// `--worker I/N`, or `--workers N` with JOB_COMPLETION_INDEX (as a Kubernetes Indexed Job sets it).
    func slice() throws -> WorkerSlice? {
        if let w = worker {
            guard workers == nil else { throw ValidationError("give --worker I/N or --workers N, not both") }
            guard let s = WorkerSlice(w) else { throw ValidationError("--worker needs I/N with 0 ≤ I < N, got '\(w)'") }
            return s
        }
        guard let n = workers else { return nil }
        guard let i = WorkerSlice.jobIndex(currentEnvironment()) else {
            throw ValidationError("--workers \(n) takes this worker's index from JOB_COMPLETION_INDEX, which is not set (or give --worker I/N)")
        }
        guard let s = WorkerSlice(index: i, count: n) else { throw ValidationError("JOB_COMPLETION_INDEX \(i) is not in 0..<\(n)") }
        return s
    }

    /// `--metrics-listen`: HOST:PORT with a host.
    static func hostPort(_ s: String) -> (String, Int)? {
        guard let hp = parseHostPort(s), !hp.0.isEmpty else { return nil }
        return hp
    }

    static func parseTime(_ s: String) -> Double? {
        if let v = Double(s), v > 0 { return v }
        return UTCTime.parseMicros(s).map { Double($0) / 1_000_000 }
    }

    /// Sleeps until --start-at; returns how late this host started (seconds by its own clock), or nil.
    func waitForStart() -> Double? {
        guard let s = startAt, let at = FleetOptions.parseTime(s) else { return nil }
        while true {
            let now = Double(wallMillis()) / 1000
            if now >= at { return now - at }
            usleep(UInt32(min(0.5, at - now) * 1_000_000))
        }
    }

    /// This worker's share: posts i with i % N == I, at rate / N; a --count is the fleet's total.
    func apply(to c: inout RunConfig) {
        c.hlogPath = hlog
        c.publishLatency = metricsListen != nil
        if let w = try? slice() {
            c.worker = w
            c.fleetCount = c.count
            c.count = c.count.map { w.share(of: $0) }
            c.rate = c.rate.map { $0 / Double(w.count) }
        }
    }

    /// Waits for --start-at (saying how late this host woke), then serves --metrics-listen while `body`
    /// runs (and --metrics-hold after it), with `labels` (mode and worker) on every series; `metrics` answers
    /// a scrape. `body` writes the run's report: it is there before the hold, as the last scrape is.
    func around<R>(_ c: RunConfig, metrics: @escaping @Sendable (_ labels: String) -> String, _ body: () throws -> R) throws -> R {
        if let late = waitForStart() {
            // Every worker waits for the same wall-clock moment; how late this one woke says how far apart
            // the fleet started (by each host's own clock).
            FileHandle.standardError.write(Data("\(c.worker.map { "worker \($0.index)/\($0.count): " } ?? "")started \(Int((late * 1000).rounded())) ms after --start-at by this host's clock\n".utf8))
        }
        var endpoint: MetricsEndpoint?
        if let m = metricsListen, let (host, port) = FleetOptions.hostPort(m) {
            let labels = "mode=\"\(c.mode.rawValue)\"" + (c.worker.map { ",worker=\"\($0.index)/\($0.count)\"" } ?? "")
            do { endpoint = try MetricsEndpoint(host: host, port: port) { metrics(labels) } } catch {
                throw RunFailure("--metrics-listen \(m): cannot listen there (\(error))")
            }
        }
        defer {
            if let hold = metricsHold?.value, hold > 0, endpoint != nil { _ = StopFlag().wait(seconds: hold) }
            endpoint?.stop()
        }
        return try body()
    }
}

/// Names, partitions and batching: one set of defaults for run, bench, sweep, serve and produce.
struct SinkOptions: ParsableArguments {
    @Option(help: "Topics are <prefix>.pin|geo|user.") var topicPrefix: String = SinkSettings().topicPrefix
    @Option(help: "Partitions per topic.") var partitions: Int = SinkSettings().partitions
    @Option(help: "none, gzip, snappy, lz4, zstd (default lz4; serve: none, the log keeps what clients sent).") var compression: CompressionCodec?
    @Option(help: "Codec level (default: gzip 6, lz4 fast, zstd 3).") var compressionLevel: Int32?
    @Option(help: "Seal a partition's batch at this size, e.g. 16k, 1m.") var batchBytes: ByteSize = ByteSize(SinkSettings().batchBytes)
    @Option(help: "... or when its first record is this old, ms (default 5; Kinesis 20; the log behind serve seals every round).") var lingerMs: Double?

    var settings: SinkSettings { settings(defaultCompression: SinkSettings().compression) }

    func settings(defaultCompression: CompressionCodec) -> SinkSettings {
        SinkSettings(topicPrefix: topicPrefix, partitions: partitions, compression: compression ?? defaultCompression,
                     compressionLevel: compressionLevel, batchBytes: batchBytes.bytes, lingerMs: lingerMs)
    }

    func validate() throws {
        do { try settings.validate() } catch { throw ValidationError(error.message) }
    }
}

/// The embedded log.
struct LogOptionGroup: ParsableArguments {
    @Option(help: "Embedded log folder.") var dataDir: String = LogOptions().dataDir
    @Option(help: "never, segment or batch.") var fsync: FsyncPolicy = LogOptions().fsync
    @Option(help: "Roll segments at this size.") var segmentBytes: ByteSize = ByteSize(LogOptions().segmentBytes)
    @Flag(help: "Add to a log made with other --partitions or --compression (refused without it).") var append = false
    @Option(help: "Threads that compress and append batches, each owning some topic-partitions: auto (a flood: half the usable CPUs, none under a --rate of at most 100,000 posts/s; serve: 0) or N (0: the sink stage or the ingest writer itself).") var sinkThreads: ThreadCount = .auto

    var options: LogOptions {
        LogOptions(dataDir: dataDir, fsync: fsync, segmentBytes: segmentBytes.bytes, append: append, sealThreads: sinkThreads.count)
    }

    func validate() throws {
        if segmentBytes.bytes < 1024 { throw ValidationError("--segment-bytes must be ≥ 1024") }
        if let n = sinkThreads.count, n > 256 { throw ValidationError("--sink-threads must be auto or 0...256") }
    }
}

/// A Kafka cluster.
struct KafkaOptionGroup: ParsableArguments {
    @Option(help: "Kafka bootstrap brokers host:port[,host:port...] (instead of the embedded log).") var kafka: String?
    @Option(help: "Kafka acks: all, 1 or 0.") var acks: Acks = KafkaOptions.defaults.acks
    @Option(help: "Idempotent producer (Kafka): true or false.") var idempotence: Bool = KafkaOptions.defaults.idempotence
    @Flag(help: "Create the three topics with --partitions first (Kafka).") var createTopics = false
    @Option(help: "Kafka request.timeout.ms.") var requestTimeoutMs: Int32 = KafkaOptions.defaults.requestTimeoutMs
    @Option(help: "Kafka delivery.timeout.ms: a record not acknowledged by then is reported failed.") var deliveryTimeoutMs: Int = KafkaOptions.defaults.deliveryTimeoutMs
    @Option(help: "Threads that compress Kafka batches before the sender, each owning some partitions: auto (half the usable CPUs, at most 8; none under a --rate of at most 100,000 posts/s) or N (0: the sender compresses).") var compressionThreads: ThreadCount = .auto
    @Option(help: "An I/O thread per Kafka broker connection, sending requests and reading answers beside the sender: auto (when more than one CPU is usable; none under a --rate of at most 100,000 posts/s, where the sink stage is the sender too unless compression threads are asked for), true or false.") var ioThreads: AutoBool = .auto
    @Option(help: "A thread that sends the Kafka batches and reads the answers: auto (yes, except under a --rate of at most 100,000 posts/s with neither compression nor I/O threads asked for), true or false (the thread that seals the batches sends them too, sleeping on the brokers' sockets between its own work; takes neither --compression-threads N nor --io-threads true).") var senderThread: AutoBool = .auto
    @OptionGroup var security: KafkaSecurityOptions

    func options(aws: AWSOptions) throws -> KafkaOptions? {
        let props = try security.properties()
        guard let brokers = try kafka.map({ k in
            guard let b = BrokerAddress.parseList(k) else { throw ValidationError("--kafka needs host:port[,host:port...]") }
            return b
        }) ?? props.bootstrap() else { return nil }
        var o = KafkaOptions(bootstrap: brokers, acks: acks, idempotence: idempotence, createTopics: createTopics,
                             requestTimeoutMs: requestTimeoutMs, deliveryTimeoutMs: deliveryTimeoutMs)
        o.properties = props
        o.compressionThreads = compressionThreads.count
        o.ioThreads = ioThreads.value
        o.senderThread = senderThread.value
        o.security = try security.connectionSecurity(props, aws: aws, bootstrap: brokers)
        return o
    }

    /// Kafka mode: --kafka, or bootstrap.servers in --kafka-config / -X.
    var isSet: Bool { kafka != nil || ((try? security.properties().bootstrap()) ?? nil) != nil }
}

/// Secured clusters: a Java client.properties, librdkafka-named -X settings and the common ones as flags.
struct KafkaSecurityOptions: ParsableArguments {
    @Option(help: "Kafka client settings from a Java client.properties (security.protocol, sasl.*, ssl.*, acks, ...).") var kafkaConfig: String?
    @Option(name: .customShort("X"), help: ArgumentHelp("A Kafka client property, librdkafka-named (repeatable; wins over --kafka-config).", valueName: "key=value")) var property: [String] = []
    @Option(help: "Kafka security.protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.") var securityProtocol: String?
    @Option(help: "Kafka sasl.mechanism: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM or OAUTHBEARER.") var saslMechanism: String?
    @Option(help: "Kafka sasl.username (the password: -X sasl.password=... or PINBENCH_SASL_PASSWORD).") var saslUsername: String?
    @Option(help: "Kafka ssl.ca.location: a PEM CA file or directory (default: the system store).") var sslCaLocation: String?

    /// File, then -X, then the named flags; the password from PINBENCH_SASL_PASSWORD when none is set.
    func properties() throws -> KafkaClientProperties {
        var p = KafkaClientProperties()
        do {
            if let f = kafkaConfig { try p.load(file: f) }
            for x in property { try p.set(assignment: x) }
            if let v = securityProtocol { try p.set("security.protocol", v, source: "--security-protocol") }
            if let v = saslMechanism { try p.set("sasl.mechanism", v, source: "--sasl-mechanism") }
            if let v = saslUsername { try p.set("sasl.username", v, source: "--sasl-username") }
            if let v = sslCaLocation { try p.set("ssl.ca.location", v, source: "--ssl-ca-location") }
            if p["sasl.password"] == nil, let pw = currentEnvironment()["PINBENCH_SASL_PASSWORD"] {
                try p.set("sasl.password", pw, source: "PINBENCH_SASL_PASSWORD")
            }
        } catch { throw ValidationError(error.message) }
        return p
    }

    /// The connection security the properties make, with MSK IAM credentials from the AWS chain (the JAAS
    /// options awsRoleArn, awsRoleSessionName, awsStsRegion and awsProfileName honoured).
    func connectionSecurity(_ p: KafkaClientProperties, aws: AWSOptions, bootstrap: [BrokerAddress]) throws -> ConnectionSecurity {
        let spec: KafkaSecuritySpec
        do { spec = try KafkaSecuritySpec(p) } catch { throw ValidationError(error.message) }
        if let m = spec.mechanism, !spec.securityProtocol.usesTLS {
            warn(m == "PLAIN" ? "PLAIN over SASL_PLAINTEXT sends the password in the clear; use SASL_SSL"
                 : "\(m) over SASL_PLAINTEXT: records travel unencrypted; use SASL_SSL")
        }
        if spec.securityProtocol.usesTLS && !spec.tls.verifyHostname {
            warn("ssl.endpoint.identification.algorithm=none: the broker's certificate is not checked against its name")
        }
        var creds: CredentialSource?
        var region: String? = aws.region ?? currentEnvironment()["AWS_REGION"] ?? currentEnvironment()["AWS_DEFAULT_REGION"]
        if spec.mechanism == "AWS_MSK_IAM" || (spec.mechanism == "OAUTHBEARER" && spec.tokenFile == nil && spec.tokenCommand == nil) {
            let c = try aws.credentialSource(role: spec.iam["awsRoleArn"], sessionName: spec.iam["awsRoleSessionName"],
                                             stsRegion: spec.iam["awsStsRegion"], profile: spec.iam["awsProfileName"])
            creds = c
            if spec.mechanism == "OAUTHBEARER" { region = bootstrap.lazy.compactMap { MSKAuth.region(ofBrokerHost: $0.host) }.first ?? region }
        }
        do { return try spec.make(iamCredentials: creds, region: region) } catch { throw ValidationError(error.message) }
    }
}

/// Kinesis streams.
struct KinesisOptionGroup: ParsableArguments {
    @Flag(help: "Send to Kinesis streams streaming-<stream-prefix>-pin|geo|user (PutRecords) instead.") var kinesis = false
    @Option(help: "Kinesis streams are streaming-<prefix>-pin|geo|user.") var streamPrefix: String = KinesisOptions.defaultStreamPrefix
    @Flag(help: "Create the three streams with --shards when missing (Kinesis).") var createStreams = false
    @Option(help: "Shards per stream for --create-streams.") var shards: Int = KinesisOptions.defaultShards
    @Flag(help: "KPL-compatible aggregation: many posts per Kinesis record.") var aggregate = false
    @Option(help: "Kinesis partition keys: index (the post's), random, or fixed.") var partitionKey: PartitionKeyMode = .index
    @Flag(help: "Shape to the per-shard write limits (1,000 records/s, 1 MiB/s per shard).") var shape = false
    @Flag(help: "Keep per-key order (one PutRecords in flight per stream).") var ordered = false
    @Option(help: "PutRecords calls in flight.") var inFlight: Int = KinesisOptions.defaultInFlight
    @OptionGroup var aws: AWSOptions

    func options(requestTimeoutMs: Int32 = 30_000, deliveryTimeoutMs: Int = 120_000) throws -> KinesisOptions? {
        guard kinesis else { return nil }
        let o = KinesisOptions(aws: try aws.resolve(), streamPrefix: streamPrefix, createStreams: createStreams, shards: shards, aggregate: aggregate,
                               partitionKey: partitionKey, shape: shape, ordered: ordered, inFlight: inFlight,
                               requestTimeoutMs: Int(requestTimeoutMs), deliveryTimeoutMs: deliveryTimeoutMs)
        do { try o.validate() } catch { throw ValidationError(error.message) }
        return o
    }
}

/// Where records go: the embedded log unless --kafka or --kinesis says otherwise.
struct BackendOptions: ParsableArguments {
    @OptionGroup var log: LogOptionGroup
    @OptionGroup var kafka: KafkaOptionGroup
    @OptionGroup var kinesis: KinesisOptionGroup
    @Option(help: "Sink stages (a flood) or writer threads (serve), each owning a share of the sink (the embedded log's topic-partitions, with --sink-threads shared among them; Kinesis streams, each with its own curl handle): auto (one per 8 usable CPUs; a flood under a --rate of at most 100,000 posts/s: one) or N. Kafka: 1.") var sinkStages: ThreadCount = .auto

    func validate() throws {
        if kafka.isSet && kinesis.kinesis { throw ValidationError("give --kafka or --kinesis, not both") }
        if let n = sinkStages.count, n < 1 || n > 256 { throw ValidationError("--sink-stages must be auto or 1...256") }
        if kafka.isSet, let n = sinkStages.count, n > 1 { throw ValidationError("--sink-stages applies to the embedded log and Kinesis; the Kafka producer has --compression-threads") }
    }

    func backend() throws -> Backend {
        if let k = try kafka.options(aws: kinesis.aws) { return .kafka(k) }
        if let k = try kinesis.options(requestTimeoutMs: kafka.requestTimeoutMs, deliveryTimeoutMs: kafka.deliveryTimeoutMs) { return .kinesis(k) }
        return .embedded(log.options)
    }
}

/// Where AWS calls go and who signs them (shared by run --kinesis, serve, stream, land and clean to s3://).
struct AWSOptions: ParsableArguments {
    @Option(help: "AWS endpoint URL for every service (moto, LocalStack, a proxy); default: real AWS.") var awsEndpoint: String?
    @Option(help: "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config, us-east-1).") var region: String?
    @Option(help: "AWS profile in ~/.aws/credentials (default: AWS_PROFILE or default).") var awsProfile: String?
    @Option(help: "Access key id (default: AWS_ACCESS_KEY_ID, then the profile).") var awsAccessKeyId: String?
    @Option(help: "Secret access key (prefer AWS_SECRET_ACCESS_KEY: options show in the process list).") var awsSecretAccessKey: String?
    @Option(help: "Assume this IAM role (STS AssumeRole) with the credentials found.") var awsRoleArn: String?
    @Option(help: "PEM file of CAs for https:// AWS endpoints (default: AWS_CA_BUNDLE, then the system store).") var caBundle: String?

    /// The endpoint, region and credentials (the SDKs' chain), then --aws-role-arn assumed with them;
    /// temporary credentials are fetched again before they expire.
    func resolve(profile: String? = nil, role: String? = nil, sessionName: String? = nil, stsRegion: String? = nil) throws -> AWSConfig {
        var c = try AWSConfig.resolve(region: stsRegion ?? region, accessKeyId: awsAccessKeyId, secretAccessKey: awsSecretAccessKey,
                                      profile: profile ?? awsProfile, endpoint: awsEndpoint, caBundle: caBundle)
        if let caBundle, access(caBundle, R_OK) != 0 { throw ValidationError("--ca-bundle \(caBundle): cannot read it") }
        guard let role = role ?? awsRoleArn else { return c }
        let base = c
        let session = sessionName ?? "pinbench-\(getpid())"
        let r = RefreshingCredentials("role \(role)") {
            var b = base
            if let f = base.refresher { b.credentials = try f.get() }
            return try STS.assumeRole(b, roleArn: role, sessionName: session)
        }
        c.credentials = try r.get()
        c.refresher = r
        if stsRegion != nil { c.region = region ?? base.region }
        return c
    }

    /// Credentials for Kafka MSK IAM, fetched again before temporary ones expire: the chain, then
    /// `role` (or --aws-role-arn) assumed through STS in `stsRegion`. Fetched once now, so a missing
    /// credential or a refused role is one line before any connection.
    func credentialSource(role: String?, sessionName: String?, stsRegion: String?, profile: String?) throws -> CredentialSource {
        let c = try resolve(profile: profile, role: role, sessionName: sessionName, stsRegion: stsRegion)
        let creds = c.credentials
        guard let r = c.refresher else { return CredentialSource(creds.description) { creds } }
        let via = (role ?? awsRoleArn).map { "role \($0) via STS" } ?? creds.source
        return CredentialSource("\(via), \(creds.description)") { try r.get() }
    }
}

/// Reports and the terminal.
struct OutputOptions: ParsableArguments {
    @Option(help: "Write the JSON report here.") var reportJson: String?
    @Flag(help: "No progress line and no summary table.") var quiet = false
}

/// One warning line on stderr (never a secret in it).
func warn(_ line: String) { FileHandle.standardError.write(Data("pinbench: warning: \(line)\n".utf8)) }

/// `host:port` (the host may be empty) with a port in 0...65535: the one parser of listen addresses.
func parseHostPort(_ s: String) -> (String, Int)? {
    guard let colon = s.lastIndex(of: ":"), let p = Int(s[s.index(after: colon)...]), p >= 0, p < 65536 else { return nil }
    return (String(s[..<colon]), p)
}
