import AWSClient
import Bytes
import Dispatch
import Histogram
import PinEmulator
import PinModel
import Synchronization
import Platform

/// Floods emulated posts into three Kinesis streams through pinbench's PutRecords producer. Same generator
/// stage and accounting as the other runs; the sink stage thread owns the producer and its curl multi
/// handle. `records_out` counts records the service accepted, `dead_lettered` those that failed for good,
/// by error code; retries are counted by code apart.
public final class KinesisRun: FloodEngine, @unchecked Sendable {
    public let config: RunConfig
    public let settings: KinesisSettings
    public let stats = LiveStats()
    let emulator: Emulator

    public init(config: RunConfig) throws(ConfigError) {
        try config.validate()
        guard let k = config.kinesis else { throw ConfigError("no Kinesis settings") }
        if k.shards < 1 || k.shards > 10_000 { throw ConfigError("--shards must be in 1...10000") }
        if k.inFlight < 1 || k.inFlight > 256 { throw ConfigError("--in-flight must be in 1...256") }
        if k.streamPrefix.isEmpty || k.streamPrefix.contains("/") { throw ConfigError("--stream-prefix must be non-empty without '/'") }
        self.config = config
        self.settings = k
        self.emulator = Emulator(seed: config.seed, users: config.users)
    }

    public func requestStop() { stats.stop.store(true, ordering: .relaxed) }

    /// Checks the streams (creating them with `--create-streams`) and returns producer settings.
    func prepare(_ client: KinesisClient) throws(ConfigError) -> KinesisProducerConfig {
        let streams = RecordKind.allCases.map { settings.stream($0) }
        var pc = KinesisProducerConfig(streams: streams)
        var shards: [Int] = []
        for s in streams {
            do {
                let summary = settings.createStreams ? try client.ensureStream(s, shards: settings.shards) : try client.describeStreamSummary(s)
                shards.append(summary.openShards)
                if let kib = summary.maxRecordSizeKiB { pc.maxRecordBytes = max(pc.maxRecordBytes, kib * 1024) }
            } catch {
                if case .service(_, "ResourceNotFoundException") = error.kind {
                    throw ConfigError("Kinesis stream \(s) does not exist (add --create-streams): \(error.message)")
                }
                throw ConfigError("\(error.message)")
            }
        }
        pc.maxInFlight = settings.inFlight
        pc.ordered = settings.ordered
        pc.aggregate = settings.aggregate
        pc.lingerMs = settings.lingerMs
        pc.shapeShards = settings.shape ? shards : nil
        pc.deliveryTimeoutMs = Double(config.deliveryTimeoutMs)
        pc.requestTimeoutMs = Int(config.requestTimeoutMs)
        return pc
    }

    public func run(onProgress: ((ProgressSample) -> Void)? = nil) throws -> RunResult {
        let cfg = config, settings = self.settings
        let client: KinesisClient
        do { client = try KinesisClient(config: settings.aws) } catch { throw ConfigError(error.message) }
        let pc = try prepare(client)

        let flood = Flood(config: cfg, emulator: emulator, stats: stats)
        let t0 = flood.t0
        let cpu0 = processCPUSeconds()
        let group = DispatchGroup()
        let stats = self.stats
        flood.startGenerators(group: group)

        struct Outcome: @unchecked Sendable {
            var hist = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
            var warm = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
            var reasons: [String: Int] = [:]
            var producer = KinesisProducerStats()
            var perStream: [Int] = [0, 0, 0]
            var error: String?
        }
        let outcome = Mutex(Outcome())
        let warmupEnd = t0 + UInt64(cfg.warmup * 1e9)
        let service = client.service
        DispatchQueue(label: "pinbench.kinesis.stage").async(group: group) {
            if cfg.pinCPUs { Affinity.pinCurrentThread(to: 0) }
            var o = Outcome()
            let producer = KinesisProducer(service: service, config: pc)
            producer.onAccepted = { s, tokens in
                let now = monotonicNanos()
                for t in tokens {
                    let v = now > t ? (now - t) / 1000 : 0
                    if t < warmupEnd { _ = o.warm.record(v) } else { _ = o.hist.record(v) }
                }
                o.perStream[s] += tokens.count
                stats.recordsOut.add(tokens.count, ordering: .relaxed)
            }
            producer.onFailed = { _, code, message, n in
                o.reasons[code, default: 0] += n
                stats.deadLettered.add(n, ordering: .relaxed)
                if o.error == nil { o.error = message }
                // A wrong stream or wrong credentials will not get better: stop the flood.
                if code == "ResourceNotFoundException" || code == "UnrecognizedClientException" || code == "AccessDeniedException"
                    || code == "InvalidSignatureException" || code.hasPrefix("Transport") {
                    stats.stop.store(true, ordering: .relaxed)
                }
            }
            let keyBuf = ByteBuffer(capacity: 64)
            let fixed = Array(settings.fixedKey.utf8)
            func process(_ c: Chunk) {
                for i in 0..<c.count {
                    keyBuf.reset()
                    switch settings.partitionKey {
                    case .index: keyBuf.appendDecimal(c.firstIndex + i)
                    case .fixed: keyBuf.append(contentsOf: fixed)
                    case .random: break
                    }
                    for k in 0..<3 {
                        if settings.partitionKey == .random {
                            keyBuf.reset()
                            keyBuf.append(utf8: String(Digest.randomUInt64(), radix: 16) + String(Digest.randomUInt64(), radix: 16))
                        }
                        producer.send(stream: k, key: keyBuf.bytes, data: c.record(k, i), token: c.scheduled[i])
                    }
                }
                producer.poll()
            }
            flood.forEachChunk(process) { producer.poll(timeoutMs: 1) }
            producer.flush()
            o.producer = producer.stats
            outcome.withLock { $0 = o }
        }

        let timeline = flood.monitor(group: group, onProgress: onProgress)
        let seconds = Double(monotonicNanos() - t0) / 1e9
        let o = outcome.withLock { $0 }
        let parts = RecordKind.allCases.enumerated().map { i, k in
            PartitionCount(topic: settings.stream(k), partition: -1, records: o.perStream[i], batches: 0, nextOffset: -1)
        }
        let recordsIn = stats.recordsIn.load(ordering: .relaxed)
        return RunResult(
            config: cfg, posts: recordsIn / 3, recordsIn: recordsIn, recordsOut: stats.recordsOut.load(ordering: .relaxed),
            deadLettered: stats.deadLettered.load(ordering: .relaxed), deadLetterReasons: o.reasons,
            payloadBytes: o.producer.payloadBytes, storedBytes: o.producer.payloadBytes,
            batches: o.producer.requests, seconds: seconds, latencyMicros: o.hist, partitions: parts,
            timeline: timeline, cpuSeconds: processCPUSeconds() - cpu0, peakRSSBytes: peakRSSBytes(),
            generatorStalls: stats.generatorStalls.load(ordering: .relaxed), recoveries: [], error: o.error,
            mode: "kinesis", retries: o.producer.retried.values.reduce(0, +), retriesByCode: o.producer.retried, requests: o.producer.requests,
            warmupLatencyMicros: o.warm, generatorBusySeconds: Double(stats.generatorBusyNs.load(ordering: .relaxed)) / 1e9,
            generatorBlockedSeconds: Double(stats.generatorBlockedNs.load(ordering: .relaxed)) / 1e9,
            sinkBusySeconds: Double(stats.sinkBusyNs.load(ordering: .relaxed)) / 1e9)
    }
}
