import ArgumentParser
import Foundation
import Codecs
import Console
import ConsumerBench
import JSON
import KafkaClient
import Pipeline
import Platform
import Reports
import Workloads
import Sinks
import Synchronization

enum OutputFormat: String, ExpressibleByArgument { case text, json }

extension SweepGoal: ExpressibleByArgument {}
// `sweep --scenario` offers what a sweep runs (bench takes `all` and kinesis through its own parser).
extension Scenario: ExpressibleByArgument { public static var allValueStrings: [String] { ["embedded", "kafka"] } }

/// What every bench and sweep run shares.
struct ScenarioOptions: ParsableArguments {
    @Option(help: "Measured time per run after the warm-up, e.g. 10s.") var duration: Seconds = Seconds(10)
    @Option(help: "Warm-up before measuring (reported apart).") var warmup: Seconds = Seconds(2)
    @Option(help: "Posts per second, open loop (latency then counts from each post's schedule).") var rate: Double?
    @Option(help: "Generator threads: auto (the usable CPUs - 1; one under a --rate of at most 100,000 posts/s) or N.") var threads: ThreadCount = .auto
    @Option(help: "Random seed.") var seed: UInt64 = 1
    @Flag(help: "No progress line.") var quiet = false
    @Option(help: "What to print at the end: text or json.") var format: OutputFormat = .text
    @OptionGroup var kafka: KafkaOptionGroup
    @OptionGroup var kinesis: KinesisOptionGroup

    func validate() throws {
        guard duration.value > 0 else { throw ValidationError("--duration must be > 0 (got \(duration.value) s)") }
        guard warmup.value >= 0 else { throw ValidationError("--warmup must be ≥ 0") }
        if let r = rate, !(r > 0) { throw ValidationError("--rate must be > 0") }
        if let t = threads.count, t < 1 || t > 256 { throw ValidationError("--threads must be auto or 1...256") }
    }

    func config(_ sink: SinkSettings) -> RunConfig {
        var c = RunConfig()
        c.duration = duration.value + warmup.value
        c.warmup = warmup.value
        c.rate = rate
        c.threads = threads.generators(for: c)
        c.seed = seed
        c.sink = sink
        return c
    }

    func backend(_ s: Scenario, dataDir: String) throws -> Backend? {
        try s.backend(dataDir: dataDir, kafka: kafka.options(aws: kinesis.aws), kinesis: kinesis.options())
    }

    func progress(_ label: String) -> (ProgressSample) -> Void {
        let line = ProgressLine(quiet: quiet)
        let total = fmt(duration.value + warmup.value, 0)
        return { s in line.show("\(label) of \(total)s: " + s.line) }
    }
}

/// The flood running now, for a metrics scrape between the runs of a bench (which makes one runner per run).
final class LiveRunner: Sendable {
    let current = Mutex<FloodRunner?>(nil)
    func set(_ r: FloodRunner) { current.withLock { $0 = r } }
    var metrics: @Sendable (String) -> String { { labels in self.current.withLock { $0 }?.prometheus(labels: labels) ?? "" } }
}

/// A report folder is never overwritten: reports are what runs are compared by.
func refuseOverwrite(_ out: String) throws {
    if isRegularFile("\(out)/report.json") { throw ValidationError("\(out) already holds a report: give another --out, or remove it first") }
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run named, repeatable scenarios and write a report folder (report.json, report.md, report.html with plots).",
        discussion: "serve and clean are measured by perf/serve_vs_nginx.sh and perf/clean_vs_duckdb_polars.sh, not here.\n\n" + examples("pinbench bench --out bench --duration 10s", "pinbench bench --out bench-all --scenario all --kafka localhost:9092 --rate 100000"))

    @Option(help: "embedded (the default), kafka (needs --kafka) or kinesis (needs --kinesis); all runs each that was given.", transform: Bench.parseScenario)
    var scenario: [Scenario] = [.embedded]
    @Option(help: "Report folder.") var out: String
    @Flag(help: "Keep the embedded scenario's log (in OUT/data) instead of deleting it.") var keepData = false
    @Flag(help: "Also consume what the flood writes (kafka or kinesis): end-to-end latency while it runs, then each partition or shard read back alone (per-partition consumer throughput, the c of `plan`); OUT/consumer.json.") var consume = false
    @Option(help: "Run the load a workload file describes (YAML: backend, partitions, rate, duration, warm-up, workers; producerRate 0 searches).") var workload: String?
    @OptionGroup var options: ScenarioOptions
    @OptionGroup var sink: SinkOptions
    @OptionGroup var fleet: FleetOptions

    static let notScenarios = ["serve": "is not a bench scenario: run perf/serve_vs_nginx.sh (wrk against pinbench serve and nginx)",
                               "clean": "is not a bench scenario: time `pinbench clean` (its report has records/s) or run perf/clean_vs_duckdb_polars.sh"]

    /// `--scenario`: one scenario, or `all` (every scenario, those without their settings skipped).
    static func parseScenario(_ text: String) throws -> [Scenario] {
        if text == "all" { return Scenario.allCases }
        if let why = notScenarios[text] { throw ValidationError("scenario \(text) \(why)") }
        guard let s = Scenario(rawValue: text) else {
            throw ValidationError("unknown scenario \"\(text)\": use one of \((Scenario.allCases.map(\.rawValue) + ["all"]).joined(separator: ", "))")
        }
        return [s]
    }

    func validate() throws {
        try refuseOverwrite(out)
        if try fleet.slice() != nil, workload == nil, scenario.count > 1 {
            throw ValidationError("a fleet's worker runs one scenario: give --scenario embedded, kafka or kinesis with --worker")
        }
        if consume, workload != nil || scenario.count != 1 || scenario[0] == .embedded {
            throw ValidationError("--consume reads a cluster's topics or streams: give --scenario kafka (with --kafka) or --scenario kinesis (with --kinesis)")
        }
        if workload == nil, scenario.count == 1, try options.backend(scenario[0], dataDir: "") == nil { throw ValidationError(scenario[0].needs) }
    }

    /// `--workload FILE`: one run at its rate, or a rate search (bisection of steady runs under a p99 bound).
    func runWorkload(_ file: String) throws {
        let w: Workload
        do { w = try Workload.load(file: file) } catch { throw ValidationError(error.description) }
        var worker: WorkerSlice?
        if let s = try fleet.slice() {
            guard s.count == w.workers else { throw ValidationError("\(file) asks for \(w.workers) workers; --worker/--workers says \(s.count)") }
            worker = s
        } else if w.workers > 1 {
            guard let i = WorkerSlice.jobIndex(ProcessInfo.processInfo.environment), let s = WorkerSlice(index: i, count: w.workers) else {
                throw ValidationError("\(file) asks for \(w.workers) workers: run one pinbench per worker with JOB_COMPLETION_INDEX set (deploy/k8s/flood-job.yaml)")
            }
            worker = s
        }
        guard let scenario = Scenario(rawValue: w.backend.rawValue) else { throw ValidationError("\(file): unknown backend") }
        var kafka = try options.kafka.options(aws: options.kinesis.aws)
        if let b = w.bootstrap {
            guard let brokers = BrokerAddress.parseList(b) else { throw ValidationError("\(file): bootstrap needs host:port[,host:port...]") }
            kafka = kafka ?? KafkaOptions(bootstrap: brokers)
            kafka?.bootstrap = brokers
        }
        guard let backend = try scenario.backend(dataDir: "\(out)/data", kafka: kafka, kinesis: options.kinesis.options()) else {
            throw ValidationError("\(file): \(scenario.needs)")
        }
        let control = RunControl()
        let term = TerminationWatch { sig in control.stop(sig == SIGTERM ? .terminated : .interrupted) }
        defer { term.cancel() }
        var base = options.config(sink.settings)
        base.hlogPath = fleet.hlog
        base.publishLatency = fleet.metricsListen != nil
        let live = LiveRunner()
        func once(_ rate: Double, seconds: Double?, label: String) throws -> RunResult {
            var c = w.config(base, rate: rate, worker: worker)
            if let s = seconds { c.duration = s + w.warmupSeconds }
            return try fleet.around(c, metrics: live.metrics) {
                let r = try usageErrors { () throws(ConfigError) in
                    try ScenarioRunner.run(c, backend: backend, keepData: keepData, control: control, onRunner: live.set, onProgress: options.progress(label))
                }
                if worker != nil { try? makeDirectories(out); try writeText(r.json.serialized(), to: "\(out)/worker.json") }
                return r
            }
        }
        var results: [ScenarioFigures] = []
        var found: (rate: Double, p99: Double)?
        if let search = w.search, w.producerRate == 0 {
            // Bisection in log space: the highest rate whose steady run meets its schedule and keeps p99 under the bound.
            var lo = 0.0, hi = search.high
            for step in 0..<search.steps where control.reason == nil {
                let r = step == 0 ? search.low : Workload.nextRate(low: max(lo, search.low), high: hi)
                let res = try once(r, seconds: search.stepSeconds, label: "search \(step + 1)/\(search.steps)")
                ProgressLine(quiet: options.quiet).end()
                let p99 = res.recordsOut == 0 ? .infinity : res.percentileMs(99)
                let pass = !res.rateNotMet && res.error == nil && res.accountingHolds && p99 <= search.p99Ms
                results.append(ScenarioFigures(name: "\(formatCount(r)) posts/s: \(pass ? "pass" : "fail") (p99 \(String(format: "%.1f", p99)) ms)", result: res))
                if pass { lo = r; found = (r, p99) } else { hi = r }
                if !pass && step == 0 { break }  // even the lowest rate fails: nothing to bisect
            }
        } else {
            results.append(ScenarioFigures(name: w.name, result: try once(w.producerRate, seconds: nil, label: w.name)))
            ProgressLine(quiet: options.quiet).end()
        }
        let folder = BenchReport.build(results, skipped: [], command: CommandLine.arguments.joined(separator: " "), interrupted: term.exitCode != nil)
        do { try folder.write(to: out) } catch { throw RunFailure("cannot write the report to \(out): \(error)") }
        if let search = w.search, w.producerRate == 0 {
            let verdict: JSONValue = .object([
                ("workload", .string(w.name)), ("p99_bound_ms", .double(search.p99Ms)),
                ("highest_rate_posts_per_s", found.map { .double($0.rate.rounded()) } ?? .null),
                ("p99_ms_at_that_rate", found.map { .double(($0.p99 * 1000).rounded() / 1000) } ?? .null),
                ("steps", .array(results.map { .string($0.name) })),
            ])
            try writeText(verdict.serialized(), to: "\(out)/search.json")
            print(found.map { "\(w.name): highest rate with p99 ≤ \(search.p99Ms) ms: \(formatCount($0.rate)) posts/s (p99 \(String(format: "%.1f", $0.p99)) ms), after \(results.count) steady runs" }
                  ?? "\(w.name): no rate from \(formatCount(search.low)) posts/s up keeps p99 ≤ \(search.p99Ms) ms")
        } else {
            print(options.format == .json ? folder.json.serialized(pretty: false) : BenchReport.summary(results, skipped: []) + "report: \(out)/report.html")
        }
        if let code = term.exitCode { throw ExitCode(code) }
    }

    func run() throws {
        if let wf = workload { return try runWorkload(wf) }
        let control = RunControl()
        let term = TerminationWatch { sig in control.stop(sig == SIGTERM ? .terminated : .interrupted) }
        defer { term.cancel() }
        var results: [ScenarioFigures] = []
        var skipped: [(String, String)] = scenario.count > 1 ? Self.notScenarios.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } : []
        var config = options.config(sink.settings)
        fleet.apply(to: &config)
        var consumerSummary = ""
        let live = LiveRunner()
        for s in scenario where control.reason == nil {
            guard let backend = try options.backend(s, dataDir: "\(out)/data") else {
                skipped.append((s.rawValue, s.needs))
                continue
            }
            var c = config
            c.backend = backend
            let prefix = ScenarioRunner.freshPrefix()
            let consumer = consume ? ConsumerBench(backend: backend, topicPrefix: prefix) : nil
            consumer?.start()
            let r = try fleet.around(c, metrics: live.metrics) {
                let r = try usageErrors { () throws(ConfigError) in
                    try ScenarioRunner.run(config, backend: backend, keepData: keepData, control: control, topicPrefix: prefix, onRunner: live.set, onProgress: options.progress(s.rawValue))
                }
                if let consumer {
                    let figures: ConsumerFigures
                    do { figures = try consumer.finish(acknowledged: r.recordsOut) } catch { throw RunFailure("bench --consume: \(error)") }
                    try? makeDirectories(out)
                    try writeText(figures.json.serialized(), to: "\(out)/consumer.json")
                    consumerSummary = figures.summary
                }
                // A worker's own report, as `run --report-json` writes it: `report merge OUT...` adds the fleet's.
                if config.worker != nil { try? makeDirectories(out); try writeText(r.json.serialized(), to: "\(out)/worker.json") }
                return r
            }
            ProgressLine(quiet: options.quiet).end()
            results.append(ScenarioFigures(name: s.rawValue, result: r))
        }
        let folder = BenchReport.build(results, skipped: skipped, command: CommandLine.arguments.joined(separator: " "), interrupted: term.exitCode != nil)
        do { try folder.write(to: out) } catch { throw RunFailure("cannot write the report to \(out): \(error)") }
        print(options.format == .json ? folder.json.serialized(pretty: false)
              : BenchReport.summary(results, skipped: skipped) + consumerSummary + "report: \(out)/report.html" + (consume ? ", \(out)/consumer.json" : ""))
        if let code = term.exitCode { throw ExitCode(code) }
        if results.contains(where: { $0.result.error != nil || !$0.result.accountingHolds }) { throw ExitCode(2) }
    }
}

struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a grid of batch, linger, compression and partition settings; mark the Pareto front; recommend flags.",
        discussion: examples("pinbench sweep --out sweep --batch-bytes 64k,1m --compression lz4,zstd --duration 5s --repeat 1", "pinbench sweep --out sweep-kafka --scenario kafka --kafka localhost:9092 --linger-ms 0,5,20"))

    @Option(help: "Comma-separated batch sizes, e.g. 16k,256k,1m.") var batchBytes: String = "1000000"
    @Option(help: "Comma-separated linger values (ms).") var lingerMs: String = "5"
    @Option(help: "Comma-separated codecs.") var compression: String = "lz4"
    @Option(help: "Comma-separated partition counts.") var partitions: String = "3"
    @Option(help: "embedded or kafka.") var scenario: Scenario = .embedded
    @Option(help: "Runs per point (the median is reported).") var `repeat`: Int = 3
    @Option(help: "throughput, latency or balanced.") var goal: SweepGoal = .balanced
    @Option(help: "Report folder.") var out: String
    @OptionGroup var options: ScenarioOptions

    func parseList<T>(_ s: String, _ name: String, _ f: (String) -> T?) throws -> [T] {
        let parts = s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw ValidationError("--\(name) is empty: the grid needs at least one value") }
        return try parts.map { p in
            guard let v = f(p) else { throw ValidationError("--\(name): cannot read \"\(p)\"") }
            return v
        }
    }

    func grid() throws -> [SweepSettings] {
        let b = try parseList(batchBytes, "batch-bytes") { ByteSize(argument: $0)?.bytes }
        let l = try parseList(lingerMs, "linger-ms") { Double($0).flatMap { $0 >= 0 ? $0 : nil } }
        let c = try parseList(compression, "compression") { CompressionCodec(name: $0) }
        let p = try parseList(partitions, "partitions") { Int($0).flatMap { $0 > 0 ? $0 : nil } }
        return b.flatMap { b in l.flatMap { l in c.flatMap { c in p.map { SweepSettings(batchBytes: b, lingerMs: l, compression: c, partitions: $0) } } } }
    }

    func validate() throws {
        try refuseOverwrite(out)
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be ≥ 1") }
        guard scenario != .kinesis else { throw ValidationError("--scenario for a sweep is embedded or kafka (got kinesis)") }
        _ = try grid()
        if try options.backend(scenario, dataDir: "") == nil { throw ValidationError(scenario.needs) }
    }

    func run() throws {
        guard let backend = try options.backend(scenario, dataDir: "\(out)/.sweep-data") else { throw ValidationError(scenario.needs) }
        let control = RunControl()
        let term = TerminationWatch { sig in control.stop(sig == SIGTERM ? .terminated : .interrupted) }
        defer { term.cancel() }
        let grid = try grid()
        let perRun = options.duration.value + options.warmup.value
        let started = monotonicSeconds()
        let points = try usageErrors { () throws(ConfigError) in
            try ScenarioRunner.sweep(grid, repeats: `repeat`, base: options.config(SinkSettings()), backend: backend, control: control) { n, total, s in
                // The whole grid's ETA: the runs left at the pace so far (each run is about --warmup + --duration).
                let done = Double(n - 1), elapsed = monotonicSeconds() - started
                let eta = Double(total - n + 1) * (done > 0 ? elapsed / done : perRun)
                return options.progress("\(n)/\(total) \(s.label), grid ETA \(formatDuration(eta))")
            }
        }
        removeTree("\(out)/.sweep-data")
        guard !points.isEmpty else { throw ExitCode(term.exitCode ?? 1) }
        let folder = Sweep.report(points: points, goal: goal, command: CommandLine.arguments.joined(separator: " "), scenario: scenario, interrupted: term.exitCode != nil)
        do { try folder.write(to: out) } catch { throw RunFailure("cannot write the report to \(out): \(error)") }
        print(options.format == .json ? folder.json.serialized(pretty: false) : Sweep.summary(points, goal: goal) + "report: \(out)/report.html")
        if let code = term.exitCode { throw ExitCode(code) }
    }
}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Work with report folders.", subcommands: [CompareReports.self, MergeReports.self])

    struct MergeReports: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "merge", abstract: "Merge a fleet's worker reports: exact percentiles from the summed histograms, rates by wall-clock second, slices checked.",
            discussion: examples("pinbench report merge w0.json w1.json w2.json w3.json --out fleet/"))
        @Argument(help: "The workers' report.json files (or folders holding one).") var reports: [String]
        @Option(help: "Folder for report.json, report.md and report.html.") var out: String

        func run() throws {
            let merged: FleetMerge
            do { merged = try FleetMerge.merge(try reports.map { (p) throws(FleetMerge.MergeError) in try FleetMerge.load(p) }) } catch {
                throw RunFailure(error.description)
            }
            try makeDirectories(out)
            try writeText(merged.json.serialized(), to: "\(out)/report.json")
            try writeText(merged.markdown, to: "\(out)/report.md")
            try writeText(merged.html, to: "\(out)/report.html")
            print(merged.markdown, terminator: "")
            if !merged.accountingHolds { throw ExitCode(2) }
        }
    }

    struct CompareReports: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "compare", abstract: "Put two reports side by side with the ratio B/A of every figure.",
        discussion: examples("pinbench report compare before/ after/", "pinbench report compare a/report.json b/report.json --format json"))
        @Argument(help: "Report A (folder or report.json).") var a: String
        @Argument(help: "Report B (folder or report.json).") var b: String
        @Option(help: "text or json.") var format: OutputFormat = .text

        func run() throws {
            let (ra, rb) = (try Compare.load(a), try Compare.load(b))
            do { try Compare.checkKinds(ra, rb, labelA: a, labelB: b) } catch { throw ValidationError("\(error)") }
            let rows = Compare.rows(ra, rb)
            if format == .json {
                print(Compare.json(rows).serialized(pretty: false))
            } else {
                print(Compare.table(rows, labelA: a, labelB: b), terminator: "")
            }
        }
    }
}
