import AWSClient
import Analytics
import ArgumentParser
import Console
import BatchJob
import Bytes
import Cleaning
import Codecs
import Foundation
import JSON
import KafkaClient
import Landing
import PinModel
import Pipeline
import Platform
import Streaming
import TableSync
import TableStore

// MARK: - clean

struct Clean: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Clean pin, geo and user records into Delta tables of Parquet files (spec §3).",
        discussion: """
            --from is a folder with pin.jsonl/geo.jsonl/user.jsonl (pinbench emulate), a landing root \
            (pinbench land: topics/<prefix>.<kind>/partition=<p>/...) or an embedded data dir (pinbench run). \
            Each run appends one Delta commit per table; refused records go to <tables>/_dead_letter/.

            """ + examples("pinbench clean --from data --tables out/tables", "pinbench clean --from out/landing --tables s3://bucket/tables --partition-by pin=category,geo=country"))

    @Option(help: "Input folder (jsonl files, landing root or embedded data dir).") var from: String
    @Option(help: "Tables root: <tables>/pin, <tables>/geo, <tables>/user; a folder or s3://bucket/prefix.") var tables: String
    @Option(help: "Topics are <prefix>.pin|geo|user (landing root and embedded log).") var topicPrefix: String = "pinbench"
    @Option(help: "Parquet page compression.") var compression: ParquetCodec = ParquetCodec(.snappy)
    @Option(help: "Codec level (zstd, gzip).") var compressionLevel: Int32?
    @Option(help: "Partition columns, e.g. pin=category,geo=country,user=none (default: pin=category).") var partitionBy: String?
    @Option(help: "Rows per row group.") var rowGroupRows: Int = 131_072
    @Option(help: "Records longer than this go to the dead-letter file.") var maxRecordBytes: ByteSize = ByteSize(1 << 20)
    @Option(help: "Write the JSON report here.") var reportJson: String?
    @Flag(help: "Clean the three tables one after another instead of in parallel.") var sequential = false
    @Option(help: "The run's id (default: from the input's files and sizes); a table that holds it is not appended again.") var txn: String?
    @Flag(help: "No progress line.") var quiet = false
    @OptionGroup var aws: AWSOptions

    func validate() throws {
        guard rowGroupRows >= 1 else { throw ValidationError("--row-group-rows must be ≥ 1") }
        guard maxRecordBytes.bytes >= 1, maxRecordBytes.bytes <= 1 << 30 else { throw ValidationError("--max-record-bytes must be in 1 B ... 1 GiB") }
        _ = try parsePartitionBy(partitionBy)
    }

    func run() throws {
        var o = CleanOptions(tablesDir: tables)
        o.write.codec = compression.codec
        o.write.level = compressionLevel
        o.write.rowGroupRows = rowGroupRows
        o.maxRecordBytes = maxRecordBytes.bytes
        o.parallel = !sequential
        for (k, v) in try parsePartitionBy(partitionBy) { o.partitionBy[k] = v }
        let source: CleanSource
        do { source = try CleanSource.detect(from, topicPrefix: topicPrefix) } catch { throw ValidationError("\(error)") }
        let work = LongWork("clean", quiet: quiet)
        defer { work.finish() }
        o.progress = work.counter
        o.stop = work.stop
        let report: CleanReport
        do {
            // A run id from the input's identity (or --txn): a re-run of the same input after a crash appends
            // only the tables that do not hold its commit yet.
            let id = try source.identity() ?? "memory"
            let appId = "pinbench-clean-" + (txn ?? id)
            o.transaction = (appId: appId, version: 0)
            report = try TableLocation.with(tables, aws: { try aws.resolve() }, pullData: false, push: true) { dir in
                o.tablesDir = dir
                defer { work.endProgress() }
                let done = try Cleaner.committedKinds(tablesDir: dir, appId: appId)
                o.kinds = RecordKind.allCases.filter { !done.contains($0) }
                if !done.isEmpty {
                    FileHandle.standardError.write(Data("\(done.map(\.name).joined(separator: ", ")) already hold\(done.count == 1 ? "s" : "") this input (txn \(appId)): not appended again (--txn NAME appends it as a new run)\n".utf8))
                }
                return try Cleaner.run(source: source, options: o)
            }
        } catch let e as CleanError where e.isInterrupted {
            FileHandle.standardError.write(Data("pinbench: \(e)\n".utf8))
            throw ExitCode(work.exitCode ?? 130)
        }
        print(report.summary(source: source), terminator: "")
        if let reportJson { try writeText(report.json().serialized(), to: reportJson) }
    }
}

func parsePartitionBy(_ s: String?) throws -> [(RecordKind, String?)] {
    guard let s else { return [] }
    do { return try CleanOptions.parsePartitionBy(s) } catch { throw ValidationError("\(error)") }
}

// MARK: - land

struct LandSourceOptions: ParsableArguments {
    @Option(help: "Embedded log folder to land from (default when --kafka is not given).") var dataDir: String = "data"
    @Option(help: "Land from a Kafka cluster instead: host:port[,host:port...].") var kafka: String?
    @OptionGroup var security: KafkaSecurityOptions
    @Option(help: "Topics are <prefix>.pin|geo|user.") var topicPrefix: String = "pinbench"
    @Option(help: "Records per landed object (the sink's flush.size).") var flushRecords: Int = 10_000

    func validate() throws {
        guard flushRecords >= 1 else { throw ValidationError("--flush-records must be ≥ 1") }
        if let kafka, BrokerAddress.parseList(kafka) == nil { throw ValidationError("--kafka needs host:port[,host:port...]") }
    }

    /// `aws`: the command's AWS options when it has them (MSK IAM signs with them), else the defaults.
    func source(aws given: AWSOptions? = nil) throws -> LandingSource {
        if let kafka, let brokers = BrokerAddress.parseList(kafka) {
            // A secured cluster: the same --kafka-config, -X and named flags as run and produce.
            let aws = try given ?? AWSOptions.parse([])
            return .kafka(try KafkaConsumer(bootstrap: brokers, security: try security.connectionSecurity(try security.properties(), aws: aws, bootstrap: brokers)))
        }
        return .embedded(dataDir: dataDir)
    }
}

/// `--date YYYY-MM-DD`, checked in `validate()`.
func checkDay(_ date: String) throws -> Range<Int64> {
    guard let r = LandingOptions.dayRange(date) else { throw ValidationError("--date needs YYYY-MM-DD, got '\(date)'") }
    return r
}

struct Land: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Land the three topics in the Confluent S3 sink layout (topics/<topic>/partition=<p>/<topic>+<p>+<offset>.json).",
        discussion: "Object names come from offsets and a re-run restarts at the last object, so re-running after a crash gives the same objects.\n\n" + examples("pinbench land --data-dir data --to out/landing", "pinbench land --kafka localhost:9092 --to s3://bucket/landing --create-bucket"))

    @OptionGroup var source: LandSourceOptions
    @Option(help: "Landing root: a folder, or s3://bucket/prefix.") var to: String
    @Option(help: "Only records with a Kafka timestamp on this UTC day (YYYY-MM-DD).") var date: String?
    @Option(help: "Write the JSON report here.") var reportJson: String?
    @Flag(help: "Create the S3 bucket when it does not exist (s3:// targets).") var createBucket = false
    @Flag(help: "No progress line.") var quiet = false
    @OptionGroup var aws: AWSOptions

    func validate() throws {
        if let date { _ = try checkDay(date) }
        if to.hasPrefix("s3://") && S3Client.parseURL(to) == nil { throw ValidationError("--to s3://bucket/prefix: cannot read \(to)") }
    }

    func run() throws {
        var o = LandingOptions(root: to, topics: RecordKind.topics(prefix: source.topicPrefix))
        o.flushRecords = source.flushRecords
        if let (bucket, prefix) = S3Client.parseURL(to), to.hasPrefix("s3://") {
            let s3 = try S3Client(config: aws.resolve(), bucket: bucket)
            if createBucket { try s3.createBucket() }
            o.root = prefix
            o.s3 = s3
        }
        if let date { o.timeRange = try checkDay(date) }
        let work = LongWork("land", quiet: quiet)
        defer { work.finish() }
        o.progress = work.counter
        o.stop = work.stop
        let r: LandingReport
        do { r = try Lander(options: o).run(from: try source.source(aws: aws)) } catch let e as AWSError where e.code == "NoSuchBucket" {
            throw RunFailure("\(e.message) (add --create-bucket to create it)")
        }
        work.endProgress()
        print(r.summary(root: to))
        if let reportJson { try writeText(r.json().serialized(), to: reportJson) }
        if let code = work.exitCode { throw ExitCode(code) }
    }
}

// MARK: - analyze

struct Analyze: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer the nine questions (spec §4) over the cleaned tables; writes q1.csv … q9.csv.",
        discussion: examples("pinbench analyze --tables out/tables --out out/analysis"))

    @Option(help: "Tables root (as written by pinbench clean): a folder or s3://bucket/prefix.") var tables: String
    @Option(help: "Folder for q1.csv … q9.csv.") var out: String
    @Flag(help: "Do not print the tables.") var quiet = false
    @OptionGroup var aws: AWSOptions

    func run() throws {
        let counter = ProgressCounter()
        let ticker = Ticker(ProgressLine(quiet: quiet)) { elapsed in "analyze] \(formatCount(Double(counter.count))) rows read  \(formatDuration(elapsed))" }
        let (results, rows) = try TableLocation.with(tables, aws: { try aws.resolve() }, pullData: true, push: false) { dir in
            defer { ticker.stop() }
            return try Analysis.writeAll(tables: dir, out: out, progress: counter)
        }
        if !quiet { for r in results { print(r.table()) } }
        print("analysed pin \(rows.pin), geo \(rows.geo), user \(rows.user) rows; wrote \(out)/q1.csv … q9.csv")
    }
}

// MARK: - batch

struct Batch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One day's batch job: land → clean → analyze (what the Airflow DAG runs daily).",
        discussion: """
            Lands the records whose Kafka timestamp falls on --date into <landing>/date=<date>, cleans what of them \
            the tables do not hold yet (a re-run after new records arrived cleans just those; a retried day is not \
            appended twice), and writes the analyses of the day (--scope day) or of the whole tables (--scope all) \
            to <out>/date=<date>/q1.csv … q9.csv. A day without records is reported and not marked done.

            """ + examples("pinbench batch --data-dir data --date 2026-11-30", "pinbench batch --kafka localhost:9092 --date 2026-11-30 --scope all", "pinbench batch --date 2026-11-30 --force"))

    @OptionGroup var source: LandSourceOptions
    @Option(help: "The UTC day to process (YYYY-MM-DD).") var date: String
    @Option(help: "Landing root.") var landing: String = "out/landing"
    @Option(help: "Tables root.") var tables: String = "out/tables"
    @Option(help: "Analysis output root.") var out: String = "out/analysis"
    @Option(help: "Parquet page compression.") var compression: ParquetCodec = ParquetCodec(.snappy)
    @Flag(help: "Redo the day: its earlier rows leave the tables in the same commit that adds them again.") var force = false
    @Option(help: "What the analyses cover: day (the day's records) or all (the whole tables).") var scope: AnalysisScope = .day
    @Flag(help: "No progress line.") var quiet = false

    func validate() throws {
        _ = try checkDay(date)
    }

    func run() throws {
        var o = BatchDayOptions(date: date)
        o.landing = landing
        o.tables = tables
        o.out = out
        o.topicPrefix = source.topicPrefix
        o.flushRecords = source.flushRecords
        o.compression = compression.codec
        o.force = force
        o.scope = scope
        let work = LongWork("batch \(date)", quiet: quiet)
        defer { work.finish() }
        let r: BatchDayReport
        do { r = try BatchDay.run(o, from: try source.source(), progress: work.counter, stop: work.stop) } catch let e as CleanError where e.isInterrupted {
            work.endProgress()
            FileHandle.standardError.write(Data("pinbench: \(e)\n".utf8))
            throw ExitCode(work.exitCode ?? 130)
        }
        work.endProgress()
        print(r.summary(o), terminator: "")
    }
}

// MARK: - stream

struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "Read the Kinesis streams streaming-<prefix>-pin|geo|user into Delta tables (cleaned like the batch path).",
        discussion: "Each commit records the last sequence number read from every shard, so a re-run resumes where the table ends.\n\n" + examples("pinbench stream --tables out/stream-tables", "pinbench stream --tables s3://bucket/tables --follow --idle 30s"))

    @Option(help: "Tables root: <tables>/pin, <tables>/geo, <tables>/user; a folder or s3://bucket/prefix.") var tables: String
    @Option(help: "Streams are streaming-<prefix>-pin|geo|user.") var streamPrefix: String = "pinbench"
    @Flag(help: "Keep reading until interrupted (or --idle passes without records).") var follow = false
    @Option(help: "With --follow: stop when no record came for this long, e.g. 30s.") var idle: Seconds?
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
        o.idleMs = idle.map { $0.value * 1000 }
        o.roundRecords = roundRecords
        for (k, v) in try parsePartitionBy(partitionBy) { o.partitionBy[k] = v }
        let awsConfig = try aws.resolve()
        let work = LongWork(follow ? "stream (following)" : "stream", quiet: false)
        defer { work.finish() }
        let r = try TableLocation.with(tables, aws: { awsConfig }, pullData: false, push: true) { dir in
            var so = o
            so.tablesDir = dir
            let st = try StreamTables(options: so, aws: awsConfig)
            st.shouldStop = { work.stop.isSet }
            st.progress = work.counter
            return try st.run()
        }
        work.endProgress()
        print(r.summary)
        if let reportJson { try writeText(r.json().serialized(), to: reportJson) }
        if let code = work.exitCode { throw ExitCode(code) }
    }
}

// MARK: - put-records

struct PutRecordsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "put-records",
        abstract: "Send every line of a file to one Kinesis stream with PutRecords (keys: line numbers); prints a JSON summary.",
        discussion: examples("pinbench put-records --stream streaming-pinbench-pin --file posts/pin.jsonl --aws-endpoint http://127.0.0.1:5000"))

    @Option(help: "Stream name.") var stream: String
    @Option(help: "File of records, one per line (e.g. pin.jsonl from pinbench emulate; blank lines are skipped, a line may end in CRLF).") var file: String
    @Option(help: "PutRecords calls in flight.") var inFlight: Int = 1
    @Flag(help: "KPL-compatible aggregation.") var aggregate = false
    @OptionGroup var aws: AWSOptions

    func run() throws {
        let cpu0 = processCPUSeconds(), t0 = monotonicSeconds()
        let data = try MappedFile(path: file)
        let client = try KinesisClient(config: aws.resolve())
        let work = LongWork("put-records", quiet: false)
        defer { work.finish() }
        if work.showsProgress { work.counter.setTotal(Lines.count(in: data.bytes)) }
        let (r, stats) = try KinesisProducer.putFile(data.bytes, stream: stream, client: client, inFlight: max(1, inFlight), aggregate: aggregate,
                                                     progress: work.counter, stop: work.stop)
        work.endProgress()
        print(r.json(stats, peer: "pinbench \(pinbenchVersion)", seconds: monotonicSeconds() - t0, cpuSeconds: processCPUSeconds() - cpu0).serialized(pretty: false))
        if let code = work.exitCode { throw ExitCode(code) }
        if r.accepted != r.sent { throw ExitCode(2) }
    }
}
