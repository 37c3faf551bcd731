import Bytes
import Codecs
import Dispatch
import Histogram
import KafkaLog
import PinEmulator
import PinModel
import RingBuffers
import Platform
import Sinks
import Synchronization

/// One progress sample (taken about once a second).
public struct ProgressSample: Sendable {
    public var seconds: Double
    public var recordsOut: Int
    public var payloadBytesOut: Int
    public var queueDepth: Int
    public var queueCapacity: Int
    /// Records the run will send (`--count`), for a percentage and an ETA.
    public var totalRecords: Int?
    /// The run's `--duration`, s.
    public var durationSeconds: Double?
    /// Posts generated so far.
    public var postsIn = 0
    /// Under `--rate`: the target, the posts/s made since the last sample, and how far the schedule is behind.
    public var targetRate: Double?
    public var achievedRate: Double?
    public var scheduleLagSeconds: Double?
    /// A line to show once, apart from the progress line (the offered rate not met).
    public var warning: String?

    public init(seconds: Double, recordsOut: Int, payloadBytesOut: Int, queueDepth: Int, queueCapacity: Int) {
        self.seconds = seconds
        self.recordsOut = recordsOut
        self.payloadBytesOut = payloadBytesOut
        self.queueDepth = queueDepth
        self.queueCapacity = queueCapacity
    }

    /// `12s of 20s] 1.23 M records  0.987 M rec/s  250.1 MB/s  queue 768/6144`, with `45% ETA 3.2s` under
    /// `--count` and `rate 10.0 k/10.0 k posts/s lag 0.0s` under `--rate`: the progress line after its prefix
    /// (no queue when there is none: a sink stage that generates takes each chunk as it makes it).
    public var line: String {
        let rps = seconds > 0 ? Double(recordsOut) / seconds : 0
        let mbs = seconds > 0 ? Double(payloadBytesOut) / seconds / 1e6 : 0
        var l = "\(fmt(seconds, 0))s"
        if let d = durationSeconds { l += " of \(fmt(d, 0))s" }
        l += "] \(formatCount(Double(recordsOut))) records  \(formatCount(rps)) rec/s  \(fmt(mbs, 1)) MB/s"
        if queueCapacity > 0 { l += "  queue \(queueDepth)/\(queueCapacity)" }
        if let total = totalRecords, total > 0 {
            let done = min(1, Double(recordsOut) / Double(total))
            l += "  \(Int(done * 100))%"
            if rps > 0, done < 1 { l += " ETA \(formatDuration(Double(total - recordsOut) / rps))" }
        }
        if let t = targetRate {
            l += "  rate \(formatCount(achievedRate ?? 0))/\(formatCount(t)) posts/s  lag \(formatDuration(scheduleLagSeconds ?? 0))"
        }
        return l
    }
}

/// What a run did. `recordsIn == recordsOut + deadLettered` always holds at the end.
public struct RunResult: Sendable {
    public var config: RunConfig
    public var posts: Int
    public var recordsIn: Int
    public var recordsOut: Int
    public var deadLettered: Int
    /// Records not stored, by the sink's code (`DiskFull`, a Kafka error name, a Kinesis code).
    public var deadLetterReasons: [String: Int]
    /// Bytes of the records' values that were stored (or accepted).
    public var payloadBytes: Int
    /// What the sink wrote or sent for them (after compression; Kinesis: the data bytes accepted).
    public var storedBytes: Int
    public var batches: Int
    public var seconds: Double
    /// Microseconds from each record's scheduled send time to `latencyEndpoint`.
    public var latencyMicros: Histogram<UInt64>
    /// Where latency ends for this backend, in words.
    public var latencyEndpoint: String
    public var partitions: [PartitionCount]
    public var timeline: [ProgressSample]
    /// Wall-clock time of the flood's start (Unix ms): fleet merges line workers' seconds up by it.
    public var startedUnixMs: Int64 = 0
    public var cpuSeconds: Double
    public var peakRSSBytes: Int
    public var generatorStalls: Int
    public var recoveries: [RecoveryReport]
    public var error: String?
    /// Kafka and Kinesis: retries (each counted; retried records are not lost) and by the code that caused them.
    public var retries: Int = 0
    public var retriesByCode: [String: Int] = [:]
    /// Kafka Produce requests or Kinesis PutRecords calls sent.
    public var requests: Int = 0
    /// Latencies of records scheduled during the warm-up (kept apart from `latencyMicros`).
    public var warmupLatencyMicros: Histogram<UInt64> = newLatencyHistogram()
    /// Why the flood ended early (interrupted, a byte cap, the disk, a fatal error); nil when it ran its course.
    public var stopReason: StopReason?
    /// Posts due before `--duration` ended (under `--rate`) that the generators never made: the offered rate
    /// was not met by that much.
    public var unsentPosts = 0
    /// Under `--rate`: the shortfall lasted 3 s or more, or posts went unsent.
    public var rateNotMet = false
    public var maxScheduleLagSeconds = 0.0
    /// Stage time, seconds: generators generating and blocked on a full ring (backpressure).
    public var generatorBusySeconds: Double = 0
    public var generatorBlockedSeconds: Double = 0
    /// Wall seconds the sink stages spent in the sink's calls (chunks and close).
    public var sinkCallSeconds: Double = 0
    /// CPU seconds: of the generators (generation alone when the sink stage generates), of the sink stage
    /// threads (everything but generation), and of the sink's calls alone.
    public var generatorCPUSeconds: Double = 0
    public var sinkCPUSeconds: Double = 0
    public var sinkCallCPUSeconds: Double = 0
    /// The sink stages' shares of their wall time: on the CPU; waiting inside the sink's calls (for the broker or
    /// service, a full queue, or a CPU); and idle (waiting for input, asleep).
    public var sinkShares: (busy: Double, waiting: Double, idle: Double) {
        let wall = max(seconds, 1e-9) * Double(max(config.sinkStages, 1))
        let busy = min(1, sinkCPUSeconds / wall)
        let waiting = min(1 - busy, max(0, sinkCallSeconds - sinkCallCPUSeconds) / wall)
        return (busy, waiting, max(0, 1 - busy - waiting))
    }
    /// Each second of the run (from its start): the p99 of the latencies measured in it, ms, and how many.
    /// What tells a steady run from one whose latency kept rising (`plan` refuses the latter).
    public var latencyBySecond: [(t: Double, p99Ms: Double, count: Int)] = []

    public var mode: RunMode { config.mode }
    public var recordsPerSecond: Double { seconds > 0 ? Double(recordsOut) / seconds : 0 }
    public var megabytesPerSecond: Double { seconds > 0 ? Double(payloadBytes) / seconds / 1e6 : 0 }
    public var accountingHolds: Bool { recordsIn == recordsOut + deadLettered }
}

/// Stops runs from another thread (a signal handler): the one in progress and every later one, so that a
/// bench or a sweep ends within a second with what it has.
public final class RunControl: Sendable {
    let runner = Mutex<FloodRunner?>(nil)
    let reasonRaw = Atomic<Int>(0)

    public init() {}

    public func stop(_ reason: StopReason) {
        _ = reasonRaw.compareExchange(expected: 0, desired: reason.rawValue, ordering: .relaxed)
        runner.withLock { $0?.requestStop(reason) }
    }

    /// Why runs were stopped; nil while none was.
    public var reason: StopReason? { StopReason(rawValue: reasonRaw.load(ordering: .relaxed)) }

    func attach(_ r: FloodRunner) {
        runner.withLock { $0 = r }
        if let why = reason { r.requestStop(why) }
    }
}

/// A latency histogram in microseconds, up to an hour, three significant digits.
public func newLatencyHistogram() -> Histogram<UInt64> {
    Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
}

/// Floods emulated posts through generator threads and lock-free rings into one `RecordSink` (the embedded
/// log, a Kafka cluster or Kinesis), on one sink stage thread that owns the sink. The skeleton, the
/// accounting and the result are the same for every backend; see ARCHITECTURE.md for the data flow.
public final class FloodRunner: Sendable {
    public let config: RunConfig
    public let stats = LiveStats()
    let emulator: Emulator

    public init(config: RunConfig) throws(ConfigError) {
        try config.validate()
        self.config = config
        self.emulator = Emulator(seed: config.seed, users: config.users)
    }

    /// Asks a running flood to stop early (SIGINT, SIGTERM); what was generated is still sent.
    public func requestStop(_ reason: StopReason = .interrupted) { stats.requestStop(reason) }

    /// The flood's counters and latency in Prometheus' text format, `labels` (e.g. `worker="0/4"`) on every
    /// sample: what `--metrics-listen` serves while the run goes on.
    public func prometheus(labels: String) -> String {
        let l = labels.isEmpty ? "" : "{\(labels)}"
        func counter(_ name: String, _ help: String, _ v: Int) -> String {
            "# HELP pinbench_run_\(name) \(help)\n# TYPE pinbench_run_\(name) counter\npinbench_run_\(name)\(l) \(v)\n"
        }
        var s = counter("records_in_total", "Records generated.", stats.recordsIn.load(ordering: .relaxed))
        s += counter("records_out_total", "Records the sink stored or the broker acknowledged.", stats.recordsOut.load(ordering: .relaxed))
        s += counter("dead_lettered_total", "Records that failed.", stats.deadLettered.load(ordering: .relaxed))
        s += counter("payload_bytes_out_total", "Payload bytes out.", stats.payloadBytesOut.load(ordering: .relaxed))
        s += counter("generator_stalls_total", "Times a generator found the ring to the sink stage full.", stats.generatorStalls.load(ordering: .relaxed))
        let (buckets, sum, n) = stats.latencySnapshot.withLock { $0 }
        s += "# HELP pinbench_run_latency_seconds Record latency (published once a second).\n# TYPE pinbench_run_latency_seconds histogram\n"
        let sep = labels.isEmpty ? "" : labels + ","
        for (i, le) in LiveStats.latencyBucketsSeconds.enumerated() {
            s += "pinbench_run_latency_seconds_bucket{\(sep)le=\"\(le)\"} \(i < buckets.count ? buckets[i] : 0)\n"
        }
        s += "pinbench_run_latency_seconds_bucket{\(sep)le=\"+Inf\"} \(n)\npinbench_run_latency_seconds_sum\(l) \(sum)\npinbench_run_latency_seconds_count\(l) \(n)\n"
        s += "# HELP pinbench_run_queue_depth Records waiting between the generators and the sink stage.\n# TYPE pinbench_run_queue_depth gauge\n"
        s += "pinbench_run_queue_depth\(l) \(stats.queueDepth.load(ordering: .relaxed))\n"
        let (failed, retries) = stats.codesSnapshot.withLock { $0 }
        s += "# HELP pinbench_run_failed_records_total Records that failed, by error code.\n# TYPE pinbench_run_failed_records_total counter\n"
        for (code, v) in failed.sorted(by: { $0.key < $1.key }) { s += "pinbench_run_failed_records_total{\(sep)code=\"\(code)\"} \(v)\n" }
        s += "# HELP pinbench_run_retries_total Retried requests or batches, by error code.\n# TYPE pinbench_run_retries_total counter\n"
        for (code, v) in retries.sorted(by: { $0.key < $1.key }) { s += "pinbench_run_retries_total{\(sep)code=\"\(code)\"} \(v)\n" }
        return s
    }

    /// The sink stages' tally, filled by outcomes on the stage threads (under `lock`: once per batch, never
    /// per record) and read after they finished.
    final class Tally: @unchecked Sendable {
        let lock = Mutex(())
        /// Latencies after the warm-up and during it, up to the last second that ended (`tick` adds each
        /// second's in: a record's latency is counted once, in `interval` or `intervalWarm`).
        var hist = newLatencyHistogram()
        var warm = newLatencyHistogram()
        /// The current second's latencies after and during the warm-up, for `--hlog` and the per-second p99
        /// (written, added to `hist` and `warm`, and reset once a second by the sink stage).
        var interval = newLatencyHistogram()
        var intervalWarm = newLatencyHistogram()
        /// Latencies (µs; the top bit marks a warm-up post) waiting to go into `interval` or `intervalWarm`:
        /// outcomes append them here, in order, and they are recorded in bulk at the next tick (or when the
        /// buffer is full), before anything reads the histograms. Recording each one as it came cost a cache
        /// miss per record on the histogram's counts, cold again after every sleep of a paced flood (about 6%
        /// of its CPU); in bulk the counts a second's latencies touch stay in the cache.
        let pending = UnsafeMutablePointer<UInt64>.allocate(capacity: Tally.pendingCapacity)
        @exclusivity(unchecked) var pendingCount = 0
        static let pendingCapacity = 1 << 15
        static let warmBit: UInt64 = 1 << 63

        deinit { pending.deallocate() }
        /// Each ended second's p99 (ms) and count (from `interval`).
        var bySecond: [(t: Double, p99Ms: Double, count: Int)] = []
        var hlog: HdrLogWriter?
        var intervalStartNs: UInt64 = 0
        var wallAtT0 = 0.0
        var t0Ns: UInt64 = 0

        var live: LiveStats?

        /// Once a second (and at the end): writes the interval that has ended to the hlog, and publishes the
        /// latency so far for /metrics.
        func tick(_ now: UInt64, final: Bool = false) {
            lock.withLock { _ in tickLocked(now, final: final) }
        }

        private func tickLocked(_ now: UInt64, final: Bool) {
            guard now >= intervalStartNs &+ 1_000_000_000 || final else { return }
            flushPending()
            hist.add(interval)
            // `interval` becomes the whole second's (warm-up included) in place: a copy of it would be copied
            // again by the reset below (copy on write), a fresh counts array every second.
            if intervalWarm.totalCount > 0 {
                warm.add(intervalWarm)
                interval.add(intervalWarm)
            }
            if interval.totalCount > 0 && bySecond.count < 1_000_000 {
                bySecond.append((Double(now &- t0Ns) / 1e9, Double(interval.valueAtPercentile(99)) / 1000, Int(interval.totalCount)))
            }
            if let log = hlog {
                let start = wallAtT0 + Double(intervalStartNs &- t0Ns) / 1e9
                log.append(start: start, length: Double(now &- intervalStartNs) / 1e9, interval)
                if final { log.close() }
            }
            interval.reset()
            intervalWarm.reset()
            intervalStartNs = now
            if let live {
                var all = hist
                all.add(warm)
                let buckets = LiveStats.latencyBucketsSeconds.map { le in
                    all.totalCount == 0 ? 0 : Int(all.count(within: 0...UInt64(le * 1e6)))
                }
                let sum = all.mean * Double(all.totalCount) / 1e6
                live.latencySnapshot.withLock { $0 = (buckets, sum, Int(all.totalCount)) }
                let retries = retriesNow?() ?? [:]
                live.codesSnapshot.withLock { $0 = (reasons, retries) }
            }
        }
        /// Each token's latency (µs from its scheduled time to `now`), for `interval`, or for `intervalWarm` when
        /// it was scheduled before `warmupEnd` (into `pending` first; under `lock`).
        @inline(__always)
        func record(_ tokens: UnsafeBufferPointer<UInt64>, now: UInt64, warmupEnd: UInt64) {
            var n = pendingCount
            for t in tokens {
                if n == Tally.pendingCapacity {
                    pendingCount = n
                    flushPending()
                    n = 0
                }
                // Under 2^64 / 1000: the top bit is free for the warm-up mark.
                let v = now > t ? (now - t) / 1000 : 0
                pending[n] = t < warmupEnd ? v | Tally.warmBit : v
                n += 1
            }
            pendingCount = n
        }

        /// `pending` into the histograms, in the order the latencies came.
        func flushPending() {
            Tally.record(UnsafeBufferPointer(start: pending, count: pendingCount), into: &interval, warm: &intervalWarm)
            pendingCount = 0
        }

        /// The histograms come in as `inout`: one access check per call, where recording into the tally's
        /// properties one by one paid a dynamic check per record.
        static func record(_ values: UnsafeBufferPointer<UInt64>, into hist: inout Histogram<UInt64>, warm: inout Histogram<UInt64>) {
            for v in values {
                if v & warmBit != 0 { _ = warm.record(v & ~warmBit) } else { _ = hist.record(v) }
            }
        }

        var reasons: [String: Int] = [:]
        /// The sink's retries by code so far (asked once a second on the stage thread, when metrics are served).
        var retriesNow: (() -> [String: Int])?
        var error: String?
        /// Each stage's sink report, merged once all are done.
        var reports: [SinkReport] = []
        var endpoint = ""

        /// The topics in the order a single sink reports them (pin, geo, user).
        var topicOrder: [String] = []

        /// The stages' reports as one: partitions in the order one sink gives them (topic, then partition),
        /// counts summed.
        var report: SinkReport {
            guard reports.count > 1 else { return reports.first ?? SinkReport() }
            var r = SinkReport()
            for x in reports {
                r.partitions += x.partitions
                r.storedBytes += x.storedBytes
                r.batches += x.batches
                r.requests += x.requests
                r.retries += x.retries
                r.retriesByCode.merge(x.retriesByCode, uniquingKeysWith: +)
                r.recoveries += x.recoveries
            }
            let rank = Dictionary(topicOrder.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
            r.partitions.sort { (rank[$0.topic] ?? .max, $0.partition) < (rank[$1.topic] ?? .max, $1.partition) }
            return r
        }
    }

    /// Free bytes the embedded log keeps on its disk: a flood stops before it would eat into them.
    public static let diskReserveBytes = 128 << 20

    /// Runs the flood. `onStart` gets one line saying where the records go (and what the run may write)
    /// once the sink is open; `onProgress` a sample about once a second.
    public func run(control: RunControl? = nil, onStart: ((String) -> Void)? = nil,
                    onProgress: ((ProgressSample) -> Void)? = nil) throws(ConfigError) -> RunResult {
        control?.attach(self)
        let cfg = config
        // The interval log first: a path that cannot be written is one line before anything is sent.
        let hlog = try cfg.hlogPath.map { (p) throws(ConfigError) in
            try HdrLogWriter(path: p, startSeconds: Double(wallMillis()) / 1000,
                             comment: "pinbench \(cfg.worker.map { "worker \($0.index)/\($0.count), " } ?? "")latency in microseconds")
        }
        let sinks: [any RecordSink]
        var backend = cfg.backend
        switch backend {
        case .embedded(var o):
            o.sealThreads = cfg.sealThreads(o)
            backend = .embedded(o)
        case .kafka(var o):
            o.compressOnSeal = cfg.compressOnSeal(o)
            o.senderThread = cfg.senderThread(o)
            o.compressionThreads = cfg.compressionThreads(o)
            o.ioThreads = cfg.ioThreads(o)
            backend = .kafka(o)
        case .kinesis: break
        }
        let bells = (0..<cfg.sinkStages).map { _ in Doorbell() }
        do { sinks = try backend.makeSinks(cfg.sink, role: .flood, bells: bells) } catch { throw ConfigError(error.message, isUsage: error.reason == .config) }
        let sink = sinks[0]
        // What the run may write: `--max-bytes`, and for the embedded log what its disk has free (the log
        // compresses, so counting the generated payload stops early rather than late).
        var cap: (bytes: Int, reason: StopReason)? = cfg.maxBytes.map { ($0, .maxBytes) }
        var start = sink.destination
        if case .embedded(let o) = cfg.backend, let free = freeDiskBytes(o.dataDir) {
            let room = free - Self.diskReserveBytes
            guard room > 0 else {
                for s in sinks { _ = s.close() }
                throw ConfigError("\(o.dataDir) has \(formatBytes(free)) free: a flood keeps \(formatBytes(Self.diskReserveBytes)) free; make room or use another --data-dir", isUsage: false)
            }
            let stored = cfg.sink.compression == .none ? room - room / 10 : room  // batch framing on uncompressed records
            if stored < (cap?.bytes ?? .max) { cap = (stored, .diskWouldFill) }
            start += "; \(formatBytes(free)) free there"
        }
        if let c = cap { start += c.reason == .maxBytes ? "; stops after \(formatByteSize(c.bytes)) of payload (--max-bytes)" : "; stops before the disk fills (--max-bytes caps a run)" }
        onStart?(start)
        let flood = Flood(config: cfg, emulator: emulator, stats: stats, sinkBells: bells, byteCap: cap)
        let cpu0 = processCPUSeconds()
        let group = DispatchGroup()
        let tally = Tally()
        tally.endpoint = sink.latencyEndpoint
        tally.topicOrder = RecordKind.allCases.map {
            if case .kinesis(let o) = cfg.backend { return o.stream($0) }
            return $0.topic(prefix: cfg.sink.topicPrefix)
        }
        tally.t0Ns = flood.t0
        tally.intervalStartNs = flood.t0
        if cfg.publishLatency { tally.live = stats }
        if let hlog {
            tally.hlog = hlog
            tally.wallAtT0 = Double(wallMillis()) / 1000 - Double(monotonicNanos() &- flood.t0) / 1e9
        }
        flood.startGenerators(group: group)
        for (s, sink) in sinks.enumerated() {
            nonisolated(unsafe) let owned = sink
            group.enter()
            _ = StageThread(name: sinks.count > 1 ? "sink-\(s)" : "sink") {
                // Generator g is on CPU g + 1: the first stage takes CPU 0, the others the CPUs after the generators.
                if cfg.pinCPUs { Affinity.pinCurrentThread(to: s == 0 ? 0 : cfg.threads + s) }
                self.drive(owned, stage: s, flood: flood, tally: tally)
                group.leave()
            }
        }
        let watch = flood.monitor(group: group, onProgress: onProgress)
        let seconds = Double(monotonicNanos() - flood.t0) / 1e9
        let recordsIn = stats.recordsIn.load(ordering: .relaxed)
        let r = tally.report
        var unsent = 0
        if let iv = flood.intervalNs, let end = flood.endNs {
            // Posts due before the generators stopped (or the end) that they never made.
            let stoppedAt = min(end, max(stats.generatorsEndNs.load(ordering: .relaxed), flood.t0))
            var due = Int((Double(stoppedAt - flood.t0) / iv).rounded(.up))
            if let c = cfg.count { due = min(due, c) }
            unsent = max(0, due - recordsIn / 3)
        }
        var result = RunResult(
            config: cfg, posts: recordsIn / 3, recordsIn: recordsIn, recordsOut: stats.recordsOut.load(ordering: .relaxed),
            deadLettered: stats.deadLettered.load(ordering: .relaxed), deadLetterReasons: tally.reasons,
            payloadBytes: stats.payloadBytesOut.load(ordering: .relaxed), storedBytes: r.storedBytes, batches: r.batches,
            seconds: seconds, latencyMicros: tally.hist, latencyEndpoint: tally.endpoint, partitions: r.partitions, timeline: [],
            cpuSeconds: processCPUSeconds() - cpu0, peakRSSBytes: peakRSSBytes(),
            generatorStalls: stats.generatorStalls.load(ordering: .relaxed), recoveries: r.recoveries, error: tally.error,
            retries: r.retries, retriesByCode: r.retriesByCode, requests: r.requests, warmupLatencyMicros: tally.warm,
            generatorBusySeconds: Double(stats.generatorBusyNs.load(ordering: .relaxed)) / 1e9,
            generatorBlockedSeconds: Double(stats.generatorBlockedNs.load(ordering: .relaxed)) / 1e9,
            sinkCallSeconds: Double(stats.sinkCallNs.load(ordering: .relaxed)) / 1e9)
        result.generatorCPUSeconds = Double(stats.generatorCpuNs.load(ordering: .relaxed)) / 1e9
        result.sinkCPUSeconds = Double(max(0, stats.sinkCpuNs.load(ordering: .relaxed))) / 1e9
        result.sinkCallCPUSeconds = Double(max(0, stats.sinkCallCpuNs.load(ordering: .relaxed))) / 1e9
        result.timeline = watch.timeline
        result.latencyBySecond = tally.bySecond
        result.startedUnixMs = wallMillis() - Int64((monotonicNanos() &- flood.t0) / 1_000_000)
        result.stopReason = stats.reason
        result.unsentPosts = unsent
        result.rateNotMet = cfg.rate != nil && (watch.rateNotMet || unsent > 0)
        result.maxScheduleLagSeconds = watch.maxLagSeconds
        return result
    }

    /// Sink stage `stage`: every chunk in post-index order, each post's three records keyed by the post's
    /// index (the sink partitions them; for the embedded log the generator did, and with several stages
    /// each takes the records of the topic-partitions its shard owns), outcomes counted as they come.
    /// Opened once: generic over the sink type.
    func drive<S: RecordSink>(_ sink: S, stage: Int, flood: Flood, tally: Tally) {
        let stats = self.stats
        let cpu0 = threadCPUNanos()
        defer { stats.sinkCpuNs.add(Int(threadCPUNanos() &- cpu0), ordering: .relaxed) }
        let warmupEnd = flood.t0 + UInt64(config.warmup * 1e9)
        sink.onOutcome = { o in
            tally.lock.withLock { _ in
            switch o.status {
            case .stored:
                // The sink's own time of the outcome where it has one (a Kafka broker's answer, taken at the
                // stage's next wake-up): latency ends there, not when the stage got round to it.
                let now = o.doneNs != 0 ? o.doneNs : monotonicNanos()
                tally.record(o.tokens, now: now, warmupEnd: warmupEnd)
                stats.recordsOut.add(o.count, ordering: .relaxed)
                stats.payloadBytesOut.add(o.payloadBytes, ordering: .relaxed)
            case .failed(let f):
                tally.reasons[f.code, default: 0] += o.count
                stats.deadLettered.add(o.count, ordering: .relaxed)
                if tally.error == nil { tally.error = f.message }
                if f.isFatal { stats.requestStop(.fatal) }
            }
            }
        }
        if tally.live != nil && flood.stages == 1 { tally.retriesNow = { sink.report.retriesByCode } }
        let key = ByteBuffer(capacity: 32)
        let worker = flood.cfg.worker
        let stages = flood.stages
        let kinds = RecordKind.allCases  // once: the getter builds a new array at each call
        flood.forEachChunk(stage: stage, { c, noInputBeforeNs in
            let ts = wallMillis()
            let P = flood.partitions
            let first = c.firstIndex  // once: each read of a class's `var` pays a runtime exclusivity check
            for i in 0..<c.count {
                // The embedded log: the partition the generator wrote, and the stage whose shard owns the slot.
                // Kinesis: the stage owning the stream. Kafka (one stage): the sink partitions.
                let p: Int? = P == nil ? nil : Int(c.partition[i])
                var keyed = false
                let token = c.scheduled[i]
                for kind in kinds {
                    if stages > 1 {
                        let owner: Int
                        if let P, let p { owner = EmbeddedLogSink.shard(of: kind, partition: p, partitions: P, shards: stages) }
                        else { owner = KinesisSink.stage(of: kind, stages: stages) }
                        if owner != stage { continue }
                    }
                    if !keyed {
                        key.reset()
                        key.appendDecimal(worker?.global(first + i) ?? first + i)
                        keyed = true
                    }
                    sink.send(kind, key: key.bytes, value: c.record(kind.rawValue, i), partition: p.map { Int32($0) }, timestamp: ts, token: token)
                }
            }
            sink.poll(noInputBeforeNs: noInputBeforeNs)
            tally.tick(monotonicNanos())
        }, idle: { ready, atMostNs in
            sink.wait(on: flood.sinkBells[stage], atMostNs: atMostNs, until: ready)
            // New input first: taking a chunk ends with a poll, so a batch whose linger ended meanwhile takes
            // the chunk's records too instead of going out without them.
            if ready() { return }
            sink.poll()
            tally.tick(monotonicNanos())
        })
        // Closing sends what is buffered and waits for its outcomes: the sink's work, timed like a chunk's.
        let problem = stats.timedSinkCall { sink.close() }
        let report = sink.report
        let last = tally.lock.withLock { _ in
            if let problem, tally.error == nil { tally.error = problem }
            tally.reports.append(report)
            return tally.reports.count == stages
        }
        if last { tally.tick(monotonicNanos(), final: true) }  // the last stage closes the hlog
    }
}
