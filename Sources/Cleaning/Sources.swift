#if canImport(Glibc)
import Glibc
#endif
import Bytes
import KafkaLog
import KafkaWire
import PinModel
import TableStore
import Platform

/// One record as a source hands it over: its bytes, where it came from (made only when needed), and a
/// problem found before parsing (oversize, no value).
public struct SourceRecord {
    public var bytes: UnsafeRawBufferPointer
    public var problem: String?
    public var location: () -> String
}

/// Where `pinbench clean` reads records from.
public enum CleanSource: Sendable {
    /// A folder holding pin.jsonl, geo.jsonl and user.jsonl (as `pinbench emulate` writes them).
    case jsonl(String)
    /// A landing root in the Confluent S3 sink layout: `topics/<prefix>.<kind>/partition=<p>/<topic>+<p>+<offset>.json`.
    case landing(String, topicPrefix: String)
    /// An embedded data dir (`<dir>/log/<prefix>.<kind>-<p>/`).
    case embedded(String, topicPrefix: String)
    /// Records already in memory (the streaming path: what a round read from Kinesis).
    case memory(MemoryRecords)

    /// Decides by what the folder holds.
    public static func detect(_ path: String, topicPrefix: String) throws -> CleanSource {
        if isRegularFile("\(path)/pin.jsonl") || isRegularFile("\(path)/geo.jsonl") || isRegularFile("\(path)/user.jsonl") { return .jsonl(path) }
        if isDirectory("\(path)/topics") { return .landing(path, topicPrefix: topicPrefix) }
        if isDirectory("\(path)/log") { return .embedded(path, topicPrefix: topicPrefix) }
        if path.hasPrefix("s3://") {
            throw CleanError("--from \(path): clean reads a local folder; copy the landing first (aws s3 sync \(path) DIR) or run pinbench batch, which lands and cleans in one go")
        }
        if !isDirectory(path) { throw CleanError("--from \(path): no such folder") }
        throw CleanError("\(path): expected pin.jsonl/geo.jsonl/user.jsonl, a landing root (topics/...) or an embedded data dir (log/...)")
    }

    public var description: String {
        switch self {
        case .jsonl(let p): "jsonl files in \(p)"
        case .landing(let p, let t): "landing root \(p) (topics \(t).*)"
        case .embedded(let p, let t): "embedded log \(p) (topics \(t).*)"
        case .memory(let m): "\(m.total) records in memory"
        }
    }

    /// What identifies this input, for a run id: names, sizes and modification times of the jsonl files,
    /// names and sizes of the landed objects, names and sizes of the log's segments; nil for records in memory.
    /// The same input gives the same identity, so a re-run of `clean` after a crash is recognised.
    public func identity() throws -> String? {
        var parts: [String] = []
        switch self {
        case .jsonl(let dir):
            for k in RecordKind.allCases {
                if let f = fileIdentity("\(dir)/\(k.name).jsonl") { parts.append("\(k.name):\(f.size):\(f.mtimeNs):\(f.inode)") }
            }
        case .landing(let root, let prefix):
            for k in RecordKind.allCases {
                let topicDir = "\(root)/topics/\(k.topic(prefix: prefix))"
                guard isDirectory(topicDir) else { continue }
                for part in try listDirectory(topicDir).sorted() where part.hasPrefix("partition=") {
                    for f in try listDirectory("\(topicDir)/\(part)").sorted() where f.hasSuffix(".json") && !f.hasPrefix(".") {
                        parts.append("\(part)/\(f):\(fileSize("\(topicDir)/\(part)/\(f)") ?? -1)")
                    }
                }
            }
        case .embedded(let dir, let prefix):
            let topics = Set(RecordKind.allCases.map { $0.topic(prefix: prefix) })
            for p in try listPartitions(dataDir: dir) where topics.contains(p.topic) {
                for seg in try listSegments(p.path) { parts.append("\(p.topic)-\(p.partition)/\(seg.base):\(fileSize(seg.path) ?? -1)") }
            }
        case .memory:
            return nil
        }
        return stableHash(description + "\n" + parts.joined(separator: "\n"))
    }

    /// The files a table's records come from, in reading order, when they are lines of text (a jsonl folder,
    /// a landing root); nil for a log or records in memory.
    func lineFiles(_ kind: RecordKind) throws -> [String]? {
        switch self {
        case .jsonl(let dir):
            let path = "\(dir)/\(kind.name).jsonl"
            return isRegularFile(path) ? [path] : []
        case .landing(let root, let prefix):
            let topicDir = "\(root)/topics/\(kind.topic(prefix: prefix))"
            guard isDirectory(topicDir) else { return [] }
            var files: [String] = []
            for part in try listDirectory(topicDir).filter({ $0.hasPrefix("partition=") }).sorted(by: { partitionNumber($0) < partitionNumber($1) }) {
                let names = try listDirectory("\(topicDir)/\(part)").filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
                files += names.sorted(by: { landingOffset($0) < landingOffset($1) }).map { "\(topicDir)/\(part)/\($0)" }
            }
            return files
        case .memory, .embedded:
            return nil
        }
    }

    func forEachRecord(kind: RecordKind, maxRecordBytes: Int, _ body: (SourceRecord) throws -> Void) throws {
        switch self {
        case .jsonl(let dir):
            let path = "\(dir)/\(kind.name).jsonl"
            guard isRegularFile(path) else { return }
            try forEachLine(path: path, maxRecordBytes: maxRecordBytes, body)
        case .landing:
            for f in try lineFiles(kind) ?? [] { try forEachLine(path: f, maxRecordBytes: maxRecordBytes, body) }
        case .memory(let m):
            let b = m.buffers[kind.rawValue], ends = m.ends[kind.rawValue], locations = m.locations[kind.rawValue]
            var start = 0
            for (i, e) in ends.enumerated() {
                let n = e - start
                let loc = locations[i]
                try body(SourceRecord(bytes: UnsafeRawBufferPointer(start: b.base + start, count: n),
                                      problem: n > maxRecordBytes ? "record over \(maxRecordBytes) bytes: \(n)" : nil, location: { loc }))
                start = e
            }
        case .embedded(let dir, let prefix):
            let topic = kind.topic(prefix: prefix)
            guard (try? listPartitions(dataDir: dir))?.contains(where: { $0.topic == topic }) == true else { return }
            try LogInspector.forEachRecord(dataDir: dir, topic: topic) { p, r in
                try body(SourceRecord(log: r, topic: topic, partition: p, maxRecordBytes: maxRecordBytes))
            }
        }
    }

    /// The byte ranges a table's input is cut into for parallel parse threads, in reading order: lines of a
    /// jsonl file or of a landing root's objects (cut at line ends), or batches of the embedded log's
    /// segments (cut at batch starts, partition by partition); nil for records in memory.
    func parseRanges(_ kind: RecordKind, every: Int) throws -> [ParseRange]? {
        if let files = try lineFiles(kind) {
            var ranges: [ParseRange] = []
            for f in files {
                guard let size = fileSize(f), size > 0 else { continue }
                ranges += try ParseRange.lines(path: f, size: size, every: every).map { ParseRange(path: f, start: $0.start, end: $0.end, log: nil) }
            }
            return ranges
        }
        guard case .embedded(let dir, let prefix) = self else { return nil }
        let topic = kind.topic(prefix: prefix)
        var ranges: [ParseRange] = []
        for (t, p, path) in try listPartitions(dataDir: dir) where t == topic {
            for seg in try listSegments(path) {
                let gaps = quarantinedRanges(segmentPath: seg.path)
                for r in try segmentRanges(path: seg.path, expectedBase: seg.base, gaps: gaps, every: every) where r.end > r.start {
                    ranges.append(ParseRange(path: seg.path, start: r.start, end: r.end,
                                             log: ParseRange.Log(topic: topic, partition: p, expectedBase: r.expectedBase, gaps: gaps)))
                }
            }
        }
        return ranges
    }
}

extension SourceRecord {
    /// A record of the embedded log, located as `topic-partition@offset`; a null value is a problem.
    init(log r: RecordView, topic: String, partition p: Int, maxRecordBytes: Int) {
        let offset = r.offset
        let loc = { "\(topic)-\(p)@\(offset)" }
        if let v = r.value {
            self.init(bytes: v, problem: v.count > maxRecordBytes ? "record over \(maxRecordBytes) bytes: \(v.count)" : nil, location: loc)
        } else {
            self.init(bytes: UnsafeRawBufferPointer(start: nil, count: 0), problem: "record has no value (null)", location: loc)
        }
    }
}

/// A byte range of one input file that one parse thread reads: lines of text (located by line within the
/// file), or whole batches of an embedded-log segment (records located by topic-partition and offset).
struct ParseRange: Sendable {
    struct Log: Sendable {
        let topic: String
        let partition: Int
        /// The base offset the range's first batch should have (nil: not checked).
        let expectedBase: Int64?
        let gaps: [(from: Int64, to: Int64)]
    }
    let path: String
    let start: Int
    let end: Int
    /// nil: lines of text.
    let log: Log?

    /// Byte ranges of about `every` bytes of a text file, each starting at a line's first byte.
    static func lines(path: String, size: Int, every: Int) throws -> [(start: Int, end: Int)] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw CleanError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var starts = [0]
        let window = ByteBuffer(capacity: 64 << 10)
        var pos = every
        while pos < size {
            // The first line end at or after pos; the next range starts after it.
            var at = pos, found = -1
            while found < 0 && at < size {
                let n = pread(fd, window.base, 64 << 10, off_t(at))
                if n < 0 { if errno == EINTR { continue }; throw CleanError("read \(path): \(String(cString: strerror(errno)))") }
                if n == 0 { break }
                if let nl = memchr(window.base, 0x0A, n) { found = at + (UnsafeRawPointer(nl) - UnsafeRawPointer(window.base)) }
                at += n
            }
            guard found >= 0, found + 1 < size else { break }
            starts.append(found + 1)
            pos = max(found + 1 + every, pos + every)
        }
        return starts.indices.map { (starts[$0], $0 + 1 < starts.count ? starts[$0 + 1] : size) }
    }
}

/// Records per table kind, appended one after another (with where each came from, for dead letters).
public final class MemoryRecords: @unchecked Sendable {
    let buffers = [ByteBuffer(), ByteBuffer(), ByteBuffer()]
    var ends: [[Int]] = [[], [], []]
    var locations: [[String]] = [[], [], []]
    public init() {}
    public func append(_ kind: RecordKind, _ bytes: UnsafeRawBufferPointer, location: String) {
        let k = kind.rawValue
        buffers[k].append(bytes)
        ends[k].append(buffers[k].count)
        locations[k].append(location)
    }
    public func count(_ kind: RecordKind) -> Int { ends[kind.rawValue].count }
    public var total: Int { ends.reduce(0) { $0 + $1.count } }
}

func partitionNumber(_ name: String) -> Int { Int(name.dropFirst("partition=".count)) ?? Int.max }

/// The start offset in a Confluent object name `<topic>+<partition>+<offset>.json`.
func landingOffset(_ name: String) -> Int64 {
    guard let plus = name.lastIndex(of: "+"), let dot = name.lastIndex(of: ".") else { return Int64.max }
    return Int64(name[name.index(after: plus)..<dot]) ?? Int64.max
}

/// Calls `body` for every non-empty line of a file (`Lines`: without its `\n` / `\r\n`, the last one needing no
/// newline), reading 8 MiB at a time. A line longer than `maxRecordBytes` is handed over whole with a problem set
/// (so it is dead-lettered, not lost).
func forEachLine(path: String, maxRecordBytes: Int, _ body: (SourceRecord) throws -> Void) throws {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw CleanError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let buf = ByteBuffer(capacity: 8 << 20)
    var lineNo = 0
    var eof = false
    var scanFrom = 0
    while true {
        // Every complete line in the buffer (up to its last newline, looked for only in the bytes not yet
        // scanned); at the end of the file, the rest too.
        var lineStart = 0
        if eof {
            lineStart = buf.count
        } else {
            var i = buf.count
            while i > scanFrom && buf.base.load(fromByteOffset: i - 1, as: UInt8.self) != 0x0A { i -= 1 }
            if i > scanFrom { lineStart = i }
        }
        lineNo += try forEachLine(in: UnsafeRawBufferPointer(start: buf.base, count: lineStart), maxRecordBytes: maxRecordBytes,
                                  path: path, linesBefore: lineNo, body)
        if eof { return }
        // Keep the partial line, then read more behind it.
        let keep = buf.count - lineStart
        if lineStart > 0 && keep > 0 { memmove(buf.base, buf.base + lineStart, keep) }
        buf.count = keep
        scanFrom = keep
        let want = Swift.max(8 << 20, keep)
        let dst = buf.reserve(want)
        var got = 0
        while got == 0 {
            let n = read(fd, dst, want)
            if n < 0 {
                if errno == EINTR { continue }
                throw CleanError("read \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { eof = true; break }
            got = n
        }
        buf.count += got
    }
}


