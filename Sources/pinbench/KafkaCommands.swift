import ArgumentParser
import AWSClient
import Console
import Bytes
import JSON
import KafkaClient
import KafkaLog
import KafkaWire
import Pipeline
import Platform
import Sinks
import Synchronization

// MARK: - produce

struct Produce: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Produce every line of a file to a Kafka topic (unkeyed, sticky partitioner) and print one JSON line of figures.",
        discussion: examples("pinbench produce --kafka localhost:9092 --topic pinbench.pin --file posts/pin.jsonl"))

    @Option(help: "Topic to write (--create-topics creates it with --partitions).") var topic: String
    @Option(help: "File of records, one per line (e.g. from pinbench emulate; blank lines are skipped, a line may end in CRLF).") var file: String
    @Option(help: "Send the file this many times.") var rounds: Int = 1
    @OptionGroup var sink: SinkOptions
    @OptionGroup var kafka: KafkaOptionGroup
    @OptionGroup var aws: AWSOptions

    func validate() throws {
        guard kafka.isSet else { throw ValidationError("--kafka host:port is required") }
        guard rounds >= 0 else { throw ValidationError("--rounds must be ≥ 0") }
    }

    func run() throws {
        guard let options = try kafka.options(aws: aws) else { throw ValidationError("--kafka host:port is required") }
        let data = try MappedFile(path: file)
        let t0 = monotonicSeconds(), cpu0 = processCPUSeconds()
        let producer = try KafkaProducer(config: try options.producerConfiguration(sink.settings))
        if options.createTopics { try producer.createTopics([topic], partitions: Int32(sink.partitions)) }
        let work = LongWork("produce", quiet: false)
        defer { work.finish() }
        if work.showsProgress { work.counter.setTotal(Lines.count(in: data.bytes) * max(rounds, 0)) }
        let r = try producer.produceLines(data.bytes, to: try producer.topic(topic), rounds: rounds, progress: work.counter, stop: work.stop)
        work.endProgress()
        print(r.json(producer.stats, peer: "pinbench \(pinbenchVersion)", seconds: monotonicSeconds() - t0, cpuSeconds: processCPUSeconds() - cpu0)
            .serialized(pretty: false))
        if let code = work.exitCode { throw ExitCode(code) }
        if r.failed > 0 || r.delivered != r.sent { throw ExitCode(1) }
    }
}

// MARK: - consume

struct Consume: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a Kafka topic's values as JSON lines (every partition, in offset order per partition).",
        discussion: examples("pinbench consume --kafka localhost:9092 --topic pinbench.pin --from-beginning --count 10"))

    @Option(help: "Bootstrap brokers host:port[,host:port...].") var kafka: String
    @Option(help: "Topic to read.") var topic: String
    @Option(help: "Only this partition.") var partition: Int32?
    @Flag(help: "Start at the earliest offset (default: only records produced from now on).") var fromBeginning = false
    @Option(help: "Stop after this many records.") var count: Int?
    @Option(help: "Stop when no record arrived for this long (default 2s with --from-beginning, else never).") var idle: Seconds?
    @Flag(help: "Prefix each line with partition and offset.") var showOffsets = false
    @OptionGroup var security: KafkaSecurityOptions
    @OptionGroup var aws: AWSOptions

    func run() throws {
        guard let brokers = BrokerAddress.parseList(kafka) else { throw ValidationError("--kafka needs host:port[,host:port...]") }
        let out = ByteBuffer(capacity: 1 << 20)
        defer { drainToStdout(out) }
        let consumer = try KafkaConsumer(bootstrap: brokers, security: try security.connectionSecurity(try security.properties(), aws: aws, bootstrap: brokers))
        var parts = try consumer.partitions(topic)
        if let p = partition {
            guard parts.contains(p) else { throw RunFailure("\(topic) has no partition \(p)") }
            parts = [p]
        }
        consumer.maxWaitMs = 200
        var printed = 0
        // Ctrl-C: what was read is printed, then exit 130/143. Progress on a terminal stderr only while the
        // records go to a file or a pipe (never mixed into them).
        let work = LongWork("consume \(topic)", quiet: ProgressLine.stdoutIsTerminal)
        defer { work.finish() }
        count.map { work.counter.setTotal($0) }
        try consumer.follow(topic, partitions: parts, fromBeginning: fromBeginning,
                            idleSeconds: idle?.value ?? (fromBeginning ? 2 : .infinity)) { p, rec in
            if work.stop.isSet { return false }
            if let count, printed >= count { return false }
            work.counter.add(1)
            if showOffsets { out.append(utf8: "\(p)\t\(rec.offset)\t") }
            if let v = rec.value { out.append(v) } else { out.append("null") }
            out.append(UInt8(ascii: "\n"))
            printed += 1
            if out.count > 900_000 { drainToStdout(out) }
            return count.map { printed < $0 } ?? true
        }
        work.endProgress()
        drainToStdout(out)
        if let code = work.exitCode { throw ExitCode(code) }
    }
}

// MARK: - log

/// One line when `dataDir` holds no embedded log, instead of a failed directory listing.
func requireLog(_ dataDir: String) throws {
    guard isDirectory("\(dataDir)/log") else {
        throw RunFailure("no embedded log in \(dataDir) (\(dataDir)/log is missing): write one with pinbench run --data-dir \(dataDir), or give --data-dir")
    }
}

struct Log: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect the embedded log.",
        discussion: examples("pinbench log verify --data-dir data", "pinbench log cat --data-dir data --topic pinbench.geo | head"),
        subcommands: [Verify.self, Cat.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every batch's CRC, offsets and records; print counts per topic-partition (exit 1 on damage).",
        discussion: examples("pinbench log verify --data-dir data"))
        @Option(help: "Embedded log folder.") var dataDir: String = "data"

        func run() throws {
            try requireLog(dataDir)
            let parts: [PartitionVerification]
            parts = try LogInspector.verify(dataDir: dataDir)
            if parts.isEmpty { throw RunFailure("no partitions under \(dataDir)/log") }
            print(LogInspector.table(parts), terminator: "")
            if parts.contains(where: { !$0.isHealthy }) { throw ExitCode(1) }
        }
    }

    struct Cat: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a topic's values as JSON lines (partition by partition, offset order).",
        discussion: examples("pinbench log cat --data-dir data --topic pinbench.pin --partition 0 | head -3"))
        @Option(help: "Embedded log folder.") var dataDir: String = "data"
        @Option(help: "Topic, e.g. pinbench.pin.") var topic: String
        @Option(help: "Only this partition.") var partition: Int?

        func run() throws {
            try requireLog(dataDir)
            let out = ByteBuffer(capacity: 1 << 20)
            defer { drainToStdout(out) }
            try LogInspector.forEachRecord(dataDir: dataDir, topic: topic, partition: partition) { _, r in
                if let v = r.value { out.append(v) } else { out.append("null") }
                out.append(UInt8(ascii: "\n"))
                if out.count > 900_000 { drainToStdout(out) }
            }
        }
    }
}
