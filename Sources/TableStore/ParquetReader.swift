#if canImport(Glibc)
import Glibc
#endif
import Bytes
import Codecs

/// Reads flat (non-repeated) columns of a Parquet file: footer through the Thrift compact reader,
/// v1 data pages, PLAIN and dictionary encodings, RLE/bit-packed definition levels, and the page codecs
/// pinbench writes (snappy, zstd, gzip, none). Enough for the analyses over our tables; a file with
/// anything else gets a clear error rather than wrong values.
public final class ParquetFile {
    public let path: String
    let storage: UnsafeMutableRawBufferPointer
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(storage) }
    public let rowCount: Int
    let leaves: [Leaf]
    let rowGroups: [ThriftValue]
    public var rowGroupCount: Int { rowGroups.count }

    struct Leaf {
        var path: String
        var type: Int64
        var maxDef: Int
        var maxRep: Int
    }

    public init(path: String) throws(ParquetError) {
        self.path = path
        guard let f = fopen(path, "rb") else { throw ParquetError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { fclose(f) }
        fseek(f, 0, SEEK_END)
        let size = ftell(f)
        fseek(f, 0, SEEK_SET)
        guard size >= 12 else { throw ParquetError("\(path): too short for Parquet (\(size) bytes)") }
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        guard fread(storage.baseAddress, 1, size, f) == size else { storage.deallocate(); throw ParquetError("\(path): short read") }
        let b = UnsafeRawBufferPointer(storage)
        guard Array(b[0..<4]) == Array("PAR1".utf8), Array(b[(size - 4)...]) == Array("PAR1".utf8) else {
            throw ParquetError("\(path): not a Parquet file (no PAR1 magic)")
        }
        let footerLen = Int(UInt32(b[size - 8]) | UInt32(b[size - 7]) << 8 | UInt32(b[size - 6]) << 16 | UInt32(b[size - 5]) << 24)
        guard footerLen > 0, footerLen <= size - 12 else { throw ParquetError("\(path): bad footer length \(footerLen)") }
        let meta: [Int16: ThriftValue]
        do {
            var r = ThriftReader(UnsafeRawBufferPointer(rebasing: b[(size - 8 - footerLen)..<(size - 8)]))
            meta = try r.readStruct()
        } catch {
            storage.deallocate()
            throw ParquetError("\(path): footer: \(error)")
        }
        rowCount = Int(meta[3]?.int ?? 0)
        rowGroups = meta[4]?.list ?? []
        // Walk the schema tree to find leaves and their level maxima.
        let elems = meta[2]?.list ?? []
        // Walk the schema tree (depth first) with an explicit stack: (prefix, def, rep, children left).
        var leaves: [Leaf] = []
        var stack: [(String, Int, Int, Int64)] = [("", 0, 0, elems.first?[5]?.int ?? 0)]
        var i = 1
        while let top = stack.last {
            if top.3 == 0 { stack.removeLast(); continue }
            stack[stack.count - 1].3 -= 1
            guard i < elems.count, let e = elems[i].fields else { storage.deallocate(); throw ParquetError("\(path): schema ends early") }
            i += 1
            let name = e[4]?.string ?? ""
            let repetition = e[3]?.int ?? 0
            let d = top.1 + (repetition == 0 ? 0 : 1)
            let r = top.2 + (repetition == 2 ? 1 : 0)
            let p = top.0.isEmpty ? name : "\(top.0).\(name)"
            if let n = e[5]?.int, n > 0 {
                stack.append((p, d, r, n))
            } else {
                leaves.append(Leaf(path: p, type: e[1]?.int ?? -1, maxDef: d, maxRep: r))
            }
        }
        self.leaves = leaves
    }

    deinit { storage.deallocate() }

    public var columnNames: [String] { leaves.map(\.path) }

    /// Reads a flat column into a fresh column of `type` (`.string`, `.int64`, `.timestamp` or `.double`).
    public func readColumn(_ name: String, as type: ColumnType) throws(ParquetError) -> ColumnData {
        guard let li = leaves.firstIndex(where: { $0.path == name }) else { throw ParquetError("\(path): no column \(name)") }
        let leaf = leaves[li]
        guard leaf.maxRep == 0 else { throw ParquetError("\(path): \(name) is repeated; not readable here") }
        let out = ColumnData.make(type, capacity: min(max(rowCount, 0), 1 << 20))  // rowCount is input: capacity grows as rows come
        let codec = Codec()
        let page = ByteBuffer(capacity: 1 << 20)
        var defs: [UInt32] = []
        var idx: [UInt32] = []
        for rg in rowGroups {
            guard let chunks = rg[1]?.list, li < chunks.count, let md = chunks[li][3] else { throw ParquetError("\(path): row group without \(name)") }
            guard let c = PQ.codec(md[4]?.int ?? -1) else { throw ParquetError("\(path): codec \(md[4]?.int ?? -1) not supported") }
            let numValues = Int(md[5]?.int ?? 0)
            var pos = Int(md[11]?.int ?? md[9]?.int ?? 0)
            var dict = PageDictionary()
            var seen = 0
            while seen < numValues {
                guard pos >= 0, pos < bytes.count else { throw ParquetError("\(path): page header offset \(pos) is outside the file") }
                let header: [Int16: ThriftValue]
                do {
                    var r = ThriftReader(bytes, at: pos)
                    header = try r.readStruct()
                    pos = r.pos
                } catch { throw ParquetError("\(path): page header: \(error)") }
                let ptype = header[1]?.int ?? -1
                let usize = Int(header[2]?.int ?? 0), csize = Int(header[3]?.int ?? 0)
                guard csize >= 0, csize <= bytes.count - pos else { throw ParquetError("\(path): page past the end") }
                page.reset()
                do {
                    try codec.decompressPage(UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + csize)]), codec: c, into: page)
                } catch { throw ParquetError("\(path): \(name): \(error)") }
                pos += csize
                guard page.count == usize else { throw ParquetError("\(path): page decompressed to \(page.count) bytes, header says \(usize)") }
                let body = page.bytes
                if ptype == 2 {
                    dict = try PageDictionary(body, count: Int(header[7]?[1]?.int ?? 0), physical: leaf.type)
                    continue
                }
                guard ptype == 0, let dph = header[5] else { throw ParquetError("\(path): page type \(ptype) not supported") }
                let n = Int(dph[1]?.int ?? 0)
                try decodeDataPage(body, values: n, encoding: dph[2]?.int ?? 0, leaf: leaf, dictionary: dict, defs: &defs, indices: &idx, into: out, column: name)
                seen += n
            }
        }
        return out
    }

    /// One data page (v1): definition levels, then PLAIN values or dictionary indices, appended to `out`.
    private func decodeDataPage(_ body: UnsafeRawBufferPointer, values n: Int, encoding enc: Int64, leaf: Leaf, dictionary: PageDictionary,
                                defs: inout [UInt32], indices idx: inout [UInt32], into out: ColumnData, column: String) throws(ParquetError) {
        var p = 0
        // A page's value count is input, and runs encode many values in a few bytes: at most 2^24 per page
        // (writers cut pages at about 1 MB or 20,000 rows), so levels and indices stay under 64 MB each.
        guard n >= 0, n <= 1 << 24 else { throw ParquetError("\(path): \(column): a page of \(n) values in \(body.count) bytes") }
        defs.removeAll(keepingCapacity: true)
        if leaf.maxDef > 0 {
            guard p + 4 <= body.count else { throw ParquetError("levels truncated") }
            let l = Int(body.loadUnaligned(fromByteOffset: p, as: UInt32.self).littleEndian)
            guard p + 4 + l <= body.count else { throw ParquetError("levels truncated") }
            try RLEHybrid.decode(UnsafeRawBufferPointer(rebasing: body[(p + 4)..<(p + 4 + l)]), bitWidth: 1, count: n, into: &defs)
            p += 4 + l
        } else {
            defs = Array(repeating: 1, count: n)
        }
        let present = defs.reduce(0) { $0 + Int($1) }
        let values = UnsafeRawBufferPointer(rebasing: body[p...])
        if enc == 8 || enc == 2 {
            guard values.count >= 1 else { throw ParquetError("dictionary indices truncated") }
            idx.removeAll(keepingCapacity: true)
            try RLEHybrid.decode(UnsafeRawBufferPointer(rebasing: values[1...]), bitWidth: Int(values[0]), count: present, into: &idx)
            var k = 0
            for d in defs {
                if d == 0 { appendNull(out); continue }
                let id = Int(idx[k]); k += 1
                switch out {
                case .string(let s):
                    guard id < dictionary.entries.count else { throw ParquetError("dictionary index out of range") }
                    dictionary.bytes.withUnsafeBytes { s.append(UnsafeRawBufferPointer(rebasing: $0[dictionary.entries[id]])) }
                default:
                    guard id < dictionary.numbers.count else { throw ParquetError("dictionary index out of range") }
                    appendNumber(out, dictionary.numbers[id], physical: leaf.type)
                }
            }
        } else if enc == 0 {
            var q = 0
            for d in defs {
                if d == 0 { appendNull(out); continue }
                if case .string(let s) = out {
                    guard q + 4 <= values.count else { throw ParquetError("PLAIN values truncated") }
                    let l = Int(values.loadUnaligned(fromByteOffset: q, as: UInt32.self).littleEndian)
                    guard q + 4 + l <= values.count else { throw ParquetError("PLAIN values truncated") }
                    s.append(UnsafeRawBufferPointer(rebasing: values[(q + 4)..<(q + 4 + l)]))
                    q += 4 + l
                } else {
                    let w = leaf.type == 1 ? 4 : 8
                    guard q + w <= values.count else { throw ParquetError("PLAIN values truncated") }
                    let raw = w == 4 ? UInt64(UInt32(bitPattern: Int32(littleEndian: values.loadUnaligned(fromByteOffset: q, as: Int32.self))))
                        : values.loadUnaligned(fromByteOffset: q, as: UInt64.self).littleEndian
                    appendNumber(out, raw, physical: leaf.type)
                    q += w
                }
            }
        } else {
            throw ParquetError("\(path): \(column): encoding \(enc) not supported")
        }
    }

    private func appendNull(_ c: ColumnData) {
        switch c {
        case .string(let s): s.appendNull()
        case .int64(let s), .timestamp(let s): s.appendNull()
        case .double(let s): s.appendNull()
        case .doublePair(let a, let b): a.appendNull(); b.appendNull()
        }
    }

    private func appendNumber(_ c: ColumnData, _ raw: UInt64, physical: Int64) {
        switch c {
        case .int64(let s), .timestamp(let s):
            s.append(physical == 1 ? Int64(Int32(truncatingIfNeeded: raw)) : Int64(bitPattern: raw))
        case .double(let s):
            s.append(physical == 5 ? Double(bitPattern: raw) : Double(Int64(bitPattern: raw)))
        default: break
        }
    }
}

/// Reads the live files of a Delta table (our own log) into one batch of the requested columns, with the
/// partition column filled from each file's partition value.
public enum TableReader {
    public static func read(table: String, columns: [ColumnSpec]) throws -> ColumnBatch {
        guard let snap = try DeltaLog(table: table).snapshot() else { throw StorageError("\(table) is not a Delta table (no _delta_log commits)") }
        let schema = TableSchema(name: table, columns: columns)
        let out = ColumnBatch(schema: schema, capacity: 1024)
        for f in snap.files {
            let file = try ParquetFile(path: "\(table)/\(f.path)")
            var cols: [ColumnData] = []
            for c in columns {
                if snap.partitionColumns.contains(c.name) {
                    let s = StringColumn(capacity: file.rowCount)
                    let v = f.partitionValues[c.name] ?? nil
                    for _ in 0..<file.rowCount { if let v { s.append(v) } else { s.appendNull() } }
                    cols.append(.string(s))
                } else {
                    cols.append(try file.readColumn(c.name, as: c.type))
                }
            }
            let tmp = ColumnBatch(schema: schema, columns: cols)
            for r in 0..<file.rowCount { out.append(from: tmp, row: r) }
        }
        return out
    }
}

/// A dictionary page's entries: byte ranges of strings (BYTE_ARRAY) or 8-byte numbers, checked against the page.
struct PageDictionary {
    var entries: [Range<Int>] = []
    var bytes: [UInt8] = []
    var numbers: [UInt64] = []

    init() {}

    init(_ body: UnsafeRawBufferPointer, count n: Int, physical: Int64) throws(ParquetError) {
        bytes = Array(body)
        var p = 0
        for _ in 0..<max(n, 0) {
            if physical == 6 {
                guard p + 4 <= body.count else { throw ParquetError("dictionary page truncated") }
                let l = Int(body.loadUnaligned(fromByteOffset: p, as: UInt32.self).littleEndian)
                guard p + 4 + l <= body.count else { throw ParquetError("dictionary page truncated") }
                entries.append((p + 4)..<(p + 4 + l))
                p += 4 + l
            } else {
                guard p + 8 <= body.count else { throw ParquetError("dictionary page truncated") }
                numbers.append(body.loadUnaligned(fromByteOffset: p, as: UInt64.self).littleEndian)
                p += 8
            }
        }
    }
}
