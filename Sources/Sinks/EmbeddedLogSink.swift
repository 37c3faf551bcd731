import Bytes
import Codecs
import JSON
import KafkaLog
import KafkaWire
import Platform
import PinModel
import RingBuffers

/// The embedded log as a sink: per topic-partition a `RecordBatchBuilder`; a batch is sealed at
/// `batchBytes` or when its first record has waited `lingerMs` (compress, CRC-32C; uncompressed batches are
/// sealed in place, with no copy), then `PartitionLog` appends it with real offsets. A 200 from the ingest
/// API, or a record counted out by a flood, means the batch is in the segment file (and fdatasync'd with
/// `fsync batch`). After a write error (disk full) every later record fails with the same reason.
public final class EmbeddedLogSink: RecordSink {
    public var onOutcome: ((SinkOutcome) -> Void)?
    public let settings: SinkSettings
    public let options: LogOptions
    let partitions: Int
    let lingerNs: UInt64
    /// Held while the sink lives: no other pinbench writes this log meanwhile.
    let lock: DirectoryLock
    /// `[kind * partitions + p]`.
    let slots: UnsafeMutableBufferPointer<Slot>
    let codec = Codec()
    let out: ByteBuffer
    var failure: SinkFailure?
    var recoveries: [RecoveryReport] = []
    var stored = 0
    var sticky = 0
    public private(set) var pending = 0
    /// Records the log held before this sink opened it (a flood appends to them).
    public let existingRecords: Int

    /// One topic-partition's open batch and what it holds. Slots live in a pointer-backed buffer owned by
    /// the sink, and their tokens in a `ByteBuffer`: a class's stored properties would pay a run-time
    /// exclusivity check on every record.
    struct Slot {
        let kind: RecordKind
        let log: PartitionLog
        var builder: RecordBatchBuilder
        /// The tokens of the open batch (a plain buffer: no reference counting per record).
        var tokens: UnsafeMutablePointer<UInt64>
        var count = 0
        var tokenCapacity: Int
        var payload = 0
        var firstNs: UInt64 = 0
        var records = 0
        var batches = 0

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
    }

    public init(settings: SinkSettings, options: LogOptions, role: SinkRole) throws(SinkFailure) {
        self.settings = settings
        self.options = options
        partitions = settings.partitions
        // Behind the ingest API a batch is sealed at every writer round (each poll): a request's answer
        // waits for no timer. A flood lingers as Kafka producers do.
        let linger = role == .ingest ? 0 : (settings.lingerMs ?? SinkSettings.defaultLingerMs)
        lingerNs = UInt64(linger * 1e6)
        let config = LogConfig(dataDir: options.dataDir, segmentBytes: options.segmentBytes, fsync: options.fsync)
        let inPlace = settings.compression == .none
        let capacity = min(settings.batchBytes + 4096, role == .ingest ? 64 << 10 : 8 << 20)
        // One writer per log: a second process recovering or appending the same segments would tear them.
        do { lock = try DirectoryLock("\(options.dataDir)/log") } catch { throw SinkFailure.config(error.description) }
        if role == .flood { try Self.checkSettings(settings, options) }
        var slots: [Slot] = []
        var recoveries: [RecoveryReport] = []
        // Open every partition first: recovery of a torn tail happens here, before any new data.
        do {
            for kind in RecordKind.allCases {
                for p in 0..<settings.partitions {
                    let log = try PartitionLog(topic: kind.topic(prefix: settings.topicPrefix), partition: p, config: config)
                    if let r = log.recovery { recoveries.append(r) }
                    slots.append(Slot(kind: kind, log: log, builder: RecordBatchBuilder(capacity: capacity, inPlace: inPlace),
                                      tokens: .allocate(capacity: 4096), tokenCapacity: 4096))
                }
            }
        } catch {
            throw SinkFailure(error.isDiskFull ? .diskFull : .logWrite, "cannot open the embedded log: \(error)", isFatal: true)
        }
        self.slots = .allocate(capacity: slots.count)
        _ = self.slots.initialize(from: slots)
        self.recoveries = recoveries
        // Offsets come from files (a crafted segment may start near Int64.max): the sum saturates, never traps.
        existingRecords = slots.reduce(0) { sum, s in
            let (r, o) = sum.addingReportingOverflow(Int(s.log.nextOffset))
            return o ? .max : r
        }
        out = ByteBuffer(capacity: inPlace ? 0 : min(settings.batchBytes, 8 << 20) + 65536)
    }

    deinit {
        for s in slots { s.tokens.deallocate() }
        slots.deinitialize()
        slots.deallocate()
    }

    public var destination: String {
        let what = "embedded log in \(options.dataDir) (\(RecordKind.allCases.count) topics × \(partitions) partitions, \(settings.compression))"
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
        let s = slots.baseAddress! + (kind.rawValue * partitions + p)
        if failure != nil {
            reportFailed(kind, token: token, payload: value.count)
            return
        }
        if s.pointee.builder.isEmpty { s.pointee.firstNs = monotonicNanos() }
        s.pointee.builder.append(key: key, value: value, timestamp: timestamp)
        s.pointee.addToken(token)
        s.pointee.payload += value.count
        pending += 1
        if s.pointee.builder.sizeInBytes >= settings.batchBytes { seal(s) }
    }

    public func poll() {
        let now = monotonicNanos()
        for i in slots.indices where !slots[i].builder.isEmpty && now &- slots[i].firstNs >= lingerNs { seal(slots.baseAddress! + i) }
        sticky = sticky + 1 == partitions ? 0 : sticky + 1
    }

    /// Until the oldest open batch's linger ends (at least 0.1 ms), or 50 ms when no batch is open: the
    /// embedded log has no outcomes that arrive on their own.
    public var idleWaitNs: Int {
        var oldest = UInt64.max
        for i in slots.indices where !slots[i].builder.isEmpty { oldest = min(oldest, slots[i].firstNs) }
        return idleSleepNs(until: oldest == .max ? .max : oldest &+ lingerNs)
    }

    public func wait(on bell: Doorbell, until ready: () -> Bool) { bell.wait(timeoutNs: idleWaitNs, until: ready) }

    public func flush() {
        for i in slots.indices where !slots[i].builder.isEmpty { seal(slots.baseAddress! + i) }
    }

    public func close() -> String? {
        flush()
        var problem: String?
        for s in slots {
            do { try s.log.close() } catch { if problem == nil { problem = "close failed: \(error)" } }
        }
        lock.release()  // closed: another writer may open the log now, even while this object lives on
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

    /// Seals the slot's batch, appends it and reports its records.
    func seal(_ s: UnsafeMutablePointer<Slot>) {
        let n = s.pointee.count
        defer {
            s.pointee.builder.reset()
            s.pointee.count = 0
            s.pointee.payload = 0
            pending -= n
        }
        if let f = failure {
            deliver(s, .failed(f))
            return
        }
        let base: Int64
        let size: Int
        do {
            if s.pointee.builder.headroom > 0 {
                let batch = s.pointee.builder.sealInPlace()
                size = batch.count
                base = try s.pointee.log.append(batch: batch)
            } else {
                out.reset()
                try s.pointee.builder.seal(into: out, codec: settings.compression, compressor: codec, level: settings.compressionLevel)
                size = out.count
                base = try s.pointee.log.append(batch: UnsafeMutableRawBufferPointer(start: out.base, count: out.count))
            }
        } catch let e as LogError where e.isOffsetOverflow {
            // Nothing was written: this partition's offsets are spent (a log based near 2^63), not the disk.
            // The batch fails; other partitions, and smaller batches here, go on.
            deliver(s, .failed(SinkFailure(.logWrite, "log write failed: \(e) (offsets would pass 2^63 - 1)", isFatal: false)))
            return
        } catch let e as LogError {
            let f = SinkFailure(e.isDiskFull ? .diskFull : .logWrite, e.isDiskFull ? "disk full: \(e)" : "log write failed: \(e)", isFatal: true)
            failure = f
            deliver(s, .failed(f))
            return
        } catch {
            let f = SinkFailure(.encode, "batch encode failed: \(error)", isFatal: true)
            failure = f
            deliver(s, .failed(f))
            return
        }
        stored += size
        s.pointee.records += n
        s.pointee.batches += 1
        deliver(s, .stored(.offsets(partition: Int32(s.pointee.log.partition), baseOffset: base)))
    }

    @inline(__always)
    func deliver(_ s: UnsafeMutablePointer<Slot>, _ status: SinkOutcome.Status) {
        let t = UnsafeBufferPointer(start: s.pointee.tokens, count: s.pointee.count)
        onOutcome?(SinkOutcome(kind: s.pointee.kind, tokens: t, payloadBytes: s.pointee.payload, status: status))
    }

    func reportFailed(_ kind: RecordKind, token: UInt64, payload: Int) {
        guard let f = failure else { return }
        withUnsafePointer(to: token) { t in
            onOutcome?(SinkOutcome(kind: kind, tokens: UnsafeBufferPointer(start: t, count: 1), payloadBytes: payload, status: .failed(f)))
        }
    }
}
