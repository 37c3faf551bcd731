#if canImport(Glibc)
import Glibc
#endif
import AWSClient
import Bytes
import Codecs
import Dispatch
import KafkaClient
import KafkaLog
import KafkaWire
import RingBuffers
import Synchronization
import JSON

/// How one record of a request ended.
public struct RecordOutcome: Sendable {
    public var partition: Int32 = -1
    /// Kafka or embedded-log offset (-1 behind Kinesis).
    public var offset: Int64 = -1
    /// Behind Kinesis: the shard and sequence number the service gave.
    public var shard: String?
    public var sequence: String?
    /// Nil when stored; else why not (the record is counted rejected, never stored).
    public var error: String?
    public var errorCode: String?
}

/// Where one record of a request sits in its job's byte block.
struct PackedRecord: Sendable {
    var partition: Int32
    /// -1: no key.
    var keyCount: Int32
    var keyStart: Int
    var valueStart: Int
    var valueCount: Int
}

/// Records of one request, waiting for the writer: every value and key in one byte block and a fixed-size
/// entry per record, so a request of 500 records costs a handful of allocations, not thousands.
final class IngestJob: @unchecked Sendable {
    let kind: Int
    let bytes: Bytes.ByteBuffer
    let records: [PackedRecord]
    let completion: @Sendable (Result<[RecordOutcome], IngestError>) -> Void

    init(kind: Int, pack: RecordPack, completion: @escaping @Sendable (Result<[RecordOutcome], IngestError>) -> Void) {
        self.kind = kind
        self.bytes = pack.bytes
        self.records = pack.records
        self.completion = completion
    }

    var count: Int { records.count }

    @inline(__always) func value(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes.base + records[i].valueStart, count: records[i].valueCount)
    }

    @inline(__always) func key(_ i: Int) -> UnsafeRawBufferPointer? {
        let r = records[i]
        return r.keyCount < 0 ? nil : UnsafeRawBufferPointer(start: bytes.base + r.keyStart, count: Int(r.keyCount))
    }
}

/// Gathers a request's records while its body is parsed (event-loop side).
struct RecordPack {
    let bytes: Bytes.ByteBuffer
    var records: [PackedRecord] = []

    init(capacity: Int) { bytes = Bytes.ByteBuffer(capacity: capacity) }

    var isEmpty: Bool { records.isEmpty }
    var count: Int { records.count }

    /// Drops everything gathered (a repeated array key starts over).
    mutating func reset() {
        bytes.reset()
        records.removeAll(keepingCapacity: true)
    }

    /// A repeated array key: drops the records gathered so far but keeps the bytes from `from` on (the
    /// value already compacted for the new array's first record), moved to the front.
    mutating func restart(keepingFrom from: Int) {
        let n = bytes.count - from
        if n > 0 && from > 0 { bytes.base.copyMemory(from: bytes.base + from, byteCount: n) }
        bytes.count = n
        records.removeAll(keepingCapacity: true)
    }

    /// Adds a record whose value was already written to `bytes` from `valueStart` to the end.
    mutating func addWritten(partition: Int32, valueStart: Int, writeKey: ((Bytes.ByteBuffer) throws(JSONError) -> Void)?) throws(JSONError) {
        var r = PackedRecord(partition: partition, keyCount: -1, keyStart: 0, valueStart: valueStart, valueCount: bytes.count - valueStart)
        if let writeKey {
            let ks = bytes.count
            try writeKey(bytes)
            r.keyStart = ks
            r.keyCount = Int32(bytes.count - ks)
        }
        records.append(r)
    }

    /// Starts a record whose value `writeValue` appends to `bytes`.
    mutating func add(partition: Int32, writeValue: (Bytes.ByteBuffer) throws(JSONError) -> Void,
                      writeKey: ((Bytes.ByteBuffer) throws(JSONError) -> Void)?) throws(JSONError) {
        let vs = bytes.count
        try writeValue(bytes)
        try addWritten(partition: partition, valueStart: vs, writeKey: writeKey)
    }

    func value(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes.base + records[i].valueStart, count: records[i].valueCount)
    }

    func key(_ i: Int) -> UnsafeRawBufferPointer? {
        let r = records[i]
        return r.keyCount < 0 ? nil : UnsafeRawBufferPointer(start: bytes.base + r.keyStart, count: Int(r.keyCount))
    }
}

public struct IngestError: Error, Sendable {
    public var status: Int
    public var code: Int
    public var message: String
}

/// Where accepted records go: one writer thread owns the backend; request handlers hand it jobs through a
/// bounded lock-free ring. A full ring is refused at once (the caller answers 429), so an accepted request
/// is never dropped; the writer completes a job once each of its records is stored or has failed.
protocol JobSink: AnyObject, Sendable {
    func submit(_ job: IngestJob) -> Bool
    var storedCount: Int { get }
    /// Partitions of a kind's topic (embedded or Kafka); nil behind Kinesis (no explicit partitions).
    func partitions(_ kind: Int) -> Int?
    /// Drains what was accepted, then stops.
    func shutdown()
}

/// What every backend shares: the bounded job ring, the writer thread, the stop flag and the stored count.
class QueuedSink: @unchecked Sendable {
    let ring: MPMCRing<IngestJob>
    let done = DispatchGroup()
    let stop = Atomic<Bool>(false)
    let stored = Atomic<Int>(0)

    /// The writer sleeps on this when the ring stays empty; a submitter wakes it (only when it sleeps), so
    /// an idle writer neither spins nor yields the CPU the event loops need.
    let wake = DispatchSemaphore(value: 0)
    let sleeping = Atomic<Bool>(false)

    init(capacity: Int) { ring = MPMCRing(capacity: capacity, producers: 1) }

    func startWriter(_ label: String, _ body: @escaping @Sendable () -> Void) {
        DispatchQueue(label: label).async(group: done, execute: body)
    }

    func submit(_ job: IngestJob) -> Bool {
        guard ring.tryPush(job) == nil else { return false }
        if sleeping.load(ordering: .acquiring), sleeping.exchange(false, ordering: .acquiringAndReleasing) { wake.signal() }
        return true
    }

    /// Called by the writer when it found nothing to do: a short spin, then sleep until a submit (or
    /// `timeoutMs`, so that stop requests and backend timers are seen).
    func idle(_ spins: inout Int, timeoutMs: Int = 5) {
        spins += 1
        if spins < 64 { return }
        if spins < 128 { sched_yield(); return }
        sleeping.store(true, ordering: .releasing)
        if !ring.isEmptyApprox {
            if sleeping.exchange(false, ordering: .acquiringAndReleasing) { return }
        }
        _ = wake.wait(timeout: .now() + .milliseconds(timeoutMs))
        // A signal that raced with the timeout is consumed on the next sleep: at most one spurious wake.
        sleeping.store(false, ordering: .releasing)
    }
    var storedCount: Int { stored.load(ordering: .relaxed) }

    /// Tells the writer to finish what it holds and waits for it.
    func stopWriter() {
        stop.store(true, ordering: .releasing)
        done.wait()
    }
}

/// The embedded log behind the ingest API.
final class EmbeddedStore: QueuedSink, JobSink, @unchecked Sendable {
    let logs: [[PartitionLog]]
    let partitionCount: Int

    init(dataDir: String, topics: [String], partitions: Int, capacity: Int) throws {
        self.partitionCount = partitions
        logs = try topics.map { t in try (0..<partitions).map { try PartitionLog(topic: t, partition: $0, config: LogConfig(dataDir: dataDir)) } }
        super.init(capacity: capacity)
        startWriter("pinbench.ingest.writer") { self.run() }
    }

    func partitions(_ kind: Int) -> Int? { partitionCount }

    func shutdown() {
        stopWriter()
        for row in logs { for l in row { try? l.close() } }
    }

    private func run() {
        let partitions = partitionCount
        // Batches are sealed where they were built (header room before the records): no copy before the write.
        var builders = (0..<(logs.count * partitions)).map { _ in RecordBatchBuilder(capacity: 64 * 1024, inPlace: true) }
        var spins = 0
        while true {
            var jobs: [IngestJob] = []
            while jobs.count < 512, let j = ring.tryPop() { jobs.append(j) }
            if jobs.isEmpty {
                if stop.load(ordering: .acquiring) { return }
                idle(&spins)
                continue
            }
            spins = 0
            // Records of all jobs, batched per topic-partition; each record remembers where it sits.
            var slots = [[(Int, Int)]](repeating: [], count: builders.count)  // (job, record) per builder position
            let ts = Int64(Double(DispatchTime.now().uptimeNanoseconds) / 1e6)
            for (ji, j) in jobs.enumerated() {
                for ri in 0..<j.count {
                    let b = j.kind * partitions + Int(j.records[ri].partition)
                    builders[b].append(key: j.key(ri), value: j.value(ri), timestamp: ts)
                    slots[b].append((ji, ri))
                }
            }
            var outcomes = jobs.map { [RecordOutcome](repeating: RecordOutcome(), count: $0.count) }
            for b in builders.indices where !builders[b].isEmpty {
                let log = logs[b / partitions][b % partitions]
                do {
                    let base = try log.append(batch: builders[b].sealInPlace())
                    for (n, (ji, ri)) in slots[b].enumerated() {
                        outcomes[ji][ri].partition = Int32(b % partitions)
                        outcomes[ji][ri].offset = base + Int64(n)
                    }
                    stored.add(slots[b].count, ordering: .relaxed)
                } catch {
                    for (ji, ri) in slots[b] {
                        outcomes[ji][ri].partition = Int32(b % partitions)
                        outcomes[ji][ri].error = "storage failed: \(error)"
                        outcomes[ji][ri].errorCode = "StorageFailed"
                    }
                }
                builders[b].reset()
            }
            for (ji, j) in jobs.enumerated() { j.completion(.success(outcomes[ji])) }
        }
    }
}

/// Jobs in flight at a forwarder: outcomes fill in as acknowledgements arrive (writer thread only).
struct PendingJobs {
    var jobs: [Int: (job: IngestJob, left: Int, outcomes: [RecordOutcome])] = [:]
    var nextId = 1

    mutating func add(_ j: IngestJob) -> Int {
        let id = nextId
        nextId = nextId == (1 << 39) ? 1 : nextId + 1
        jobs[id] = (j, j.count, [RecordOutcome](repeating: RecordOutcome(), count: j.count))
        return id
    }

    static func token(_ id: Int, _ i: Int) -> UInt64 { UInt64(id) << 24 | UInt64(i) }

    /// Records one record's outcome; completes the job when it was the last.
    /// True when the record was stored.
    @discardableResult
    mutating func settle(_ token: UInt64, _ fill: (inout RecordOutcome) -> Void) -> Bool {
        let id = Int(token >> 24), i = Int(token & 0xFF_FFFF)
        guard jobs[id] != nil else { return false }
        fill(&jobs[id]!.outcomes[i])
        let ok = jobs[id]!.outcomes[i].error == nil
        jobs[id]!.left -= 1
        if jobs[id]!.left == 0, let done = jobs.removeValue(forKey: id) {
            // Count before answering, so a client that saw its 200 also sees the record counted stored.
            if ok { onStored?(1) }
            done.job.completion(.success(done.outcomes))
            return ok
        }
        if ok { onStored?(1) }
        return ok
    }

    var onStored: ((Int) -> Void)?

    var isEmpty: Bool { jobs.isEmpty }
}

/// A Kafka cluster behind the ingest API: the writer thread owns a `KafkaProducer`; each record's token
/// names its job and position, and the delivery report gives its partition and offset.
final class KafkaForwarder: QueuedSink, JobSink, @unchecked Sendable {
    let producer: KafkaProducer
    let handles: [TopicHandle]
    let counts: [Int]

    init(config: ProducerConfiguration, topics: [String], createTopics: Bool, partitions: Int, capacity: Int) throws {
        let p = try KafkaProducer(config: config)
        if createTopics { try p.createTopics(topics, partitions: Int32(partitions)) }
        handles = try topics.map { try p.topic($0) }
        counts = try topics.map { try p.partitionCount($0) }
        producer = p
        super.init(capacity: capacity)
        startWriter("pinbench.ingest.kafka") { self.run() }
    }

    func partitions(_ kind: Int) -> Int? { counts[kind] }
    func shutdown() { stopWriter() }

    private func run() {
        var pending = PendingJobs()
        pending.onStored = { [unowned self] n in self.stored.add(n, ordering: .relaxed) }
        func delivered(_ r: DeliveryReport) {
            for (n, t) in r.batch.tokens.enumerated() {
                pending.settle(t) { o in
                    o.partition = r.batch.partition
                    if let e = r.error {
                        o.error = e.message
                        if case .broker(let code) = e.kind { o.errorCode = code.name } else { o.errorCode = "\(e.kind)" }
                    } else {
                        o.offset = r.baseOffset + Int64(n)
                    }
                }
            }
        }
        var spins = 0
        while true {
            var any = false
            while let j = ring.tryPop() {
                any = true
                let id = pending.add(j)
                let ts = wallMillisNow()
                for i in 0..<j.count {
                    let token = PendingJobs.token(id, i)
                    let p = j.records[i].partition >= 0 ? Int(j.records[i].partition) : nil
                    do {
                        try producer.send(to: handles[j.kind], partition: p, key: j.key(i), value: j.value(i), timestamp: ts, token: token, onDelivery: delivered)
                    } catch {
                        pending.settle(token) { o in o.error = error.message; o.errorCode = "\(error.kind)" }
                    }
                }
                if pending.jobs.count > 4096 { break }
            }
            try? producer.poll(onDelivery: delivered)
            if any { spins = 0; continue }
            if stop.load(ordering: .acquiring) {
                try? producer.close(onDelivery: delivered)
                return
            }
            idle(&spins, timeoutMs: 1)
        }
    }
}

/// Kinesis behind the ingest API: the writer thread owns a `KinesisProducer`; each accepted entry reports
/// its shard and sequence number, each failure its code.
final class KinesisForwarder: QueuedSink, JobSink, @unchecked Sendable {
    let client: KinesisClient
    let producerConfig: KinesisProducerConfig

    init(aws: AWSConfig, streams: [String], createStreams: Bool, shards: Int, ordered: Bool, capacity: Int) throws {
        client = try KinesisClient(config: aws)
        var pc = KinesisProducerConfig(streams: streams)
        for s in streams {
            let summary = createStreams ? try client.ensureStream(s, shards: shards) : try client.describeStreamSummary(s)
            if let kib = summary.maxRecordSizeKiB { pc.maxRecordBytes = max(pc.maxRecordBytes, kib * 1024) }
        }
        pc.lingerMs = 5
        pc.ordered = ordered
        producerConfig = pc
        super.init(capacity: capacity)
        startWriter("pinbench.ingest.kinesis") { self.run() }
    }

    func partitions(_ kind: Int) -> Int? { nil }
    func shutdown() { stopWriter() }

    private func run() {
        var pending = PendingJobs()
        pending.onStored = { [unowned self] n in self.stored.add(n, ordering: .relaxed) }
        let producer = KinesisProducer(service: client.service, config: producerConfig)
        producer.onEntryAccepted = { _, tokens, shard, seq in
            let sh = String(decoding: shard, as: UTF8.self), sq = String(decoding: seq, as: UTF8.self)
            for t in tokens {
                pending.settle(t) { o in
                    o.shard = sh
                    o.sequence = sq
                    if let n = sh.split(separator: "-").last.flatMap({ Int32($0) }) { o.partition = n }
                }
            }
        }
        producer.onFailedTokens = { _, code, tokens in
            for t in tokens { pending.settle(t) { o in o.error = "Kinesis: \(code)"; o.errorCode = code } }
        }
        let key = ByteBuffer(capacity: 64)
        var spins = 0
        while true {
            var any = false
            while let j = ring.tryPop() {
                any = true
                let id = pending.add(j)
                for i in 0..<j.count {
                    let token = PendingJobs.token(id, i)
                    if let k = j.key(i), !k.isEmpty {
                        producer.send(stream: j.kind, key: k, data: j.value(i), token: token)
                    } else {
                        key.reset()
                        key.appendDecimal(Int(token))
                        producer.send(stream: j.kind, key: key.bytes, data: j.value(i), token: token)
                    }
                }
                if pending.jobs.count > 4096 { break }
            }
            producer.poll(timeoutMs: any ? 0 : 1)
            if any { spins = 0; continue }
            if stop.load(ordering: .acquiring) {
                producer.flush()
                return
            }
            if producer.pendingRecords == 0 { idle(&spins, timeoutMs: 1) }
        }
    }
}

func wallMillisNow() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}
