import Platform
import Bytes
import Codecs
import KafkaWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// When appended data is forced to stable storage.
public enum FsyncPolicy: String, Sendable, CaseIterable {
    /// Leave it to the OS (Kafka's default: durability comes from replication).
    case never
    /// fsync each segment when it is rolled, and on close.
    case segment
    /// fsync after every batch: a batch is durable when `append` returns.
    case batch
}

public struct LogConfig: Sendable {
    /// Root folder; partitions live under `<dataDir>/log/<topic>-<partition>/`.
    public var dataDir: String
    /// A segment is rolled when the next batch would take it past this size. Kafka's default is 1 GiB.
    public var segmentBytes: Int
    public var fsync: FsyncPolicy

    public init(dataDir: String, segmentBytes: Int = 1 << 30, fsync: FsyncPolicy = .never) {
        self.dataDir = dataDir
        self.segmentBytes = segmentBytes
        self.fsync = fsync
    }
}

public struct LogError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var path: String
    public var errno: Int32

    public init(_ operation: String, _ path: String, _ err: Int32) {
        self.operation = operation
        self.path = path
        self.errno = err
    }

    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }
    /// The append would take the partition past offset 2^63 - 1 (nothing was written).
    public var isOffsetOverflow: Bool { errno == EOVERFLOW }

    public var description: String {
        "\(operation) \(path): \(String(cString: strerror(errno)))"
    }
}

/// What opening a partition found at the tail of its last segment.
public struct RecoveryReport: Sendable, Equatable {
    public var segment: String
    public var keptBytes: Int
    public var truncatedBytes: Int
    public var reason: String
}

/// Kafka's segment file name: the base offset as 20 zero-padded digits.
public func segmentFileName(_ baseOffset: Int64) -> String {
    let digits = String(baseOffset)
    return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".log"
}

/// One topic-partition of the embedded log: a folder of segments in Kafka's own on-disk layout
/// (`<20-digit base offset>.log`, each a plain sequence of RecordBatch v2 with real offsets).
///
/// Single writer: one stage owns a `PartitionLog` at a time.
public final class PartitionLog {
    public let topic: String
    public let partition: Int
    public let directory: String
    public let config: LogConfig
    public private(set) var nextOffset: Int64 = 0
    public private(set) var recovery: RecoveryReport?
    public private(set) var segmentBaseOffset: Int64 = 0
    public private(set) var segmentSize: Int = 0
    public private(set) var segmentsRolled = 0
    private var fd: Int32 = -1

    public init(topic: String, partition: Int, config: LogConfig) throws(LogError) {
        self.topic = topic
        self.partition = partition
        self.config = config
        self.directory = "\(config.dataDir)/log/\(topic)-\(partition)"
        do { try makeDirectories(directory) } catch { throw LogError(error.operation, error.path, error.code) }
        let segments = try listSegments(directory)
        if let last = segments.last {
            try openTail(last)
        } else {
            try openSegment(baseOffset: 0)
        }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Scans the last segment and mends a torn or corrupt tail, then positions for appends. Good batches after
    /// a bad one are kept when they chain to the end with consistent offsets and CRCs: the bad bytes move to
    /// `<segment>.quarantine-<from>-<to>` (the offsets they held), which readers accept as a recorded gap.
    /// Otherwise (a torn write at the end, or nothing good after the damage) the tail is cut, as Kafka does.
    private func openTail(_ seg: (base: Int64, path: String)) throws(LogError) {
        let bytes = ByteBuffer(capacity: 1 << 20)
        let scan = try scanSegment(path: seg.path, expectedBase: seg.base, gaps: quarantinedRanges(segmentPath: seg.path), buffer: bytes)
        segmentBaseOffset = seg.base
        nextOffset = scan.nextOffset ?? seg.base
        segmentSize = scan.validBytes
        if let err = scan.error {
            let expected = scan.nextOffset ?? seg.base
            if let s = findSalvage(bytes.bytes, from: scan.validBytes, expected: expected) {
                // Quarantine first (durable), then the segment without the bad bytes (atomic rename).
                let qpath = "\(seg.path).quarantine-\(expected)-\(s.firstOffset)"
                let all = bytes.bytes
                do {
                    try writeFileDurably(qpath, UnsafeRawBufferPointer(rebasing: all[scan.validBytes..<s.start]))
                    let kept = ByteBuffer(capacity: scan.validBytes + (s.end - s.start))
                    kept.append(UnsafeRawBufferPointer(rebasing: all[0..<scan.validBytes]))
                    kept.append(UnsafeRawBufferPointer(rebasing: all[s.start..<s.end]))
                    try replaceFileAtomically(seg.path, kept.bytes)
                } catch { throw LogError(error.operation, error.path, error.code) }
                nextOffset = s.next
                segmentSize = scan.validBytes + (s.end - s.start)
                recovery = RecoveryReport(
                    segment: seg.path, keptBytes: segmentSize, truncatedBytes: scan.fileBytes - segmentSize,
                    reason: "\(err); kept \(s.batches) later batches (offsets \(s.firstOffset)..<\(s.next)), quarantined \(s.start - scan.validBytes) bytes (offsets \(expected)..<\(s.firstOffset)) in \(qpath)"
                        + (s.end < scan.fileBytes ? "; cut \(scan.fileBytes - s.end) bytes at the end" : ""))
            }
        }
        fd = open(seg.path, O_WRONLY | O_CLOEXEC)
        if fd < 0 { throw LogError("open", seg.path, errno) }
        if recovery == nil, let err = scan.error {
            if ftruncate(fd, off_t(scan.validBytes)) != 0 { throw LogError("truncate", seg.path, errno) }
            _ = fsync(fd)
            recovery = RecoveryReport(
                segment: seg.path, keptBytes: scan.validBytes, truncatedBytes: scan.fileBytes - scan.validBytes, reason: err)
        }
        if lseek(fd, off_t(segmentSize), SEEK_SET) < 0 { throw LogError("seek", seg.path, errno) }
    }

    private func openSegment(baseOffset: Int64) throws(LogError) {
        let path = "\(directory)/\(segmentFileName(baseOffset))"
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw LogError("create", path, errno) }
        // A new segment (and, for the first, its partition folder) survives a crash only once the directory
        // entries are on disk: one fsync per segment, not per batch.
        syncDirectory(directory)
        if baseOffset == 0 { syncDirectory("\(config.dataDir)/log") }
        segmentBaseOffset = baseOffset
        segmentSize = 0
    }

    private func roll() throws(LogError) {
        if config.fsync != .never, fsync(fd) != 0 { throw LogError("fsync", directory, errno) }
        Glibc.close(fd)
        fd = -1
        try openSegment(baseOffset: nextOffset)
        segmentsRolled += 1
    }

    /// Appends one sealed RecordBatch v2 (its CRC already set). The base offset is written into the batch
    /// here (it is outside the CRC). Returns the batch's base offset. On failure (disk full, I/O error)
    /// the segment is cut back to where it was, so the log never holds half a batch.
    @discardableResult
    public func append(batch: UnsafeMutableRawBufferPointer) throws(LogError) -> Int64 {
        precondition(batch.count >= BatchLayout.headerSize)
        let p = batch.baseAddress!
        let lastDelta = Int32(bigEndian: p.loadUnaligned(fromByteOffset: BatchLayout.lastOffsetDelta, as: Int32.self))
        // The next offset comes from the files on disk (input): a log whose offsets would pass Int64.max takes
        // no more batches.
        guard lastDelta >= 0, nextOffset < Int64.max - Int64(lastDelta) else { throw LogError("append", directory, EOVERFLOW) }
        if segmentSize > 0 && segmentSize + batch.count > config.segmentBytes { try roll() }
        let base = nextOffset
        p.storeBytes(of: base.bigEndian, toByteOffset: BatchLayout.baseOffset, as: Int64.self)
        var written = 0
        while written < batch.count {
            let n = write(fd, p + written, batch.count - written)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                _ = ftruncate(fd, off_t(segmentSize))
                _ = lseek(fd, off_t(segmentSize), SEEK_SET)
                throw LogError("write", "\(directory)/\(segmentFileName(segmentBaseOffset))", e)
            }
            written += n
        }
        if config.fsync == .batch, fdatasync(fd) != 0 {
            let e = errno
            _ = ftruncate(fd, off_t(segmentSize))
            _ = lseek(fd, off_t(segmentSize), SEEK_SET)
            throw LogError("fsync", directory, e)
        }
        segmentSize += batch.count
        nextOffset = base + Int64(lastDelta) + 1
        return base
    }

    public func flush() throws(LogError) {
        if fd >= 0, fsync(fd) != 0 { throw LogError("fsync", directory, errno) }
    }

    public func close() throws(LogError) {
        guard fd >= 0 else { return }
        if config.fsync != .never { try flush() }
        Glibc.close(fd)
        fd = -1
    }
}

// MARK: - scanning and reading

public struct SegmentScan: Sendable {
    public var fileBytes: Int
    public var validBytes: Int
    public var batches: Int
    public var records: Int
    public var nextOffset: Int64?
    /// Why the scan stopped before the end of the file, or nil when every byte is a good batch.
    public var error: String?
}

/// Sorted (base offset, path) of the `.log` segments in a partition folder.
public func listSegments(_ dir: String) throws(LogError) -> [(base: Int64, path: String)] {
    guard let d = opendir(dir) else { throw LogError("list", dir, errno) }
    defer { closedir(d) }
    var out: [(Int64, String)] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
        guard name.hasSuffix(".log"), name.count == 24, let base = Int64(name.prefix(20)) else { continue }
        out.append((base, "\(dir)/\(name)"))
    }
    return out.sorted { $0.0 < $1.0 }
}

/// Reads a whole file into a buffer.
public func readFile(_ path: String, into buf: ByteBuffer) throws(LogError) {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw LogError("open", path, errno) }
    defer { close(fd) }
    var st = stat()
    if fstat(fd, &st) != 0 { throw LogError("stat", path, errno) }
    buf.reset()
    let size = Int(st.st_size)
    let p = buf.reserve(size)
    var got = 0
    while got < size {
        let n = read(fd, p + got, size - got)
        if n < 0 { if errno == EINTR { continue }; throw LogError("read", path, errno) }
        if n == 0 { break }
        got += n
    }
    buf.count = got
}

/// Walks the batches of a segment, checking each header, CRC and offset continuity; stops at the first bad byte.
/// The offset ranges a recovery quarantined out of a segment (`<segment>.quarantine-<from>-<to>` files beside it).
public func quarantinedRanges(segmentPath: String) -> [(from: Int64, to: Int64)] {
    let slash = segmentPath.lastIndex(of: "/")
    let dir = slash.map { String(segmentPath[..<$0]) } ?? "."
    let prefix = (slash.map { String(segmentPath[segmentPath.index(after: $0)...]) } ?? segmentPath) + ".quarantine-"
    guard let names = try? listDirectory(dir) else { return [] }
    return names.compactMap { name in
        guard name.hasPrefix(prefix) else { return nil }
        let parts = name.dropFirst(prefix.count).split(separator: "-")
        guard parts.count == 2, let a = Int64(parts[0]), let b = Int64(parts[1]), a < b else { return nil }
        return (a, b)
    }
}

/// After a bad batch at byte `from`: the first later position where a CRC-valid batch with a base offset past
/// `expected` starts, and how far the chain of good batches from there reaches (each batch based where the
/// previous one ended). Only bytes with the v2 magic are tried as a batch start.
func findSalvage(_ all: UnsafeRawBufferPointer, from: Int, expected: Int64)
    -> (start: Int, end: Int, firstOffset: Int64, next: Int64, batches: Int)?
{
    func good(_ at: Int) -> RecordBatchHeader? {
        guard at + BatchLayout.headerSize <= all.count else { return nil }
        let rest = UnsafeRawBufferPointer(rebasing: all[at...])
        guard let h = try? RecordBatchReader.header(rest), h.totalSize <= rest.count, (try? RecordBatchReader.verifyCRC(rest, h)) != nil else { return nil }
        return h
    }
    var q = from + 1
    while q + BatchLayout.headerSize <= all.count {
        if all[q + 16] == 2, let h = good(q), h.baseOffset > expected {
            var pos = q + h.totalSize, next = h.nextOffset, batches = 1
            while let n = good(pos), n.baseOffset == next {
                pos += n.totalSize
                next = n.nextOffset
                batches += 1
            }
            return (q, pos, h.baseOffset, next, batches)
        }
        q += 1
    }
    return nil
}

public func scanSegment(
    path: String, expectedBase: Int64? = nil, gaps: [(from: Int64, to: Int64)] = [], buffer: ByteBuffer = ByteBuffer(capacity: 1 << 20),
    _ body: (RecordBatchHeader, UnsafeRawBufferPointer) throws -> Void = { _, _ in }
) throws(LogError) -> SegmentScan {
    try readFile(path, into: buffer)
    return scanBatches(buffer.bytes, expectedBase: expectedBase, gaps: gaps, body)
}

/// `scanSegment` over bytes already read: `all` is the part of a segment file that starts at byte `firstByte`
/// at a batch (a range `segmentRanges` gave), so errors name the byte of the file.
public func scanBatches(
    _ all: UnsafeRawBufferPointer, firstByte: Int = 0, expectedBase: Int64? = nil, gaps: [(from: Int64, to: Int64)] = [],
    _ body: (RecordBatchHeader, UnsafeRawBufferPointer) throws -> Void = { _, _ in }
) -> SegmentScan {
    var scan = SegmentScan(fileBytes: all.count, validBytes: 0, batches: 0, records: 0, nextOffset: nil, error: nil)
    var pos = 0
    var expected = expectedBase
    while pos < all.count {
        let rest = UnsafeRawBufferPointer(rebasing: all[pos...])
        let h: RecordBatchHeader
        do {
            h = try RecordBatchReader.header(rest)
            try RecordBatchReader.verifyCRC(rest, h)
        } catch {
            scan.error = "at byte \(firstByte + pos): \(error)"
            break
        }
        // A gap a recovery recorded (its bytes quarantined beside the segment) is not damage.
        if let e = expected, h.baseOffset != e, !gaps.contains(where: { $0.from == e && $0.to == h.baseOffset }) {
            scan.error = "at byte \(firstByte + pos): batch base offset \(h.baseOffset), expected \(e)"
            break
        }
        do { try body(h, UnsafeRawBufferPointer(rebasing: rest[0..<h.totalSize])) } catch {
            scan.error = "at byte \(firstByte + pos): \(error)"
            break
        }
        expected = h.nextOffset
        scan.nextOffset = h.nextOffset
        scan.batches += 1
        scan.records += Int(h.recordsCount)
        pos += h.totalSize
        scan.validBytes = pos
    }
    return scan
}

/// A segment cut into byte ranges of about `every` bytes for parallel readers, each starting at a batch, with
/// the base offset its first batch should have (`expectedBase` for the first, then where the batch before
/// ended). Only headers are read (61 bytes per batch): the walk stops cutting at the first header it cannot
/// follow (bad magic or length, a batch past the end, offsets out of line) and the last range runs to the end
/// of the file, so that `scanBatches` over it reports the damage where a whole-segment scan would.
public func segmentRanges(path: String, expectedBase: Int64?, gaps: [(from: Int64, to: Int64)], every: Int) throws(LogError)
    -> [(start: Int, end: Int, expectedBase: Int64?)]
{
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    if fd < 0 { throw LogError("open", path, errno) }
    defer { close(fd) }
    var st = stat()
    if fstat(fd, &st) != 0 { throw LogError("stat", path, errno) }
    let size = Int(st.st_size)
    var ranges: [(start: Int, end: Int, expectedBase: Int64?)] = []
    var rangeStart = 0, rangeExpected = expectedBase
    var pos = 0
    var expected = expectedBase
    var header = [UInt8](repeating: 0, count: BatchLayout.headerSize)
    while pos < size {
        let got = header.withUnsafeMutableBytes { preadFully(fd, $0.baseAddress!, count: $0.count, offset: pos) }
        guard got == BatchLayout.headerSize else { break }  // a read error or a cut header: the range below reports it
        let h: RecordBatchHeader
        do {
            // The header's own checks; its length is checked against the file below.
            h = try header.withUnsafeBytes { b throws(BatchError) in try RecordBatchReader.headerFields(b) }
        } catch { break }
        guard pos + h.totalSize <= size else { break }
        if let e = expected, h.baseOffset != e, !gaps.contains(where: { $0.from == e && $0.to == h.baseOffset }) { break }
        if pos > rangeStart && pos - rangeStart >= every {
            ranges.append((rangeStart, pos, rangeExpected))
            rangeStart = pos
            rangeExpected = expected
        }
        expected = h.nextOffset
        pos += h.totalSize
    }
    if rangeStart < size || ranges.isEmpty { ranges.append((rangeStart, size, rangeExpected)) }
    return ranges
}

/// The topic-partition folders under `<dataDir>/log`, as (topic, partition, path), sorted.
public func listPartitions(dataDir: String) throws(LogError) -> [(topic: String, partition: Int, path: String)] {
    let root = "\(dataDir)/log"
    guard let d = opendir(root) else { throw LogError("list", root, errno) }
    defer { closedir(d) }
    var out: [(String, Int, String)] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) { $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
        guard let dash = name.lastIndex(of: "-"), let p = Int(name[name.index(after: dash)...]) else { continue }
        out.append((String(name[..<dash]), p, "\(root)/\(name)"))
    }
    return out.sorted { ($0.0, $0.1) < ($1.0, $1.1) }
}
