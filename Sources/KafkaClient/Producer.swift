import Bytes
import Codecs
import Dispatch
import JSON
import KafkaWire
import RingBuffers
import Synchronization

#if canImport(Glibc)
import Glibc
#endif
import Platform


/// One sealed batch on its way to a broker. Allocated per batch (never per record).
public final class ProducerBatch: @unchecked Sendable {
    public let topic: String
    public let partition: Int32
    /// The encoded RecordBatch v2. The owner seals it uncompressed, and a compression thread or the sender
    /// compresses it, so compression runs beside the caller (or the owner compresses it as it seals it:
    /// `compressOnSeal`); the sender stamps the producer fields and CRC before the first send.
    public internal(set) var bytes: ByteBuffer
    /// Bytes counted against `buffer.memory` (its size at seal).
    let memoryBytes: Int
    var compressed = false
    /// Its bytes changed after sealing (compressed, stamped): the CRC must be written again before a send.
    var needsCRC = false

    /// Writes the CRC over the batch's bytes from the attributes on (on the sender, or its I/O thread).
    func writeCRC() {
        let buf = bytes
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: buf.base + BatchLayout.attributes, count: buf.count - BatchLayout.attributes))
        buf.storeBigEndian(crc, at: BatchLayout.crc)
    }
    public let records: Int
    public let payloadBytes: Int
    /// The caller's per-record tokens (pinbench puts the scheduled send time here).
    public let tokens: [UInt64]
    let createdNs: UInt64
    var baseSequence: Int32 = -1
    var attempts = 0
    var notBeforeNs: UInt64 = 0
    /// When its latest Produce request was written (the sender's request timeout counts from it).
    var sentNs: UInt64 = 0

    init(topic: String, partition: Int32, bytes: ByteBuffer, records: Int, payloadBytes: Int, tokens: [UInt64]) {
        self.topic = topic
        self.partition = partition
        self.bytes = bytes
        self.records = records
        self.payloadBytes = payloadBytes
        self.tokens = tokens
        self.memoryBytes = bytes.count
        self.createdNs = monotonicNanos()
    }
}

/// A topic known to a producer (an index into its tables, so the per-record path does no string hashing).
public struct TopicHandle: Sendable, Hashable {
    public let id: Int
}

/// The outcome of one batch: delivered at `baseOffset`, or failed with `error`.
public struct DeliveryReport: @unchecked Sendable {
    public let batch: ProducerBatch
    public let baseOffset: Int64
    public let error: KafkaClientError?
    /// Retries this batch took.
    public let retries: Int
    /// When the outcome came (`monotonicNanos`): the broker's answer reaching the socket where the connection
    /// stamps arrivals, else when the sender read it or decided the failure. An owner that takes reports later
    /// than that (`quietReports`, answers read at its next turn) still measures latency to this moment.
    public let ackNs: UInt64
}

/// Counters a producer keeps (read from any thread).
public final class ProducerStats: Sendable {
    public let requests = Atomic<Int>(0)
    public let retries = Atomic<Int>(0)
    public let metadataRefreshes = Atomic<Int>(0)
    public let epochBumps = Atomic<Int>(0)
    public let reconnects = Atomic<Int>(0)
    /// Retried batches by the error that caused the retry (broker code name, or the network failure kind).
    public let retriesByReason = Mutex<[String: Int]>([:])
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
    /// Compression threads between the owner and the sender (empty: the sender compresses).
    let compressors: [BatchCompressor]
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
    // `@exclusivity(unchecked)`: per-record state of one thread (the owner's); the runtime check of each access
    // (a thread-local lookup) cost more than the work. The compiler's static checks still apply.
    @exclusivity(unchecked) var accumulators: [[Accumulator]] = []
    var topicNames: [String] = []
    var topicIds: [String: Int] = [:]
    @exclusivity(unchecked) var sticky: [Int] = []
    var rng = SplitMix64(seed: UInt64.random(in: 0...UInt64.max))
    let codec = Codec()
    @exclusivity(unchecked) var closed = false
    public private(set) var pendingBatches = 0
    /// Batches handed to the sender since it was last rung (`handOver`).
    var unrung = 0
    /// Buffers of delivered batches that nothing else holds, for the next batches to be sealed into: a sealed
    /// batch then writes memory already faulted in instead of a fresh (often mmap'd) block, and a flood does
    /// not map and unmap a batch-sized block per batch. Bounded by `spareLimit` buffers and `spareBytesLimit`.
    var spare: [ByteBuffer] = []
    var spareBytes = 0
    static let spareLimit = 16
    var spareBytesLimit: Int { min(config.bufferMemory / 2, 16 << 20) }

    /// Connects to the bootstrap brokers, learns the cluster and (with idempotence) gets a producer id.
    /// The sender rings `reportBell` after each delivery report (see `quietReports`): an owner that also waits
    /// for other work (a flood's next chunk, a request) passes the bell it sleeps on.
    public init(config: ProducerConfiguration, reportBell: Doorbell = Doorbell()) throws(KafkaClientError) {
        try config.validate()
        self.config = config
        toSender = SPSCRing(capacity: 4096)
        reports = SPSCRing(capacity: 8192)
        sender = try Sender(config: config, stats: stats, reportBell: reportBell)
        let s = sender, outRing = reports
        compressors = (0..<config.effectiveCompressionThreads).map {
            BatchCompressor(index: $0, compression: config.compression, level: config.compressionLevel, senderWake: s.wake)
        }
        if config.inlineSender {
            // The owner sleeps in the sender's poll (`wait(on:timeoutNs:until:)`): its bell interrupts that poll.
            let waker = s.waker
            reportBell.wakes { waker.signal() }
            return
        }
        let inboxes = compressors.isEmpty ? [toSender] : compressors.map(\.output)
        senderDone.enter()
        _ = StageThread(name: "kafka-sender") { [senderDone] in
            s.run(inboxes: inboxes, outbox: outRing)
            senderDone.leave()
        }
    }

    deinit {
        if !closed {
            if sender.inline {
                sender.finish()
                return
            }
            sender.stop.store(true, ordering: .relaxed)
            for c in compressors { c.stop() }
        }
    }

    /// Partitions of `topic` (from metadata; asks the cluster if not known yet).
    public func partitionCount(_ topic: String) throws(KafkaClientError) -> Int {
        try sender.partitionCount(topic)
    }

    /// Creates topics (ignores "already exists").
    public func createTopics(_ names: [String], partitions: Int32, replication: Int16 = 1) throws(KafkaClientError) {
        try sender.createTopics(names, partitions: partitions, replication: replication)
    }

    /// Partitions a topic may have (Kafka's own practical limit is far below).
    public static let maxPartitionsPerTopic = 100_000

    /// A topic's handle for `send` (looks the topic up once; keep it for the hot path).
    public func topic(_ name: String) throws(KafkaClientError) -> TopicHandle {
        if let id = topicIds[name] { return TopicHandle(id: id) }
        let n = try partitionCount(name)
        // The count is the cluster's answer (input): bounded, and no partition costs a buffer before it gets a record.
        guard n <= Self.maxPartitionsPerTopic else {
            throw KafkaClientError(.protocolViolation, "topic \(name) reports \(n) partitions: more than pinbench takes (\(Self.maxPartitionsPerTopic))")
        }
        let id = topicNames.count
        topicNames.append(name)
        topicIds[name] = id
        accumulators.append((0..<n).map { _ in Accumulator(builder: RecordBatchBuilder(capacity: 0)) })
        sticky.append(Int.random(in: 0..<n))
        return TopicHandle(id: id)
    }

    /// Appends one record to `topic` (by name; see `send(to:)` for the handle form).
    public func send(
        topic: String, partition: Int? = nil, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
        timestamp: Int64, token: UInt64 = 0, onDelivery: (DeliveryReport) -> Void
    ) throws(KafkaClientError) {
        try send(to: try self.topic(topic), partition: partition, key: key, value: value, timestamp: timestamp, token: token, onDelivery: onDelivery)
    }

    /// Appends one record. `partition == nil` picks one: murmur2 of the key (Java's partitioner), or the
    /// sticky partition for a null key. Blocks while `buffer.memory` is used up (backpressure).
    public func send(
        to topic: TopicHandle, partition: Int? = nil, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer,
        timestamp: Int64, token: UInt64 = 0, onDelivery: (DeliveryReport) -> Void
    ) throws(KafkaClientError) {
        precondition(!closed, "send after close")
        let t = topic.id
        let n = accumulators[t].count
        let p: Int
        if let partition {
            guard partition >= 0 && partition < n else {
                throw KafkaClientError(.broker(.unknownTopicOrPartition), "\(topicNames[t]) has no partition \(partition)")
            }
            p = partition
        } else if let key {
            p = Murmur2.partition(key, partitions: n)
        } else {
            p = sticky[t]
        }
        let recordSize = value.count + (key?.count ?? 0) + 32
        if recordSize > config.maxRecordBytes {
            throw KafkaClientError(.broker(.messageTooLarge), "record of \(recordSize) bytes is over the \(config.maxRecordBytes)-byte limit")
        }
        // One access to the partition's accumulator per record (each access to the nested arrays of this class
        // pays an exclusivity check and two uniqueness checks).
        switch Self.append(to: &accumulators[t][p], key: key, value: value, timestamp: timestamp, token: token,
                           recordSize: recordSize, batchBytes: config.batchBytes) {
        case .appended:
            return
        case .full:
            try seal(t, p, onDelivery: onDelivery)
        case .sealFirst:
            // This record would push the batch over batch.size: seal the batch first.
            try seal(t, p, onDelivery: onDelivery)
            if partition == nil && key == nil {
                return try send(to: topic, partition: nil, key: key, value: value, timestamp: timestamp, token: token, onDelivery: onDelivery)
            }
            if Self.append(to: &accumulators[t][p], key: key, value: value, timestamp: timestamp, token: token,
                           recordSize: 0, batchBytes: config.batchBytes) == .full {
                try seal(t, p, onDelivery: onDelivery)
            }
        }
    }

    enum Appended { case appended, full, sealFirst }

    /// Appends the record unless it would push a non-empty batch past `batchBytes` (`.sealFirst`: nothing
    /// appended); `.full` when the batch has reached `batchBytes` with it.
    @inline(__always)
    static func append(to a: inout Accumulator, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, timestamp: Int64,
                       token: UInt64, recordSize: Int, batchBytes: Int) -> Appended {
        if a.builder.count > 0 && a.builder.sizeInBytes + recordSize > batchBytes { return .sealFirst }
        a.append(key: key, value: value, timestamp: timestamp, token: token)
        return a.builder.sizeInBytes >= batchBytes ? .full : .appended
    }

    /// Seals batches whose linger has passed and hands delivery reports to `onDelivery`. An owner that knows it
    /// sends nothing before `noInputBeforeNs` (monotonic) has the batches whose linger ends by then sealed now:
    /// they would go out as they are, only later.
    public func poll(noInputBeforeNs: UInt64 = 0, onDelivery: (DeliveryReport) -> Void) throws(KafkaClientError) {
        let horizon = max(monotonicNanos(), noInputBeforeNs)
        let lingerNs = UInt64(config.lingerMs * 1e6)
        for t in accumulators.indices {
            for p in accumulators[t].indices where accumulators[t][p].builder.count > 0 && accumulators[t][p].firstNs &+ lingerNs <= horizon {
                try seal(t, p, handOver: false, onDelivery: onDelivery)
            }
        }
        handOver()
        drainReports(onDelivery)
    }

    /// Delivery reports wait for `poll` (any thread may ask; with `inlineSender`, only the owner).
    public var hasReports: Bool { sender.inline ? !sender.inlineReports.isEmpty : reports.count > 0 }

    /// Sleeps until `ready()` holds, `bell` (the one given at `init`) rings, delivery reports wait, or
    /// `timeoutNs` passes; with `inlineSender`, in one poll on the brokers' sockets too. An answer ends that
    /// sleep only where it must be read to go on: on a connection without arrival stamps (TLS), or with no room
    /// for another request. Elsewhere the owner's next `poll` reads it, and its delivery reports carry the
    /// time it came (`DeliveryReport.ackNs`).
    public func wait(on bell: Doorbell, timeoutNs: Int, until ready: () -> Bool) {
        if sender.inline {
            bell.wait(timeoutNs: timeoutNs, until: { ready() || hasReports }) { ns in sender.sleepOnSockets(ns, answersCanWait: true) }
        } else {
            bell.wait(timeoutNs: timeoutNs) { ready() || hasReports }
        }
    }

    /// Quiet reports: the sender does not ring the report bell for each delivery report, only while this
    /// producer itself waits for reports (`buffer.memory` used up, `flush`, `close`) or when the report ring
    /// is full. For an owner that wakes often anyway (a paced flood takes its reports with its next chunk)
    /// and measures latency to each report's `ackNs`: one wake-up per Produce answer saved. Default off.
    public var quietReports = false {
        didSet { sender.reportsWake.store(!quietReports, ordering: .sequentiallyConsistent) }
    }

    /// Sleeps until a delivery report is waiting (or 50 ms), asking a quiet sender to ring for it meanwhile.
    func awaitReport() {
        if sender.inline {
            // The sender's turn here: a sleep only when it moved nothing, until an answer or its next timer.
            if !sender.turn([toSender]).progress && sender.inlineReports.isEmpty {
                sender.sleepOnSockets(sender.idleWaitNs(monotonicNanos()))  // at most 50 ms
            }
            return
        }
        let quiet = quietReports
        // The store is ordered before the bell's check of `reports` (its fence), and the sender fences between
        // pushing a report and reading the flag: one of the two sees the other.
        if quiet { sender.reportsWake.store(true, ordering: .sequentiallyConsistent) }
        sender.reportBell.wait(timeoutNs: 50_000_000) { reports.count > 0 }
        if quiet { sender.reportsWake.store(false, ordering: .relaxed) }
    }

    /// How long the owner may sleep before `poll` must seal a batch whose linger ends (at least 0.1 ms), or
    /// 50 ms when no batch is open; reports ring the bell given at `init` sooner (unless quiet). ns.
    public var idleWaitNs: Int {
        var oldest = UInt64.max
        for t in accumulators.indices {
            for p in accumulators[t].indices where accumulators[t][p].builder.count > 0 { oldest = min(oldest, accumulators[t][p].firstNs) }
        }
        let ns = idleSleepNs(until: oldest == .max ? .max : oldest &+ UInt64(config.lingerMs * 1e6))
        // Inline, the sender's timers are the owner's too (a retry's backoff, a request's timeout).
        return sender.inline ? min(ns, sender.idleWaitNs(monotonicNanos())) : ns
    }

    /// Seals everything and waits until every batch has its delivery report (or `timeoutMs` passes).
    /// Returns the batches still without a report (0 when all are done).
    @discardableResult
    public func flush(timeoutMs: Int = 300_000, onDelivery: (DeliveryReport) -> Void) throws(KafkaClientError) -> Int {
        for t in accumulators.indices {
            for p in accumulators[t].indices where accumulators[t][p].builder.count > 0 { try seal(t, p, handOver: false, onDelivery: onDelivery) }
        }
        handOver()
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 1_000_000
        // Sleeps on the sender's report bell between reports (it rings once per loop that made some): a
        // flush behind a slow or stalled broker costs no CPU while it waits.
        while pendingBatches > 0 && monotonicNanos() < deadline {
            if drainReports(onDelivery) == 0 { awaitReport() }
        }
        return pendingBatches
    }

    /// Flushes, then stops the sender and closes the connections.
    public func close(timeoutMs: Int = 300_000, onDelivery: (DeliveryReport) -> Void) throws(KafkaClientError) {
        guard !closed else { return }
        try flush(timeoutMs: timeoutMs, onDelivery: onDelivery)
        closed = true
        toSender.close()
        if sender.inline {
            // What the thread would do: turns until every batch has its report.
            while !sender.turn([toSender]).done {
                if drainReports(onDelivery) == 0 { sender.sleepOnSockets(sender.idleWaitNs(monotonicNanos())) }
            }
            sender.finish()
            drainReports(onDelivery)
            return
        }
        for c in compressors { c.stop() }
        sender.wake.ring()
        senderDone.wait()
        drainReports(onDelivery)
    }

    @discardableResult
    func drainReports(_ onDelivery: (DeliveryReport) -> Void) -> Int {
        var n = 0
        let inline = sender.inline
        while let r = inline ? sender.inlineReports.popFirst() : reports.tryPop() {
            pendingBatches -= 1
            outstandingBytes.subtract(r.batch.memoryBytes, ordering: .relaxed)
            onDelivery(r)
            keepBuffer(of: (consume r).batch)
            n += 1
        }
        return n
    }

    /// Keeps a delivered batch's buffer for a later batch, when nothing but this call holds the batch (an
    /// owner that kept its report keeps the batch's bytes as they are) and the spares have room (when full,
    /// a larger buffer takes the smallest one's place).
    func keepBuffer(of delivered: consuming ProducerBatch) {
        var batch = consume delivered
        guard isKnownUniquelyReferenced(&batch), isKnownUniquelyReferenced(&batch.bytes) else { return }
        let b = batch.bytes
        guard b.capacity <= spareBytesLimit else { return }
        while spare.count >= Self.spareLimit || spareBytes + b.capacity > spareBytesLimit {
            guard let i = spare.indices.min(by: { spare[$0].capacity < spare[$1].capacity }), spare[i].capacity < b.capacity else { return }
            spareBytes -= spare.remove(at: i).capacity
        }
        b.reset()
        spare.append(b)
        spareBytes += b.capacity
    }

    /// A buffer of at least `capacity` bytes for a batch: the most recently kept spare that is large enough,
    /// else a new one with an eighth more room (the next batch of about this size can then reuse it).
    func batchBuffer(capacity: Int) -> ByteBuffer {
        if let i = spare.lastIndex(where: { $0.capacity >= capacity }) {
            let b = spare.remove(at: i)
            spareBytes -= b.capacity
            return b
        }
        return ByteBuffer(capacity: (capacity + capacity / 8 + 4095) & ~4095)
    }

    /// Wakes the sender for the batches sealed since the last wake: once per `poll`, not once per batch (a
    /// sleeping sender woken for the first of five batches sends one request for it and another for the rest).
    func handOver() {
        if sender.inline {
            // The sender's work, here: send what was sealed, and take the answers already in.
            unrung = 0
            _ = sender.turn([toSender])
            return
        }
        guard unrung > 0 else { return }
        unrung = 0
        for c in compressors { c.bell.ring() }
        sender.wake.ring()
    }

    func seal(_ t: Int, _ p: Int, handOver now: Bool = true, onDelivery: (DeliveryReport) -> Void) throws(KafkaClientError) {
        // Sealed uncompressed for the sender or a compression thread to compress, or compressed here
        // (`compressOnSeal`: the records region goes through the codec once, with no uncompressed copy).
        var here = config.compressesOnSeal
        let size = accumulators[t][p].builder.sizeInBytes
        let out = batchBuffer(capacity: here ? Codec.compressBound(size, codec: config.compression, level: config.compressionLevel) + 1024 : size + 1024)
        if here {
            do {
                try accumulators[t][p].builder.seal(into: out, codec: config.compression, compressor: codec, level: config.compressionLevel)
            } catch {
                // Sealed uncompressed instead: the sender compresses it, and reports the error if it fails again.
                out.reset()
                here = false
            }
        }
        if !here {
            do {
                try accumulators[t][p].builder.seal(into: out, codec: .none, compressor: codec)
            } catch {
                throw KafkaClientError(.config, "compression failed: \(error)")
            }
        }
        let batch = ProducerBatch(
            topic: topicNames[t], partition: Int32(p), bytes: out, records: Int(accumulators[t][p].builder.count),
            payloadBytes: accumulators[t][p].payload, tokens: accumulators[t][p].tokens)
        batch.compressed = here  // its CRC is written (the sender writes it again after stamping producer fields)
        accumulators[t][p].reset()
        if sticky[t] == p, accumulators[t].count > 1 {
            // KIP-794: an unkeyed producer moves to another partition when its batch is done.
            var next = rng.below(accumulators[t].count - 1)
            if next >= p { next += 1 }
            sticky[t] = next
        }
        // buffer.memory: sleep until the sender reports batches done (their memory is freed as they are handed over).
        while outstandingBytes.load(ordering: .relaxed) + out.count > config.bufferMemory && pendingBatches > 0 {
            handOver()
            if drainReports(onDelivery) == 0 { awaitReport() }
        }
        var backoff = Backoff()
        outstandingBytes.add(out.count, ordering: .relaxed)
        pendingBatches += 1
        var pending: ProducerBatch? = batch
        // A partition's batches always go through the same compression thread: they reach the sender in order.
        let ring = compressors.isEmpty ? toSender : compressors[(t &* 7919 &+ p) % compressors.count].input
        while let b = pending {
            pending = ring.tryPush(b)
            if pending != nil { handOver(); if drainReports(onDelivery) == 0 { backoff.wait() } }
        }
        unrung += 1
        if now { handOver() }
    }
}

extension KafkaProducer.Accumulator {
    mutating func append(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, timestamp: Int64, token: UInt64) {
        if builder.count == 0 { firstNs = monotonicNanos() }
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

/// What `produceLines` did.
public struct LinesProduced: Sendable {
    public var sent = 0
    public var bytes = 0
    public var delivered = 0
    public var failed = 0
    public var firstError: String?
    /// Stopped (Ctrl-C) before every line was sent; what was sent has its reports.
    public var interrupted = false
}

extension LinesProduced {
    /// The one JSON line `pinbench produce` prints (the perf scripts read it beside librdkafka's).
    public func json(_ stats: ProducerStats, peer: String, seconds dt: Double, cpuSeconds: Double) -> JSONValue {
        .object([
            ("peer", .string(peer)), ("records", .int(sent)), ("delivered", .int(delivered)), ("interrupted", .bool(interrupted)),
            ("failed", .int(failed)), ("bytes", .int(bytes)), ("seconds", .double((dt * 1000).rounded() / 1000)),
            ("records_per_s", .double((Double(sent) / dt).rounded())), ("mb_per_s", .double((Double(bytes) / dt / 1e5).rounded() / 10)),
            ("cpu_seconds", .double((cpuSeconds * 100).rounded() / 100)),
            ("requests", .int(stats.requests.load(ordering: .relaxed))), ("retries", .int(stats.retries.load(ordering: .relaxed))),
            ("first_error", firstError.map { .string($0) } ?? .null),
        ])
    }
}

extension KafkaProducer {
    /// Produces every line of `text` (`Lines`: the non-empty ones, without `\r\n`; the last needs no newline),
    /// unkeyed (the sticky partitioner), `rounds` times, then closes the producer; every record is counted
    /// delivered or failed (a line over `maxRecordBytes` fails alone).
    public func produceLines(_ text: UnsafeRawBufferPointer, to topic: TopicHandle, rounds: Int,
                             progress: ProgressCounter? = nil, stop: StopFlag? = nil) throws(KafkaClientError) -> LinesProduced {
        var r = LinesProduced()
        func report(_ d: DeliveryReport) {
            progress?.add(d.batch.records)
            if let e = d.error {
                r.failed += d.batch.records
                if r.firstError == nil { r.firstError = e.message }
            } else {
                r.delivered += d.batch.records
            }
        }
        for _ in 0..<max(rounds, 0) {
            _ = try Lines.forEach(in: text) { (line, number) throws(KafkaClientError) -> Bool in
                do throws(KafkaClientError) {
                    try send(to: topic, key: nil, value: line, timestamp: wallMillis(), onDelivery: report)
                } catch {
                    guard error.kind == .broker(.messageTooLarge) else { throw error }
                    // One line over the record limit fails alone (counted, the first one named); the rest go.
                    r.failed += 1
                    if r.firstError == nil { r.firstError = "line \(number): \(error.message)" }
                    progress?.add(1)
                }
                r.sent += 1
                r.bytes += line.count
                if r.sent & 1023 == 0 {
                    try poll(onDelivery: report)
                    if stop?.isSet == true { r.interrupted = true; return false }
                }
                return true
            }
            if r.interrupted { break }
        }
        try close(onDelivery: report)
        return r
    }
}

/// A compression thread of a producer: compresses the sealed batches of the partitions it owns, in order,
/// and hands them to the sender (which then only stamps producer fields and the CRC).
final class BatchCompressor: @unchecked Sendable {
    let input = SPSCRing<ProducerBatch>(capacity: 4096)
    let output = SPSCRing<ProducerBatch>(capacity: 4096)
    let bell = Doorbell()
    private var thread: StageThread?

    init(index: Int, compression: CompressionCodec, level: Int32?, senderWake: Doorbell) {
        let (input, output, bell) = (self.input, self.output, self.bell)
        thread = StageThread(name: "kafka-compress-\(index)") {
            let codec = Codec()
            var spare: ByteBuffer?
            var backoff = Backoff()
            while true {
                guard let b = input.tryPop() else {
                    if input.isClosed && input.count == 0 { break }
                    bell.wait(timeoutNs: 50_000_000) { input.count > 0 || input.isClosed }
                    continue
                }
                // A failure leaves the batch uncompressed: the sender tries again and reports the error.
                _ = Sender.compress(b, compression, level: level, codec: codec, spare: &spare)
                var pending: ProducerBatch? = b
                while let p = pending {
                    pending = output.tryPush(p)
                    if pending != nil { senderWake.ring(); backoff.wait() }
                }
                backoff.reset()
                if input.count == 0 { senderWake.ring() }
            }
            output.close()
            senderWake.ring()
        }
    }

    /// Lets the thread finish what it was given (its output then closes), then joins it.
    func stop() {
        input.close()
        bell.ring()
        thread?.join()
        thread = nil
    }
}
