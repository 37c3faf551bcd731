#if canImport(Glibc)
import Glibc
#endif
import Bytes
import Dispatch
import JSON
import KafkaWire
import PinModel
import Platform
import Sinks
import RingBuffers
import Synchronization

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

    /// No outcome yet: neither stored (an offset or a sequence number) nor failed. (A record stored at an
    /// offset the broker gave past Int64.max also reads so: its offset is unknown.)
    var isPending: Bool { error == nil && offset < 0 && sequence == nil }
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
    let kind: RecordKind
    let bytes: Bytes.ByteBuffer
    let records: [PackedRecord]
    let completion: @Sendable (Result<[RecordOutcome], IngestError>) -> Void

    init(kind: RecordKind, pack: RecordPack, completion: @escaping @Sendable (Result<[RecordOutcome], IngestError>) -> Void) {
        self.kind = kind
        self.bytes = pack.bytes
        self.records = pack.records
        self.completion = completion
    }

    /// Some of another job's records (one writer shard's share), over the same bytes.
    init(kind: RecordKind, bytes: Bytes.ByteBuffer, records: [PackedRecord], completion: @escaping @Sendable (Result<[RecordOutcome], IngestError>) -> Void) {
        self.kind = kind
        self.bytes = bytes
        self.records = records
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

public struct IngestError: Error, Sendable, CustomStringConvertible {
    public var status: Int
    public var code: Int
    public var message: String
    public var description: String { message }
}

/// Where accepted records go: writer shards, each a thread that owns a share of the backend (a `RecordSink`,
/// the same sinks a flood drives: the embedded log's topic-partitions `slot % W`, or Kinesis streams
/// `kind % W`; Kafka has one). A request's records go to the shards that own them, each share through that
/// shard's bounded lock-free ring; room is taken in every ring a request needs before any share is handed
/// over, and a full one refuses the whole request at once (the caller answers 429), so an accepted request
/// is never dropped or half stored. A request answers once each of its records is stored or has failed.
final class IngestWriter: @unchecked Sendable {
    let shards: [WriterShard]
    /// Partitions of each kind's topic (nil behind Kinesis), read by the handlers to refuse a bad partition.
    let partitionCounts: [Int?]
    /// The embedded log's partitions when its topic-partitions are shared out (records are routed one by one);
    /// nil when a whole request goes to one shard.
    let routedPartitions: Int?
    /// Kinesis with several shards: a request goes to the shard owning its stream.
    let byStream: Bool
    /// Null-key records without a partition: each request's go to the next partition (Kafka's sticky idea,
    /// per request), as a single writer's sink does per round.
    let sticky = Atomic<Int>(0)

    /// Opens the backend on the caller's thread (so a bad broker or a missing stream fails at start-up),
    /// then hands each share to its writer thread. `settings.stages`: the shards (nil: one per 8 usable CPUs).
    init(backend: Backend, settings: SinkSettings, capacity: Int) throws(SinkFailure) {
        let count = backend.sinkStages(settings, auto: LogOptions.autoSinkStages)
        let bells = (0..<count).map { _ in Doorbell() }
        let sinks = try backend.makeSinks(settings, role: .ingest, bells: bells)
        partitionCounts = RecordKind.allCases.map { sinks[0].partitionCount($0) }
        if case .embedded = backend, count > 1 { routedPartitions = settings.partitions } else { routedPartitions = nil }
        if case .kinesis = backend, count > 1 { byStream = true } else { byStream = false }
        shards = sinks.enumerated().map { i, sink in
            WriterShard(sink: sink, bell: bells[i], capacity: capacity, name: count > 1 ? "ingest-writer-\(i)" : "ingest-writer")
        }
    }

    /// Hands a request's records to the shards that own them; false (nothing handed over) when a ring it
    /// needs is full.
    func submit(_ job: IngestJob) -> Bool {
        if shards.count == 1 { return shards[0].submit(job) }
        if byStream { return shards[KinesisSink.stage(of: job.kind, stages: shards.count)].submit(job) }
        guard let P = routedPartitions else { return shards[0].submit(job) }
        // Each record's partition, as the sink would choose it: given, else murmur2 of the key, else this
        // request's sticky partition; then the shard owning that topic-partition.
        let W = shards.count
        var records = job.records
        var owner = [Int](repeating: 0, count: records.count)
        var stickyPartition: Int32 = -1
        var first = -1, mixed = false
        for i in records.indices {
            var p = records[i].partition
            if p < 0 {
                if let key = job.key(i) {
                    p = Int32(Murmur2.partition(key, partitions: P))
                } else {
                    // The request count wraps: masked, the partition is never negative.
                    if stickyPartition < 0 { stickyPartition = Int32((sticky.add(1, ordering: .relaxed).oldValue & Int.max) % P) }
                    p = stickyPartition
                }
                records[i].partition = p
            }
            owner[i] = EmbeddedLogSink.shard(of: job.kind, partition: Int(p), partitions: P, shards: W)
            if first < 0 { first = owner[i] } else if owner[i] != first { mixed = true }
        }
        guard first >= 0 else { return shards[0].submit(job) }
        if !mixed {
            return shards[first].submit(IngestJob(kind: job.kind, bytes: job.bytes, records: records, completion: job.completion))
        }
        // Shares of several shards: room in every ring first, then the shares; the last answers the request.
        var parts: [(shard: Int, indices: [Int])] = []
        for s in 0..<W {
            let idx = owner.indices.filter { owner[$0] == s }
            if !idx.isEmpty { parts.append((s, idx)) }
        }
        var taken = 0
        while taken < parts.count, shards[parts[taken].shard].reserve() { taken += 1 }
        guard taken == parts.count else {
            for k in 0..<taken { shards[parts[k].shard].unreserve() }
            return false
        }
        let split = SplitRequest(count: records.count, parts: parts.count, completion: job.completion)
        for (s, idx) in parts {
            let share = idx.map { records[$0] }
            shards[s].push(IngestJob(kind: job.kind, bytes: job.bytes, records: share) { r in split.settle(r, at: idx) })
        }
        return true
    }

    var storedCount: Int { shards.reduce(0) { $0 + $1.stored.load(ordering: .relaxed) } }
    var undelivered: Int { shards.reduce(0) { $0 + $1.undelivered.load(ordering: .relaxed) } }

    func beginDrain(timeoutSeconds: Double) { for s in shards { s.beginDrain(timeoutSeconds: timeoutSeconds) } }

    /// Drains what was accepted, closes the backend and waits for the writers.
    func shutdown() {
        for s in shards { s.stop.store(true, ordering: .releasing); s.wake.ring() }
        for s in shards { s.shutdown() }
    }
}

/// A request shared out over writer shards: each share's outcomes land at its records' places; the share
/// answered last answers the request (with the first failure, if a share failed as a whole).
final class SplitRequest: @unchecked Sendable {
    private let lock = Mutex(())
    private var outcomes: [RecordOutcome]
    private var left: Int
    private var failure: IngestError?
    private let completion: @Sendable (Result<[RecordOutcome], IngestError>) -> Void

    init(count: Int, parts: Int, completion: @escaping @Sendable (Result<[RecordOutcome], IngestError>) -> Void) {
        outcomes = [RecordOutcome](repeating: RecordOutcome(), count: count)
        left = parts
        self.completion = completion
    }

    func settle(_ r: Result<[RecordOutcome], IngestError>, at indices: [Int]) {
        let done: Result<[RecordOutcome], IngestError>? = lock.withLock { _ in
            switch r {
            case .success(let os): for (k, i) in indices.enumerated() where k < os.count { outcomes[i] = os[k] }
            case .failure(let e): if failure == nil { failure = e }
            }
            left -= 1
            guard left == 0 else { return nil }
            return failure.map { .failure($0) } ?? .success(outcomes)
        }
        if let done { completion(done) }
    }
}

/// One writer thread and its share of the backend: request handlers hand it jobs through a bounded
/// lock-free ring (room counted in `reserved`, taken before a push); the writer completes a job once each
/// of its records is stored or has failed.
final class WriterShard: @unchecked Sendable {
    let ring: MPMCRing<IngestJob>
    let capacity: Int
    /// Jobs pushed or about to be, not yet taken by the writer: at most `capacity`, so a push with room
    /// taken never finds the ring full.
    let reserved = Atomic<Int>(0)
    let done = DispatchGroup()
    let stop = Atomic<Bool>(false)
    let stored = Atomic<Int>(0)

    /// The writer sleeps on this when the ring stays empty; a submitter rings it (a signal only when the
    /// writer sleeps), so an idle writer neither spins nor yields the CPU the event loops need.
    let wake: Doorbell

    init(sink: any RecordSink, bell: Doorbell, capacity: Int, name: String) {
        self.capacity = max(1, capacity)
        ring = MPMCRing(capacity: self.capacity, producers: 1)
        wake = bell
        nonisolated(unsafe) let owned = sink
        done.enter()
        _ = StageThread(name: name) {
            self.drive(owned)
            self.done.leave()
        }
    }

    /// Takes room for one job; false when the ring is full.
    func reserve() -> Bool {
        if reserved.add(1, ordering: .acquiringAndReleasing).newValue > capacity {
            reserved.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func unreserve() { reserved.subtract(1, ordering: .relaxed) }

    /// Hands over a job whose room was taken (`reserve`).
    func push(_ job: IngestJob) {
        var pending = job
        // Room was taken: the ring has a free slot, though a taker may be a moment from releasing it.
        while let back = ring.tryPush(pending) { pending = back; sched_yield() }
        wake.ring()
    }

    func submit(_ job: IngestJob) -> Bool {
        guard reserve() else { return false }
        push(job)
        return true
    }

    /// When a drain must end (monotonic ns): past it, what is still queued or waiting for the backend is
    /// answered as failed and the writer ends.
    let drainDeadlineNs = Atomic<UInt64>(.max)
    /// Records answered as failed because the drain ran out of time.
    let undelivered = Atomic<Int>(0)

    /// Starts draining: no more is accepted (the server closed its listener), what was accepted is sent,
    /// and after `timeoutSeconds` whatever is left is failed (counted) instead of holding the exit.
    func beginDrain(timeoutSeconds: Double) {
        let deadline = monotonicNanos() &+ UInt64(max(0, timeoutSeconds) * 1e9)
        drainDeadlineNs.store(deadline, ordering: .relaxed)
        stop.store(true, ordering: .releasing)
        wake.ring()
        // The writer may sleep in its sink's wait: a bell at the deadline wakes it to give up.
        let bell = wake
        _ = StageThread(name: "drain-timer") {
            sleepUntilAbsolute(deadline)
            bell.ring()
        }
    }

    /// Drains what was accepted, closes the backend and waits for the writer.
    func shutdown() {
        stop.store(true, ordering: .releasing)
        wake.ring()
        done.wait()
    }


    /// The writer loop: takes every waiting job (up to a bound), sends its records (the sink partitions
    /// those without an explicit partition), polls the sink (the embedded log seals and appends what it got
    /// in this round), and settles each record from its outcome.
    func drive<S: RecordSink>(_ sink: S) {
        var pending = PendingJobs()
        sink.onOutcome = { [unowned self] o in pending.settle(o, writer: self) }
        while true {
            var any = false
            var taken = 0
            while taken < 512, pending.count < 4096, let j = ring.tryPop() {
                reserved.subtract(1, ordering: .relaxed)
                any = true
                taken += 1
                let id = pending.add(j)
                let kind = j.kind
                let ts = wallMillis()
                for i in 0..<j.count {
                    let p = j.records[i].partition
                    sink.send(kind, key: j.key(i), value: j.value(i), partition: p >= 0 ? p : nil, timestamp: ts, token: PendingJobs.token(id, i))
                }
            }
            sink.poll()
            if stop.load(ordering: .acquiring) && monotonicNanos() >= drainDeadlineNs.load(ordering: .relaxed) {
                // Out of drain time: every record not yet stored (queued, or sent and unanswered) is answered
                // as failed and counted; the backend is closed without waiting for it.
                while let j = ring.tryPop() { reserved.subtract(1, ordering: .relaxed); _ = pending.add(j) }
                undelivered.add(pending.unsettledRecords, ordering: .relaxed)
                pending.failAll("not delivered within --drain-timeout", code: "DrainTimeout")
                nonisolated(unsafe) let s = sink
                _ = StageThread(name: "backend-close") { _ = s.close() }
                return
            }
            if any { continue }
            if stop.load(ordering: .acquiring) && ring.isEmptyApprox && pending.count == 0 {
                if let problem = sink.close() { pending.failAll("backend close failed: \(problem)") }
                return
            }
            if stop.load(ordering: .acquiring) && ring.isEmptyApprox {
                // Draining: wait for the backend's answers (or the deadline's bell).
                sink.wait(on: wake) { pending.count == 0 || monotonicNanos() >= drainDeadlineNs.load(ordering: .relaxed) }
                continue
            }
            // Nothing new: sleep until a submit, the sink's outcomes or its next timer (Doorbell spins first).
            sink.wait(on: wake) { !ring.isEmptyApprox || stop.load(ordering: .relaxed) }
        }
    }
}

/// Jobs in flight at the writer: outcomes fill in as the sink reports them (writer thread only).
struct PendingJobs {
    /// One job and its records' outcomes, filled in place and handed to the job's completion as they are.
    final class Entry {
        let job: IngestJob
        var left: Int
        var outcomes: [RecordOutcome]
        init(_ job: IngestJob) {
            self.job = job
            left = job.count
            outcomes = [RecordOutcome](repeating: RecordOutcome(), count: job.count)
        }
        func complete() { job.completion(.success(outcomes)) }
    }

    var jobs: [Int: Entry] = [:]
    var nextId = 1

    var count: Int { jobs.count }

    mutating func add(_ j: IngestJob) -> Int {
        let id = nextId
        nextId = nextId == (1 << 39) ? 1 : nextId + 1
        jobs[id] = Entry(j)
        return id
    }

    /// Job id in the high bits, the record's position in its job in the low 24 (a job holds at most 2^24:
    /// `accept` refuses a request with more records, 413).
    static func token(_ id: Int, _ i: Int) -> UInt64 { UInt64(id) << 24 | UInt64(i) }
    static let maxRecordsPerJob = 1 << 24

    /// Fills in each record of the outcome; answers every job whose last record this was. Runs of tokens
    /// of one job (the usual case) cost one lookup.
    mutating func settle(_ o: SinkOutcome, writer: WriterShard) {
        switch o.status {
        case .stored(.offsets(let p, let base)):
            writer.stored.add(o.count, ordering: .relaxed)  // before any answer: a client that saw its 200 sees it counted
            forEach(o.tokens) { n, slot in
                slot.pointee.partition = p
                // A broker's base offset is input: one near Int64.max gives an unknown offset, not a trap.
                let (o, overflow) = base.addingReportingOverflow(Int64(n))
                slot.pointee.offset = overflow ? -1 : o
            }
        case .stored(.shard(let id, let seq)):
            writer.stored.add(o.count, ordering: .relaxed)
            let shard = id.isEmpty ? nil : String(decoding: id, as: UTF8.self)
            let sequence = id.isEmpty ? nil : String(decoding: seq, as: UTF8.self)
            let number = shard.flatMap { $0.split(separator: "-").last.flatMap { Int32($0) } } ?? -1
            forEach(o.tokens) { _, slot in
                slot.pointee.shard = shard
                slot.pointee.sequence = sequence
                slot.pointee.partition = number
            }
        case .failed(let f):
            forEach(o.tokens) { _, slot in
                slot.pointee.error = f.message
                slot.pointee.errorCode = f.code
            }
        }
    }

    /// Calls `fill` with each token's position in the outcome and its record's outcome slot, then answers
    /// the jobs that became complete. A run of tokens of one job is filled under one access to its outcomes.
    mutating func forEach(_ tokens: UnsafeBufferPointer<UInt64>, _ fill: (Int, UnsafeMutablePointer<RecordOutcome>) -> Void) {
        var n = 0
        while n < tokens.count {
            let id = Int(tokens[n] >> 24)
            var end = n + 1
            while end < tokens.count && Int(tokens[end] >> 24) == id { end += 1 }
            if let e = jobs[id] {
                let start = n
                let filled: Int = e.outcomes.withUnsafeMutableBufferPointer { os in
                    var done = 0
                    for k in start..<end {
                        let i = Int(tokens[k] & 0xFF_FFFF)
                        guard i < os.count else { continue }
                        fill(k, os.baseAddress! + i)
                        done += 1
                    }
                    return done
                }
                e.left -= filled
                if e.left <= 0 {
                    jobs.removeValue(forKey: id)
                    e.complete()
                }
            }
            n = end
        }
    }

    /// Fails every record still waiting (the backend could not be closed cleanly).
    /// Records of the jobs held here that have no outcome yet.
    var unsettledRecords: Int {
        jobs.values.reduce(0) { n, e in n + e.outcomes.filter(\.isPending).count }
    }

    mutating func failAll(_ message: String, code: String = "CloseFailed") {
        for (_, e) in jobs {
            for i in e.outcomes.indices where e.outcomes[i].isPending {
                e.outcomes[i].error = message
                e.outcomes[i].errorCode = code
            }
            e.complete()
        }
        jobs.removeAll()
    }
}
