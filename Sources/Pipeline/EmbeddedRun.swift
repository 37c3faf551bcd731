import Bytes
import Codecs
import Dispatch
import Histogram
import KafkaLog
import KafkaWire
import PinEmulator
import PinModel
import RingBuffers
import Synchronization
import Platform

/// One progress sample (taken about once a second).
public struct ProgressSample: Sendable {
    public var seconds: Double
    public var recordsOut: Int
    public var payloadBytesOut: Int
    public var queueDepth: Int
    public var queueCapacity: Int
}

/// Records and bytes of one topic-partition after a run.
public struct PartitionCount: Sendable, Equatable {
    public var topic: String
    public var partition: Int
    public var records: Int
    public var batches: Int
    public var nextOffset: Int64
}

/// What a run did. `recordsIn == recordsOut + deadLettered` always holds at the end.
public struct RunResult: Sendable {
    public var config: RunConfig
    public var posts: Int
    public var recordsIn: Int
    public var recordsOut: Int
    public var deadLettered: Int
    public var deadLetterReasons: [String: Int]
    public var payloadBytes: Int
    public var storedBytes: Int
    public var batches: Int
    public var seconds: Double
    /// Microseconds from each record's scheduled send time to its durable append.
    public var latencyMicros: Histogram<UInt64>
    public var partitions: [PartitionCount]
    public var timeline: [ProgressSample]
    public var cpuSeconds: Double
    public var peakRSSBytes: Int
    public var generatorStalls: Int
    public var recoveries: [RecoveryReport]
    public var error: String?
    /// "embedded" or "kafka".
    public var mode: String = "embedded"
    /// Kafka: batches retried (each retry is counted; retried records are not lost).
    public var retries: Int = 0
    /// Kafka: retried batches by the error that caused the retry.
    public var retriesByCode: [String: Int] = [:]
    /// Kafka: Produce requests sent.
    public var requests: Int = 0
    /// Latencies of records scheduled during the warm-up (kept apart from `latencyMicros`).
    public var warmupLatencyMicros: Histogram<UInt64> = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
    /// Stage time: generators busy and blocked (backpressure), sink stage busy; seconds.
    public var generatorBusySeconds: Double = 0
    public var generatorBlockedSeconds: Double = 0
    public var sinkBusySeconds: Double = 0

    public var recordsPerSecond: Double { seconds > 0 ? Double(recordsOut) / seconds : 0 }
    public var megabytesPerSecond: Double { seconds > 0 ? Double(payloadBytes) / seconds / 1e6 : 0 }
    public var accountingHolds: Bool { recordsIn == recordsOut + deadLettered }
}

/// Per topic-partition state of the log stage.
/// Owned by the log stage while a run is going; read by the caller only after the stage has finished.
final class PartitionSink: @unchecked Sendable {
    let log: PartitionLog
    let topic: String
    let partition: Int
    var builder: RecordBatchBuilder
    var scheduled: [UInt64] = []
    var firstAppendNs: UInt64 = 0
    var payload = 0
    var records = 0
    var batches = 0

    init(log: PartitionLog, batchBytes: Int) {
        self.log = log
        self.topic = log.topic
        self.partition = log.partition
        self.builder = RecordBatchBuilder(capacity: min(batchBytes + 4096, 8 << 20))
        scheduled.reserveCapacity(4096)
    }
}

/// Floods emulated posts through generator threads, lock-free rings and one log stage into the
/// embedded Kafka-format log. See ARCHITECTURE.md for the data flow.
/// A run the CLI can drive: the embedded log or a Kafka cluster.
public protocol FloodEngine: AnyObject, Sendable {
    func run(onProgress: ((ProgressSample) -> Void)?) throws -> RunResult
    func requestStop()
}

public final class EmbeddedRun: FloodEngine, @unchecked Sendable {
    public let config: RunConfig
    public let stats = LiveStats()
    let emulator: Emulator

    public init(config: RunConfig) throws(ConfigError) {
        try config.validate()
        self.config = config
        self.emulator = Emulator(seed: config.seed, users: config.users)
    }

    /// Asks a running flood to stop early (e.g. on SIGINT); what was generated is still written.
    public func requestStop() { stats.stop.store(true, ordering: .relaxed) }

    public func run(onProgress: ((ProgressSample) -> Void)? = nil) throws -> RunResult {
        let cfg = config
        let logConfig = LogConfig(dataDir: cfg.dataDir, segmentBytes: cfg.segmentBytes, fsync: cfg.fsync)
        // Open every partition first: recovery of a torn tail happens here, before any new data.
        var sinkRows: [[PartitionSink]] = []
        var recoveries: [RecoveryReport] = []
        for kind in RecordKind.allCases {
            var row: [PartitionSink] = []
            for p in 0..<cfg.partitions {
                let log = try PartitionLog(topic: cfg.topic(kind), partition: p, config: logConfig)
                if let r = log.recovery { recoveries.append(r) }
                row.append(PartitionSink(log: log, batchBytes: cfg.batchBytes))
            }
            sinkRows.append(row)
        }
        let sinks = sinkRows

        let flood = Flood(config: cfg, emulator: emulator, stats: stats)
        let t0 = flood.t0
        let cpu0 = processCPUSeconds()
        let group = DispatchGroup()
        let stats = self.stats
        flood.startGenerators(group: group)

        // Log stage: takes chunks in sequence order (round robin over generators), partitions each post by
        // murmur2 of its index, batches per topic-partition, seals (compress + CRC) and appends.
        let emptyHist = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
        let outcome = Mutex<(hist: Histogram<UInt64>, warm: Histogram<UInt64>, reasons: [String: Int], stored: Int, error: String?)>(
            (emptyHist, emptyHist, [:], 0, nil))
        DispatchQueue(label: "pinbench.log").async(group: group) {
            if cfg.pinCPUs { Affinity.pinCurrentThread(to: 0) }
            var hist = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
            var warmHist = hist
            let warmupEnd = t0 + UInt64(cfg.warmup * 1e9)
            var reasons: [String: Int] = [:]
            var stored = 0
            var failure: String?
            let codec = Codec()
            let out = ByteBuffer(capacity: cfg.batchBytes + 65536)
            let keyBuf = ByteBuffer(capacity: 32)
            let lingerNs = UInt64(cfg.lingerMs * 1e6)

            func deadLetter(_ n: Int, _ reason: String) {
                reasons[reason, default: 0] += n
                stats.deadLettered.add(n, ordering: .relaxed)
            }

            func flush(_ s: PartitionSink) {
                guard !s.builder.isEmpty else { return }
                let n = Int(s.builder.count)
                defer {
                    s.builder.reset()
                    s.scheduled.removeAll(keepingCapacity: true)
                }
                if failure != nil {
                    deadLetter(n, failure!)
                    return
                }
                out.reset()
                do {
                    try s.builder.seal(into: out, codec: cfg.compression, compressor: codec, level: cfg.compressionLevel)
                    try s.log.append(batch: UnsafeMutableRawBufferPointer(start: out.base, count: out.count))
                } catch let e as LogError {
                    failure = e.isDiskFull ? "disk full: \(e)" : "log write failed: \(e)"
                    stats.stop.store(true, ordering: .relaxed)
                    deadLetter(n, failure!)
                    return
                } catch {
                    failure = "batch encode failed: \(error)"
                    stats.stop.store(true, ordering: .relaxed)
                    deadLetter(n, failure!)
                    return
                }
                let now = monotonicNanos()
                for t in s.scheduled {
                    let v = now > t ? (now - t) / 1000 : 0
                    if t < warmupEnd { _ = warmHist.record(v) } else { _ = hist.record(v) }
                }
                stored += out.count
                s.records += n
                s.batches += 1
                stats.recordsOut.add(n, ordering: .relaxed)
                stats.payloadBytesOut.add(s.payload, ordering: .relaxed)
                s.payload = 0
            }

            func flushLingering(_ now: UInt64) {
                for row in sinks {
                    for s in row where !s.builder.isEmpty && now &- s.firstAppendNs >= lingerNs { flush(s) }
                }
            }

            func process(_ c: Chunk) {
                let ts = wallMillis()
                let now = monotonicNanos()
                for i in 0..<c.count {
                    keyBuf.reset()
                    keyBuf.appendDecimal(c.firstIndex + i)
                    let key = keyBuf.bytes
                    let p = Murmur2.partition(key, partitions: cfg.partitions)
                    for k in 0..<3 {
                        let s = sinks[k][p]
                        let value = c.record(k, i)
                        if s.builder.isEmpty { s.firstAppendNs = now }
                        s.builder.append(key: key, value: value, timestamp: ts)
                        s.scheduled.append(c.scheduled[i])
                        s.payload += value.count
                        if s.builder.sizeInBytes >= cfg.batchBytes { flush(s) }
                    }
                }
                flushLingering(monotonicNanos())
            }

            flood.forEachChunk(process) { flushLingering(monotonicNanos()) }
            for row in sinks { for s in row { flush(s) } }
            for row in sinks {
                for s in row {
                    do { try s.log.close() } catch {
                        if failure == nil { failure = "close failed: \(error)" }
                    }
                }
            }
            outcome.withLock { $0 = (hist, warmHist, reasons, stored, failure) }
        }

        let timeline = flood.monitor(group: group, onProgress: onProgress)
        let seconds = Double(monotonicNanos() - t0) / 1e9
        let o = outcome.withLock { $0 }
        var parts: [PartitionCount] = []
        for row in sinks {
            for s in row {
                parts.append(PartitionCount(topic: s.topic, partition: s.partition, records: s.records, batches: s.batches, nextOffset: s.log.nextOffset))
            }
        }
        let recordsIn = stats.recordsIn.load(ordering: .relaxed)
        return RunResult(
            config: cfg, posts: recordsIn / 3, recordsIn: recordsIn, recordsOut: stats.recordsOut.load(ordering: .relaxed),
            deadLettered: stats.deadLettered.load(ordering: .relaxed), deadLetterReasons: o.reasons,
            payloadBytes: stats.payloadBytesOut.load(ordering: .relaxed), storedBytes: o.stored,
            batches: parts.reduce(0) { $0 + $1.batches }, seconds: seconds, latencyMicros: o.hist, partitions: parts,
            timeline: timeline, cpuSeconds: processCPUSeconds() - cpu0, peakRSSBytes: peakRSSBytes(),
            generatorStalls: stats.generatorStalls.load(ordering: .relaxed), recoveries: recoveries, error: o.error,
            warmupLatencyMicros: o.warm, generatorBusySeconds: Double(stats.generatorBusyNs.load(ordering: .relaxed)) / 1e9,
            generatorBlockedSeconds: Double(stats.generatorBlockedNs.load(ordering: .relaxed)) / 1e9,
            sinkBusySeconds: Double(stats.sinkBusyNs.load(ordering: .relaxed)) / 1e9)
    }
}
