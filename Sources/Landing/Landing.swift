#if canImport(Glibc)
import Glibc
#endif
import AWSClient
import Bytes
import KafkaClient
import KafkaLog
import KafkaWire
import TableStore
import Platform
import JSON

/// Landing in the Confluent S3 sink layout (DefaultPartitioner, JsonFormat):
/// `topics/<topic>/partition=<p>/<topic>+<p>+<startOffset, 10 digits>.json`, one JSON value per line,
/// `flushRecords` records per object. Object names come from offsets, and a re-run restarts at the last
/// object (rewriting it whole), so a crash and re-run gives the same objects: nothing lost, nothing twice.
/// Each object is written to a temporary name, fsynced, and renamed into place.
public struct LandingOptions: Sendable {
    public var root: String
    public var topics: [String]
    public var flushRecords = 10_000
    /// Only records whose Kafka timestamp falls in [from, to) (ms since the epoch).
    public var timeRange: Range<Int64>?
    /// Land to S3 instead: objects go to `s3://<bucket>/<root>/topics/...` (root is then the key prefix).
    public var s3: S3Client?
    /// Records landed so far (bumped per object), for a progress line.
    public var progress: ProgressCounter?
    /// Raised (Ctrl-C): landing stops after the object being written; what was landed stays (a re-run resumes).
    public var stop: StopFlag?

    public init(root: String, topics: [String]) {
        self.root = root
        self.topics = topics
    }

    /// [start, end) of the UTC day `YYYY-MM-DD` in ms since the epoch; nil when `date` is not one.
    public static func dayRange(_ date: String) -> Range<Int64>? {
        guard date.count == 10, let micros = UTCTime.parseMicros(date + " 00:00:00") else { return nil }
        let ms = micros / 1000
        return ms..<(ms + 86_400_000)
    }
}

public struct LandingReport: Sendable {
    public var objects = 0
    public var records = 0
    public var bytes = 0
    /// Records outside the time range.
    public var skippedByTime = 0
    /// Records with a null value (tombstones): nothing to land.
    public var nullValues = 0
    /// Values that are not valid JSON and hold a line break: landed as one line each to `_unlandable/`.
    public var unlandable = 0
    public var perTopic: [String: Int] = [:]
    public var seconds = 0.0
    /// The run was stopped (SIGINT/SIGTERM) before every record was landed.
    public var interrupted = false
    /// Of `records`, those already landed by an earlier run (the last object of each partition is re-landed
    /// whole); nil when not known (S3 targets).
    public var alreadyLanded: Int? = 0

    public func json() -> JSONValue {
        .object([
            ("objects", .int(objects)), ("records", .int(records)), ("bytes", .int(bytes)),
            ("skipped_by_time", .int(skippedByTime)), ("null_values", .int(nullValues)), ("unlandable", .int(unlandable)),
            ("per_topic", .object(perTopic.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("seconds", .double(seconds)),
            ("already_landed", alreadyLanded.map { .int($0) } ?? .null),
            ("interrupted", .bool(interrupted)),
        ])
    }

    /// One line for people.
    public func summary(root: String) -> String {
        "landed \(records) records" + (alreadyLanded.map { " (\(max(0, records - $0)) new)" } ?? "")
            + " in \(objects) objects (\(bytes) bytes) to \(root)/topics in \(fmt(seconds, 2)) s"
            + (skippedByTime > 0 ? ", \(skippedByTime) outside the day" : "")
            + (nullValues > 0 ? ", \(nullValues) null values skipped" : "")
            + (unlandable > 0 ? ", \(unlandable) non-JSON multi-line values in \(root)/_unlandable" : "")
            + (interrupted ? " (interrupted: a re-run lands the rest)" : "")
    }
}

public struct LandingError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Where records come from.
public enum LandingSource {
    case embedded(dataDir: String)
    case kafka(KafkaConsumer)
}

public final class Lander {
    let options: LandingOptions
    var report = LandingReport()
    let chunk = ByteBuffer(capacity: 1 << 20)
    let scratch = ByteBuffer(capacity: 4096)
    var chunkRecords = 0
    var chunkStart: Int64 = -1
    var dir = ""
    var topic = ""
    var partition = 0

    public init(options: LandingOptions) { self.options = options }

    public static func objectName(topic: String, partition: Int, offset: Int64) -> String {
        let s = String(offset)
        return "\(topic)+\(partition)+\(String(repeating: "0", count: max(0, 10 - s.count)))\(s).json"
    }

    /// The start offset of the last object already landed for a partition (re-landed whole), or nil.
    static func resumeOffset(_ dir: String) -> Int64? {
        guard let d = opendir(dir) else { return nil }
        defer { closedir(d) }
        var best: Int64?
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.hasSuffix(".json"), !name.hasPrefix("."), let plus = name.lastIndex(of: "+"),
                  let v = Int64(name[name.index(after: plus)..<name.index(name.endIndex, offsetBy: -5)]) else { continue }
            best = max(best ?? v, v)
        }
        return best
    }

    /// Thrown inside the loops when `options.stop` is raised; `run` returns what was landed.
    struct Stopped: Error {}

    public func run(from source: LandingSource) throws -> LandingReport {
        let t0 = monotonicSeconds()
        do { try landAll(from: source) } catch is Stopped {
            // The object being filled was not written: its records are not landed.
            report.interrupted = true
            report.records -= chunkRecords
            report.perTopic[topic, default: 0] -= chunkRecords
        }
        report.seconds = monotonicSeconds() - t0
        return report
    }

    func landAll(from source: LandingSource) throws {
        for t in options.topics {
            switch source {
            case .embedded(let dataDir):
                let parts = try listPartitions(dataDir: dataDir).filter { $0.topic == t }
                if parts.isEmpty { throw LandingError("no topic \(t) in \(dataDir)/log") }
                for p in parts {
                    let resume = try begin(topic: t, partition: p.partition)
                    try LogInspector.forEachRecord(dataDir: dataDir, topic: t, partition: p.partition) { _, r in
                        if r.offset >= resume { try add(r) }
                    }
                    try flush()
                }
            case .kafka(let consumer):
                for p in try consumer.partitions(t) {
                    let resume = try begin(topic: t, partition: Int(p))
                    var next = max(resume, try consumer.offset(t, p, -2))
                    let end = try consumer.offset(t, p, -1)
                    while next < end {
                        let (n, _) = try consumer.fetch(t, p, from: next) { r in try self.add(r) }
                        if n <= next { break }
                        next = n
                    }
                    try flush()
                }
            }
        }
    }

    private func begin(topic: String, partition: Int) throws -> Int64 {
        self.topic = topic
        self.partition = partition
        chunk.reset()
        chunkRecords = 0
        chunkStart = -1
        if let s3 = options.s3 {
            dir = "\(options.root.isEmpty ? "" : options.root + "/")topics/\(topic)/partition=\(partition)"
            let names = try s3.list(prefix: dir + "/").map { String($0.key.dropFirst(dir.count + 1)) }
            let resume = Lander.resumeOffset(names: names)
            if resume != nil { report.alreadyLanded = nil }
            return resume ?? 0
        }
        dir = "\(options.root)/topics/\(topic)/partition=\(partition)"
        try createDirectories(dir)
        guard let resume = Lander.resumeOffset(dir) else { return 0 }
        // The last object is landed again whole: its records were there already.
        if let bytes = readFileBytes("\(dir)/\(Lander.objectName(topic: topic, partition: partition, offset: resume))", limit: 1 << 30) {
            report.alreadyLanded? += bytes.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        }
        return resume
    }

    static func resumeOffset(names: [String]) -> Int64? {
        var best: Int64?
        for name in names {
            guard name.hasSuffix(".json"), !name.hasPrefix("."), !name.contains("/"), let plus = name.lastIndex(of: "+"),
                  let v = Int64(name[name.index(after: plus)..<name.index(name.endIndex, offsetBy: -5)]) else { continue }
            best = max(best ?? v, v)
        }
        return best
    }

    private func add(_ r: RecordView) throws {
        if let range = options.timeRange, !range.contains(r.timestamp) {
            report.skippedByTime += 1
            return
        }
        guard let v = r.value else {
            report.nullValues += 1
            return
        }
        var value = v
        if let vb = v.baseAddress, memchr(vb, 0x0A, v.count) != nil || memchr(vb, 0x0D, v.count) != nil {
            // One line per value: re-emit valid JSON compactly; anything else goes aside, whole.
            scratch.reset()
            var s = JSONScanner(v)
            var f = JSONField()
            let ok = (try? withUnsafeMutablePointer(to: &f) { p in
                try s.scanObject(keys: Lander.noKeys, into: UnsafeMutableBufferPointer(start: p, count: 0))
            }) != nil
            if !ok {
                try setAside(v, offset: r.offset)
                return
            }
            var whole = JSONField()
            whole.start = 0
            whole.end = Int32(v.count)
            whole.kind = .object
            s.compactValue(whole, into: scratch)
            value = scratch.bytes
        }
        if chunkStart < 0 { chunkStart = r.offset }
        chunk.append(value)
        chunk.append(UInt8(ascii: "\n"))
        chunkRecords += 1
        report.records += 1
        report.perTopic[topic, default: 0] += 1
        if chunkRecords >= options.flushRecords { try flush() }
    }

    static let noKeys = JSONKeyTable([])

    private func setAside(_ v: UnsafeRawBufferPointer, offset: Int64) throws {
        let d = options.s3 != nil ? "\(options.root.isEmpty ? "" : options.root + "/")_unlandable/\(topic)" : "\(options.root)/_unlandable/\(topic)"
        if options.s3 == nil { try createDirectories(d) }
        try writeAtomically("\(d)/\(Lander.objectName(topic: topic, partition: partition, offset: offset))".replacingSuffix(".json", ".bin"), v)
        report.unlandable += 1
    }

    private func flush() throws {
        if options.stop?.isSet == true { throw Stopped() }
        guard chunkRecords > 0 else { return }
        try writeAtomically("\(dir)/\(Lander.objectName(topic: topic, partition: partition, offset: chunkStart))", chunk.bytes)
        report.objects += 1
        report.bytes += chunk.count
        options.progress?.add(chunkRecords)
        chunk.reset()
        chunkRecords = 0
        chunkStart = -1
    }

    /// Temp name, fsync, rename: a reader (or a re-run) never sees half an object.
    private func writeAtomically(_ path: String, _ bytes: UnsafeRawBufferPointer) throws {
        if let s3 = options.s3 {
            // A PutObject is atomic: readers see the whole object or none.
            try s3.putObject(path, Array(bytes), contentType: "application/json")
            return
        }
        do { try replaceFileAtomically(path, bytes) } catch { throw LandingError(error.description) }
    }
}

extension String {
    func replacingSuffix(_ a: String, _ b: String) -> String { hasSuffix(a) ? String(dropLast(a.count)) + b : self }
}
