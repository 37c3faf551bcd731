import Bytes
import Codecs

/// Byte offsets of the RecordBatch v2 header fields (`DefaultRecordBatch.java`).
public enum BatchLayout {
    public static let baseOffset = 0
    public static let batchLength = 8
    public static let partitionLeaderEpoch = 12
    public static let magic = 16
    public static let crc = 17
    public static let attributes = 21
    public static let lastOffsetDelta = 23
    public static let baseTimestamp = 27
    public static let maxTimestamp = 35
    public static let producerId = 43
    public static let producerEpoch = 51
    public static let baseSequence = 53
    public static let recordsCount = 57
    public static let headerSize = 61
    /// Bytes before `batchLength` counts: baseOffset + batchLength itself.
    public static let logOverhead = 12
}

/// Producer identity stamped on a batch (-1 everywhere for a non-idempotent producer).
public struct ProducerStamp: Sendable, Equatable {
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var isTransactional: Bool

    public init(producerId: Int64 = -1, producerEpoch: Int16 = -1, baseSequence: Int32 = -1, isTransactional: Bool = false) {
        self.producerId = producerId
        self.producerEpoch = producerEpoch
        self.baseSequence = baseSequence
        self.isTransactional = isTransactional
    }

    public static let none = ProducerStamp()
}

/// Accumulates records for one topic-partition and seals them into one RecordBatch v2.
///
/// Records are encoded as they arrive into one reused buffer (varints, no per-record allocation);
/// `seal` writes the 61-byte header, compresses the records region, then fills in the length and CRC-32C.
@frozen
public struct RecordBatchBuilder {
    public let records: ByteBuffer
    @usableFromInline var _count: Int32 = 0
    @usableFromInline var _baseTimestamp: Int64 = 0
    @usableFromInline var _maxTimestamp: Int64 = 0
    @inlinable public var count: Int32 { _count }
    @inlinable public var baseTimestamp: Int64 { _baseTimestamp }
    @inlinable public var maxTimestamp: Int64 { _maxTimestamp }

    /// Bytes kept free before the records: `BatchLayout.headerSize` for `sealInPlace`, else 0.
    public let headroom: Int

    /// `inPlace`: leave room for the header before the records, so `sealInPlace` needs no copy (uncompressed
    /// batches only).
    public init(capacity: Int = 64 * 1024, inPlace: Bool = false) {
        headroom = inPlace ? BatchLayout.headerSize : 0
        records = ByteBuffer(capacity: capacity + headroom)
        records.count = headroom
    }

    /// Uncompressed size of the batch so far, header included.
    @inlinable
    public var sizeInBytes: Int { BatchLayout.headerSize + records.count - headroom }

    /// The encoded records (without the header room).
    public var recordBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: records.base + headroom, count: records.count - headroom) }

    @inlinable
    public var isEmpty: Bool { count == 0 }

    /// Appends one record (no headers). `key == nil` writes a null key.
    @inlinable
    public mutating func append(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, timestamp: Int64) {
        if _count == 0 {
            _baseTimestamp = timestamp
            _maxTimestamp = timestamp
        } else if timestamp > _maxTimestamp {
            _maxTimestamp = timestamp
        }
        let tsDelta = timestamp - baseTimestamp
        let offsetDelta = Int64(count)
        let keyLen = key.map { Int64($0.count) } ?? -1
        let valueLen = Int64(value.count)
        let bodySize = 1 + Varint.size(tsDelta) + Varint.size(offsetDelta) + Varint.size(keyLen) + Int(max(keyLen, 0))
            + Varint.size(valueLen) + value.count + 1
        let total = Varint.size(Int64(bodySize)) + bodySize
        let p = records.reserve(total)
        var i = Varint.write(unsigned: Varint.zigzag(Int64(bodySize)), to: p)
        p.storeBytes(of: UInt8(0), toByteOffset: i, as: UInt8.self)  // attributes
        i += 1
        i += Varint.write(unsigned: Varint.zigzag(tsDelta), to: p + i)
        i += Varint.write(unsigned: Varint.zigzag(offsetDelta), to: p + i)
        i += Varint.write(unsigned: Varint.zigzag(keyLen), to: p + i)
        if let key, key.count > 0 {
            (p + i).copyMemory(from: key.baseAddress!, byteCount: key.count)
            i += key.count
        }
        i += Varint.write(unsigned: Varint.zigzag(valueLen), to: p + i)
        if value.count > 0 {
            (p + i).copyMemory(from: value.baseAddress!, byteCount: value.count)
            i += value.count
        }
        p.storeBytes(of: UInt8(0), toByteOffset: i, as: UInt8.self)  // header count
        i += 1
        records.count += i
        _count += 1
    }

    public mutating func reset() {
        records.reset()
        records.count = headroom
        _count = 0
        _baseTimestamp = 0
        _maxTimestamp = 0
    }

    /// Appends the sealed batch to `out` and returns where it sits there.
    @discardableResult
    public func seal(
        into out: ByteBuffer, codec: CompressionCodec, compressor: Codec, level: Int32? = nil,
        baseOffset: Int64 = 0, producer: ProducerStamp = .none, partitionLeaderEpoch: Int32 = -1
    ) throws(CodecError) -> Range<Int> {
        precondition(count > 0, "sealing an empty batch")
        let start = out.count
        _ = out.reserve(BatchLayout.headerSize)
        out.count += BatchLayout.headerSize
        try compressor.compress(recordBytes, codec: codec, level: level, into: out)
        let end = out.count
        writeHeader(at: out.base + start, length: end - start, codec: codec, baseOffset: baseOffset, producer: producer,
                    partitionLeaderEpoch: partitionLeaderEpoch)
        return start..<end
    }
}

extension RecordBatchBuilder {
    /// Writes the header of a batch of `length` bytes (header included) at `p`, the CRC-32C last.
    func writeHeader(at p: UnsafeMutableRawPointer, length: Int, codec: CompressionCodec, baseOffset: Int64,
                     producer: ProducerStamp, partitionLeaderEpoch: Int32) {
        func store<T: FixedWidthInteger>(_ v: T, _ at: Int) { (p + at).storeBytes(of: v.bigEndian, as: T.self) }
        var attributes = codec.rawValue
        if producer.isTransactional { attributes |= 0x10 }
        store(baseOffset, BatchLayout.baseOffset)
        store(Int32(length - BatchLayout.logOverhead), BatchLayout.batchLength)
        store(partitionLeaderEpoch, BatchLayout.partitionLeaderEpoch)
        (p + BatchLayout.magic).storeBytes(of: UInt8(2), as: UInt8.self)
        store(attributes, BatchLayout.attributes)
        store(count - 1, BatchLayout.lastOffsetDelta)
        store(baseTimestamp, BatchLayout.baseTimestamp)
        store(maxTimestamp, BatchLayout.maxTimestamp)
        store(producer.producerId, BatchLayout.producerId)
        store(producer.producerEpoch, BatchLayout.producerEpoch)
        store(producer.baseSequence, BatchLayout.baseSequence)
        store(count, BatchLayout.recordsCount)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: p + BatchLayout.attributes, count: length - BatchLayout.attributes))
        store(crc, BatchLayout.crc)
    }

    /// Seals an uncompressed batch where it was built (the builder was made with `inPlace: true`): the
    /// header goes into the room before the records; no copy. Valid until the next append or reset.
    public func sealInPlace(baseOffset: Int64 = 0, producer: ProducerStamp = .none, partitionLeaderEpoch: Int32 = -1) -> UnsafeMutableRawBufferPointer {
        precondition(count > 0, "sealing an empty batch")
        precondition(headroom == BatchLayout.headerSize, "sealInPlace needs a builder made with inPlace: true")
        writeHeader(at: records.base, length: records.count, codec: .none, baseOffset: baseOffset, producer: producer,
                    partitionLeaderEpoch: partitionLeaderEpoch)
        return UnsafeMutableRawBufferPointer(start: records.base, count: records.count)
    }
}

/// Why a batch could not be read.
public enum BatchError: Error, Equatable, Sendable, CustomStringConvertible {
    case truncated(have: Int, need: Int)
    case badMagic(Int8)
    case badLength(Int32)
    case crcMismatch(stored: UInt32, computed: UInt32)
    case badCodec(Int16)
    case codec(CodecError)
    case corruptRecord(index: Int)
    /// A base offset and last offset delta whose last offset is negative or past Int64.max.
    case offsetsOutOfRange(base: Int64, lastDelta: Int32)

    public var description: String {
        switch self {
        case .truncated(let h, let n): "truncated batch: \(h) of \(n) bytes"
        case .badMagic(let m): "unsupported magic byte \(m) (only RecordBatch v2 is read)"
        case .badLength(let l): "impossible batch length \(l)"
        case .crcMismatch(let s, let c): "CRC-32C mismatch: stored 0x\(String(s, radix: 16)), computed 0x\(String(c, radix: 16))"
        case .badCodec(let c): "unknown compression codec \(c)"
        case .codec(let e): "decompression failed: \(e)"
        case .corruptRecord(let i): "record \(i) is malformed"
        case .offsetsOutOfRange(let b, let d): "impossible offsets: base \(b), last offset delta \(d)"
        }
    }
}

/// The decoded 61-byte header of a RecordBatch v2.
public struct RecordBatchHeader: Sendable, Equatable {
    public var baseOffset: Int64
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: Int8
    public var crc: UInt32
    public var attributes: Int16
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordsCount: Int32

    /// Bytes of the whole batch (log overhead included).
    public var totalSize: Int { Int(batchLength) + BatchLayout.logOverhead }
    public var lastOffset: Int64 { baseOffset + Int64(lastOffsetDelta) }
    public var nextOffset: Int64 { lastOffset + 1 }
    public var codecValue: Int16 { attributes & 0x07 }
    public var isControl: Bool { attributes & 0x20 != 0 }
}

/// Zero-copy view of one record: the key and value point into the batch (or its decompressed records),
/// valid only inside the callback that receives it.
public struct RecordView {
    public var offset: Int64
    public var timestamp: Int64
    public var key: UnsafeRawBufferPointer?
    public var value: UnsafeRawBufferPointer?
}

public enum RecordBatchReader {
    @inline(__always)
    static func be<T: FixedWidthInteger>(_ p: UnsafeRawPointer, _ off: Int, _: T.Type) -> T {
        T(bigEndian: p.loadUnaligned(fromByteOffset: off, as: T.self))
    }

    /// Reads the header at the start of `buf` and checks that the whole batch is there.
    public static func header(_ buf: UnsafeRawBufferPointer) throws(BatchError) -> RecordBatchHeader {
        let h = try fields(buf)
        guard h.totalSize <= buf.count else { throw .truncated(have: buf.count, need: h.totalSize) }
        try checkOffsets(h)
        return h
    }

    /// The header at the start of `buf` with its own checks (magic, length, offsets) but without asking for
    /// the rest of the batch: for a walk that reads headers alone (`buf` holds at least the 61 header bytes).
    public static func headerFields(_ buf: UnsafeRawBufferPointer) throws(BatchError) -> RecordBatchHeader {
        let h = try fields(buf)
        try checkOffsets(h)
        return h
    }

    private static func fields(_ buf: UnsafeRawBufferPointer) throws(BatchError) -> RecordBatchHeader {
        guard buf.count >= BatchLayout.headerSize, let p = buf.baseAddress else {
            throw .truncated(have: buf.count, need: BatchLayout.headerSize)
        }
        let h = RecordBatchHeader(
            baseOffset: be(p, 0, Int64.self), batchLength: be(p, 8, Int32.self), partitionLeaderEpoch: be(p, 12, Int32.self),
            magic: Int8(bitPattern: p.load(fromByteOffset: 16, as: UInt8.self)), crc: be(p, 17, UInt32.self),
            attributes: be(p, 21, Int16.self), lastOffsetDelta: be(p, 23, Int32.self), baseTimestamp: be(p, 27, Int64.self),
            maxTimestamp: be(p, 35, Int64.self), producerId: be(p, 43, Int64.self), producerEpoch: be(p, 51, Int16.self),
            baseSequence: be(p, 53, Int32.self), recordsCount: be(p, 57, Int32.self))
        guard h.magic == 2 else { throw .badMagic(h.magic) }
        guard Int(h.batchLength) >= BatchLayout.headerSize - BatchLayout.logOverhead, h.recordsCount >= 0 else {
            throw .badLength(h.batchLength)
        }
        return h
    }

    /// Offsets are input (a segment file, a broker): the next offset must be representable.
    private static func checkOffsets(_ h: RecordBatchHeader) throws(BatchError) {
        guard h.baseOffset >= 0, h.lastOffsetDelta >= 0, h.baseOffset < Int64.max - Int64(h.lastOffsetDelta) else {
            throw .offsetsOutOfRange(base: h.baseOffset, lastDelta: h.lastOffsetDelta)
        }
    }

    /// Checks the stored CRC-32C against the bytes (attributes to the end).
    public static func verifyCRC(_ buf: UnsafeRawBufferPointer, _ h: RecordBatchHeader) throws(BatchError) {
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: buf[BatchLayout.attributes..<h.totalSize]))
        guard computed == h.crc else { throw .crcMismatch(stored: h.crc, computed: computed) }
    }

    /// Decodes every record of the batch at the start of `buf`, verifying the CRC first.
    /// Compressed records are expanded into `scratch` (reused by the caller).
    public static func forEachRecord(
        _ buf: UnsafeRawBufferPointer, codec: Codec, scratch: ByteBuffer, verifyCRC check: Bool = true,
        _ body: (RecordView) throws -> Void
    ) throws -> RecordBatchHeader {
        let h = try header(buf)
        if check { try verifyCRC(buf, h) }
        guard let compression = CompressionCodec(rawValue: h.codecValue) else { throw BatchError.badCodec(h.codecValue) }
        var region = UnsafeRawBufferPointer(rebasing: buf[BatchLayout.headerSize..<h.totalSize])
        if compression != .none {
            scratch.reset()
            do { try codec.decompress(region, codec: compression, into: scratch) } catch { throw BatchError.codec(error) }
            region = scratch.bytes
        }
        guard let p = region.baseAddress ?? (h.recordsCount == 0 ? UnsafeRawPointer(bitPattern: 8) : nil) else {
            throw BatchError.corruptRecord(index: 0)
        }
        let end = region.count
        var pos = 0
        for i in 0..<Int(h.recordsCount) {
            // Lengths are compared with what is left (never added to a position first: they are input).
            guard let len = Varint.read(p, &pos, end), len >= 0, len <= Int64(end - pos) else { throw BatchError.corruptRecord(index: i) }
            let recEnd = pos + Int(len)
            pos += 1  // attributes
            guard let tsDelta = Varint.read(p, &pos, recEnd), let offDelta = Varint.read(p, &pos, recEnd),
                let keyLen = Varint.read(p, &pos, recEnd), keyLen >= -1, max(keyLen, 0) <= Int64(recEnd - pos)
            else { throw BatchError.corruptRecord(index: i) }
            let key = keyLen < 0 ? nil : UnsafeRawBufferPointer(start: p + pos, count: Int(keyLen))
            pos += Int(max(keyLen, 0))
            guard let valLen = Varint.read(p, &pos, recEnd), valLen >= -1, max(valLen, 0) <= Int64(recEnd - pos) else {
                throw BatchError.corruptRecord(index: i)
            }
            let value = valLen < 0 ? nil : UnsafeRawBufferPointer(start: p + pos, count: Int(valLen))
            pos += Int(max(valLen, 0))
            guard let headers = Varint.read(p, &pos, recEnd), headers >= 0 else { throw BatchError.corruptRecord(index: i) }
            for _ in 0..<headers {
                guard let hk = Varint.read(p, &pos, recEnd), hk >= 0, hk <= Int64(recEnd - pos) else { throw BatchError.corruptRecord(index: i) }
                pos += Int(hk)
                guard let hv = Varint.read(p, &pos, recEnd), hv >= -1, max(hv, 0) <= Int64(recEnd - pos) else {
                    throw BatchError.corruptRecord(index: i)
                }
                pos += Int(max(hv, 0))
            }
            guard pos == recEnd else { throw BatchError.corruptRecord(index: i) }
            let (offset, o1) = h.baseOffset.addingReportingOverflow(offDelta)
            let (timestamp, o2) = h.baseTimestamp.addingReportingOverflow(tsDelta)
            guard !o1, !o2 else { throw BatchError.corruptRecord(index: i) }
            try body(RecordView(offset: offset, timestamp: timestamp, key: key, value: value))
        }
        return h
    }
}
