import Codecs
import Pipeline
import Platform
import Sinks
import Yams

/// A load described in a file, as OpenMessaging Benchmark's workloads are (`bench --workload FILE.yaml`):
/// the backend, partitions, producer rate, duration and warm-up, the producer's batching, the worker count;
/// `producerRate: 0` asks for a rate search (the highest rate whose p99 stays under a bound, found by
/// bisection of steady runs).
public struct Workload: Sendable, Equatable {
    public enum Backend: String, Sendable { case embedded, kafka, kinesis }

    public var name: String
    public var backend: Backend = .embedded
    public var partitionsPerTopic = 3
    /// Posts per second over the whole fleet; 0: search.
    public var producerRate: Double
    public var durationSeconds: Double
    public var warmupSeconds: Double = 0
    public var compression: CompressionCodec?
    public var batchBytes: Int?
    public var lingerMs: Double?
    public var workers = 1
    public var seed: UInt64 = 1
    /// Kafka bootstrap brokers (else `--kafka`).
    public var bootstrap: String?
    public var search: Search?

    /// `producerRate: 0`: bisection between `low` and `high` posts/s in `steps` steady runs of `stepSeconds`.
    public struct Search: Sendable, Equatable {
        public var p99Ms: Double
        public var low: Double
        public var high: Double
        public var steps: Int
        public var stepSeconds: Double

        public init(p99Ms: Double, low: Double, high: Double, steps: Int, stepSeconds: Double) {
            self.p99Ms = p99Ms
            self.low = low
            self.high = high
            self.steps = steps
            self.stepSeconds = stepSeconds
        }
    }

    /// What went wrong in a file, with where.
    public struct LoadError: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ file: String, _ line: Int?, _ why: String) { description = "\(file)\(line.map { ":\($0)" } ?? ""): \(why)" }
    }

    static let fields = ["name", "backend", "topics", "partitionsPerTopic", "producerRate", "testDurationMinutes", "testDuration",
                         "warmupDurationMinutes", "warmupDuration", "compression", "batchBytes", "lingerMs", "workers", "seed",
                         "bootstrap", "search", "messageSize", "description"]
    static let searchFields = ["p99Ms", "low", "high", "steps", "stepDuration"]

    public static func load(file: String) throws(LoadError) -> Workload {
        guard let text = readSmallTextFile(file, limit: 1 << 20) else { throw LoadError(file, nil, "cannot read it (missing, unreadable or over 1 MiB)") }
        return try parse(text, file: file)
    }

    public static func parse(_ text: String, file: String) throws(LoadError) -> Workload {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw LoadError(file, nil, "not YAML: \(error)")
        }
        guard let root = node, let map = root.mapping else { throw LoadError(file, node?.mark?.line, "a workload is a mapping of fields (name: …, producerRate: …)") }
        var values: [String: Node] = [:]
        var lines: [String: Int] = [:]
        for (k, v) in map {
            guard let key = k.string else { throw LoadError(file, k.mark?.line, "a field name must be text") }
            guard fields.contains(key) else {
                let near = fields.first { $0.hasPrefix(key) || key.hasPrefix($0) }
                    ?? fields.filter { editDistance($0, key) <= 3 }.min { editDistance($0, key) < editDistance($1, key) }
                throw LoadError(file, k.mark?.line, "unknown field \(key)\(near.map { " (did you mean \($0)?)" } ?? "")")
            }
            values[key] = v
            lines[key] = k.mark?.line
        }
        func line(_ k: String) -> Int? { lines[k] }
        func str(_ k: String) throws(LoadError) -> String? {
            guard let v = values[k] else { return nil }
            guard let s = v.string else { throw LoadError(file, line(k), "\(k) must be text") }
            return s
        }
        func num(_ k: String, in m: [String: Node]? = nil, min: Double = 0) throws(LoadError) -> Double? {
            guard let v = (m ?? values)[k] else { return nil }
            guard let d = v.float ?? v.int.map(Double.init), d.isFinite, d >= min else {
                throw LoadError(file, v.mark?.line ?? line(k), "\(k) must be a number ≥ \(min == 0 ? "0" : String(min)) (got \(v.string ?? "?"))")
            }
            return d
        }
        func int(_ k: String, min: Int) throws(LoadError) -> Int? {
            guard let v = values[k] else { return nil }
            guard let i = v.int, i >= min else { throw LoadError(file, line(k), "\(k) must be a whole number ≥ \(min) (got \(v.string ?? "?"))") }
            return i
        }
        func duration(_ k: String, minutesKey: String) throws(LoadError) -> Double? {
            if let m = try num(minutesKey) { return m * 60 }
            guard let s = try str(k) else { return nil }
            guard let d = parseSeconds(s), d >= 0 else { throw LoadError(file, line(k), "\(k) must be a duration such as 30s, 2m or 500ms (got \(s))") }
            return d
        }
        guard let name = try str("name"), !name.isEmpty else { throw LoadError(file, root.mark?.line, "name is missing") }
        guard let rate = try num("producerRate") else { throw LoadError(file, root.mark?.line, "producerRate is missing (posts/s; 0 searches for the highest rate)") }
        guard let dur = try duration("testDuration", minutesKey: "testDurationMinutes"), dur > 0 else {
            throw LoadError(file, line("testDuration") ?? line("testDurationMinutes") ?? root.mark?.line, "testDuration (or testDurationMinutes) is missing or 0")
        }
        var w = Workload(name: name, producerRate: rate, durationSeconds: dur)
        if let b = try str("backend") {
            guard let k = Backend(rawValue: b) else { throw LoadError(file, line("backend"), "backend \(b): use embedded, kafka or kinesis") }
            w.backend = k
        }
        if let t = try int("topics", min: 1), t != 3 {
            throw LoadError(file, line("topics"), "topics is \(t): the pipeline writes three (pin, geo, user)")
        }
        if let p = try int("partitionsPerTopic", min: 1) {
            guard p <= 10_000 else { throw LoadError(file, line("partitionsPerTopic"), "partitionsPerTopic must be in 1...10000") }
            w.partitionsPerTopic = p
        }
        w.warmupSeconds = try duration("warmupDuration", minutesKey: "warmupDurationMinutes") ?? 0
        if let c = try str("compression") {
            guard let codec = CompressionCodec(name: c) else { throw LoadError(file, line("compression"), "compression \(c): use none, gzip, snappy, lz4 or zstd") }
            w.compression = codec
        }
        w.batchBytes = try int("batchBytes", min: 1024)
        w.lingerMs = try num("lingerMs")
        w.workers = try int("workers", min: 1) ?? 1
        w.seed = UInt64(try int("seed", min: 0) ?? 1)
        w.bootstrap = try str("bootstrap")
        if let s = values["search"] {
            guard let m = s.mapping else { throw LoadError(file, line("search"), "search is a mapping (p99Ms, low, high, steps, stepDuration)") }
            var sv: [String: Node] = [:]
            for (k, v) in m {
                guard let key = k.string, searchFields.contains(key) else {
                    throw LoadError(file, k.mark?.line, "unknown search field \(k.string ?? "?"): use \(searchFields.joined(separator: ", "))")
                }
                sv[key] = v
            }
            guard let p99 = try num("p99Ms", in: sv), p99 > 0 else { throw LoadError(file, line("search"), "search needs p99Ms > 0 (the latency bound)") }
            let low = try num("low", in: sv) ?? 1_000, high = try num("high", in: sv) ?? 1_000_000
            guard low > 0, high > low else { throw LoadError(file, line("search"), "search needs 0 < low < high (posts/s)") }
            let stepsValue = try num("steps", in: sv) ?? 6
            guard stepsValue >= 1, stepsValue <= 30 else { throw LoadError(file, line("search"), "search steps must be in 1...30") }
            let steps = Int(stepsValue)
            var stepSeconds = dur
            if let t = sv["stepDuration"] {
                guard let text = t.string, let d = parseSeconds(text), d > 0 else { throw LoadError(file, t.mark?.line, "stepDuration must be a duration such as 10s") }
                stepSeconds = d
            }
            w.search = Search(p99Ms: p99, low: low, high: high, steps: steps, stepSeconds: stepSeconds)
        }
        if rate == 0 && w.search == nil { throw LoadError(file, line("producerRate"), "producerRate 0 searches for a rate: give search: {p99Ms: …}") }
        return w
    }

    /// The run this workload makes on top of `base` (threads, style and the rest from the command line):
    /// this process's share when `worker` is set.
    public func config(_ base: RunConfig, rate: Double?, worker: WorkerSlice?) -> RunConfig {
        var c = base
        c.duration = durationSeconds + warmupSeconds
        c.warmup = warmupSeconds
        c.rate = rate.map { r in worker.map { r / Double($0.count) } ?? r }
        c.seed = seed
        c.worker = worker
        c.sink.partitions = partitionsPerTopic
        if let x = compression { c.sink.compression = x }
        if let x = batchBytes { c.sink.batchBytes = x }
        if let x = lingerMs { c.sink.lingerMs = x }
        return c
    }

    /// The next rate of a bisection in log space between the highest passing and lowest failing rates.
    public static func nextRate(low: Double, high: Double) -> Double { (low * high).squareRoot() }
}
