import AWSClient
import ArgumentParser
import Cleaning
import Codecs
import Foundation
import PinModel
import TableStore
import Analytics
import Bytes
import Pipeline
import KafkaClient
import Landing
import Streaming
import TableSync
import JSON
import Platform

// MARK: - clean

struct Clean: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Clean pin, geo and user records into Delta tables of Parquet files (spec §3).",
        discussion: """
            --from is a folder with pin.jsonl/geo.jsonl/user.jsonl (pinbench emulate), a landing root \
            (pinbench land: topics/<prefix>.<kind>/partition=<p>/...) or an embedded data dir (pinbench run). \
            Each run appends one Delta commit per table; refused records go to <tables>/_dead_letter/.
            """)

    @Option(help: "Input folder (jsonl files, landing root or embedded data dir).") var from: String
    @Option(help: "Tables root: <tables>/pin, <tables>/geo, <tables>/user; a folder or s3://bucket/prefix.") var tables: String
    @Option(help: "Topics are <prefix>.pin|geo|user (landing root and embedded log).") var topicPrefix: String = "pinbench"
    @Option(help: "Parquet page compression: snappy, zstd, gzip or none.") var compression: CompressionCodec = .snappy
    @Option(help: "Codec level (zstd, gzip).") var compressionLevel: Int32?
    @Option(help: "Partition columns, e.g. pin=category,geo=country,user=none (default: pin=category).") var partitionBy: String?
    @Option(help: "Rows per row group.") var rowGroupRows: Int = 131_072
    @Option(help: "Records longer than this go to the dead-letter file.") var maxRecordBytes: Int = 1 << 20
    @Option(help: "Write the JSON report here.") var reportJson: String?
    @Flag(help: "Clean the three tables one after another instead of in parallel.") var sequential = false
    @OptionGroup var aws: AWSOptions

    func validate() throws {
        guard compression != .lz4 else { throw ValidationError("--compression lz4 is not written to Parquet; use snappy, zstd, gzip or none") }
        guard rowGroupRows >= 1 else { throw ValidationError("--row-group-rows must be ≥ 1") }
        _ = try parsePartitionBy(partitionBy)
    }

    func run() throws {
        var o = CleanOptions(tablesDir: tables)
        o.write.codec = compression
        o.write.level = compressionLevel
        o.write.rowGroupRows = rowGroupRows
        o.maxRecordBytes = maxRecordBytes
        o.parallel = !sequential
        for (k, v) in try parsePartitionBy(partitionBy) { o.partitionBy[k] = v }
        do {
            let source = try CleanSource.detect(from, topicPrefix: topicPrefix)
            let report = try withTables(tables, aws: aws, pullData: false, push: true) { dir in
                o.tablesDir = dir
                return try Cleaner.run(source: source, options: o)
            }
            printCleanReport(report, source: source)
            if let reportJson { try report.json().serialized().write(toFile: reportJson, atomically: true, encoding: .utf8) }
        } catch {
            fail("\(error)")
        }
    }
}

/// Runs `body` on the tables folder; for `s3://bucket/prefix` on a local staging copy: the tables' logs
/// (and with `pullData` their files) are downloaded first and, with `push`, new files and commits uploaded
/// after (commits conditionally: a version another writer took first is an error, never an overwrite).
func withTables<R>(_ tables: String, aws: AWSOptions, pullData: Bool, push: Bool, _ body: (String) throws -> R) throws -> R {
    guard tables.hasPrefix("s3://") else { return try body(tables) }
    let staging = try S3Tables.makeStaging()
    defer { S3Tables.removeTree(staging) }
    let remote = try S3Tables(url: tables, aws: aws.resolve(), staging: staging)
    let names = RecordKind.allCases.map(\.name)
    try remote.pull(tables: names, data: pullData)
    let r = try body(staging)
    if push { try remote.push(tables: names) }
    return r
}

func parsePartitionBy(_ s: String?) throws -> [(RecordKind, String?)] {
    guard let s else { return [] }
    var out: [(RecordKind, String?)] = []
    for item in s.split(separator: ",") {
        let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2, let k = RecordKind(name: kv[0]) else {
            throw ValidationError("--partition-by takes TABLE=COLUMN items (tables pin, geo, user), got '\(item)'")
        }
        if kv[1] == "none" { out.append((k, nil)); continue }
        let schema = CleanSchemas.schema(k)
        guard let c = schema.columns.first(where: { $0.name == kv[1] }), c.type == .string else {
            let strings = schema.columns.filter { $0.type == .string }.map(\.name).joined(separator: ", ")
            throw ValidationError("--partition-by \(k.name)=\(kv[1]): partition by one of \(strings), or none")
        }
        out.append((k, kv[1]))
    }
    return out
}

func printCleanReport(_ r: CleanReport, source: CleanSource) {
    print("cleaned \(source.description) in \(String(format: "%.2f", r.seconds)) s: \(r.recordsIn) records, "
          + "\(String(format: "%.0f", Double(r.recordsIn) / max(r.seconds, 1e-9))) records/s, "
          + "\(String(format: "%.1f", Double(r.inputBytes) / 1e6 / max(r.seconds, 1e-9))) MB/s")
    print("table  records_in    written  duplicates  dead_lettered  files  commit")
    for t in r.tables {
        let commit = t.skippedCommit ? "skipped (already committed)" : t.commitVersion.map { "v\($0)" } ?? "-"
        print(t.kind.name.padding(toLength: 5, withPad: " ", startingAt: 0)
              + String(format: "  %10d %10d  %10d  %13d  %5d  ", t.recordsIn, t.written, t.duplicates, t.deadLettered, t.files) + commit)
        if let p = t.deadLetterPath { print("       dead letters: \(p) \(t.deadLetterReasons.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))") }
    }
}

// MARK: - land

struct LandSourceOptions: ParsableArguments {
    @Option(help: "Embedded log folder to land from (default when --kafka is not given).") var dataDir: String = "data"
    @Option(help: "Land from a Kafka cluster instead: host:port[,host:port...].") var kafka: String?
    @Option(help: "Topics are <prefix>.pin|geo|user.") var topicPrefix: String = "pinbench"
    @Option(help: "Records per landed object (the sink's flush.size).") var flushRecords: Int = 10_000

    func validateOptions() throws {
        guard flushRecords >= 1 else { throw ValidationError("--flush-records must be ≥ 1") }
    }

    func source() throws -> LandingSource {
        if let kafka {
            guard let brokers = BrokerAddress.parseList(kafka) else { throw ValidationError("--kafka needs host:port[,host:port...]") }
            return .kafka(try KafkaConsumer(bootstrap: brokers))
        }
        return .embedded(dataDir: dataDir)
    }

    var topics: [String] { RecordKind.topics(prefix: topicPrefix) }
}

struct Land: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Land the three topics in the Confluent S3 sink layout (topics/<topic>/partition=<p>/<topic>+<p>+<offset>.json).",
        discussion: "Object names come from offsets and a re-run restarts at the last object, so re-running after a crash gives the same objects.")

    @OptionGroup var source: LandSourceOptions
    @Option(help: "Landing root: a folder, or s3://bucket/prefix.") var to: String
    @Option(help: "Only records with a Kafka timestamp on this UTC day (YYYY-MM-DD).") var date: String?
    @Option(help: "Write the JSON report here.") var reportJson: String?
    @Flag(help: "Create the S3 bucket when it does not exist (s3:// targets).") var createBucket = false
    @OptionGroup var aws: AWSOptions

    func validate() throws {
        try source.validateOptions()
        if let date { _ = try dayRange(date) }
    }

    func run() throws {
        do {
            var o = LandingOptions(root: to, topics: source.topics)
            o.flushRecords = source.flushRecords
            if to.hasPrefix("s3://") {
                guard let (bucket, prefix) = S3Client.parseURL(to) else { fail("--to s3://bucket/prefix: cannot read \(to)") }
                let s3 = try S3Client(config: aws.resolve(), bucket: bucket)
                if createBucket { try s3.createBucket() }
                o.root = prefix
                o.s3 = s3
            }
            if let date { o.timeRange = try dayRange(date) }
            let r = try Lander(options: o).run(from: try source.source())
            printLanding(r, root: to)
            if let reportJson { try r.json().serialized().write(toFile: reportJson, atomically: true, encoding: .utf8) }
        } catch {
            fail("\(error)")
        }
    }
}

func printLanding(_ r: LandingReport, root: String) {
    print("landed \(r.records) records in \(r.objects) objects (\(r.bytes) bytes) to \(root)/topics in \(String(format: "%.2f", r.seconds)) s"
          + (r.skippedByTime > 0 ? ", \(r.skippedByTime) outside the day" : "")
          + (r.nullValues > 0 ? ", \(r.nullValues) null values skipped" : "")
          + (r.unlandable > 0 ? ", \(r.unlandable) non-JSON multi-line values in \(root)/_unlandable" : ""))
}

/// [start, end) of a UTC day in ms.
func dayRange(_ date: String) throws -> Range<Int64> {
    guard date.count == 10, let micros = UTCTime.parseMicros(date + " 00:00:00") else {
        throw ValidationError("--date needs YYYY-MM-DD, got '\(date)'")
    }
    let ms = micros / 1000
    return ms..<(ms + 86_400_000)
}

// MARK: - analyze

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer the nine questions (spec §4) over the cleaned tables; writes q1.csv … q9.csv.")

    @Option(help: "Tables root (as written by pinbench clean): a folder or s3://bucket/prefix.") var tables: String
    @Option(help: "Folder for q1.csv … q9.csv.") var out: String
    @Flag(help: "Do not print the tables.") var quiet = false
    @OptionGroup var aws: AWSOptions

    func run() throws {
        do {
            try withTables(tables, aws: aws, pullData: true, push: false) { dir in try runAnalysis(tables: dir, out: out, quiet: quiet) }
        } catch {
            fail("\(error)")
        }
    }
}

func runAnalysis(tables: String, out: String, quiet: Bool) throws {
    let a = try Analysis(tables: tables)
    let results = a.run()
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    for r in results {
        try r.csv().write(toFile: "\(out)/\(r.name).csv", atomically: true, encoding: .utf8)
        if !quiet { print(r.table()) }
    }
    let (p, g, u) = a.rowCounts
    print("analysed pin \(p), geo \(g), user \(u) rows; wrote \(out)/q1.csv … q9.csv")
}

// MARK: - batch

struct Batch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One day's batch job: land → clean → analyze (what the Airflow DAG runs daily).",
        discussion: """
            Lands the records whose Kafka timestamp falls on --date into <landing>/date=<date>, cleans them into \
            <tables> (one Delta commit per table with txn id pinbench-batch-<date>: a retried day is not appended \
            twice), and writes the analyses to <out>/date=<date>/q1.csv … q9.csv.
            """)

    @OptionGroup var source: LandSourceOptions
    @Option(help: "The UTC day to process (YYYY-MM-DD).") var date: String
    @Option(help: "Landing root.") var landing: String = "out/landing"
    @Option(help: "Tables root.") var tables: String = "out/tables"
    @Option(help: "Analysis output root.") var out: String = "out/analysis"
    @Option(help: "Parquet page compression: snappy, zstd, gzip or none.") var compression: CompressionCodec = .snappy

    func validate() throws {
        try source.validateOptions()
        _ = try dayRange(date)
        guard compression != .lz4 else { throw ValidationError("--compression lz4 is not written to Parquet") }
    }

    func run() throws {
        do {
            let root = "\(landing)/date=\(date)"
            var lo = LandingOptions(root: root, topics: source.topics)
            lo.flushRecords = source.flushRecords
            lo.timeRange = try dayRange(date)
            let landed = try Lander(options: lo).run(from: try source.source())
            printLanding(landed, root: root)
            var co = CleanOptions(tablesDir: tables)
            co.write.codec = compression
            co.transaction = (appId: "pinbench-batch-\(date)", version: 0)
            let src = CleanSource.landing(root, topicPrefix: source.topicPrefix)
            let done = try RecordKind.allCases.allSatisfy { k in
                (try DeltaLog(table: "\(tables)/\(k.name)").snapshot())?.transactions["pinbench-batch-\(date)/\(k.name)"] != nil
            }
            if done {
                print("\(date) is already in \(tables) (Delta txn pinbench-batch-\(date)): not cleaned again")
            } else {
                let report = try Cleaner.run(source: src, options: co)
                printCleanReport(report, source: src)
            }
            try runAnalysis(tables: tables, out: "\(out)/date=\(date)", quiet: true)
        } catch {
            fail("\(error)")
        }
    }
}

// MARK: - stream

struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Read the Kinesis streams streaming-<prefix>-pin|geo|user into Delta tables (cleaned like the batch path).",
        discussion: "Each commit records the last sequence number read from every shard, so a re-run resumes where the table ends.")

    @Option(help: "Tables root: <tables>/pin, <tables>/geo, <tables>/user; a folder or s3://bucket/prefix.") var tables: String
    @Option(help: "Streams are streaming-<prefix>-pin|geo|user.") var streamPrefix: String = "pinbench"
    @Flag(help: "Keep reading until interrupted (or --idle passes without records).") var follow = false
    @Option(help: "With --follow: stop when no record came for this long, e.g. 30s.") var idle: Duration?
    @Option(help: "Partition columns, e.g. pin=category,geo=country,user=none (default: pin=category).") var partitionBy: String?
    @Option(help: "Records per round (each round is one commit per table).") var roundRecords: Int = 500_000
    @Option(help: "Write the JSON report here.") var reportJson: String?
    @OptionGroup var aws: AWSOptions

    func validate() throws {
        _ = try parsePartitionBy(partitionBy)
        guard roundRecords >= 1 else { throw ValidationError("--round-records must be ≥ 1") }
    }

    func run() throws {
        var o = StreamOptions(tablesDir: tables)
        o.streamPrefix = streamPrefix
        o.follow = follow
        o.idleMs = idle.map { $0.seconds * 1000 }
        o.roundRecords = roundRecords
        do {
            for (k, v) in try parsePartitionBy(partitionBy) { o.partitionBy[k] = v }
            let stop = StopFlag()
            signal(SIGINT, SIG_IGN)
            let sigint = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
            sigint.setEventHandler { stop.set() }
            sigint.resume()
            let awsConfig = aws.resolve()
            let r = try withTables(tables, aws: aws, pullData: false, push: true) { dir in
                var so = o
                so.tablesDir = dir
                let st = try StreamTables(options: so, aws: awsConfig)
                st.shouldStop = { stop.isSet }
                return try st.run()
            }
            print("streamed \(r.records) records (\(r.kinesisRecords) Kinesis records) in \(r.rounds) rounds: \(r.written) rows written, \(r.duplicates) duplicates dropped, \(r.deadLettered) dead-lettered, \(r.commits) commits, resumed \(r.resumedShards) shards, \(String(format: "%.2f", r.seconds)) s")
            if let reportJson { try r.json().serialized().write(toFile: reportJson, atomically: true, encoding: .utf8) }
        } catch let e as AWSError {
            fail(e.message)
        } catch {
            fail("\(error)")
        }
    }
}

final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

// MARK: - put-records

struct PutRecordsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put-records",
        abstract: "Send every line of a file to one Kinesis stream with PutRecords (keys: line numbers); prints a JSON summary.")

    @Option(help: "Stream name.") var stream: String
    @Option(help: "File of records, one per line (e.g. pin.jsonl from pinbench emulate).") var file: String
    @Option(help: "PutRecords calls in flight.") var inFlight: Int = 1
    @Flag(help: "KPL-compatible aggregation.") var aggregate = false
    @OptionGroup var aws: AWSOptions

    func run() throws {
        let cpu0 = processCPUSeconds()
        let data: MappedFile
        do { data = try MappedFile(path: file) } catch { fail(error.message) }
        let t0 = Date()
        do {
            let client = try KinesisClient(config: aws.resolve())
            let summary = try client.describeStreamSummary(stream)
            var pc = KinesisProducerConfig(streams: [stream])
            pc.maxInFlight = max(1, inFlight)
            pc.aggregate = aggregate
            // A file's records are all there at once: batches are sealed when full (or at the end), never by
            // linger, so the calls do not depend on how fast this machine encodes.
            pc.lingerMs = 3_600_000
            if let kib = summary.maxRecordSizeKiB { pc.maxRecordBytes = max(pc.maxRecordBytes, kib * 1024) }
            let producer = KinesisProducer(service: client.service, config: pc)
            var accepted = 0, sent = 0
            var failures: [String: Int] = [:]
            producer.onAccepted = { _, t in accepted += t.count }
            producer.onFailed = { _, code, _, n in failures[code, default: 0] += n }
            let key = ByteBuffer(capacity: 32)
            let all = data.bytes
            if let base = all.baseAddress {
                var start = 0
                while start < all.count, let nl = memchr(base + start, 0x0A, all.count - start) {
                    let i = UnsafeRawPointer(nl) - base
                    key.reset()
                    key.appendDecimal(sent)
                    producer.send(stream: 0, key: key.bytes, data: UnsafeRawBufferPointer(start: base + start, count: i - start), token: 0)
                    start = i + 1
                    sent += 1
                }
            }
            producer.flush()
            let out: JSONValue = .object([
                ("peer", .string("pinbench \(pinbenchVersion)")), ("records", .int(sent)), ("accepted", .int(accepted)),
                ("failed", .object(failures.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
                ("retried", .object(producer.stats.retried.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
                ("requests", .int(producer.stats.requests)),
                ("seconds", .double(Date().timeIntervalSince(t0))), ("cpu_seconds", .double(processCPUSeconds() - cpu0)),
            ])
            print(out.serialized(pretty: false))
            if accepted != sent { throw ExitCode(2) }
        } catch let e as AWSError {
            fail(e.message)
        }
    }
}
