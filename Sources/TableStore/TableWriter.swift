#if canImport(Glibc)
import Glibc
#endif
import Platform
import Bytes
import Codecs

public struct TableWriteOptions: Sendable {
    /// Page compression: zstd or snappy (default), gzip or none.
    public var codec: CompressionCodec = .snappy
    public var level: Int32?
    /// Rows per row group (per partition file).
    public var rowGroupRows: Int = 131_072
    /// String bytes per row group, at most about this much (a row group is cut here even short of its
    /// rows): string columns address their bytes with 32-bit offsets, and a row group's pages are buffered.
    public var rowGroupBytes: Int = 128 << 20
    /// Hive-style partition column (a string column), or nil for none.
    public var partitionBy: String?
    /// Parquet files open at once, at most: past it the least recently written one is finished (a later row
    /// of its partition starts another file), so thousands of partition values need neither thousands of
    /// file descriptors nor their page buffers.
    public var maxOpenFiles: Int = 64

    public init(codec: CompressionCodec = .snappy, level: Int32? = nil, rowGroupRows: Int = 131_072, partitionBy: String? = nil) {
        self.codec = codec
        self.level = level
        self.rowGroupRows = rowGroupRows
        self.partitionBy = partitionBy
    }
}

/// Writes batches of one table into Parquet files under `<table>/<col>=<value>/`, one file per partition
/// value per writer (more row groups as rows arrive), and hands back the `add` actions for one Delta commit.
/// The partition column is not stored in the files (Hive/Delta style: it is in the folder name).
public final class PartitionedTableWriter {
    public let table: String
    public let schema: TableSchema
    public let options: TableWriteOptions
    let partitionIndex: Int?
    let fileSchema: TableSchema
    let fileColumns: [Int]
    public let runId: String
    private var keys = DictionaryBuilder(maxEntries: 1 << 20, maxBytes: 64 << 20)
    private var nullPartition = -1
    private var buffers: [ColumnBatch] = []
    private var writers: [ParquetWriter?] = []
    /// Slots with an open writer, least recently written first.
    private var openOrder: [Int] = []
    /// Files each slot has started (the next file's number in its name).
    private var filesStarted: [Int] = []
    private var values: [String?] = []
    private var rowPartition: [Int32] = []
    private var adds: [AddAction] = []
    public private(set) var rowsWritten = 0

    public init(table: String, schema: TableSchema, options: TableWriteOptions) throws(StorageError) {
        self.table = table
        self.schema = schema
        self.options = options
        if let p = options.partitionBy {
            guard let i = schema.index(of: p) else {
                throw StorageError("cannot partition \(schema.name) by '\(p)': columns are \(schema.columns.map(\.name).joined(separator: ", "))")
            }
            guard schema.columns[i].type == .string else { throw StorageError("partition column '\(p)' must be a string column") }
            partitionIndex = i
        } else {
            partitionIndex = nil
        }
        let skip = partitionIndex
        fileColumns = schema.columns.indices.filter { $0 != skip }
        fileSchema = TableSchema(name: schema.name, columns: fileColumns.map { schema.columns[$0] })
        runId = uuid4()
        try createDirectories(table)
    }

    public var partitionColumns: [String] { options.partitionBy.map { [$0] } ?? [] }

    private func partitionSlot(_ value: String?) -> Int {
        // Small to start (it grows): thousands of partition values each get one.
        buffers.append(ColumnBatch(schema: schema, capacity: 64))
        writers.append(nil)
        filesStarted.append(0)
        values.append(value)
        return buffers.count - 1
    }

    /// Adds the rows of `batch` (this writer's schema).
    public func append(_ batch: ColumnBatch) throws(StorageError) {
        let n = batch.rowCount
        guard n > 0 else { return }
        guard let pi = partitionIndex, case .string(let pcol) = batch.columns[pi] else {
            if buffers.isEmpty { _ = partitionSlot(nil) }
            // Unpartitioned: a full batch goes straight to a row group when the buffer is empty.
            if buffers[0].rowCount == 0 && (n >= options.rowGroupRows || batch.stringBytes >= options.rowGroupBytes) {
                try writer(0).writeRowGroup(batch, columns: fileColumns)
                rowsWritten += n
                return
            }
            allRows.removeAll(keepingCapacity: true)
            for i in 0..<n { allRows.append(Int32(i)) }
            allRows.withUnsafeBufferPointer { buffers[0].append(from: batch, rows: $0) }
            try flushIfFull(0)
            return
        }
        rowPartition.removeAll(keepingCapacity: true)
        for i in 0..<n {
            var slot: Int
            if pcol.valid[i] == 0 {
                if nullPartition < 0 { nullPartition = partitionSlot(nil) }
                slot = nullPartition
            } else {
                let b = pcol.bytes(i)
                guard let k = keys.index(of: b) else { throw StorageError("too many distinct values of \(options.partitionBy!)") }
                if Int(k) >= keySlots.count {
                    keySlots.append(partitionSlot(String(decoding: b, as: UTF8.self)))
                }
                slot = keySlots[Int(k)]
            }
            rowPartition.append(Int32(slot))
        }
        // Gather each partition's rows column by column.
        while rowsBySlot.count < buffers.count { rowsBySlot.append([]) }
        for k in rowsBySlot.indices { rowsBySlot[k].removeAll(keepingCapacity: true) }
        for i in 0..<n { rowsBySlot[Int(rowPartition[i])].append(Int32(i)) }
        for k in rowsBySlot.indices where !rowsBySlot[k].isEmpty {
            rowsBySlot[k].withUnsafeBufferPointer { buffers[k].append(from: batch, rows: $0) }
        }
        for s in buffers.indices { try flushIfFull(s) }
    }

    private var keySlots: [Int] = []
    private var rowsBySlot: [[Int32]] = []
    private var allRows: [Int32] = []

    private func flushIfFull(_ s: Int) throws(StorageError) {
        if buffers[s].rowCount >= options.rowGroupRows || buffers[s].stringBytes >= options.rowGroupBytes { try flush(s) }
    }

    private func flush(_ s: Int) throws(StorageError) {
        let b = buffers[s]
        guard b.rowCount > 0 else { return }
        try writer(s).writeRowGroup(b, columns: fileColumns)
        rowsWritten += b.rowCount
        b.reset()
    }

    /// The partition folder: `col=<escaped value>/`, `__HIVE_DEFAULT_PARTITION__` for null (and empty, as
    /// Spark writes it). Readers take the value from the `add` action, so the folder only has to be distinct
    /// and valid: a literal value equal to the null marker gets its first character escaped, and a name over
    /// 200 bytes is cut to 160 with a hash of the whole value appended (no ENAMETOOLONG).
    private func folder(_ s: Int) -> String {
        guard let p = options.partitionBy else { return "" }
        let marker = "__HIVE_DEFAULT_PARTITION__"
        var v = values[s].map { $0.isEmpty ? marker : DeltaLog.escapePartitionValue($0) } ?? marker
        if values[s] == marker { v = "%5F" + marker.dropFirst() }
        if v.utf8.count > 200, let full = values[s] {
            var cut = Substring(v)
            while cut.utf8.count > 160 { cut = cut.dropLast() }
            if let pct = cut.lastIndex(of: "%"), cut.distance(from: pct, to: cut.endIndex) < 3 { cut = cut[..<pct] }  // no half escape
            v = cut + "-" + stableHash(full)
        }
        return "\(p)=\(v)/"
    }

    private func writer(_ s: Int) throws(StorageError) -> ParquetWriter {
        if let w = writers[s] {
            if openOrder.last != s, let at = openOrder.firstIndex(of: s) { openOrder.remove(at: at); openOrder.append(s) }
            return w
        }
        // At the bound: finish the least recently written file first.
        while openOrder.count >= max(1, options.maxOpenFiles) { try finishFile(openOrder.removeFirst()) }
        let ext = options.codec == .none ? "" : ".\(options.codec)"
        // One file per partition value, run and start: the slot number keeps names unique even if two values
        // shared a folder; c000, c001, … count the files a slot started (after it was finished to free room).
        let n = String(s), k = String(filesStarted[s])
        let rel = "\(folder(s))part-\(String(repeating: "0", count: max(0, 5 - n.count)))\(n)-\(runId).c\(String(repeating: "0", count: max(0, 3 - k.count)))\(k)\(ext).parquet"
        let dir = "\(table)/\(folder(s))"
        try createDirectories(dir)
        let w = try ParquetWriter(path: "\(table)/\(rel)", schema: fileSchema, codec: options.codec, level: options.level)
        writers[s] = w
        filesStarted[s] += 1
        openOrder.append(s)
        return w
    }

    /// Closes slot `s`'s open file (fsynced) and records its `add` action.
    private func finishFile(_ s: Int) throws(StorageError) {
        guard let w = writers[s] else { return }
        writers[s] = nil
        let summary = try w.close()
        let fd = open(w.path, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
        let rel = String(w.path.dropFirst(table.count + 1))
        var pv: [(String, String?)] = []
        if let p = options.partitionBy { pv = [(p, values[s].flatMap { $0.isEmpty ? nil : $0 })] }
        adds.append(AddAction(path: rel, partitionValues: pv, size: summary.bytes, rows: summary.rows,
                              stats: Array(zip(fileSchema.columns, summary.columns))))
    }

    /// Writes what is buffered, closes every file (fsynced), and returns their `add` actions.
    public func finish() throws(StorageError) -> [AddAction] {
        for s in buffers.indices { try flush(s) }
        for s in openOrder { try finishFile(s) }
        openOrder.removeAll()
        return adds
    }
}
