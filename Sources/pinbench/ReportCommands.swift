import AWSClient
import ArgumentParser
import Codecs
import Foundation
import Pipeline
import Reports
import JSON

enum Scenario: String, ExpressibleByArgument, CaseIterable {
    case embedded, kafka, kinesis, serve, clean, all
}

enum OutputFormat: String, ExpressibleByArgument {
    case text, json
}

extension SweepGoal: ExpressibleByArgument {}

/// Settings every scenario shares.
struct ScenarioOptions: ParsableArguments {
    @Option(help: "Measured time per run after the warm-up, e.g. 10s.") var duration: Duration = Duration(argument: "10s")!
    @Option(help: "Warm-up before measuring (reported apart).") var warmup: Duration = Duration(argument: "2s")!
    @Option(help: "Posts per second, open loop (latency then counts from each post's schedule).") var rate: Double?
    @Option(help: "Kafka bootstrap brokers for the kafka scenario.") var kafka: String?
    @Option(help: "Generator threads.") var threads: Int = max(1, ProcessInfo.processInfo.activeProcessorCount - 1)
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Flag(help: "No progress line.") var quiet = false
    @Option(help: "What to print at the end: text or json.") var format: OutputFormat = .text

    /// Bad values end the command with one line (not the usage text).
    func checkTimes() {
        guard duration.seconds > 0 else { fail("--duration must be > 0 (got \(duration.seconds) s)") }
        guard warmup.seconds >= 0 else { fail("--warmup must be ≥ 0") }
        if let r = rate, !(r > 0) { fail("--rate must be > 0") }
    }

    func config(dataDir: String) -> RunConfig {
        var c = RunConfig()
        c.duration = duration.seconds + warmup.seconds
        c.warmup = warmup.seconds
        c.rate = rate
        c.threads = threads
        c.seed = seed
        c.dataDir = dataDir
        return c
    }
}

/// Runs one configured flood with a progress line on a terminal.
func runScenario(_ scenario: Scenario, _ config: RunConfig, quiet: Bool, label: String) throws -> RunResult {
    var c = config
    let engine: any FloodEngine
    do {
        switch scenario {
        case .embedded: engine = try EmbeddedRun(config: c)
        case .kafka:
            c.createTopics = true
            c.topicPrefix = "bench\(UInt32.random(in: 0...UInt32.max))"
            engine = try KafkaRun(config: c)
        case .kinesis:
            guard var k = c.kinesis else { throw ConfigError("the kinesis scenario needs --kinesis") }
            k.createStreams = true
            k.streamPrefix = "bench\(UInt32.random(in: 0...UInt32.max))"
            c.kinesis = k
            engine = try KinesisRun(config: c)
        default: throw ConfigError("scenario \(scenario.rawValue) is not available in this build")
        }
    } catch let e as ConfigError { fail(e.message) }
    let tty = isatty(2) != 0 && !quiet
    let total = c.duration ?? 0
    let r = try engine.run { s in
        guard tty else { return }
        let rps = s.seconds > 0 ? Double(s.recordsOut) / s.seconds : 0
        let line = "\r[\(label)] \(fmt(s.seconds, 0))/\(fmt(total, 0))s  \(fmt(rps / 1e6, 3)) M rec/s  queue \(s.queueDepth)   "
        FileHandle.standardError.write(Data(line.utf8))
    }
    if tty { FileHandle.standardError.write(Data("\n".utf8)) }
    return r
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run named, repeatable scenarios and write a report folder (report.json, report.md, report.html with plots).")

    @Option(help: "embedded, kafka (needs --kafka), kinesis, serve, clean or all.") var scenario: String = "embedded"
    @Option(help: "Report folder.") var out: String
    @OptionGroup var options: ScenarioOptions
    @Option(help: "Partitions per topic.") var partitions: Int = 3
    @Option(help: "none, gzip, snappy, lz4, zstd.") var compression: CompressionCodec = .lz4
    @Option(help: "Batch size.") var batchBytes: ByteSize = ByteSize(argument: "1000000")!
    @Option(help: "Linger (ms).") var lingerMs: Double = 5
    @Flag(help: "Keep the embedded scenario's log (in OUT/data) instead of deleting it.") var keepData = false
    @Flag(help: "Enable the kinesis scenario (streams bench<random>-pin|geo|user are created with --shards).") var kinesis = false
    @Option(help: "Shards per stream (kinesis scenario).") var shards: Int = 2
    @Flag(help: "Kinesis: one PutRecords call in flight per stream (needed against moto).") var ordered = false
    @OptionGroup var aws: AWSOptions

    func run() throws {
        options.checkTimes()
        guard let scenario = Scenario(rawValue: self.scenario) else {
            fail("unknown scenario \"\(self.scenario)\": use one of \(Scenario.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let unavailable: [Scenario: String] = [
            .serve: "is not a bench scenario: run perf/serve_vs_nginx.sh (wrk against pinbench serve and nginx)",
            .clean: "is not a bench scenario yet: time `pinbench clean` (its report has records/s) or run perf/clean_vs_duckdb_polars.sh",
        ]
        var wanted: [Scenario] = scenario == .all ? [.embedded, .kafka, .kinesis, .serve, .clean] : [scenario]
        var skipped: [(String, String)] = []
        if scenario != .all, let why = unavailable[scenario] { fail("scenario \(scenario.rawValue) \(why)") }
        if scenario == .kafka && options.kafka == nil { fail("the kafka scenario needs --kafka host:port") }
        if scenario == .kinesis && !kinesis { fail("the kinesis scenario needs --kinesis (and AWS options: --aws-endpoint, credentials)") }
        wanted = wanted.filter { s in
            if let why = unavailable[s] { skipped.append((s.rawValue, why)); return false }
            if s == .kafka && options.kafka == nil { skipped.append(("kafka", "no --kafka given")); return false }
            if s == .kinesis && !kinesis { skipped.append(("kinesis", "no --kinesis given")); return false }
            return true
        }
        var results: [ScenarioFigures] = []
        for s in wanted {
            let dataDir = "\(out)/data"
            if s == .embedded { try? FileManager.default.removeItem(atPath: dataDir) }
            var c = options.config(dataDir: dataDir)
            c.partitions = partitions
            c.compression = compression
            c.batchBytes = batchBytes.bytes
            c.lingerMs = lingerMs
            c.kafka = s == .kafka ? options.kafka : nil
            if s == .kinesis {
                var k = KinesisSettings(aws: aws.resolve())
                k.shards = shards
                k.ordered = ordered
                c.kinesis = k
            }
            let r = try runScenario(s, c, quiet: options.quiet, label: s.rawValue)
            if s == .embedded && !keepData { try? FileManager.default.removeItem(atPath: dataDir) }
            results.append(ScenarioFigures(name: s.rawValue, result: r))
        }
        let folder = BenchReport.build(results, skipped: skipped, command: CommandLine.arguments.joined(separator: " "))
        do { try folder.write(to: out) } catch { fail("cannot write the report to \(out): \(error.localizedDescription)") }
        if options.format == .json {
            print(folder.json.serialized(pretty: false))
        } else {
            for f in results {
                print("\(f.name): \(fmt(f.recordsPerSecond, 0)) records/s, \(fmt(f.megabytesPerSecond, 1)) MB/s, p99 \(fmt(f.latencyMs(99), 2)) ms, bottleneck: \(f.bottleneck)")
            }
            for (s, why) in skipped { print("\(s): skipped (\(why))") }
            print("report: \(out)/report.html")
        }
        if results.contains(where: { $0.result.error != nil || !$0.result.accountingHolds }) { throw ExitCode(2) }
    }
}

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a grid of batch, linger, compression and partition settings; mark the Pareto front; recommend flags.")

    @Option(help: "Comma-separated batch sizes, e.g. 16k,256k,1m.") var batchBytes: String = "1000000"
    @Option(help: "Comma-separated linger values (ms).") var lingerMs: String = "5"
    @Option(help: "Comma-separated codecs.") var compression: String = "lz4"
    @Option(help: "Comma-separated partition counts.") var partitions: String = "3"
    @Option(help: "embedded or kafka.") var scenario: String = "embedded"
    @Option(help: "Runs per point (the median is reported).") var `repeat`: Int = 3
    @Option(help: "throughput, latency or balanced.") var goal: SweepGoal = .balanced
    @Option(help: "Report folder.") var out: String
    @OptionGroup var options: ScenarioOptions

    func parseList<T>(_ s: String, _ name: String, _ f: (String) -> T?) -> [T] {
        let parts = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !parts.isEmpty else { fail("--\(name) is empty: the grid needs at least one value") }
        return parts.map { p in
            guard let v = f(p) else { fail("--\(name): cannot read \"\(p)\"") }
            return v
        }
    }

    var grid: [SweepSettings] {
        let b = parseList(batchBytes, "batch-bytes") { ByteSize(argument: $0)?.bytes }
        let l = parseList(lingerMs, "linger-ms") { Double($0).flatMap { $0 >= 0 ? $0 : nil } }
        let c = parseList(compression, "compression") { CompressionCodec(name: $0)?.description }
        let p = parseList(partitions, "partitions") { Int($0).flatMap { $0 > 0 ? $0 : nil } }
        return b.flatMap { b in l.flatMap { l in c.flatMap { c in p.map { SweepSettings(batchBytes: b, lingerMs: l, compression: c, partitions: $0) } } } }
    }

    func run() throws {
        options.checkTimes()
        guard `repeat` >= 1 else { fail("--repeat must be ≥ 1") }
        guard let scenario = Scenario(rawValue: self.scenario), scenario == .embedded || scenario == .kafka else {
            fail("--scenario for a sweep is embedded or kafka (got \"\(self.scenario)\")")
        }
        if scenario == .kafka && options.kafka == nil { fail("the kafka scenario needs --kafka host:port") }
        var points = grid.map { SweepPoint(settings: $0) }
        let total = points.count * `repeat`
        var n = 0
        for i in points.indices {
            for _ in 0..<`repeat` {
                n += 1
                let s = points[i].settings
                let dataDir = "\(out)/.sweep-data"
                try? FileManager.default.removeItem(atPath: dataDir)
                var c = options.config(dataDir: dataDir)
                c.batchBytes = s.batchBytes
                c.lingerMs = s.lingerMs
                c.compression = CompressionCodec(name: s.compression)!
                c.partitions = s.partitions
                c.kafka = scenario == .kafka ? options.kafka : nil
                let r = try runScenario(scenario, c, quiet: options.quiet, label: "\(n)/\(total) \(s.label)")
                try? FileManager.default.removeItem(atPath: dataDir)
                let f = ScenarioFigures(name: s.label, result: r)
                points[i].repeats.append((f.recordsPerSecond, f.latencyMs(99), f.latencyMs(50), f.megabytesPerSecond,
                                          r.recordsOut > 0 ? r.cpuSeconds / Double(r.recordsOut) * 1e6 : 0))
            }
        }
        let folder = Sweep.report(points: points, goal: goal, command: CommandLine.arguments.joined(separator: " "), scenario: scenario.rawValue)
        do { try folder.write(to: out) } catch { fail("cannot write the report to \(out): \(error.localizedDescription)") }
        if options.format == .json {
            print(folder.json.serialized(pretty: false))
        } else {
            let front = Sweep.paretoFront(points)
            for (i, p) in points.enumerated() {
                print("\(front.contains(i) ? "*" : " ") \(p.settings.label.padding(toLength: 24, withPad: " ", startingAt: 0)) \(fmt(p.recordsPerSecond, 0)) records/s  p99 \(fmt(p.p99Ms, 2)) ms")
            }
            if let i = Sweep.recommend(points, goal: goal) {
                print("recommended (\(goal.rawValue)): \(points[i].settings.flags)")
            }
            print("report: \(out)/report.html")
        }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Work with report folders.", subcommands: [CompareReports.self])

    struct CompareReports: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compare", abstract: "Put two reports side by side with the ratio B/A of every figure.")
        @Argument(help: "Report A (folder or report.json).") var a: String
        @Argument(help: "Report B (folder or report.json).") var b: String
        @Option(help: "text or json.") var format: OutputFormat = .text

        func run() throws {
            let ra: Any, rb: Any
            do {
                ra = try Compare.load(a)
                rb = try Compare.load(b)
            } catch { fail("\(error)") }
            let rows = Compare.rows(ra, rb)
            if format == .json {
                let v: JSONValue = .array(rows.map { r in
                    .object([("figure", .string(r.path)), ("a", r.a.map { .double($0) } ?? .null), ("b", r.b.map { .double($0) } ?? .null),
                             ("ratio", r.ratio.map { .double(($0 * 1e6).rounded() / 1e6) } ?? .null)])
                })
                print(v.serialized(pretty: false))
            } else {
                print(Compare.table(rows, labelA: a, labelB: b), terminator: "")
            }
        }
    }
}
