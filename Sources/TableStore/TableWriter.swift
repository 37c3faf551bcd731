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
    /// rows): string columns address their bytes with 32-bit offsets, every partition value buffers up to
    /// this much before its row group is encoded, and encoding starts while rows still arrive (16 MiB: about
    /// 30,000 pins).
    public var rowGroupBytes: Int = 16 << 20
    /// Hive-style partition column (a string column), or nil for none.
    public var partitionBy: String?
    /// Parquet files open at once, at most: past it the least recently written one is finished (a later row
    /// of its partition starts another file), so thousands of partition values need neither thousands of
    /// file descriptors nor their page buffers.
    public var maxOpenFiles: Int = 64
    /// Threads that encode, compress and write row groups; 0 (the default): one per usable CPU, at most 8.
    /// Each partition value's files stay with one of them, so its row groups keep their order.
    public var encodeThreads: Int = 0

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
    /// Rows of each partition value not yet handed to an encoder.
    private var buffers: [ColumnBatch] = []
    /// Slots with an open file, least recently written first (the appending thread's view: the encoder that
    /// owns a slot closes its file when told to).
    private var openOrder: [Int] = []
    private var isOpen: [Bool] = []
    private var values: [String?] = []
    private var rowPartition: [Int32] = []
    public private(set) var rowsWritten = 0
    private let encoders: [RowGroupEncoder]
    /// Filled batches on their way to an encoder, at most; full buffers beyond wait for one to come back.
    private let inFlightLimit: Int
    private let pool: BatchPool

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
        let n = options.encodeThreads > 0 ? options.encodeThreads : min(8, usableCPUs())
        inFlightLimit = 2 * n + 2
        let pool = BatchPool(keep: inFlightLimit)
        self.pool = pool
        let job = RowGroupEncoder.Job(table: table, fileSchema: fileSchema, fileColumns: fileColumns, codec: options.codec,
                                      level: options.level, runId: runId)
        encoders = (0..<n).map { RowGroupEncoder(index: $0, job: job, pool: pool) }
    }

    deinit { for e in encoders { e.stop() } }

    public var partitionColumns: [String] { options.partitionBy.map { [$0] } ?? [] }

    private func partitionSlot(_ value: String?) -> Int {
        // Small to start (it grows): thousands of partition values each get one.
        buffers.append(ColumnBatch(schema: schema, capacity: 64))
        isOpen.append(false)
        values.append(value)
        return buffers.count - 1
    }

    /// Adds the rows of `batch` (this writer's schema).
    public func append(_ batch: ColumnBatch) throws(StorageError) {
        let n = batch.rowCount
        guard n > 0 else { return }
        guard let pi = partitionIndex, case .string(let pcol) = batch.columns[pi] else {
            if buffers.isEmpty { _ = partitionSlot(nil) }
            // Unpartitioned: the rows are copied (the caller reuses its batch while an encoder works).
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

    /// Hands slot `s`'s rows to its encoder (a pooled batch takes their place) and, at the open-file bound,
    /// tells the least recently written slot's encoder to finish that file first.
    private func flush(_ s: Int) throws(StorageError) {
        let b = buffers[s]
        guard b.rowCount > 0 else { return }
        try checkEncoders()
        if !isOpen[s] {
            while openOrder.count >= max(1, options.maxOpenFiles) {
                let t = openOrder.removeFirst()
                isOpen[t] = false
                encoders[t % encoders.count].put(.finish(slot: t))
            }
            isOpen[s] = true
            openOrder.append(s)
        } else if openOrder.last != s, let at = openOrder.firstIndex(of: s) {
            openOrder.remove(at: at)
            openOrder.append(s)
        }
        rowsWritten += b.rowCount
        pool.waitWhile(inFlightAtLeast: inFlightLimit)
        buffers[s] = pool.take() ?? ColumnBatch(schema: schema, capacity: 64)
        encoders[s % encoders.count].put(.write(slot: s, batch: b, folder: folder(s), value: partitionValue(s)))
    }

    private func checkEncoders() throws(StorageError) {
        for e in encoders { if let err = e.failure { throw err } }
    }

    private func partitionValue(_ s: Int) -> [(String, String?)] {
        guard let p = options.partitionBy else { return [] }
        return [(p, values[s].flatMap { $0.isEmpty ? nil : $0 })]
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

    /// Writes what is buffered, closes every file (fsynced), and returns their `add` actions.
    public func finish() throws(StorageError) -> [AddAction] {
        for s in buffers.indices { try flush(s) }
        for s in openOrder { encoders[s % encoders.count].put(.finish(slot: s)) }
        openOrder.removeAll()
        for e in encoders { e.stop() }
        try checkEncoders()
        return encoders.flatMap(\.adds).sorted { $0.path < $1.path }
    }
}

/// Batches that came back from the encoders, kept for the next row groups (their buffers keep their size),
/// and the count of batches out with an encoder.
final class BatchPool: @unchecked Sendable {
    private let lock = ConditionLock()
    private var free: [ColumnBatch] = []
    private var out = 0
    private let keep: Int

    init(keep: Int) { self.keep = keep }

    func take() -> ColumnBatch? { lock.withLock { free.popLast() } }

    /// Counts one more batch out, after waiting while `limit` are out.
    func waitWhile(inFlightAtLeast limit: Int) {
        lock.wait(until: { out < limit }) { out += 1 }
    }

    func giveBack(_ b: ColumnBatch) {
        b.reset()
        lock.withLock {
            out -= 1
            if free.count < keep { free.append(b) }
        }
        lock.broadcast()
    }
}

/// One encoder thread: writes the row groups of the slots it owns (slot % encoders) into their Parquet
/// files, in the order they came, and finishes a file (closed, fsynced, its `add` action kept) when told.
/// A failure is kept and reported by the appending side; later work is dropped, batches still go back.
final class RowGroupEncoder: @unchecked Sendable {
    enum Task {
        case write(slot: Int, batch: ColumnBatch, folder: String, value: [(String, String?)])
        case finish(slot: Int)
    }

    struct Job: @unchecked Sendable {
        var table: String
        var fileSchema: TableSchema
        var fileColumns: [Int]
        var codec: CompressionCodec
        var level: Int32?
        var runId: String
    }

    private let tasks = Channel<Task>()
    private var thread: StageThread?
    private let failureLock = ConditionLock()
    private var _failure: StorageError?
    /// Written by the thread only; read after `stop()`.
    private(set) var adds: [AddAction] = []

    var failure: StorageError? { failureLock.withLock { _failure } }

    init(index: Int, job: Job, pool: BatchPool) {
        let tasks = self.tasks
        thread = StageThread(name: "table-encode-\(index)") { [unowned self] in
            var files: [Int: (writer: ParquetWriter, value: [(String, String?)])] = [:]
            var started: [Int: Int] = [:]
            while let t = tasks.take() {
                switch t {
                case .write(let s, let b, let folder, let value):
                    defer { pool.giveBack(b) }
                    if self.failure != nil { continue }
                    do throws(StorageError) {
                        if files[s] == nil {
                            let ext = job.codec == .none ? "" : ".\(job.codec)"
                            // One file per partition value, run and start: the slot number keeps names unique even if two
                            // values shared a folder; c000, c001, … count the files a slot started.
                            let n = String(s), k = String(started[s, default: 0])
                            let rel = "\(folder)part-\(String(repeating: "0", count: max(0, 5 - n.count)))\(n)-\(job.runId).c\(String(repeating: "0", count: max(0, 3 - k.count)))\(k)\(ext).parquet"
                            try createDirectories("\(job.table)/\(folder)")
                            files[s] = (try ParquetWriter(path: "\(job.table)/\(rel)", schema: job.fileSchema, codec: job.codec, level: job.level), value)
                            started[s, default: 0] += 1
                        }
                        try files[s]!.writer.writeRowGroup(b, columns: job.fileColumns)
                    } catch {
                        self.fail(error)
                    }
                case .finish(let s):
                    guard let f = files.removeValue(forKey: s), self.failure == nil else { continue }
                    do throws(StorageError) {
                        let summary = try f.writer.close()
                        let fd = open(f.writer.path, O_RDONLY | O_CLOEXEC)
                        if fd >= 0 { _ = fsync(fd); close(fd) }
                        let rel = String(f.writer.path.dropFirst(job.table.count + 1))
                        self.adds.append(AddAction(path: rel, partitionValues: f.value, size: summary.bytes, rows: summary.rows,
                                                   stats: Array(zip(job.fileSchema.columns, summary.columns))))
                    } catch {
                        self.fail(error)
                    }
                }
            }
        }
    }

    private func fail(_ e: StorageError) { failureLock.withLock { if _failure == nil { _failure = e } } }

    func put(_ t: Task) { tasks.put(t) }

    /// Lets the thread finish what it was given, then joins it.
    func stop() {
        tasks.close()
        thread?.join()
        thread = nil
    }
}
