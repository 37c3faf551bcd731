import Bytes
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

    /// `12s] 1234 records  0.987 M rec/s  250.1 MB/s  queue 768/6144`: the progress line after its prefix.
    public var line: String {
        let rps = seconds > 0 ? Double(recordsOut) / seconds : 0
        let mbs = seconds > 0 ? Double(payloadBytesOut) / seconds / 1e6 : 0
        return "\(fmt(seconds, 0))s] \(recordsOut) records  \(fmt(rps / 1e6, 3)) M rec/s  \(fmt(mbs, 1)) MB/s  queue \(queueDepth)/\(queueCapacity)"
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
    /// Stage time: generators busy and blocked (backpressure), sink stage busy; seconds.
    public var generatorBusySeconds: Double = 0
    public var generatorBlockedSeconds: Double = 0
    public var sinkBusySeconds: Double = 0

    public var mode: RunMode { config.mode }
    public var recordsPerSecond: Double { seconds > 0 ? Double(recordsOut) / seconds : 0 }
    public var megabytesPerSecond: Double { seconds > 0 ? Double(payloadBytes) / seconds / 1e6 : 0 }
    public var accountingHolds: Bool { recordsIn == recordsOut + deadLettered }
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

    /// Asks a running flood to stop early (e.g. on SIGINT); what was generated is still sent.
    public func requestStop() { stats.stop.store(true, ordering: .relaxed) }

    /// The sink stage's tally, filled by outcomes on the stage thread and read after it finished.
    final class Tally: @unchecked Sendable {
        var hist = newLatencyHistogram()
        var warm = newLatencyHistogram()
        var reasons: [String: Int] = [:]
        var error: String?
        var report = SinkReport()
        var endpoint = ""
    }

    public func run(onProgress: ((ProgressSample) -> Void)? = nil) throws(ConfigError) -> RunResult {
        let cfg = config
        let sink: any RecordSink
        let bell = Doorbell()
        do { sink = try cfg.backend.makeSink(cfg.sink, role: .flood, bell: bell) } catch { throw ConfigError(error.message) }
        let flood = Flood(config: cfg, emulator: emulator, stats: stats, sinkBell: bell)
        let cpu0 = processCPUSeconds()
        let group = DispatchGroup()
        let tally = Tally()
        tally.endpoint = sink.latencyEndpoint
        flood.startGenerators(group: group)
        nonisolated(unsafe) let owned = sink
        group.enter()
        _ = StageThread(name: "sink") {
            if cfg.pinCPUs { Affinity.pinCurrentThread(to: 0) }
            self.drive(owned, flood: flood, tally: tally)
            group.leave()
        }
        let timeline = flood.monitor(group: group, onProgress: onProgress)
        let seconds = Double(monotonicNanos() - flood.t0) / 1e9
        let recordsIn = stats.recordsIn.load(ordering: .relaxed)
        let r = tally.report
        return RunResult(
            config: cfg, posts: recordsIn / 3, recordsIn: recordsIn, recordsOut: stats.recordsOut.load(ordering: .relaxed),
            deadLettered: stats.deadLettered.load(ordering: .relaxed), deadLetterReasons: tally.reasons,
            payloadBytes: stats.payloadBytesOut.load(ordering: .relaxed), storedBytes: r.storedBytes, batches: r.batches,
            seconds: seconds, latencyMicros: tally.hist, latencyEndpoint: tally.endpoint, partitions: r.partitions, timeline: timeline,
            cpuSeconds: processCPUSeconds() - cpu0, peakRSSBytes: peakRSSBytes(),
            generatorStalls: stats.generatorStalls.load(ordering: .relaxed), recoveries: r.recoveries, error: tally.error,
            retries: r.retries, retriesByCode: r.retriesByCode, requests: r.requests, warmupLatencyMicros: tally.warm,
            generatorBusySeconds: Double(stats.generatorBusyNs.load(ordering: .relaxed)) / 1e9,
            generatorBlockedSeconds: Double(stats.generatorBlockedNs.load(ordering: .relaxed)) / 1e9,
            sinkBusySeconds: Double(stats.sinkBusyNs.load(ordering: .relaxed)) / 1e9)
    }

    /// The sink stage: every chunk in post-index order, each post's three records keyed by the post's index
    /// (the sink partitions them), outcomes counted as they come. Opened once: generic over the sink type.
    func drive<S: RecordSink>(_ sink: S, flood: Flood, tally: Tally) {
        let stats = self.stats
        let warmupEnd = flood.t0 + UInt64(config.warmup * 1e9)
        sink.onOutcome = { o in
            switch o.status {
            case .stored:
                let now = monotonicNanos()
                for t in o.tokens {
                    let v = now > t ? (now - t) / 1000 : 0
                    if t < warmupEnd { _ = tally.warm.record(v) } else { _ = tally.hist.record(v) }
                }
                stats.recordsOut.add(o.count, ordering: .relaxed)
                stats.payloadBytesOut.add(o.payloadBytes, ordering: .relaxed)
            case .failed(let f):
                tally.reasons[f.code, default: 0] += o.count
                stats.deadLettered.add(o.count, ordering: .relaxed)
                if tally.error == nil { tally.error = f.message }
                if f.isFatal { stats.stop.store(true, ordering: .relaxed) }
            }
        }
        let key = ByteBuffer(capacity: 32)
        flood.forEachChunk({ c in
            let ts = wallMillis()
            for i in 0..<c.count {
                key.reset()
                key.appendDecimal(c.firstIndex + i)
                let token = c.scheduled[i]
                for kind in RecordKind.allCases {
                    sink.send(kind, key: key.bytes, value: c.record(kind.rawValue, i), partition: nil, timestamp: ts, token: token)
                }
            }
            sink.poll(timeoutMs: 0)
        }, idle: { ready in
            sink.wait(on: flood.sinkBell, until: ready)
            sink.poll(timeoutMs: 0)
        })
        if let problem = sink.close(), tally.error == nil { tally.error = problem }
        tally.report = sink.report
    }
}
