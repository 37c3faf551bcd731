import AWSClient
import ArgumentParser
import Bytes
import Codecs
import Foundation
import KafkaClient
import KafkaLog
import KafkaWire
import PinEmulator
import IngestServer
import Pipeline
import JSON
import Platform

@main
struct Pinbench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pinbench",
        abstract: "Load-test and run a Pinterest-style ingestion pipeline: emulator, Kafka-format log, reports.",
        version: pinbenchVersion,
        subcommands: [Emulate.self, Run.self, Produce.self, Consume.self, Log.self, Land.self, Clean.self, Analyze.self, Batch.self, StreamCommand.self, PutRecordsCommand.self, Bench.self, SweepCommand.self, Report.self, Serve.self]
    )
}

// MARK: - argument types

extension CompressionCodec: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.description) }
}

extension FsyncPolicy: ExpressibleByArgument {}
extension JSONStyle: ExpressibleByArgument {}

/// `30s`, `2m`, `500ms`, `1h` or plain seconds.
struct Duration: ExpressibleByArgument {
    var seconds: Double
    init?(argument: String) {
        let s = argument.lowercased()
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (u, f) in units where s.hasSuffix(u) {
            guard let v = Double(s.dropLast(u.count)) else { return nil }
            seconds = v * f
            return
        }
        guard let v = Double(s) else { return nil }
        seconds = v
    }
}

/// `16384`, `16k`, `256k`, `1m`, `1g` (binary multiples).
struct ByteSize: ExpressibleByArgument {
    var bytes: Int
    init?(argument: String) {
        let s = argument.lowercased()
        let units: [(String, Int)] = [("kib", 1024), ("mib", 1 << 20), ("gib", 1 << 30), ("k", 1024), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)]
        for (u, f) in units where s.hasSuffix(u) {
            guard let v = Double(s.dropLast(u.count)), v >= 0 else { return nil }
            bytes = Int(v * Double(f))
            return
        }
        guard let v = Int(s), v >= 0 else { return nil }
        bytes = v
    }
}

/// Writes the buffer to stdout and empties it; a closed pipe (`| head`) ends the program quietly.
func drainToStdout(_ out: ByteBuffer) {
    var off = 0
    while off < out.count {
        let n = write(1, out.base + off, out.count - off)
        if n <= 0 {
            if errno == EINTR { continue }
            exit(errno == EPIPE ? 0 : 1)
        }
        off += n
    }
    out.reset()
}

/// A parent may have blocked SIGTERM/SIGINT (children inherit the mask); unblock them so that graceful
/// shutdown and Ctrl-C work. Call before any thread starts.
func unblockTerminationSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    sigaddset(&set, SIGTERM)
    sigaddset(&set, SIGINT)
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// Prints one line to stderr and exits non-zero: the CLI's way to report bad input.
func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("pinbench: \(message)\n".utf8))
    exit(1)
}

// MARK: - emulate

struct Emulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write emulated posts to DIR/pin.jsonl, DIR/geo.jsonl and DIR/user.jsonl.")

    @Option(help: "Posts to write.") var count: Int
    @Option(help: "Random seed; the same seed gives the same posts.") var seed: UInt64 = 1
    @Option(help: "Distinct users behind the posts.") var users: Int = 11_000
    @Option(help: "Output folder.") var out: String
    @Option(help: "compact, or python (\", \" / \": \" separators and \\u escapes like the original client).")
    var style: JSONStyle = .compact

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must be ≥ 0") }
        guard users >= 1 else { throw ValidationError("--users must be ≥ 1") }
    }

    func run() throws {
        let emu = Emulator(seed: seed, users: users)
        do { try makeDirectories(out) } catch { fail("\(error)") }
        let names = ["pin", "geo", "user"]
        var handles: [UnsafeMutablePointer<FILE>] = []
        for n in names {
            guard let f = fopen("\(out)/\(n).jsonl", "w") else { fail("cannot create \(out)/\(n).jsonl: \(String(cString: strerror(errno)))") }
            handles.append(f)
        }
        let bufs = (0..<3).map { _ in ByteBuffer(capacity: 1 << 20) }
        func drain(_ k: Int) {
            if bufs[k].count > 0, fwrite(bufs[k].base, 1, bufs[k].count, handles[k]) != bufs[k].count {
                fail("write \(out)/\(names[k]).jsonl: \(String(cString: strerror(errno)))")
            }
            bufs[k].reset()
        }
        for i in 0..<count {
            emu.writePost(i, pin: bufs[0], geo: bufs[1], user: bufs[2], style: style)
            for k in 0..<3 {
                bufs[k].append(UInt8(ascii: "\n"))
                if bufs[k].count > 900_000 { drain(k) }
            }
        }
        for k in 0..<3 {
            drain(k)
            if fclose(handles[k]) != 0 { fail("close \(out)/\(names[k]).jsonl: \(String(cString: strerror(errno)))") }
        }
        print("wrote \(count) posts (\(3 * count) records) to \(out)/{pin,geo,user}.jsonl")
    }
}

// MARK: - run

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Flood emulated posts into the embedded Kafka-format log and report what happened.")

    @Option(help: "Posts to send (3 records each). Give this or --duration.") var count: Int?
    @Option(help: "How long to run, e.g. 30s, 2m (when --count is not given).") var duration: Duration?
    @Option(help: "Posts per second, open loop (default: unbounded).") var rate: Double?
    @Option(help: "Distinct users.") var users: Int = 11_000
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Option(help: "Embedded log folder.") var dataDir: String = "data"
    @Option(help: "Topics are <prefix>.pin|geo|user.") var topicPrefix: String = "pinbench"
    @Option(help: "Partitions per topic.") var partitions: Int = 3
    @Option(help: "none, gzip, snappy, lz4, zstd.") var compression: CompressionCodec = .lz4
    @Option(help: "Codec level (default: gzip 6, lz4 fast, zstd 3).") var compressionLevel: Int32?
    @Option(help: "Seal a partition's batch at this size, e.g. 16k, 1m.") var batchBytes: ByteSize = ByteSize(argument: "1000000")!
    @Option(help: "... or when its first record is this old (ms).") var lingerMs: Double = 5
    @Option(help: "Generator threads (the log stage has its own).") var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount - 1)
    @Option(help: "never, segment or batch.") var fsync: FsyncPolicy = .never
    @Option(help: "Roll segments at this size.") var segmentBytes: ByteSize = ByteSize(argument: "1g")!
    @Flag(help: "Pin stage threads to CPUs (libnuma keeps memory local where present).") var pinCpus = false
    @Option(help: "Write the JSON report here.") var reportJson: String?
    @Flag(help: "No progress line and no summary table.") var quiet = false
    @Option(help: "Flood a Kafka cluster instead of the embedded log: host:port[,host:port...].") var kafka: String?
    @Option(help: "Kafka acks: all, 1 or 0.") var acks: Acks = .all
    @Option(help: "Idempotent producer (Kafka): true or false.") var idempotence: Bool = true
    @Flag(help: "Create the three topics with --partitions before flooding (Kafka).") var createTopics = false
    @Option(help: "Kafka request.timeout.ms.") var requestTimeoutMs: Int32 = 30_000
    @Option(help: "Kafka delivery.timeout.ms: a record not acknowledged by then is reported failed.") var deliveryTimeoutMs: Int = 120_000
    @Flag(help: "Flood Kinesis streams streaming-<stream-prefix>-pin|geo|user (PutRecords) instead.") var kinesis = false
    @Option(help: "Kinesis streams are streaming-<prefix>-pin|geo|user.") var streamPrefix: String = "pinbench"
    @Flag(help: "Create the three streams with --shards when missing (Kinesis).") var createStreams = false
    @Option(help: "Shards per stream for --create-streams.") var shards: Int = 2
    @Flag(help: "KPL-compatible aggregation: many posts per Kinesis record.") var aggregate = false
    @Option(help: "Kinesis partition keys: index (the post's), random, or fixed.") var partitionKey: PartitionKeyMode = .index
    @Flag(help: "Shape to the per-shard write limits (1,000 records/s, 1 MiB/s per shard).") var shape = false
    @Flag(help: "Keep per-key order (one PutRecords in flight per stream).") var ordered = false
    @Option(help: "PutRecords calls in flight.") var inFlight: Int = 16
    @OptionGroup var aws: AWSOptions

    func run() throws {
        var c = RunConfig()
        c.count = count
        c.duration = duration?.seconds
        if count == nil && duration == nil { c.duration = 20 }
        c.rate = rate
        c.users = users
        c.seed = seed
        c.dataDir = dataDir
        c.topicPrefix = topicPrefix
        c.partitions = partitions
        c.compression = compression
        c.compressionLevel = compressionLevel
        c.batchBytes = batchBytes.bytes
        c.lingerMs = lingerMs
        c.threads = threads
        c.fsync = fsync
        c.segmentBytes = segmentBytes.bytes
        c.pinCPUs = pinCpus
        c.kafka = kafka
        c.acks = acks.value
        c.idempotence = idempotence
        c.createTopics = createTopics
        c.requestTimeoutMs = requestTimeoutMs
        c.deliveryTimeoutMs = deliveryTimeoutMs
        if kinesis {
            if kafka != nil { fail("give --kafka or --kinesis, not both") }
            var k = KinesisSettings(aws: aws.resolve())
            k.streamPrefix = streamPrefix
            k.createStreams = createStreams
            k.shards = shards
            k.aggregate = aggregate
            k.partitionKey = partitionKey
            k.shape = shape
            k.ordered = ordered
            k.inFlight = inFlight
            if lingerMs != 5 { k.lingerMs = lingerMs }
            c.kinesis = k
        }
        let engine: any FloodEngine
        do {
            if kinesis { engine = try KinesisRun(config: c) } else if kafka == nil { engine = try EmbeddedRun(config: c) } else { engine = try KafkaRun(config: c) }
        } catch { fail(error.message) }

        signal(SIGINT, SIG_IGN)
        let sigint = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        sigint.setEventHandler { engine.requestStop() }
        sigint.resume()

        let tty = isatty(2) != 0 && !quiet
        let result: RunResult
        do {
            result = try engine.run { s in
                guard tty else { return }
                let rps = s.seconds > 0 ? Double(s.recordsOut) / s.seconds : 0
                let mbs = s.seconds > 0 ? Double(s.payloadBytesOut) / s.seconds / 1e6 : 0
                let line = "\r[\(fmt(s.seconds, 0))s] \(s.recordsOut) records  \(fmt(rps / 1e6, 3)) M rec/s  \(fmt(mbs, 1)) MB/s  queue \(s.queueDepth)/\(s.queueCapacity)   "
                FileHandle.standardError.write(Data(line.utf8))
            }
        } catch {
            fail("\(error)")
        }
        if tty { FileHandle.standardError.write(Data("\n".utf8)) }
        if let path = reportJson {
            do { try result.json.serialized().write(toFile: path, atomically: true, encoding: .utf8) } catch {
                fail("cannot write report \(path): \(error.localizedDescription)")
            }
        }
        if !quiet { print(result.summaryTable, terminator: "") }
        if result.error != nil || !result.accountingHolds { throw ExitCode(2) }
    }
}

extension PartitionKeyMode: ExpressibleByArgument {}

/// Where AWS calls go and who signs them (shared by run --kinesis, stream, land --to s3://).
struct AWSOptions: ParsableArguments {
    @Option(help: "AWS endpoint URL for every service (moto, LocalStack, a proxy); default: real AWS.") var awsEndpoint: String?
    @Option(help: "AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config, us-east-1).") var region: String?
    @Option(help: "AWS profile in ~/.aws/credentials (default: AWS_PROFILE or default).") var awsProfile: String?
    @Option(help: "Access key id (default: AWS_ACCESS_KEY_ID, then the profile).") var awsAccessKeyId: String?
    @Option(help: "Secret access key (prefer AWS_SECRET_ACCESS_KEY: options show in the process list).") var awsSecretAccessKey: String?

    func resolve() -> AWSConfig {
        do {
            return try AWSConfig.resolve(region: region, accessKeyId: awsAccessKeyId, secretAccessKey: awsSecretAccessKey,
                                         profile: awsProfile, endpoint: awsEndpoint)
        } catch { fail(error.message) }
    }
}

enum Acks: String, ExpressibleByArgument {
    case all, one = "1", zero = "0", minusOne = "-1"
    var value: Int16 { self == .one ? 1 : (self == .zero ? 0 : -1) }
}

// MARK: - produce

struct Produce: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce every line of a file to a Kafka topic (unkeyed, sticky partitioner) and print one JSON line of figures.")

    @Option(help: "Bootstrap brokers host:port[,host:port...].") var kafka: String
    @Option(help: "Topic to write.") var topic: String
    @Option(help: "File of records, one per line (e.g. from pinbench emulate).") var file: String
    @Option(help: "Send the file this many times.") var rounds: Int = 1
    @Option(help: "none, gzip, snappy, lz4, zstd.") var compression: CompressionCodec = .none
    @Option(help: "batch.size, e.g. 16k, 1m.") var batchBytes: ByteSize = ByteSize(argument: "16384")!
    @Option(help: "linger.ms.") var lingerMs: Double = 5
    @Option(help: "acks: all, 1 or 0.") var acks: Acks = .all
    @Option(help: "Idempotent producer: true or false.") var idempotence: Bool = true

    func run() throws {
        guard let brokers = BrokerAddress.parseList(kafka) else { fail("--kafka needs host:port[,host:port...]") }
        guard let data = FileManager.default.contents(atPath: file) else { fail("cannot read \(file)") }
        var pc = ProducerConfiguration(bootstrap: brokers)
        pc.compression = compression
        pc.batchBytes = batchBytes.bytes
        pc.lingerMs = lingerMs
        pc.acks = acks.value
        pc.idempotence = idempotence
        let producer: KafkaProducer
        let handle: TopicHandle
        do {
            producer = try KafkaProducer(config: pc)
            handle = try producer.topic(topic)
        } catch { fail("\(error)") }
        var delivered = 0, failed = 0, sent = 0, bytes = 0
        var firstError: String?
        func report(_ r: DeliveryReport) {
            if let e = r.error {
                failed += r.batch.records
                if firstError == nil { firstError = e.message }
            } else {
                delivered += r.batch.records
            }
        }
        let t0 = Date()
        let cpu0 = processCPUSeconds()
        do {
            try data.withUnsafeBytes { (all: UnsafeRawBufferPointer) in
                for _ in 0..<max(rounds, 0) {
                    var start = 0
                    for i in 0..<all.count where all[i] == 0x0A {
                        let line = UnsafeRawBufferPointer(rebasing: all[start..<i])
                        start = i + 1
                        try producer.send(to: handle, key: nil, value: line, timestamp: wallMillis(), onDelivery: report)
                        sent += 1
                        bytes += line.count
                        if sent & 1023 == 0 { try producer.poll(onDelivery: report) }
                    }
                }
                try producer.close(onDelivery: report)
            }
        } catch { fail("\(error)") }
        let dt = Date().timeIntervalSince(t0)
        let out: JSONValue = .object([
            ("peer", .string("pinbench \(pinbenchVersion)")), ("records", .int(sent)), ("delivered", .int(delivered)),
            ("failed", .int(failed)), ("bytes", .int(bytes)), ("seconds", .double((dt * 1000).rounded() / 1000)),
            ("records_per_s", .double((Double(sent) / dt).rounded())), ("mb_per_s", .double((Double(bytes) / dt / 1e5).rounded() / 10)),
            ("cpu_seconds", .double(((processCPUSeconds() - cpu0) * 100).rounded() / 100)),
            ("requests", .int(producer.stats.requests.load(ordering: .relaxed))), ("retries", .int(producer.stats.retries.load(ordering: .relaxed))),
            ("first_error", firstError.map { .string($0) } ?? .null),
        ])
        print(out.serialized(pretty: false))
        if failed > 0 || delivered != sent { throw ExitCode(1) }
    }
}

// MARK: - consume

struct Consume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a Kafka topic's values as JSON lines (every partition, in offset order per partition).")

    @Option(help: "Bootstrap brokers host:port[,host:port...].") var kafka: String
    @Option(help: "Topic to read.") var topic: String
    @Option(help: "Only this partition.") var partition: Int32?
    @Flag(help: "Start at the earliest offset (default: only records produced from now on).") var fromBeginning = false
    @Option(help: "Stop after this many records.") var count: Int?
    @Option(help: "Stop when no record arrived for this long (default 2s with --from-beginning, else never).") var idle: Duration?
    @Flag(help: "Prefix each line with partition and offset.") var showOffsets = false

    func run() throws {
        guard let brokers = BrokerAddress.parseList(kafka) else { fail("--kafka needs host:port[,host:port...]") }
        let consumer: KafkaConsumer
        do { consumer = try KafkaConsumer(bootstrap: brokers) } catch { fail("\(error)") }
        var parts: [Int32]
        do { parts = try consumer.partitions(topic) } catch { fail("\(error)") }
        if let p = partition {
            guard parts.contains(p) else { fail("\(topic) has no partition \(p)") }
            parts = [p]
        }
        var next: [Int32: Int64] = [:]
        for p in parts {
            do {
                next[p] = try consumer.offset(topic, p, fromBeginning ? ListOffsetsMessage.earliest : ListOffsetsMessage.latest)
            } catch { fail("\(error)") }
        }
        consumer.maxWaitMs = 200
        let idleLimit = idle?.seconds ?? (fromBeginning ? 2 : .infinity)
        var lastRecord = Date()
        var printed = 0
        let out = ByteBuffer(capacity: 1 << 20)
        func drain() { drainToStdout(out) }
        outer: while true {
            var got = 0
            for p in parts {
                do {
                    let r = try consumer.fetch(topic, p, from: next[p]!) { rec in
                        if let count, printed >= count { return }
                        if showOffsets { out.append(utf8: "\(p)\t\(rec.offset)\t") }
                        if let v = rec.value { out.append(v) } else { out.append("null") }
                        out.append(UInt8(ascii: "\n"))
                        printed += 1
                        got += 1
                    }
                    next[p] = r.next
                } catch let e as KafkaClientError where e.isRetriable {
                    continue
                } catch {
                    drain()
                    fail("\(error)")
                }
                if let count, printed >= count { break outer }
            }
            drain()
            if got > 0 { lastRecord = Date() } else if Date().timeIntervalSince(lastRecord) > idleLimit { break }
        }
        drain()
    }
}

// MARK: - log

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect the embedded log.", subcommands: [Verify.self, Cat.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every batch's CRC, offsets and records; print counts per topic-partition (exit 1 on damage).")
        @Option(help: "Embedded log folder.") var dataDir: String = "data"

        func run() throws {
            let parts: [PartitionVerification]
            do { parts = try LogInspector.verify(dataDir: dataDir) } catch { fail("\(error)") }
            if parts.isEmpty { fail("no partitions under \(dataDir)/log") }
            let w = parts.map { "\($0.topic)-\($0.partition)".count }.max()! + 2
            let header = "topic-partition".padding(toLength: w, withPad: " ", startingAt: 0)
            print("\(header)segments  batches    records  next-offset  bytes")
            var damaged = 0
            var total = 0
            for p in parts {
                let name = "\(p.topic)-\(p.partition)".padding(toLength: w, withPad: " ", startingAt: 0)
                let cols = [String(p.segments).leftPad(8), String(p.batches).leftPad(9), String(p.records).leftPad(10),
                            String(p.nextOffset ?? 0).leftPad(12), "  " + formatBytes(p.bytes)]
                print(name + cols.joined(separator: " ") + (p.isHealthy ? "" : "  DAMAGED"))
                for problem in p.problems { print("  ! \(problem)") }
                if !p.isHealthy { damaged += 1 }
                total += p.records
            }
            print("\(parts.count) partitions, \(total) records, \(damaged == 0 ? "all batches good" : "\(damaged) damaged")")
            if damaged > 0 { throw ExitCode(1) }
        }
    }

    struct Cat: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a topic's values as JSON lines (partition by partition, offset order).")
        @Option(help: "Embedded log folder.") var dataDir: String = "data"
        @Option(help: "Topic, e.g. pinbench.pin.") var topic: String
        @Option(help: "Only this partition.") var partition: Int?

        func run() throws {
            let out = ByteBuffer(capacity: 1 << 20)
            func drain() { drainToStdout(out) }
            do {
                try LogInspector.forEachRecord(dataDir: dataDir, topic: topic, partition: partition) { _, r in
                    if let v = r.value { out.append(v) } else { out.append("null") }
                    out.append(UInt8(ascii: "\n"))
                    if out.count > 900_000 { drain() }
                }
            } catch {
                drain()
                fail("\(error)")
            }
            drain()
        }
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

// MARK: - serve

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Accept the original clients' HTTP posts (Kafka REST Proxy v2 and API Gateway Kinesis shapes) into the embedded log, a Kafka cluster or Kinesis.")

    @Option(help: "Address to listen on (loopback unless told otherwise).") var listen: String = "127.0.0.1:8082"
    @Option(help: "Topics <prefix>.pin|geo|user, streams streaming-<prefix>-pin|geo|user.") var topicPrefix: String = "pinbench"
    @Option(help: "Embedded log folder.") var dataDir: String = "data"
    @Option(help: "Partitions per topic.") var partitions: Int = 3
    @Option(help: "Require this key (X-API-Key or Authorization: Bearer).") var apiKey: String?
    @Option(help: "Largest request body.") var maxBodyBytes: ByteSize = ByteSize(argument: "10m")!
    @Option(help: "Requests the writer may hold before new ones are answered 429 with Retry-After.") var queueCapacity: Int = 4096
    @Option(help: "Route to a Kafka cluster instead: host:port[,host:port...] (topics <prefix>.pin|geo|user).") var kafka: String?
    @Flag(help: "Create the topics with --partitions when missing (Kafka).") var createTopics = false
    @Option(help: "Kafka acks: all, 1 or 0.") var acks: Acks = .all
    @Option(help: "Kafka linger.ms.") var lingerMs: Double = 5
    @Flag(help: "Route to Kinesis streams streaming-<prefix>-pin|geo|user instead.") var kinesis = false
    @Flag(help: "Create the streams with --shards when missing (Kinesis).") var createStreams = false
    @Option(help: "Shards per stream for --create-streams.") var shards: Int = 2
    @Flag(help: "Keep per-key order into Kinesis (one PutRecords call in flight per stream).") var ordered = false
    @Option(help: "HTTP event-loop threads (default: one per core; the writer has its own thread).") var eventLoops: Int?
    @Option(help: "Close a connection idle this many seconds, or one whose request is not complete within them.") var idleTimeout: Int = 30
    @OptionGroup var aws: AWSOptions

    func run() async throws {
        unblockTerminationSignals()
        if kafka != nil && kinesis { fail("give --kafka or --kinesis, not both") }
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), port >= 0, port < 65536 else {
            fail("--listen needs host:port")
        }
        var c = IngestConfig()
        c.host = String(listen[..<colon])
        c.port = port
        c.topicPrefix = topicPrefix
        c.dataDir = dataDir
        c.partitions = partitions
        c.apiKey = apiKey
        c.maxBodyBytes = maxBodyBytes.bytes
        c.queueCapacity = max(1, queueCapacity)
        if let e = eventLoops { guard e >= 1 && e <= 256 else { fail("--event-loops must be in 1...256") }; c.eventLoops = e }
        guard idleTimeout >= 1 else { fail("--idle-timeout must be at least 1 second") }
        c.idleTimeoutSeconds = Int64(idleTimeout)
        guard partitions >= 1 else { fail("--partitions must be ≥ 1") }
        if let kafka {
            guard let brokers = BrokerAddress.parseList(kafka) else { fail("--kafka needs host:port[,host:port...]") }
            var pc = ProducerConfiguration(bootstrap: brokers)
            pc.acks = acks.value
            pc.lingerMs = lingerMs
            c.backend = .kafka(pc, createTopics: createTopics)
        } else if kinesis {
            c.backend = .kinesis(aws.resolve(), createStreams: createStreams, shards: shards, ordered: ordered)
        }
        let service: IngestService
        do { service = try IngestService(config: c) } catch let e as AWSError { fail(e.message) } catch { fail("\(error)") }
        let host = c.host
        try await service.run { p in
            FileHandle.standardOutput.write(Data("listening on \(host):\(p)\n".utf8))
        }
        print("stopped: accepted \(service.accepted), stored \(service.stored), rejected \(service.rejected)")
    }
}
