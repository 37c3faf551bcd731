import Codecs
import Pipeline
import Platform
import Sinks

/// A named, repeatable load for `bench` and `sweep`.
public enum Scenario: String, Sendable, CaseIterable {
    case embedded, kafka, kinesis

    /// Where this scenario's records go, from the settings the user gave (nil: not given, the scenario is skipped).
    public func backend(dataDir: String, kafka: KafkaOptions?, kinesis: KinesisOptions?) -> Backend? {
        switch self {
        case .embedded: return .embedded(LogOptions(dataDir: dataDir))
        case .kafka:
            guard var k = kafka else { return nil }
            k.createTopics = true
            return .kafka(k)
        case .kinesis:
            guard var k = kinesis else { return nil }
            k.createStreams = true
            k.streamPrefix = ScenarioRunner.freshPrefix()
            return .kinesis(k)
        }
    }

    /// Why a scenario cannot run with what was given, in one line.
    public var needs: String {
        switch self {
        case .embedded: ""
        case .kafka: "the kafka scenario needs --kafka host:port"
        case .kinesis: "the kinesis scenario needs --kinesis (and AWS options: --aws-endpoint, credentials)"
        }
    }
}

/// Runs scenarios: one flood each, on fresh topics or streams (a random prefix) so that runs never mix.
public enum ScenarioRunner {
    /// Runs one flood of `base` into `backend`; the embedded log's folder is removed before and, unless
    /// `keepData`, after.
    /// A fresh prefix for a run's topics or streams.
    public static func freshPrefix() -> String { "bench\(UInt32.random(in: 0...UInt32.max))" }

    public static func run(_ base: RunConfig, backend: Backend, keepData: Bool = false, control: RunControl? = nil,
                           topicPrefix: String? = nil, onRunner: ((FloodRunner) -> Void)? = nil,
                           onProgress: ((ProgressSample) -> Void)? = nil) throws(ConfigError) -> RunResult {
        var c = base
        c.backend = backend
        if case .kafka = backend { c.sink.topicPrefix = topicPrefix ?? freshPrefix() }
        var dataDir: String?
        if case .embedded(let o) = backend { dataDir = o.dataDir }
        if let d = dataDir { removeTree(d) }
        defer { if let d = dataDir, !keepData { removeTree(d) } }
        let runner = try FloodRunner(config: c)
        onRunner?(runner)
        return try runner.run(control: control, onProgress: onProgress)
    }

    /// Runs every point of a sweep grid `repeats` times (medians are what the report shows). Stopped through
    /// `control`, it returns the points measured so far (a point without a finished run is left out).
    public static func sweep(_ grid: [SweepSettings], repeats: Int, base: RunConfig, backend: Backend, control: RunControl? = nil,
                             onRun: (_ n: Int, _ total: Int, _ settings: SweepSettings) -> ((ProgressSample) -> Void)?) throws(ConfigError) -> [SweepPoint] {
        var points = grid.map { SweepPoint(settings: $0) }
        let total = points.count * repeats
        var n = 0
        for i in points.indices {
            for _ in 0..<repeats {
                n += 1
                let s = points[i].settings
                var c = base
                c.sink.batchBytes = s.batchBytes
                c.sink.lingerMs = s.lingerMs
                c.sink.compression = s.compression
                c.sink.partitions = s.partitions
                let r = try run(c, backend: backend, control: control, onProgress: onRun(n, total, s))
                if control?.reason != nil { return points.filter { !$0.repeats.isEmpty } }
                let f = ScenarioFigures(name: s.label, result: r)
                points[i].repeats.append((f.recordsPerSecond, f.latencyMs(99), f.latencyMs(50), f.megabytesPerSecond,
                                          r.recordsOut > 0 ? r.cpuSeconds / Double(r.recordsOut) * 1e6 : 0))
            }
        }
        return points
    }
}
