import Histogram
import Pipeline
import JSON
import Platform
import Sinks

/// The figures of one scenario run, warm-up excluded (and reported apart).
public struct ScenarioFigures: Sendable {
    public var name: String
    public var result: RunResult

    public init(name: String, result: RunResult) {
        self.name = name
        self.result = result
    }

    var warmup: Double { result.config.warmup }

    /// A cumulative counter of the timeline at time `t`, linear between the per-second samples (0 at the start).
    func cumulative(at t: Double, _ value: (ProgressSample) -> Int, final: Int) -> Double {
        if t <= 0 { return 0 }  // nothing is out at the start (a run shorter than a sample has no timeline)
        var prev = (0.0, 0.0)
        for s in result.timeline {
            if s.seconds >= t {
                let span = s.seconds - prev.0
                return span > 0 ? prev.1 + (Double(value(s)) - prev.1) * (t - prev.0) / span : Double(value(s))
            }
            prev = (s.seconds, Double(value(s)))
        }
        return Double(final)
    }

    func recordsOut(at t: Double) -> Double { cumulative(at: t, \.recordsOut, final: result.recordsOut) }
    func bytesOut(at t: Double) -> Double { cumulative(at: t, \.payloadBytesOut, final: result.payloadBytes) }

    /// Records per second after the warm-up.
    public var recordsPerSecond: Double {
        let span = result.seconds - warmup
        return span > 0 ? (Double(result.recordsOut) - recordsOut(at: warmup)) / span : 0
    }

    public var megabytesPerSecond: Double {
        let span = result.seconds - warmup
        return span > 0 ? (Double(result.payloadBytes) - bytesOut(at: warmup)) / span / 1e6 : 0
    }

    /// Per-second records/s, MB/s and queue depth (warm-up included, marked by `t`).
    public var perSecond: [(t: Double, recordsPerSecond: Double, mbPerSecond: Double, queueDepth: Int)] {
        var out: [(Double, Double, Double, Int)] = []
        var prev = (0.0, 0, 0)
        for s in result.timeline {
            let dt = s.seconds - prev.0
            if dt > 0 {
                out.append((s.seconds, Double(s.recordsOut - prev.1) / dt, Double(s.payloadBytesOut - prev.2) / dt / 1e6, s.queueDepth))
            }
            prev = (s.seconds, s.recordsOut, s.payloadBytesOut)
        }
        return out
    }

    static func ms(_ h: Histogram<UInt64>, _ p: Double) -> Double {
        h.totalCount == 0 ? 0 : Double(h.valueAtPercentile(p)) / 1000
    }

    public func latencyMs(_ p: Double) -> Double { Self.ms(result.latencyMicros, p) }
    public var latencyMaxMs: Double { result.latencyMicros.totalCount == 0 ? 0 : Double(result.latencyMicros.max) / 1000 }

    /// (percentile, ms) points of the latency distribution.
    public var latencyDistribution: [(Double, Double)] {
        guard result.latencyMicros.totalCount > 0 else { return [] }
        var pts: [(Double, Double)] = []
        for v in result.latencyMicros.percentiles(ticksPerHalfDistance: 5) {
            pts.append((v.percentile, Double(v.value) / 1000))
            if v.percentile >= 99.9999 { break }
        }
        return pts
    }

    /// Busy fractions of the stages and the bottleneck.
    public var stages: [(name: String, busy: Double, blocked: Double)] {
        let s = max(result.seconds, 1e-9)
        let threads = Double(result.config.threads)
        let sink: String
        switch result.mode {
        case .embedded: sink = result.config.sinkStages > 1 ? "log stages (\(result.config.sinkStages))" : "log stage"
        case .kafka: sink = "kafka producer stage"
        case .kinesis: sink = "kinesis producer stage"
        }
        let shares = result.sinkShares
        return [
            ("generators (\(result.config.threads))", result.generatorBusySeconds / (s * threads), result.generatorBlockedSeconds / (s * threads)),
            (sink, shares.busy, shares.waiting),
        ]
    }

    /// What the sink stage waits on inside its calls.
    var sinkPeer: String {
        switch result.mode {
        case .embedded:
            if case .embedded(let o) = result.config.backend, result.config.sealThreads(o) > 0 { "the seal workers or the disk" } else { "the disk" }
        case .kafka: "the Kafka brokers"
        case .kinesis: "the Kinesis endpoint"
        }
    }

    public var bottleneck: String {
        let st = stages
        // Generators blocked on a full ring mean the next stage is the limit: the sink stage's own work, or
        // what it waits on when it spends more time waiting inside its calls than on the CPU.
        if st[0].blocked > 0.2 {
            if st[1].blocked > st[1].busy {
                return "\(sinkPeer) (the \(st[1].name) waits on it \(Int((st[1].blocked * 100).rounded()))% of the time, on the CPU \(Int((st[1].busy * 100).rounded()))%)"
            }
            return st[1].name
        }
        let busiest = st.max { $0.busy < $1.busy }!
        if result.config.rate != nil && busiest.busy < 0.8 {
            return "none: the offered rate is below capacity (busiest: \(busiest.name), \(Int((busiest.busy * 100).rounded()))% busy)"
        }
        return busiest.name
    }

    public var json: JSONValue {
        let r = result
        let cpuPerM: Double = r.recordsOut > 0 ? r.cpuSeconds / Double(r.recordsOut) * 1e6 : 0
        let method: String = r.config.rate == nil
            ? "from generation time (unbounded flood)"
            : "from each post's scheduled send time at the fixed rate (coordinated omission corrected: a stall delays sends but not their schedule)"
        let latency: JSONValue = .object([
            ("p50", .double(latencyMs(50))), ("p90", .double(latencyMs(90))), ("p99", .double(latencyMs(99))),
            ("p999", .double(latencyMs(99.9))), ("max", .double(latencyMaxMs)), ("count", .int(Int(r.latencyMicros.totalCount))),
            ("method", .string(method)),
        ])
        let ratio: Double = r.storedBytes > 0 ? (Double(r.payloadBytes) / Double(r.storedBytes) * 1000).rounded() / 1000 : 0
        let errors: [(String, JSONValue)] = r.deadLetterReasons.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int($0.value)) }
        let figures: JSONValue = .object([
            ("records_per_s", .double(recordsPerSecond.rounded())),
            ("mb_per_s", .double((megabytesPerSecond * 1000).rounded() / 1000)),
            ("records_in", .int(r.recordsIn)),
            ("records_out", .int(r.recordsOut)),
            ("dead_lettered", .int(r.deadLettered)),
            ("latency_ms", latency),
            ("compression_ratio", .double(ratio)),
            ("cpu_seconds_per_million_records", .double((cpuPerM * 1000).rounded() / 1000)),
            ("peak_rss_bytes", .int(r.peakRSSBytes)),
            ("errors_by_code", .object(errors)),
            ("retries", .int(r.retries)),
            ("retries_by_code", .object(r.retriesByCode.sorted { $0.key < $1.key }.map { ($0.key, JSONValue.int($0.value)) })),
            ("seconds", .double((r.seconds * 1000).rounded() / 1000)),
        ])
        let warm: JSONValue = .object([
            ("seconds", .double(warmup)),
            ("records_out", .int(Int(recordsOut(at: warmup).rounded()))),
            ("latency_ms", .object([
                ("p50", .double(Self.ms(r.warmupLatencyMicros, 50))), ("p99", .double(Self.ms(r.warmupLatencyMicros, 99))),
                ("count", .int(Int(r.warmupLatencyMicros.totalCount))),
            ])),
        ])
        var stageRows: [JSONValue] = []
        for st in stages {
            stageRows.append(.object([("stage", .string(st.name)), ("busy_fraction", .double((st.busy * 1000).rounded() / 1000)),
                                      ("blocked_fraction", .double((st.blocked * 1000).rounded() / 1000))]))
        }
        var seconds: [JSONValue] = []
        for x in perSecond {
            seconds.append(.object([("t", .double((x.t * 1000).rounded() / 1000)), ("records_per_s", .double(x.recordsPerSecond.rounded())),
                                    ("mb_per_s", .double((x.mbPerSecond * 1000).rounded() / 1000)), ("queue_depth", .int(x.queueDepth))]))
        }
        var dist: [JSONValue] = []
        for (p, v) in latencyDistribution { dist.append(.array([.double((p * 10000).rounded() / 10000), .double(v)])) }
        return .object([
            ("name", .string(name)),
            ("figures", figures),
            ("warmup", warm),
            ("stages", .array(stageRows)),
            ("bottleneck", .string(bottleneck)),
            ("per_second", .array(seconds)),
            ("latency_distribution", .array(dist)),
            ("partitions", r.json["partitions"] ?? .array([])),
            ("latency_by_second", r.json["latency_by_second"] ?? .array([])),
            ("config", r.config.summary),
        ])
    }
}
