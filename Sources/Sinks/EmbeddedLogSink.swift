import Bytes
import Codecs
import JSON
import KafkaLog
import KafkaWire
import Platform
import PinModel
import RingBuffers
import Synchronization

/// The embedded log as a sink: per topic-partition a `RecordBatchBuilder`; a batch is sealed at
/// `batchBytes` or when its first record has waited `lingerMs` (compress, CRC-32C; uncompressed batches are
/// sealed in place, with no copy), then `PartitionLog` appends it with real offsets. A 200 from the ingest
/// API, or a record counted out by a flood, means the batch is in the segment file (and fdatasync'd with
/// `fsync batch`). After a write error (disk full) every later record fails with the same reason.
///
/// With seal workers (a flood's default: `LogOptions.sealThreads`), the owning thread only partitions and
/// appends records to the open batches; a full batch goes to the worker that owns its topic-partition
/// (always the same one, so a partition's batches are appended in order), which compresses it, computes
/// its CRC and appends it, and hands it back through a ring; the owner delivers its outcome at its next
/// `poll`, `flush` or wake-up (the worker rings the owner's bell). Without workers all of that happens on
/// the owning thread (the ingest API's writer).
///
/// A flood with several sink stages opens one sink per stage (`shards`): shard i of n owns the slots
/// (topic-partitions, `kind * partitions + p`) with `slot % n == i`, each with its own builders, seal
/// workers and appends, under one lock on the log; a record sent to a shard that does not own its slot
/// fails (the stage routes by `ownsSlot`).
public final class EmbeddedLogSink: RecordSink {
    public var onOutcome: ((SinkOutcome) -> Void)?
    public let settings: SinkSettings
    public let options: LogOptions
    let partitions: Int
    let lingerNs: UInt64
    /// How early `poll` may seal a lingering batch (an eighth of the linger, at most 0.5 ms).
    let sealAheadNs: UInt64
    /// Held while the sink (every shard of it) lives: no other pinbench writes this log meanwhile.
    let lease: LogLease
    /// The slots this sink owns, in slot order.
    let slots: UnsafeMutableBufferPointer<Slot>
    /// `[kind * partitions + p]`: the index in `slots`, or -1 for a slot another shard owns.
    let slotIndex: UnsafeMutableBufferPointer<Int32>
    /// This shard's place: it owns the slots with `slot % shardCount == shardIndex`.
    public let shardIndex: Int
    public let shardCount: Int
    let codec = Codec()
    let out: ByteBuffer
    // `@exclusivity(unchecked)` here and on `pending`: read or changed per record on the stage's thread only; the
    // runtime check of each access cost more than the work.
    @exclusivity(unchecked) var failure: SinkFailure?
    var recoveries: [RecoveryReport] = []
    var stored = 0
    var sticky = 0
    @exclusivity(unchecked) public private(set) var pending = 0
    /// Records the log held before this sink opened it (a flood appends to them): in every shard's
    /// topic-partitions (`shards` sets it on each).
    public internal(set) var existingRecords: Int
    /// Seal workers (empty: batches are sealed and appended on the owning thread).
    let workers: [SealWorker]
    /// Batches out with a worker, not yet back.
    var inFlight = 0
    /// Batches a slot may have out with its worker before the owner waits for one to come back.
    static let batchesPerSlot = 3
    let ownerBell: Doorbell
    let builderCapacity: Int
    let inPlace: Bool

    /// One topic-partition: its log, its open batch and the spare batches it owns. Slots live in a
    /// pointer-backed buffer owned by the sink, batches behind plain pointers: a class's stored properties
    /// would pay a run-time exclusivity check on every record.
    struct Slot {
        let kind: RecordKind
        /// `kind * partitions + p`.
        let global: Int
        let log: PartitionLog
        /// The open batch.
        var batch: UnsafeMutablePointer<OpenBatch>
        /// Batches back from the worker, ready to reuse.
        var spare: [UnsafeMutablePointer<OpenBatch>] = []
        var outWithWorker = 0
        var records = 0
        var batches = 0
        let worker: Int
    }

    public convenience init(settings: SinkSettings, options: LogOptions, role: SinkRole, bell: Doorbell = Doorbell()) throws(SinkFailure) {
        let (lease, seal) = try Self.open(settings, options, role, holders: 1)
        try self.init(settings: settings, options: options, role: role, bell: bell, shard: 0, of: 1, sealThreads: seal, lease: lease)
    }

    /// One sink per bell, shard i owning the slots with `slot % bells.count == i`; the seal threads
    /// (`LogOptions.sealThreads`, else `autoSealThreads`) are shared out among them.
    public static func shards(settings: SinkSettings, options: LogOptions, role: SinkRole, bells: [Doorbell]) throws(SinkFailure) -> [EmbeddedLogSink] {
        let n = max(1, bells.count)
        let (lease, seal) = try Self.open(settings, options, role, holders: n)
        var out: [EmbeddedLogSink] = []
        for i in 0..<n {
            do {
                out.append(try EmbeddedLogSink(settings: settings, options: options, role: role, bell: bells[i], shard: i, of: n,
                                               sealThreads: seal / n + (i < seal % n ? 1 : 0), lease: lease))
            } catch {
                for o in out { _ = o.close() }
                for _ in out.count..<n { lease.release() }
                throw error
            }
        }
        let existing = saturatingSum(out.map(\.existingRecords))
        for o in out { o.existingRecords = existing }
        return out
    }

    /// What every way of opening the log does first: its lock, for `holders` sinks (one writer per log: a
    /// second process recovering or appending the same segments would tear them), a flood's settings check,
    /// and the seal threads the sinks share (`LogOptions.sealThreads`, else a flood's `autoSealThreads`,
    /// none behind the ingest API).
    private static func open(_ settings: SinkSettings, _ options: LogOptions, _ role: SinkRole, holders: Int) throws(SinkFailure)
        -> (lease: LogLease, sealThreads: Int)
    {
        let lease: LogLease
        do { lease = LogLease(try DirectoryLock("\(options.dataDir)/log"), holders: holders) } catch { throw SinkFailure.config(error.description) }
        if role == .flood { try checkSettings(settings, options) }
        return (lease, options.sealThreads ?? (role == .ingest ? 0 : LogOptions.autoSealThreads))
    }

    /// A sum of counts read from files (offsets of a crafted segment may sit near Int64.max): it saturates,
    /// never traps.
    static func saturatingSum<S: Sequence>(_ values: S) -> Int where S.Element == Int {
        values.reduce(0) { sum, v in
            let (r, o) = sum.addingReportingOverflow(v)
            return o ? .max : r
        }
    }

    /// Whether this sink owns the records of `kind` in partition `p` (always, unless it is one shard of several).
    @inline(__always)
    public func ownsSlot(_ kind: RecordKind, partition p: Int) -> Bool {
        Self.shard(of: kind, partition: p, partitions: partitions, shards: shardCount) == shardIndex
    }

    /// The shard (of `shards`) that owns `kind`'s partition `p`: slot `kind * partitions + p` modulo `shards`.
    @inline(__always)
    public static func shard(of kind: RecordKind, partition p: Int, partitions: Int, shards: Int) -> Int {
        (kind.rawValue * partitions + p) % shards
    }

    init(settings: SinkSettings, options: LogOptions, role: SinkRole, bell: Doorbell, shard: Int, of shardCount: Int,
         sealThreads: Int, lease: LogLease) throws(SinkFailure) {
        self.settings = settings
        self.lease = lease
        shardIndex = shard
        self.shardCount = shardCount
        self.options = options
        partitions = settings.partitions
        // Behind the ingest API a batch is sealed at every writer round (each poll): a request's answer
        // waits for no timer. A flood lingers as Kafka producers do.
        let linger = role == .ingest ? 0 : (settings.lingerMs ?? SinkSettings.defaultLingerMs)
        lingerNs = UInt64(linger * 1e6)
        sealAheadNs = min(lingerNs / 8, 500_000)
        let config = LogConfig(dataDir: options.dataDir, segmentBytes: options.segmentBytes, fsync: options.fsync)
        let inPlace = settings.compression == .none
        let capacity = min(settings.batchBytes + 4096, role == .ingest ? 64 << 10 : 8 << 20)
        self.inPlace = inPlace
        builderCapacity = capacity
        ownerBell = bell
        let allSlots = RecordKind.allCases.count * settings.partitions
        let slotCount = (allSlots - shard + shardCount - 1) / shardCount  // the slots with slot % shardCount == shard
        let workerCount = max(0, min(slotCount, sealThreads))
        var slots: [Slot] = []
        var recoveries: [RecoveryReport] = []
        // Open every partition first: recovery of a torn tail happens here, before any new data.
        do {
            for kind in RecordKind.allCases {
                for p in 0..<settings.partitions where Self.shard(of: kind, partition: p, partitions: settings.partitions, shards: shardCount) == shard {
                    let log = try PartitionLog(topic: kind.topic(prefix: settings.topicPrefix), partition: p, config: config)
                    if let r = log.recovery { recoveries.append(r) }
                    let index = slots.count
                    slots.append(Slot(kind: kind, global: kind.rawValue * settings.partitions + p, log: log,
                                      batch: OpenBatch.make(capacity: capacity, inPlace: inPlace),
                                      worker: workerCount > 0 ? index % workerCount : -1))
                }
            }
        } catch {
            throw SinkFailure(error.isDiskFull ? .diskFull : .logWrite, "cannot open the embedded log: \(error)", isFatal: true)
        }
        self.slots = .allocate(capacity: slots.count)
        _ = self.slots.initialize(from: slots)
        slotIndex = .allocate(capacity: allSlots)
        slotIndex.initialize(repeating: -1)
        for (i, sl) in slots.enumerated() { slotIndex[sl.global] = Int32(i) }
        self.recoveries = recoveries
        existingRecords = Self.saturatingSum(slots.lazy.map { Int($0.log.nextOffset) })
        out = ByteBuffer(capacity: inPlace || workerCount > 0 ? 0 : min(settings.batchBytes, 8 << 20) + 65536)
        let (compression, level) = (settings.compression, settings.compressionLevel)
        workers = (0..<workerCount).map { i in
            SealWorker(index: i, queue: Self.batchesPerSlot * ((slotCount + workerCount - 1) / workerCount) + 1, ownerBell: bell,
                       compression: compression, level: level, outCapacity: inPlace ? 0 : min(settings.batchBytes, 8 << 20) + 65536)
        }
    }

    deinit {
        for w in workers {
            w.stop()
            while let b = w.done.tryPop() { OpenBatch.free(b) }  // handed back but never collected (no close)
        }
        for s in slots {
            OpenBatch.free(s.batch)
            for b in s.spare { OpenBatch.free(b) }
        }
        slots.deinitialize()
        slots.deallocate()
        slotIndex.deallocate()
    }

    public var destination: String {
        var what = "embedded log in \(options.dataDir) (\(RecordKind.allCases.count) topics × \(partitions) partitions, \(settings.compression))"
        if shardCount > 1 { what += " through \(shardCount) sink stages" }
        return existingRecords > 0 ? what + ", appending to the \(existingRecords) records there" : what
    }

    /// A flood into a log made with other partitions or compression is refused unless `LogOptions.append`:
    /// a re-run would otherwise spread one topic's records over two layouts without a word. The settings a
    /// log was made with live in `<dataDir>/log/<prefix>.settings.json`.
    static func checkSettings(_ settings: SinkSettings, _ options: LogOptions) throws(SinkFailure) {
        let file = "\(options.dataDir)/log/\(settings.topicPrefix).settings.json"
        let topics = Set(RecordKind.allCases.map { $0.topic(prefix: settings.topicPrefix) })
        let existing = (try? listPartitions(dataDir: options.dataDir))?.filter { topics.contains($0.topic) } ?? []
        // Segment bytes tell whether the log holds anything (offsets are known once the partitions are open).
        var held = false
        for e in existing where !held {
            held = ((try? listDirectory(e.path)) ?? []).contains { $0.hasSuffix(".log") && (fileSize("\(e.path)/\($0)") ?? 0) > 0 }
        }
        let parts = (existing.map(\.partition).max() ?? -1) + 1
        var made: (partitions: Int, compression: String)? = existing.isEmpty ? nil : (parts, "unknown")
        if let text = readSmallTextFile(file), let v = try? JSONValue.parse(text),
           let p = v["partitions"]?.intValue, let c = v["compression"]?.stringValue {
            made = (p, c)
        }
        if let m = made, held, !options.append,
           m.partitions != settings.partitions || (m.compression != "unknown" && m.compression != settings.compression.description) {
            throw SinkFailure.config("\(options.dataDir) holds a log written with --partitions \(m.partitions)\(m.compression == "unknown" ? "" : " --compression \(m.compression)"); run with those settings, another --data-dir, or --append to add to it anyway")
        }
        if made == nil || !held {
            let json = JSONValue.object([("partitions", .int(settings.partitions)), ("compression", .string(settings.compression.description))])
            do {
                try makeDirectories("\(options.dataDir)/log")
                try replaceFileAtomically(file, text: json.serialized(pretty: false) + "\n")
            } catch { throw SinkFailure(error.isDiskFull ? .diskFull : .logWrite, "cannot write \(file): \(error)", isFatal: true) }
        }
    }

    public var latencyEndpoint: String {
        options.fsync == .batch ? "append + fdatasync" : "append to the segment file (page cache)"
    }

    public func partitionCount(_ kind: RecordKind) -> Int? { partitions }

    @inline(__always)
    public func send(_ kind: RecordKind, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, partition: Int32?,
                     timestamp: Int64, token: UInt64) {
        let p: Int
        if let partition, partition >= 0, Int(partition) < partitions {
            p = Int(partition)
        } else if let key {
            p = Murmur2.partition(key, partitions: partitions)
        } else {
            p = sticky
        }
        let local = Int(slotIndex[kind.rawValue * partitions + p])
        guard local >= 0 else {
            // Another shard's topic-partition: the stage routes by `ownsSlot`, so this is a caller's mistake,
            // and the record is failed, never lost.
            let f = SinkFailure.config("\(kind.topic(prefix: settings.topicPrefix))-\(p) belongs to another sink stage")
            withUnsafePointer(to: token) { t in
                onOutcome?(SinkOutcome(kind: kind, tokens: UnsafeBufferPointer(start: t, count: 1), payloadBytes: value.count, status: .failed(f)))
            }
            return
        }
        let s = slots.baseAddress! + local
        if failure != nil {
            reportFailed(kind, token: token, payload: value.count)
            return
        }
        let b = s.pointee.batch
        if b.pointee.builder.isEmpty { b.pointee.firstNs = monotonicNanos() }
        b.pointee.builder.append(key: key, value: value, timestamp: timestamp)
        b.pointee.addToken(token)
        b.pointee.payload += value.count
        pending += 1
        if b.pointee.builder.sizeInBytes >= settings.batchBytes { seal(s) }
    }

    public func poll(noInputBeforeNs ns: UInt64) {
        if inFlight > 0 { collect() }
        // A batch whose linger ends within `sealAheadNs` is sealed now, while the stage is awake anyway: a paced
        // flood's next chunk comes about one linger after the batch's first, and waking again a few hundred µs
        // later only to seal it costs a wake-up (25–35 µs of CPU on a VM) for nothing. So is one whose linger
        // ends before the owner's next record.
        let horizon = max(monotonicNanos() &+ sealAheadNs, ns)
        for i in slots.indices where !slots[i].batch.pointee.builder.isEmpty && slots[i].batch.pointee.firstNs &+ lingerNs <= horizon {
            seal(slots.baseAddress! + i)
        }
        sticky = sticky + 1 == partitions ? 0 : sticky + 1
    }

    /// Delivers what the workers handed back, in the order each worker finished it (per partition: in order).
    func collect() {
        for w in workers {
            while let b = w.done.tryPop() {
                let s = slots.baseAddress! + b.pointee.slot
                let n = b.pointee.count
                if let f = b.pointee.failure {
                    if f.isFatal && failure == nil { failure = f }
                    deliver(b, .failed(f))
                } else {
                    stored += b.pointee.size
                    s.pointee.records += n
                    s.pointee.batches += 1
                    deliver(b, .stored(.offsets(partition: Int32(s.pointee.log.partition), baseOffset: b.pointee.base)))
                }
                pending -= n
                inFlight -= 1
                s.pointee.outWithWorker -= 1
                b.pointee.clear()
                s.pointee.spare.append(b)
            }
        }
    }

    var workersHaveDone: Bool {
        for w in workers where w.done.count > 0 { return true }
        return false
    }

    /// Until the oldest open batch's linger ends (at least 0.1 ms), or 50 ms when no batch is open: the
    /// embedded log has no outcomes that arrive on their own.
    public var idleWaitNs: Int {
        var oldest = UInt64.max
        for i in slots.indices where !slots[i].batch.pointee.builder.isEmpty { oldest = min(oldest, slots[i].batch.pointee.firstNs) }
        return idleSleepNs(until: oldest == .max ? .max : oldest &+ lingerNs)
    }

    /// Sleeps on the owner's bell, which new work and the seal workers' finished batches ring.
    public func wait(on bell: Doorbell, atMostNs: Int, until ready: () -> Bool) {
        if workers.isEmpty {
            bell.wait(timeoutNs: min(idleWaitNs, atMostNs), until: ready)
        } else {
            bell.wait(timeoutNs: min(idleWaitNs, atMostNs)) { ready() || workersHaveDone }
            collect()
        }
    }

    /// Seals every open batch and, with workers, waits until all are appended and their outcomes delivered.
    public func flush() {
        for i in slots.indices where !slots[i].batch.pointee.builder.isEmpty { seal(slots.baseAddress! + i) }
        while inFlight > 0 {
            collect()
            if inFlight > 0 { ownerBell.wait(timeoutNs: 1_000_000) { workersHaveDone } }
        }
    }

    public func close() -> String? {
        flush()
        for w in workers { w.stop() }
        var problem: String?
        for s in slots {
            do { try s.log.close() } catch { if problem == nil { problem = "close failed: \(error)" } }
        }
        lease.release()  // closed (every shard): another writer may open the log now, even while this object lives on
        return problem
    }

    public var report: SinkReport {
        var r = SinkReport()
        r.partitions = slots.map {
            PartitionCount(topic: $0.log.topic, partition: $0.log.partition, records: $0.records, batches: $0.batches, nextOffset: $0.log.nextOffset)
        }
        r.storedBytes = stored
        r.batches = slots.reduce(0) { $0 + $1.batches }
        r.recoveries = recoveries
        return r
    }

    /// Seals the slot's batch, appends it and reports its records (or hands it to the slot's worker, which
    /// does the sealing and the append; the owner waits only when the slot already has three out).
    func seal(_ s: UnsafeMutablePointer<Slot>) {
        let b = s.pointee.batch
        b.pointee.slot = s - slots.baseAddress!
        if !workers.isEmpty {
            if let f = failure {
                let n = b.pointee.count
                deliver(b, .failed(f))
                pending -= n
                b.pointee.clear()
                return
            }
            while s.pointee.outWithWorker >= Self.batchesPerSlot {
                collect()
                if s.pointee.outWithWorker >= Self.batchesPerSlot { ownerBell.wait(timeoutNs: 1_000_000) { workersHaveDone } }
            }
            s.pointee.batch = s.pointee.spare.popLast() ?? OpenBatch.make(capacity: builderCapacity, inPlace: inPlace)
            s.pointee.outWithWorker += 1
            inFlight += 1
            workers[s.pointee.worker].submit(b, log: s.pointee.log)
            return
        }
        let n = b.pointee.count
        defer {
            b.pointee.clear()
            pending -= n
        }
        if let f = failure {
            deliver(b, .failed(f))
            return
        }
        if let f = SealWorker.sealAndAppend(b, log: s.pointee.log, compression: settings.compression, level: settings.compressionLevel,
                                            codec: codec, out: out) {
            if f.isFatal { failure = f }
            deliver(b, .failed(f))
            return
        }
        stored += b.pointee.size
        s.pointee.records += n
        s.pointee.batches += 1
        deliver(b, .stored(.offsets(partition: Int32(s.pointee.log.partition), baseOffset: b.pointee.base)))
    }

    @inline(__always)
    func deliver(_ b: UnsafeMutablePointer<OpenBatch>, _ status: SinkOutcome.Status) {
        let t = UnsafeBufferPointer(start: b.pointee.tokens, count: b.pointee.count)
        onOutcome?(SinkOutcome(kind: slots[b.pointee.slot].kind, tokens: t, payloadBytes: b.pointee.payload, status: status))
    }

    func reportFailed(_ kind: RecordKind, token: UInt64, payload: Int) {
        guard let f = failure else { return }
        withUnsafePointer(to: token) { t in
            onOutcome?(SinkOutcome(kind: kind, tokens: UnsafeBufferPointer(start: t, count: 1), payloadBytes: payload, status: .failed(f)))
        }
    }
}

/// One batch being filled, or travelling to a seal worker and back: the builder, its records' tokens, and
/// what the worker found (base offset, stored size, or a failure).
struct OpenBatch {
    var builder: RecordBatchBuilder
    /// The tokens of the batch's records (a plain buffer: no reference counting per record).
    var tokens: UnsafeMutablePointer<UInt64>
    var count = 0
    var tokenCapacity: Int
    var payload = 0
    var firstNs: UInt64 = 0
    var slot = 0
    var base: Int64 = -1
    var size = 0
    var failure: SinkFailure?

    static func make(capacity: Int, inPlace: Bool) -> UnsafeMutablePointer<OpenBatch> {
        let p = UnsafeMutablePointer<OpenBatch>.allocate(capacity: 1)
        p.initialize(to: OpenBatch(builder: RecordBatchBuilder(capacity: capacity, inPlace: inPlace), tokens: .allocate(capacity: 4096), tokenCapacity: 4096))
        return p
    }

    static func free(_ p: UnsafeMutablePointer<OpenBatch>) {
        p.pointee.tokens.deallocate()
        p.deinitialize(count: 1)
        p.deallocate()
    }

    @inline(__always)
    mutating func addToken(_ t: UInt64) {
        if count == tokenCapacity {
            let bigger = UnsafeMutablePointer<UInt64>.allocate(capacity: tokenCapacity * 2)
            bigger.moveInitialize(from: tokens, count: count)
            tokens.deallocate()
            tokens = bigger
            tokenCapacity *= 2
        }
        tokens[count] = t
        count += 1
    }

    mutating func clear() {
        builder.reset()
        count = 0
        payload = 0
        base = -1
        size = 0
        failure = nil
    }
}

/// A thread that seals (compresses, CRCs) and appends the batches of the topic-partitions it owns, in the
/// order they come, and hands each back on `done`. After a write error it fails what it gets with the same
/// reason (the owner stops the flood on the first fatal failure).
final class SealWorker: @unchecked Sendable {
    let tasks: SPSCRing<(UnsafeMutablePointer<OpenBatch>, PartitionLog)>
    let done: SPSCRing<UnsafeMutablePointer<OpenBatch>>
    let bell = Doorbell()
    private var thread: StageThread?

    init(index: Int, queue: Int, ownerBell: Doorbell, compression: CompressionCodec, level: Int32?, outCapacity: Int) {
        tasks = SPSCRing(capacity: queue)
        done = SPSCRing(capacity: queue)
        let (tasks, done, bell) = (self.tasks, self.done, self.bell)
        thread = StageThread(name: "log-seal-\(index)") {
            let codec = Codec()
            let out = ByteBuffer(capacity: outCapacity)
            var failure: SinkFailure?
            while true {
                guard let (b, log) = tasks.tryPop() else {
                    if tasks.isClosed && tasks.count == 0 { break }
                    bell.wait(timeoutNs: 50_000_000) { tasks.count > 0 || tasks.isClosed }
                    continue
                }
                if let f = failure {
                    b.pointee.failure = f
                } else {
                    if let f = Self.sealAndAppend(b, log: log, compression: compression, level: level, codec: codec, out: out), f.isFatal {
                        failure = f
                    }
                }
                // `done` has room for every batch this worker can hold.
                _ = done.tryPush(b)
                ownerBell.ring()
            }
        }
    }

    func submit(_ b: UnsafeMutablePointer<OpenBatch>, log: PartitionLog) {
        _ = tasks.tryPush((b, log))  // room for every batch the owner may have out
        bell.ring()
    }

    func stop() {
        tasks.close()
        bell.ring()
        thread?.join()
        thread = nil
    }

    /// Seals `b` (in place when uncompressed, else into `out`) and appends it: sets its base offset and
    /// size, or its failure.
    static func sealAndAppend(_ b: UnsafeMutablePointer<OpenBatch>, log: PartitionLog, compression: CompressionCodec, level: Int32?,
                              codec: Codec, out: ByteBuffer) -> SinkFailure? {
        do {
            if b.pointee.builder.headroom > 0 {
                let batch = b.pointee.builder.sealInPlace()
                b.pointee.size = batch.count
                b.pointee.base = try log.append(batch: batch)
            } else {
                out.reset()
                try b.pointee.builder.seal(into: out, codec: compression, compressor: codec, level: level)
                b.pointee.size = out.count
                b.pointee.base = try log.append(batch: UnsafeMutableRawBufferPointer(start: out.base, count: out.count))
            }
            return nil
        } catch let e as LogError where e.isOffsetOverflow {
            // Nothing was written: this partition's offsets are spent (a log based near 2^63), not the disk.
            // The batch fails; other partitions, and smaller batches here, go on.
            b.pointee.failure = SinkFailure(.logWrite, "log write failed: \(e) (offsets would pass 2^63 - 1)", isFatal: false)
        } catch let e as LogError {
            b.pointee.failure = SinkFailure(e.isDiskFull ? .diskFull : .logWrite, e.isDiskFull ? "disk full: \(e)" : "log write failed: \(e)", isFatal: true)
        } catch {
            b.pointee.failure = SinkFailure(.encode, "batch encode failed: \(error)", isFatal: true)
        }
        return b.pointee.failure
    }
}

/// The log's lock, shared by the shards of one sink: released when the last of them closes.
final class LogLease: Sendable {
    let lock: DirectoryLock
    let holders: Atomic<Int>

    init(_ lock: DirectoryLock, holders: Int) {
        self.lock = lock
        self.holders = Atomic(holders)
    }

    /// One holder is done; the last one lets the folder go.
    func release() {
        if holders.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { lock.release() }
    }
}
