#if canImport(Glibc)
import Glibc
#endif
import Bytes
import Codecs
import Platform

/// Parquet's enums, as the format's Thrift definition numbers them.
enum PQ {
    enum PhysicalType: Int32 { case boolean = 0, int32 = 1, int64 = 2, int96 = 3, float = 4, double = 5, byteArray = 6, fixed = 7 }
    enum Repetition: Int32 { case required = 0, optional = 1, repeated = 2 }
    enum Encoding: Int32 { case plain = 0, plainDictionary = 2, rle = 3, bitPacked = 4, rleDictionary = 8 }
    enum PageType: Int32 { case data = 0, index = 1, dictionary = 2, dataV2 = 3 }
    static let convertedUTF8: Int32 = 0
    static let convertedList: Int32 = 3
    static let convertedTimestampMicros: Int32 = 10

    static func codecId(_ c: CompressionCodec) -> Int32 {
        switch c {
        case .none: 0
        case .snappy: 1
        case .gzip: 2
        case .lz4: 7  // LZ4_RAW; never written (see Codec.compressPage)
        case .zstd: 6
        }
    }

    static func codec(_ id: Int64) -> CompressionCodec? {
        switch id {
        case 0: CompressionCodec.none
        case 1: .snappy
        case 2: .gzip
        case 6: .zstd
        default: nil
        }
    }
}

/// What one file holds per column, for Delta `add` statistics.
public struct ColumnSummary: Sendable {
    public var nullCount: Int64 = 0
    public var minInt: Int64?
    public var maxInt: Int64?
    public var minDouble: Double?
    public var maxDouble: Double?
    public var minBytes: [UInt8]?
    public var maxBytes: [UInt8]?

    mutating func merge(_ o: ColumnSummary) {
        nullCount += o.nullCount
        if let v = o.minInt { minInt = minInt.map { Swift.min($0, v) } ?? v }
        if let v = o.maxInt { maxInt = maxInt.map { Swift.max($0, v) } ?? v }
        if let v = o.minDouble { minDouble = minDouble.map { Swift.min($0, v) } ?? v }
        if let v = o.maxDouble { maxDouble = maxDouble.map { Swift.max($0, v) } ?? v }
        if let v = o.minBytes {
            if let m = minBytes {
                if m.withUnsafeBytes({ a in v.withUnsafeBytes { b in bytesLess(b, a) } }) { minBytes = v }
            } else { minBytes = v }
        }
        if let v = o.maxBytes {
            if let m = maxBytes {
                if m.withUnsafeBytes({ a in v.withUnsafeBytes { b in bytesLess(a, b) } }) { maxBytes = v }
            } else { maxBytes = v }
        }
    }
}

public struct ParquetFileSummary: Sendable {
    public var path: String
    public var bytes: Int
    public var rows: Int
    public var rowGroups: Int
    /// Per written column, in schema order.
    public var columns: [ColumnSummary]
}

public struct StorageError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
    public init(_ e: FileError) { description = e.description }
}

/// Writes one Parquet file: row groups of optional columns (one data page per column chunk, v1 pages,
/// definition levels as RLE/bit-packed hybrid), PLAIN or dictionary-encoded values, compressed pages,
/// statistics with `column_orders`, and the Thrift compact footer.
public final class ParquetWriter {
    public let path: String
    public let schema: TableSchema
    public let codec: CompressionCodec
    public let level: Int32?
    private let fd: Int32
    private var offset: Int64 = 0
    private var rowGroups: [RowGroupMeta] = []
    private var summaries: [ColumnSummary]
    private var rows = 0
    private var closed = false
    // Scratch reused across columns and row groups.
    private let page = ByteBuffer(capacity: 1 << 20)
    private let compressed = ByteBuffer(capacity: 1 << 20)
    private let header = ByteBuffer(capacity: 256)
    private let levels = ByteBuffer(capacity: 1 << 16)
    private let compressor = Codec()
    private var indexScratch: [UInt32] = []
    private var levelScratch: [UInt8] = []

    struct ChunkMeta {
        var type: PQ.PhysicalType
        var path: [String]
        var encodings: [PQ.Encoding]
        var numValues: Int64
        var uncompressed: Int64
        var compressed: Int64
        var dataPageOffset: Int64
        var dictionaryPageOffset: Int64?
        var stats: ColumnSummary
        var statsKind: ColumnType
    }

    struct RowGroupMeta {
        var chunks: [ChunkMeta]
        var rows: Int64
    }

    /// Creates (truncates) `path`. `codec` is `.snappy`, `.zstd`, `.gzip` or `.none`.
    public init(path: String, schema: TableSchema, codec: CompressionCodec, level: Int32? = nil) throws(StorageError) {
        guard codec != .lz4 else { throw StorageError("lz4 Parquet pages are not written; use zstd, snappy, gzip or none") }
        self.path = path
        self.schema = schema
        self.codec = codec
        self.level = level
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw StorageError("cannot create \(path): \(String(cString: strerror(errno)))") }
        summaries = Array(repeating: ColumnSummary(), count: schema.columns.count)
        try write(magic)
    }

    deinit { if !closed { Glibc.close(fd) } }

    private let magic: [UInt8] = Array("PAR1".utf8)

    private func write(_ bytes: UnsafeRawBufferPointer) throws(StorageError) {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageError("write \(path): \(String(cString: strerror(errno)))")
            }
            done += n
        }
        offset += Int64(bytes.count)
    }

    private func write(_ bytes: [UInt8]) throws(StorageError) {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 1)
        defer { p.deallocate() }
        p.copyBytes(from: bytes)
        try write(UnsafeRawBufferPointer(p))
    }

    /// Writes `batch`'s columns `columnIndices` (in this writer's schema order) as one row group.
    public func writeRowGroup(_ batch: ColumnBatch, columns columnIndices: [Int]) throws(StorageError) {
        precondition(columnIndices.count == schema.columns.count)
        let n = batch.rowCount
        guard n > 0 else { return }
        var chunks: [ChunkMeta] = []
        for (k, ci) in columnIndices.enumerated() {
            let spec = schema.columns[k]
            let chunk = try writeChunk(batch.columns[ci], spec: spec, rows: n)
            summaries[k].merge(chunk.stats)
            chunks.append(chunk)
        }
        rowGroups.append(RowGroupMeta(chunks: chunks, rows: Int64(n)))
        rows += n
    }

    // MARK: column chunks

    private func definitionLevels(_ valid: ColumnVector<UInt8>) {
        levels.reset()
        valid.withUnsafeBufferPointer { RLEHybrid.encode($0, bitWidth: 1, into: levels) }
    }

    /// Appends the v1 page prefix for levels: 4-byte little-endian length, then the hybrid stream.
    private func appendLevels(to out: ByteBuffer) {
        let len = UInt32(levels.count).littleEndian
        withUnsafeBytes(of: len) { out.append($0) }
        out.append(levels.bytes)
    }

    private func writeChunk(_ data: ColumnData, spec: ColumnSpec, rows: Int) throws(StorageError) -> ChunkMeta {
        let start = offset
        var stats = ColumnSummary()
        var encodings: [PQ.Encoding] = [.plain, .rle]
        var dictionaryOffset: Int64?
        var uncompressedTotal: Int64 = 0
        var compressedTotal: Int64 = 0
        var numValues = Int64(rows)
        let type: PQ.PhysicalType
        var pageEncoding = PQ.Encoding.plain
        page.reset()

        switch data {
        case .string(let c):
            type = .byteArray
            let dict = try encodeStrings(c, dictionary: spec.dictionary, rows: rows, stats: &stats)
            if let dict {
                dictionaryOffset = dict.offset
                uncompressedTotal += dict.uncompressed
                compressedTotal += dict.compressed
                pageEncoding = .rleDictionary
                encodings = [.plain, .rle, .rleDictionary]
            }
        case .int64(let c), .timestamp(let c):
            type = .int64
            definitionLevels(c.valid)
            appendLevels(to: page)
            var nulls: Int64 = 0
            var lo = Int64.max, hi = Int64.min
            appendPlain(c.values, c.valid, &nulls) { v in
                lo = Swift.min(lo, v)
                hi = Swift.max(hi, v)
            }
            stats.nullCount = nulls
            if Int64(rows) > nulls { stats.minInt = lo; stats.maxInt = hi }
        case .double(let c):
            type = .double
            definitionLevels(c.valid)
            appendLevels(to: page)
            var nulls: Int64 = 0
            var st = ColumnSummary()
            appendPlain(c.values, c.valid, &nulls) { v in st.noteDouble(v) }
            st.nullCount = nulls
            stats = st
        case .doublePair(let a, let b):
            type = .double
            numValues = Int64(rows * 2)
            encodeCoordinates(a, b, rows: rows, stats: &stats)
        }

        let dataOffset = offset
        let (u, cz) = try writePage(page, type: .data, numValues: Int(numValues), encoding: pageEncoding)
        uncompressedTotal += u
        compressedTotal += cz
        let path: [String] = spec.type == .doublePair ? [spec.name, "list", "element"] : [spec.name]
        _ = start
        return ChunkMeta(
            type: type, path: path, encodings: encodings, numValues: numValues, uncompressed: uncompressedTotal,
            compressed: compressedTotal, dataPageOffset: dataOffset, dictionaryPageOffset: dictionaryOffset,
            stats: stats, statsKind: spec.type)
    }

    /// A string column chunk: a dictionary page (written here) and indices into it when the column asks for a
    /// dictionary and it pays, else PLAIN values; the data page's levels and values go into `page`.
    /// Returns where the dictionary page went and its sizes, nil without one.
    private func encodeStrings(_ c: StringColumn, dictionary: Bool, rows: Int, stats: inout ColumnSummary) throws(StorageError)
        -> (offset: Int64, uncompressed: Int64, compressed: Int64)? {
        definitionLevels(c.valid)
        stats.nullCount = Int64(c.valid.reduce(0) { $0 + ($1 == 0 ? 1 : 0) })
        if dictionary, let dict = buildDictionary(c) {
            // Dictionary page: the distinct values, PLAIN.
            let dictPage = ByteBuffer(capacity: dict.data.count + 4 * dict.count + 16)
            for i in 0..<dict.count {
                let e = dict.entry(i)
                var l = UInt32(e.count).littleEndian
                withUnsafeBytes(of: &l) { dictPage.append($0) }
                dictPage.append(e)
                stats.noteBytes(e)
            }
            let at = offset
            let (u, cz) = try writePage(dictPage, type: .dictionary, numValues: dict.count, encoding: .plain)
            // Data page: levels, then bit width and the hybrid-encoded indices.
            appendLevels(to: page)
            let width = dict.count <= 1 ? 0 : (Int.bitWidth - (dict.count - 1).leadingZeroBitCount)
            page.append(UInt8(width))
            indexScratch.withUnsafeBufferPointer { RLEHybrid.encode($0, bitWidth: width, into: page) }
            return (at, u, cz)
        }
        appendLevels(to: page)
        let base = c.data.base
        c.start.withUnsafeBufferPointer { st in
            c.length.withUnsafeBufferPointer { ln in
                c.valid.withUnsafeBufferPointer { va in
                    for i in 0..<rows where va[i] != 0 {
                        var l = UInt32(ln[i]).littleEndian
                        withUnsafeBytes(of: &l) { page.append($0) }
                        let b = UnsafeRawBufferPointer(start: base + Int(st[i]), count: Int(ln[i]))
                        page.append(b)
                        stats.noteBytes(b)
                    }
                }
            }
        }
        return nil
    }

    /// `coordinates.list.element`: two entries per row; repetition 0 then 1; definition 3 (value) or 2 (null element).
    private func encodeCoordinates(_ a: DoubleColumn, _ b: DoubleColumn, rows: Int, stats: inout ColumnSummary) {
        levelScratch.removeAll(keepingCapacity: true)
        for _ in 0..<rows { levelScratch.append(0); levelScratch.append(1) }
        levels.reset()
        levelScratch.withUnsafeBufferPointer { RLEHybrid.encode($0, bitWidth: 1, into: levels) }
        appendLevels(to: page)
        levelScratch.removeAll(keepingCapacity: true)
        for i in 0..<rows {
            levelScratch.append(a.valid[i] != 0 ? 3 : 2)
            levelScratch.append(b.valid[i] != 0 ? 3 : 2)
        }
        levels.reset()
        levelScratch.withUnsafeBufferPointer { RLEHybrid.encode($0, bitWidth: 2, into: levels) }
        appendLevels(to: page)
        for i in 0..<rows {
            for col in [a, b] {
                if col.valid[i] != 0 {
                    var bits = col.values[i].bitPattern.littleEndian
                    withUnsafeBytes(of: &bits) { page.append($0) }
                    stats.noteDouble(col.values[i])
                } else {
                    stats.nullCount += 1
                }
            }
        }
    }

    private func appendPlain(_ values: ColumnVector<Int64>, _ valid: ColumnVector<UInt8>, _ nulls: inout Int64, _ note: (Int64) -> Void) {
        values.withUnsafeBufferPointer { vs in
            valid.withUnsafeBufferPointer { va in
                let dst = page.reserve(vs.count * 8)
                var o = 0
                for i in 0..<vs.count {
                    if va[i] != 0 {
                        let v = Int64(vs[i])
                        dst.storeBytes(of: v.littleEndian, toByteOffset: o, as: Int64.self)
                        o += 8
                        note(v)
                    } else {
                        nulls += 1
                    }
                }
                page.count += o
            }
        }
    }

    private func appendPlain(_ values: ColumnVector<Double>, _ valid: ColumnVector<UInt8>, _ nulls: inout Int64, _ note: (Double) -> Void) {
        values.withUnsafeBufferPointer { vs in
            valid.withUnsafeBufferPointer { va in
                let dst = page.reserve(vs.count * 8)
                var o = 0
                for i in 0..<vs.count {
                    if va[i] != 0 {
                        dst.storeBytes(of: vs[i].bitPattern.littleEndian, toByteOffset: o, as: UInt64.self)
                        o += 8
                        note(vs[i])
                    } else {
                        nulls += 1
                    }
                }
                page.count += o
            }
        }
    }

    /// Builds the dictionary and the per-value indices (non-null values only) into `indexScratch`;
    /// nil when the column has too many distinct values for a dictionary to pay.
    private func buildDictionary(_ c: StringColumn) -> DictionaryBuilder? {
        var dict = DictionaryBuilder()
        indexScratch.removeAll(keepingCapacity: true)
        let n = c.count
        var nonNull = 0
        for i in 0..<n where c.valid[i] != 0 {
            guard let id = dict.index(of: c.bytes(i)) else { return nil }
            indexScratch.append(UInt32(id))
            nonNull += 1
        }
        // Not worth it when most values are distinct.
        if nonNull > 64 && dict.count * 2 > nonNull { return nil }
        return dict
    }

    /// Compresses and writes one page with its header; returns (uncompressed, compressed) sizes incl. header.
    private func writePage(_ body: ByteBuffer, type: PQ.PageType, numValues: Int, encoding: PQ.Encoding) throws(StorageError) -> (Int64, Int64) {
        compressed.reset()
        do {
            try compressor.compressPage(body.bytes, codec: codec, level: level, into: compressed)
        } catch {
            throw StorageError("compress page for \(path): \(error)")
        }
        header.reset()
        var w = ThriftWriter(header)
        w.structBody { w in
            w.i32(1, type.rawValue)
            w.i32(2, Int32(body.count))
            w.i32(3, Int32(compressed.count))
            if type == .data {
                w.structField(5) { w in
                    w.i32(1, Int32(numValues))
                    w.i32(2, encoding.rawValue)
                    w.i32(3, PQ.Encoding.rle.rawValue)
                    w.i32(4, PQ.Encoding.rle.rawValue)
                }
            } else {
                w.structField(7) { w in
                    w.i32(1, Int32(numValues))
                    w.i32(2, PQ.Encoding.plain.rawValue)
                }
            }
        }
        try write(header.bytes)
        try write(compressed.bytes)
        return (Int64(header.count + body.count), Int64(header.count + compressed.count))
    }

    // MARK: footer

    /// Writes the footer and closes the file.
    public func close() throws(StorageError) -> ParquetFileSummary {
        precondition(!closed)
        let footer = ByteBuffer(capacity: 8192)
        var w = ThriftWriter(footer)
        let leaves = schema.columns.count
        w.structBody { w in
            w.i32(1, 1)
            let elements = schemaElements()
            w.listHeader(2, .structure, count: elements.count)
            for e in elements { w.structBody(e) }
            w.i64(3, Int64(rows))
            w.structList(4, Array(rowGroups.enumerated())) { w, item in self.writeRowGroup(&w, ordinal: item.offset, item.element) }
            w.string(6, "pinbench version 0.1.0")
            w.listHeader(7, .structure, count: leaves)
            for _ in 0..<leaves { w.structBody { w in w.structField(1) { _ in } } }
        }
        try write(footer.bytes)
        let len = UInt32(footer.count)
        try write([UInt8(len & 0xFF), UInt8(len >> 8 & 0xFF), UInt8(len >> 16 & 0xFF), UInt8(len >> 24)])
        try write(magic)
        closed = true
        if Glibc.close(fd) != 0 { throw StorageError("close \(path): \(String(cString: strerror(errno)))") }
        return ParquetFileSummary(path: path, bytes: Int(offset), rows: rows, rowGroups: rowGroups.count, columns: summaries)
    }

    /// The footer's schema: root, then each column (a LIST is a group of a repeated group of one optional element).
    private func schemaElements() -> [(inout ThriftWriter) -> Void] {
        var elements: [(inout ThriftWriter) -> Void] = []
        elements.append { w in
            w.string(4, "spark_schema")
            w.i32(5, Int32(self.schema.columns.count))
        }
        for c in schema.columns {
            switch c.type {
            case .string:
                elements.append { w in
                    w.i32(1, PQ.PhysicalType.byteArray.rawValue); w.i32(3, PQ.Repetition.optional.rawValue)
                    w.string(4, c.name); w.i32(6, PQ.convertedUTF8)
                    w.structField(10) { w in w.structField(1) { _ in } }
                }
            case .int64:
                elements.append { w in
                    w.i32(1, PQ.PhysicalType.int64.rawValue); w.i32(3, PQ.Repetition.optional.rawValue); w.string(4, c.name)
                }
            case .double:
                elements.append { w in
                    w.i32(1, PQ.PhysicalType.double.rawValue); w.i32(3, PQ.Repetition.optional.rawValue); w.string(4, c.name)
                }
            case .timestamp:
                elements.append { w in
                    w.i32(1, PQ.PhysicalType.int64.rawValue); w.i32(3, PQ.Repetition.optional.rawValue)
                    w.string(4, c.name); w.i32(6, PQ.convertedTimestampMicros)
                    w.structField(10) { w in
                        w.structField(8) { w in
                            w.bool(1, true)
                            w.structField(2) { w in w.structField(2) { _ in } }
                        }
                    }
                }
            case .doublePair:
                elements.append { w in
                    w.i32(3, PQ.Repetition.optional.rawValue); w.string(4, c.name); w.i32(5, 1)
                    w.i32(6, PQ.convertedList)
                    w.structField(10) { w in w.structField(3) { _ in } }
                }
                elements.append { w in
                    w.i32(3, PQ.Repetition.repeated.rawValue); w.string(4, "list"); w.i32(5, 1)
                }
                elements.append { w in
                    w.i32(1, PQ.PhysicalType.double.rawValue); w.i32(3, PQ.Repetition.optional.rawValue); w.string(4, "element")
                }
            }
        }
        return elements
    }

    /// One RowGroup struct of the footer: its column chunks' metadata and statistics.
    private func writeRowGroup(_ w: inout ThriftWriter, ordinal: Int, _ rg: RowGroupMeta) {
        w.structList(1, rg.chunks) { w, ch in
            w.i64(2, ch.dictionaryPageOffset ?? ch.dataPageOffset)
            w.structField(3) { w in
                w.i32(1, ch.type.rawValue)
                w.i32List(2, ch.encodings.map(\.rawValue))
                w.stringList(3, ch.path)
                w.i32(4, PQ.codecId(self.codec))
                w.i64(5, ch.numValues)
                w.i64(6, ch.uncompressed)
                w.i64(7, ch.compressed)
                w.i64(9, ch.dataPageOffset)
                if let d = ch.dictionaryPageOffset { w.i64(11, d) }
                w.structField(12) { w in ParquetWriter.writeStatistics(&w, ch.stats, ch.statsKind) }
            }
        }
        w.i64(2, rg.chunks.reduce(0) { $0 + $1.uncompressed })
        w.i64(3, rg.rows)
        let first = rg.chunks.first.map { $0.dictionaryPageOffset ?? $0.dataPageOffset } ?? 4
        w.i64(5, first)
        w.i64(6, rg.chunks.reduce(0) { $0 + $1.compressed })
        w.i16(7, Int16(truncatingIfNeeded: ordinal))
    }

    static func writeStatistics(_ w: inout ThriftWriter, _ s: ColumnSummary, _ kind: ColumnType) {
        w.i64(3, s.nullCount)
        switch kind {
        case .string:
            if let mx = s.maxBytes, let mn = s.minBytes { w.binary(5, mx); w.binary(6, mn) }
        case .int64, .timestamp:
            if let mx = s.maxInt, let mn = s.minInt {
                withUnsafeBytes(of: mx.littleEndian) { w.binary(5, $0) }
                withUnsafeBytes(of: mn.littleEndian) { w.binary(6, $0) }
            }
        case .double, .doublePair:
            if let mx = s.maxDouble, let mn = s.minDouble {
                // Parquet: -0.0 as the min and +0.0 as the max when zero is an extreme.
                let mn2 = mn == 0 ? -0.0 : mn, mx2 = mx == 0 ? 0.0 : mx
                withUnsafeBytes(of: mx2.bitPattern.littleEndian) { w.binary(5, $0) }
                withUnsafeBytes(of: mn2.bitPattern.littleEndian) { w.binary(6, $0) }
            }
        }
    }
}

extension ColumnSummary {
    mutating func noteBytes(_ b: UnsafeRawBufferPointer) {
        if let m = minBytes {
            if m.withUnsafeBytes({ bytesLess(b, $0) }) { minBytes = Array(b) }
        } else { minBytes = Array(b) }
        if let m = maxBytes {
            if m.withUnsafeBytes({ bytesLess($0, b) }) { maxBytes = Array(b) }
        } else { maxBytes = Array(b) }
    }

    mutating func noteDouble(_ v: Double) {
        guard !v.isNaN else { return }
        minDouble = minDouble.map { Swift.min($0, v) } ?? v
        maxDouble = maxDouble.map { Swift.max($0, v) } ?? v
    }
}
