import Bytes
import Codecs
import Dispatch
import KafkaWire
import RingBuffers
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

@inline(__always)
func nowNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
}

/// One sealed batch on its way to a broker. Allocated per batch (never per record).
public final class ProducerBatch: @unchecked Sendable {
    public let topic: String
    public let partition: Int32
    /// The encoded RecordBatch v2 (producer fields re-stamped by the sender under idempotence).
    public let bytes: ByteBuffer
    public let records: Int
    public let payloadBytes: Int
    /// The caller's per-record tokens (pinbench puts the scheduled send time here).
    public let tokens: [UInt64]
    let createdNs: UInt64
    var baseSequence: Int32 = -1
    var attempts = 0
    var notBeforeNs: UInt64 = 0

    init(topic: String, partition: Int32, bytes: ByteBuffer, records: Int, payloadBytes: Int, tokens: [UInt64]) {
        self.topic = topic
        self.partition = partition
        self.bytes = bytes
        self.records = records
        self.payloadBytes = payloadBytes
        self.tokens = tokens
        self.createdNs = nowNanos()
    }
}

/// The outcome of one batch: delivered at `baseOffset`, or failed with `error`.
public struct DeliveryReport: @unchecked Sendable {
    public let batch: ProducerBatch
    public let baseOffset: Int64
    public let error: KafkaClientError?
    /// Retries this batch took.
    public let retries: Int
}

/// Counters a producer keeps (read from any thread).
public final class ProducerStats: Sendable {
    public let requests = Atomic<Int>(0)
    public let retries = Atomic<Int>(0)
    public let metadataRefreshes = Atomic<Int>(0)
    public let epochBumps = Atomic<Int>(0)
    public let reconnects = Atomic<Int>(0)
    init() {}
}

/// A native Kafka producer.
///
/// Threading: one owner thread calls `send`, `poll`, `flush` and `close` (no locks per record; the
/// accumulator is the owner's). A sender thread owns the connections (one per broker), the metadata and
/// every partition's in-flight state; sealed batches reach it through a lock-free ring and delivery
/// reports come back through another.
///
/// Split as in franz-go: partitioner (Java murmur2 for keyed records, sticky for unkeyed) → per-partition
/// accumulator (`batch.size`, `linger.ms`) → per-broker sink with `max.in.flight` pipelined requests and
/// in-order responses. Every record ends in a delivery report: delivered, or failed with its error.
public final class KafkaProducer: @unchecked Sendable {
    public let config: ProducerConfiguration
    public let stats = ProducerStats()
    let sender: Sender
    let toSender: SPSCRing<ProducerBatch>
    let reports: SPSCRing<DeliveryReport>
    let outstandingBytes = Atomic<Int>(0)
    let senderDone = DispatchGroup()

    // Owner-thread state.
    struct Accumulator {
        var builder: RecordBatchBuilder
        var tokens: [UInt64] = []
        var payload = 0
        var firstNs: UInt64 = 0
    }
    var accumulators: [String: [Accumulator]] = [:]
    var sticky: [String: Int] = [:]
    let codec = Codec()
    var closed = false
    public private(set) var pendingBatches = 0

    /// Connects to the bootstrap brokers, learns the cluster and (with idempotence) gets a producer id.
    public init(config: ProducerConfiguration) throws(KafkaClientError) {
        try config.validate()
        self.config = config
        toSender = SPSCRing(capacity: 4096)
        reports = SPSCRing(capacity: 8192)
        sender = try Sender(config: config, stats: stats)
        let s = sender, inRing = toSender, outRing = reports
        DispatchQueue(label: "pinbench.kafka.sender").async(group: senderDone) { s.run(inbox: inRing, outbox: outRing) }
    }

    deinit { if !closed { sender.stop.store(true, ordering: .relaxed) } }

    /// Partitions of `topic` (from metadata; asks the cluster if not known yet).
    public func partitionCount(_ topic: String) throws(KafkaClientError) -> Int {
        try sender.partitionCount(topic)
    }

    /// Creates topics (ignores "already exists").
    public func createTopics(_ names: [String], partitions: Int32, replication: Int16 = 1) throws(KafkaClientError) {
        try sender.createTopics(names, partitions: partitions, replication: replication)
    }

    /// Appends one record. `partition == nil` picks one: murmur2 of the key (Java's partitioner), or the
    /// sticky partition for a null key. Blocks while `buffer.memory` is used up (backpressure).
    public func send(
        topic: String, partition: Int? = nil, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
        timestamp: Int64, token: UInt64 = 0, onDelivery: (DeliveryReport) -> Void
    ) throws(KafkaClientError) {
        precondition(!closed, "send after close")
        if accumulators[topic] == nil {
            let n = try partitionCount(topic)
            accumulators[topic] = (0..<n).map { _ in Accumulator(builder: RecordBatchBuilder(capacity: config.batchBytes + 1024)) }
            sticky[topic] = Int.random(in: 0..<n)
        }
        let n = accumulators[topic]!.count
        let p: Int
        if let partition {
            guard partition >= 0 && partition < n else {
                throw KafkaClientError(.broker(.unknownTopicOrPartition), "\(topic) has no partition \(partition)")
            }
            p = partition
        } else if let key {
            p = Murmur2.partition(key, partitions: n)
        } else {
            p = sticky[topic]!
        }
        let recordSize = value.count + (key?.count ?? 0) + 32
        if recordSize > config.maxRecordBytes {
            throw KafkaClientError(.broker(.messageTooLarge), "record of \(recordSize) bytes is over the \(config.maxRecordBytes)-byte limit")
        }
        // Seal first if this record would push the batch over batch.size.
        if accumulators[topic]![p].builder.count > 0 && accumulators[topic]![p].builder.sizeInBytes + recordSize > config.batchBytes {
            try seal(topic, p, onDelivery: onDelivery)
            if partition == nil && key == nil { return try send(topic: topic, partition: nil, key: key, value: value, timestamp: timestamp, token: token, onDelivery: onDelivery) }
        }
        accumulators[topic]![p].append(key: key, value: value, timestamp: timestamp, token: token)
        if accumulators[topic]![p].builder.sizeInBytes >= config.batchBytes { try seal(topic, p, onDelivery: onDelivery) }
    }

    /// Seals batches whose linger has passed and hands delivery reports to `onDelivery`.
    public func poll(onDelivery: (DeliveryReport) -> Void) throws(KafkaClientError) {
        let now = nowNanos()
        let lingerNs = UInt64(config.lingerMs * 1e6)
        for (topic, accs) in accumulators {
            for p in accs.indices where accs[p].builder.count > 0 && now &- accs[p].firstNs >= lingerNs {
                try seal(topic, p, onDelivery: onDelivery)
            }
        }
        drainReports(onDelivery)
    }

    /// Seals everything and waits until every batch has its delivery report (or `timeoutMs` passes).
    /// Returns the batches still without a report (0 when all are done).
    @discardableResult
    public func flush(timeoutMs: Int = 300_000, onDelivery: (DeliveryReport) -> Void) throws(KafkaClientError) -> Int {
        for (topic, accs) in accumulators {
            for p in accs.indices where accs[p].builder.count > 0 { try seal(topic, p, onDelivery: onDelivery) }
        }
        let deadline = nowNanos() + UInt64(timeoutMs) * 1_000_000
        var backoff = Backoff()
        while pendingBatches > 0 && nowNanos() < deadline {
            if drainReports(onDelivery) == 0 { backoff.wait() } else { backoff.reset() }
        }
        return pendingBatches
    }

    /// Flushes, then stops the sender and closes the connections.
    public func close(timeoutMs: Int = 300_000, onDelivery: (DeliveryReport) -> Void) throws(KafkaClientError) {
        guard !closed else { return }
        try flush(timeoutMs: timeoutMs, onDelivery: onDelivery)
        closed = true
        toSender.close()
        senderDone.wait()
        drainReports(onDelivery)
    }

    @discardableResult
    func drainReports(_ onDelivery: (DeliveryReport) -> Void) -> Int {
        var n = 0
        while let r = reports.tryPop() {
            pendingBatches -= 1
            outstandingBytes.subtract(r.batch.bytes.count, ordering: .relaxed)
            onDelivery(r)
            n += 1
        }
        return n
    }

    func seal(_ topic: String, _ p: Int, onDelivery: (DeliveryReport) -> Void) throws(KafkaClientError) {
        let out = ByteBuffer(capacity: accumulators[topic]![p].builder.sizeInBytes + 1024)
        do {
            try accumulators[topic]![p].builder.seal(into: out, codec: config.compression, compressor: codec, level: config.compressionLevel)
        } catch {
            throw KafkaClientError(.config, "compression failed: \(error)")
        }
        let a = accumulators[topic]![p]
        let batch = ProducerBatch(
            topic: topic, partition: Int32(p), bytes: out, records: Int(a.builder.count), payloadBytes: a.payload, tokens: a.tokens)
        accumulators[topic]![p].reset()
        if sticky[topic] == p, accumulators[topic]!.count > 1 {
            // KIP-794: an unkeyed producer moves to another partition when its batch is done.
            var next = Int.random(in: 0..<(accumulators[topic]!.count - 1))
            if next >= p { next += 1 }
            sticky[topic] = next
        }
        // buffer.memory: wait for the network to catch up, delivering reports meanwhile.
        var backoff = Backoff()
        while outstandingBytes.load(ordering: .relaxed) + out.count > config.bufferMemory && pendingBatches > 0 {
            if drainReports(onDelivery) == 0 { backoff.wait() } else { backoff.reset() }
        }
        outstandingBytes.add(out.count, ordering: .relaxed)
        pendingBatches += 1
        var pending: ProducerBatch? = batch
        while let b = pending {
            pending = toSender.tryPush(b)
            if pending != nil { if drainReports(onDelivery) == 0 { backoff.wait() } }
        }
    }
}

extension KafkaProducer.Accumulator {
    mutating func append(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, timestamp: Int64, token: UInt64) {
        if builder.count == 0 { firstNs = nowNanos() }
        builder.append(key: key, value: value, timestamp: timestamp)
        tokens.append(token)
        payload += value.count
    }

    mutating func reset() {
        builder.reset()
        tokens = []
        tokens.reserveCapacity(256)
        payload = 0
    }
}
