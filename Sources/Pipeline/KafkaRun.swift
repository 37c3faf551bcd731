import Bytes
import Dispatch
import Histogram
import KafkaClient
import KafkaWire
import PinEmulator
import PinModel
import Synchronization
import Platform

/// Floods emulated posts into a Kafka cluster through pinbench's own producer. Same generator stage and
/// accounting as the embedded run; the sink stage thread owns the producer (its accumulator), whose
/// sender thread owns the connections. `records_out` counts acknowledged records, `dead_lettered` the
/// records whose delivery failed, by error.
public final class KafkaRun: FloodEngine, @unchecked Sendable {
    public let config: RunConfig
    public let stats = LiveStats()
    let emulator: Emulator
    let producerConfig: ProducerConfiguration

    public init(config: RunConfig) throws(ConfigError) {
        try config.validate()
        guard let k = config.kafka, let brokers = BrokerAddress.parseList(k) else {
            throw ConfigError("--kafka needs host:port[,host:port...]")
        }
        var pc = ProducerConfiguration(bootstrap: brokers)
        pc.acks = config.acks
        pc.idempotence = config.idempotence
        pc.compression = config.compression
        pc.compressionLevel = config.compressionLevel
        pc.batchBytes = config.batchBytes
        pc.lingerMs = config.lingerMs
        pc.requestTimeoutMs = config.requestTimeoutMs
        pc.deliveryTimeoutMs = config.deliveryTimeoutMs
        do { try pc.validate() } catch { throw ConfigError(error.message) }
        self.config = config
        self.producerConfig = pc
        self.emulator = Emulator(seed: config.seed, users: config.users)
    }

    public func requestStop() { stats.stop.store(true, ordering: .relaxed) }

    public func run(onProgress: ((ProgressSample) -> Void)? = nil) throws -> RunResult {
        let cfg = config
        let producer: KafkaProducer
        do { producer = try KafkaProducer(config: producerConfig) } catch { throw ConfigError("cannot start the Kafka producer: \(error)") }
        let topics = RecordKind.allCases.map { cfg.topic($0) }
        var handles: [TopicHandle] = []
        do {
            if cfg.createTopics { try producer.createTopics(topics, partitions: Int32(cfg.partitions)) }
            for t in topics { handles.append(try producer.topic(t)) }
        } catch {
            try? producer.close { _ in }
            throw ConfigError("\(error)")
        }

        let topicHandles = handles
        let flood = Flood(config: cfg, emulator: emulator, stats: stats)
        let t0 = flood.t0
        let cpu0 = processCPUSeconds()
        let group = DispatchGroup()
        let stats = self.stats
        flood.startGenerators(group: group)

        struct Outcome {
            var hist = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
            var warm = Histogram<UInt64>(highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: .three)
            var reasons: [String: Int] = [:]
            var stored = 0
            var batches = 0
            var perPartition: [String: [Int: (records: Int, batches: Int)]] = [:]
            var error: String?
        }
        let outcome = Mutex(Outcome())
        let warmupEnd = t0 + UInt64(cfg.warmup * 1e9)
        DispatchQueue(label: "pinbench.kafka.stage").async(group: group) {
            if cfg.pinCPUs { Affinity.pinCurrentThread(to: 0) }
            var o = Outcome()
            let keyBuf = ByteBuffer(capacity: 32)

            func delivered(_ r: DeliveryReport) {
                let b = r.batch
                if let e = r.error {
                    let reason: String
                    if case .broker(let code) = e.kind { reason = code.name } else { reason = "\(e.kind)" }
                    o.reasons[reason, default: 0] += b.records
                    stats.deadLettered.add(b.records, ordering: .relaxed)
                    if o.error == nil { o.error = e.message }
                    return
                }
                let now = monotonicNanos()
                for t in b.tokens {
                    let v = now > t ? (now - t) / 1000 : 0
                    if t < warmupEnd { _ = o.warm.record(v) } else { _ = o.hist.record(v) }
                }
                o.stored += b.bytes.count
                o.batches += 1
                let prev = o.perPartition[b.topic, default: [:]][Int(b.partition)] ?? (0, 0)
                o.perPartition[b.topic, default: [:]][Int(b.partition)] = (prev.records + b.records, prev.batches + 1)
                stats.recordsOut.add(b.records, ordering: .relaxed)
                stats.payloadBytesOut.add(b.payloadBytes, ordering: .relaxed)
            }

            var failed = false
            func process(_ c: Chunk) {
                let ts = wallMillis()
                for i in 0..<c.count {
                    if failed {
                        o.reasons["not sent: \(o.error ?? "producer failed")", default: 0] += 3
                        stats.deadLettered.add(3, ordering: .relaxed)
                        continue
                    }
                    keyBuf.reset()
                    keyBuf.appendDecimal(c.firstIndex + i)
                    for k in 0..<3 {
                        do {
                            try producer.send(to: topicHandles[k], key: keyBuf.bytes, value: c.record(k, i), timestamp: ts, token: c.scheduled[i], onDelivery: delivered)
                        } catch {
                            o.reasons["\(error)", default: 0] += 1
                            stats.deadLettered.add(1, ordering: .relaxed)
                            if o.error == nil { o.error = "\(error)" }
                            if !error.isRetriable {
                                failed = true
                                stats.stop.store(true, ordering: .relaxed)
                            }
                        }
                    }
                }
                try? producer.poll(onDelivery: delivered)
            }
            flood.forEachChunk(process) { try? producer.poll(onDelivery: delivered) }
            do {
                try producer.close(onDelivery: delivered)
            } catch {
                if o.error == nil { o.error = "close: \(error)" }
            }
            outcome.withLock { $0 = o }
        }

        let timeline = flood.monitor(group: group, onProgress: onProgress)
        let seconds = Double(monotonicNanos() - t0) / 1e9
        let o = outcome.withLock { $0 }
        var parts: [PartitionCount] = []
        for t in topics {
            for (p, v) in (o.perPartition[t] ?? [:]).sorted(by: { $0.key < $1.key }) {
                parts.append(PartitionCount(topic: t, partition: p, records: v.records, batches: v.batches, nextOffset: -1))
            }
        }
        let recordsIn = stats.recordsIn.load(ordering: .relaxed)
        let reasons = o.reasons
        let retries = producer.stats.retries.load(ordering: .relaxed)
        return RunResult(
            config: cfg, posts: recordsIn / 3, recordsIn: recordsIn, recordsOut: stats.recordsOut.load(ordering: .relaxed),
            deadLettered: stats.deadLettered.load(ordering: .relaxed), deadLetterReasons: reasons,
            payloadBytes: stats.payloadBytesOut.load(ordering: .relaxed), storedBytes: o.stored,
            batches: o.batches, seconds: seconds, latencyMicros: o.hist, partitions: parts,
            timeline: timeline, cpuSeconds: processCPUSeconds() - cpu0, peakRSSBytes: peakRSSBytes(),
            generatorStalls: stats.generatorStalls.load(ordering: .relaxed), recoveries: [], error: o.error,
            mode: "kafka", retries: retries, retriesByCode: producer.stats.retriesByReason.withLock { $0 }, requests: producer.stats.requests.load(ordering: .relaxed),
            warmupLatencyMicros: o.warm, generatorBusySeconds: Double(stats.generatorBusyNs.load(ordering: .relaxed)) / 1e9,
            generatorBlockedSeconds: Double(stats.generatorBlockedNs.load(ordering: .relaxed)) / 1e9,
            sinkBusySeconds: Double(stats.sinkBusyNs.load(ordering: .relaxed)) / 1e9)
    }
}
