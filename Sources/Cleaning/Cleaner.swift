#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Bytes
import PinModel
import Platform
import Synchronization
import TableStore
import JSON
import KafkaLog
import Codecs

/// The cleaned tables' schemas (spec §3: column order as the notebook's output).
public enum CleanSchemas {
    public static let pin = TableSchema(name: "pin", columns: [
        ColumnSpec("ind", .int64), ColumnSpec("unique_id", .string), ColumnSpec("title", .string),
        ColumnSpec("description", .string), ColumnSpec("follower_count", .int64), ColumnSpec("poster_name", .string, dictionary: true),
        ColumnSpec("tag_list", .string), ColumnSpec("is_image_or_video", .string, dictionary: true), ColumnSpec("image_src", .string),
        ColumnSpec("save_location", .string, dictionary: true), ColumnSpec("category", .string, dictionary: true),
    ])
    public static let geo = TableSchema(name: "geo", columns: [
        ColumnSpec("ind", .int64), ColumnSpec("country", .string, dictionary: true), ColumnSpec("coordinates", .doublePair),
        ColumnSpec("timestamp", .timestamp),
    ])
    public static let user = TableSchema(name: "user", columns: [
        ColumnSpec("ind", .int64), ColumnSpec("user_name", .string, dictionary: true), ColumnSpec("age", .int64),
        ColumnSpec("date_joined", .timestamp),
    ])

    public static func schema(_ k: RecordKind) -> TableSchema {
        switch k {
        case .pin: pin
        case .geo: geo
        case .user: user
        }
    }

    /// The default partition column per table (from the spec: pins by category, the others none).
    public static func defaultPartition(_ k: RecordKind) -> String? { k.defaultPartitionColumn }
}

public struct CleanOptions: Sendable {
    public var tablesDir: String
    public var write = TableWriteOptions()
    /// Partition column per table (nil = unpartitioned).
    public var partitionBy: [RecordKind: String?] = RecordKind.defaultPartitionColumns
    public var batchRows = 16_384
    /// Threads that parse one table's input, each a byte range at a time (ranges of `rangeBytes`, cut at line
    /// ends of a jsonl file or a landing root's objects, or at batch starts of the embedded log's segments; the
    /// write stage takes them in reading order). nil: the usable CPUs shared by the tables that have input;
    /// 1: one parse thread. Records in memory are parsed by one thread.
    public var parseThreads: Int?
    public var rangeBytes = 8 << 20
    /// Input bytes per batch, at most about this much (a batch is cut here even short of its rows): its
    /// string columns address their bytes with 32-bit offsets, and a record may be up to 1 GiB.
    public var batchBytes = 64 << 20
    /// Records longer than this go to the dead-letter file.
    public var maxRecordBytes = 1 << 20
    /// Delta `txn` for idempotent runs (a batch day): the commit is skipped when already in the log.
    public var transaction: (appId: String, version: Int)?
    /// Per table, the transaction's version instead of `transaction.version` (a batch day: the records landed).
    public var transactionVersions: [RecordKind: Int] = [:]
    /// Per table, files (table-relative paths) the commit removes: a batch day redone replaces its rows.
    public var removes: [RecordKind: [String]] = [:]
    /// Stored in each table's commit as `commitInfo.pinbench` (streaming checkpoints); with it a commit is
    /// written even when no row survives, so the checkpoint still moves.
    public var commitInfo: [RecordKind: JSONValue] = [:]
    /// Run the three tables on separate threads.
    public var parallel = true
    /// The tables to clean (a re-run skips those that already hold its commit).
    public var kinds = RecordKind.allCases
    /// Records read so far (bumped every 4,096), for a progress line.
    public var progress: ProgressCounter?
    /// Raised (Ctrl-C): the run ends within 4,096 records with `CleanError.interrupted` and commits nothing
    /// (Parquet files written so far are in no table's log: readers never see them).
    public var stop: StopFlag?

    public init(tablesDir: String) { self.tablesDir = tablesDir }

    /// `pin=category,geo=country,user=none`: a partition column (a string column of the cleaned table) or none per table.
    public static func parsePartitionBy(_ s: String) throws(CleanError) -> [(RecordKind, String?)] {
        var out: [(RecordKind, String?)] = []
        for item in s.split(separator: ",") {
            let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let k = RecordKind(name: kv[0]) else {
                throw CleanError("--partition-by takes TABLE=COLUMN items (tables pin, geo, user), got '\(item)'")
            }
            if kv[1] == "none" { out.append((k, nil)); continue }
            let schema = CleanSchemas.schema(k)
            guard let c = schema.columns.first(where: { $0.name == kv[1] }), c.type == .string else {
                let strings = schema.columns.filter { $0.type == .string }.map(\.name).joined(separator: ", ")
                throw CleanError("--partition-by \(k.name)=\(kv[1]): partition by one of \(strings), or none")
            }
            out.append((k, kv[1]))
        }
        return out
    }
}

/// Per-table accounting: `records_in == written + duplicates + dead_lettered`, always.
public struct KindReport: Sendable {
    public var kind: RecordKind
    public var recordsIn = 0
    public var written = 0
    public var duplicates = 0
    public var deadLettered = 0
    public var deadLetterReasons: [String: Int] = [:]
    /// Values made null by the rules (placeholders, empty strings, unparseable counts and timestamps), per column.
    public var nulled: [String: Int] = [:]
    /// Values of the wrong JSON type, made null, per field.
    public var wrongType: [String: Int] = [:]
    public var inputBytes = 0
    public var files = 0
    public var commitVersion: Int?
    public var skippedCommit = false
    public var deadLetterPath: String?

    public var balanced: Bool { recordsIn == written + duplicates + deadLettered }
}

public struct CleanReport: Sendable {
    public var tables: [KindReport]
    public var seconds: Double
    public var recordsIn: Int { tables.reduce(0) { $0 + $1.recordsIn } }
    public var inputBytes: Int { tables.reduce(0) { $0 + $1.inputBytes } }

    /// What `pinbench clean` prints: speed, then one row per table.
    public func summary(source: CleanSource) -> String {
        func pad(_ v: Int, _ n: Int) -> String { let s = String(v); return String(repeating: " ", count: max(0, n - s.count)) + s }
        var out = "cleaned \(source.description) in \(fmt(seconds, 2)) s: \(recordsIn) records, "
            + "\(fmt(Double(recordsIn) / max(seconds, 1e-9), 0)) records/s, \(fmt(Double(inputBytes) / 1e6 / max(seconds, 1e-9), 1)) MB/s\n"
        out += "table  records_in    written  duplicates  dead_lettered  files  commit\n"
        for t in tables {
            let commit = t.skippedCommit ? "skipped (already committed)" : t.commitVersion.map { "v\($0)" } ?? "-"
            out += t.kind.name + String(repeating: " ", count: max(0, 5 - t.kind.name.count))
                + "  \(pad(t.recordsIn, 10)) \(pad(t.written, 10))  \(pad(t.duplicates, 10))  \(pad(t.deadLettered, 13))  \(pad(t.files, 5))  " + commit + "\n"
            if let p = t.deadLetterPath {
                out += "       dead letters: \(p) \(t.deadLetterReasons.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))\n"
            }
        }
        return out
    }

    public func json() -> JSONValue {
        func counts(_ d: [String: Int]) -> JSONValue { .object(d.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) }) }
        return .object([
            ("seconds", .double(seconds)),
            ("records_in", .int(recordsIn)),
            ("input_bytes", .int(inputBytes)),
            ("records_per_s", .double(seconds > 0 ? Double(recordsIn) / seconds : 0)),
            ("tables", .array(tables.map { t in
                .object([
                    ("table", .string(t.kind.name)), ("records_in", .int(t.recordsIn)), ("written", .int(t.written)),
                    ("duplicates", .int(t.duplicates)), ("dead_lettered", .int(t.deadLettered)),
                    ("balanced", .bool(t.balanced)), ("dead_letter_reasons", counts(t.deadLetterReasons)),
                    ("nulled", counts(t.nulled)), ("wrong_type", counts(t.wrongType)), ("files", .int(t.files)),
                    ("commit_version", t.commitVersion.map { .int($0) } ?? .null), ("skipped_commit", .bool(t.skippedCommit)),
                    ("dead_letter_file", t.deadLetterPath.map { .string($0) } ?? .null),
                ])
            })),
        ])
    }
}

public struct CleanError: Error, CustomStringConvertible {
    public var description: String
    /// The run was stopped (`CleanOptions.stop`), not failed.
    public var isInterrupted = false
    public init(_ d: String) { description = d }

    public static let interrupted: CleanError = {
        var e = CleanError("interrupted: a table not finished got no commit (its Parquet files so far are in no log); a re-run cleans it")
        e.isInterrupted = true
        return e
    }()
}

/// Batch cleaning: reads a source, cleans each table's records in column batches, removes duplicates,
/// dead-letters what cannot be a row, writes Parquet files and appends one Delta commit per table.
public enum Cleaner {
    public static func run(source: CleanSource, options: CleanOptions, now: @escaping @Sendable () -> Int64 = { wallMillis() }) throws -> CleanReport {
        let t0 = monotonicSeconds()
        try createDirectories(options.tablesDir)
        let kinds = options.kinds
        let results = ResultBox(count: kinds.count)
        let work: @Sendable (Int) -> Void = { (i: Int) in
            let k = kinds[i]
            results.set(i, Result { try cleanKind(k, source: source, options: options, now: now) })
        }
        if options.parallel {
            // Real threads (not Dispatch's width-limited pool): each table's write stage blocks on a queue.
            let threads = kinds.indices.map { i in StageThread(name: "clean-\(kinds[i].name)") { work(i) } }
            for t in threads { t.join() }
        } else {
            for i in kinds.indices { work(i) }
        }
        var reports: [KindReport] = []
        for r in results.values { reports.append(try r!.get()) }
        return CleanReport(tables: reports, seconds: monotonicSeconds() - t0)
    }

    /// The Delta `txn` app id of one table's commit for a run with transaction `appId`.
    public static func transactionAppId(_ appId: String, _ kind: RecordKind) -> String { "\(appId)/\(kind.name)" }

    /// The tables under `tablesDir` that already hold the commit of transaction `appId`.
    public static func committedKinds(tablesDir: String, appId: String) throws -> [RecordKind] {
        try RecordKind.allCases.filter { k in
            (try DeltaLog(table: "\(tablesDir)/\(k.name)").snapshot())?.transactions[transactionAppId(appId, k)] != nil
        }
    }

    /// Whether every table under `tablesDir` already holds the commit of transaction `appId`.
    public static func isCommitted(tablesDir: String, appId: String) throws -> Bool {
        try RecordKind.allCases.allSatisfy { k in
            (try DeltaLog(table: "\(tablesDir)/\(k.name)").snapshot())?.transactions[transactionAppId(appId, k)] != nil
        }
    }

    static func cleanKind(_ kind: RecordKind, source: CleanSource, options: CleanOptions, now: () -> Int64) throws -> KindReport {
        var write = options.write
        write.partitionBy = options.partitionBy[kind] ?? CleanSchemas.defaultPartition(kind)
        let table = "\(options.tablesDir)/\(kind.name)"
        let writer = try PartitionedTableWriter(table: table, schema: CleanSchemas.schema(kind), options: write)
        let deadLetter = DeadLetterWriter(path: "\(options.tablesDir)/_dead_letter/\(kind.name)-\(writer.runId).jsonl", kind: kind)
        if case let threads = parseThreads(options, source: source), threads > 1,
           let ranges = try source.parseRanges(kind, every: options.rangeBytes), ranges.reduce(0, { $0 + $1.end - $1.start }) >= 2 * options.rangeBytes {
            let report = try ParallelParse(kind: kind, ranges: ranges, options: options, threads: threads,
                                           writer: writer, deadLetter: deadLetter).run()
            return try commit(kind, report, writer: writer, deadLetter: deadLetter, table: table, options: options, now: now)
        }
        let cleaner = KindCleaner(kind: kind, batchRows: options.batchRows, batchBytes: options.batchBytes, writer: writer, deadLetter: deadLetter)
        var unreported = 0
        try source.forEachRecord(kind: kind, maxRecordBytes: options.maxRecordBytes) { rec in
            unreported += 1
            if unreported == 4096 {
                options.progress?.add(unreported)
                unreported = 0
                if options.stop?.isSet == true { throw CleanError.interrupted }
            }
            try cleaner.take(rec)
        }
        options.progress?.add(unreported)
        try cleaner.finish()
        return try commit(kind, cleaner.report, writer: writer, deadLetter: deadLetter, table: table, options: options, now: now)
    }

    /// Parse threads for one table: the option, or the usable CPUs shared by the tables that have input.
    static func parseThreads(_ options: CleanOptions, source: CleanSource) -> Int {
        if let n = options.parseThreads { return max(1, n) }
        var busy = 1
        if options.parallel {
            busy = max(1, options.kinds.filter { k in ((try? source.lineFiles(k)) ?? nil)?.contains { (fileSize($0) ?? 0) > 0 } ?? true }.count)
        }
        return max(1, usableCPUs() / busy)
    }

    /// Finishes the table's files and appends its commit.
    static func commit(_ kind: RecordKind, _ cleaned: KindReport, writer: PartitionedTableWriter, deadLetter: DeadLetterWriter,
                       table: String, options: CleanOptions, now: () -> Int64) throws -> KindReport {
        let adds = try writer.finish()
        try deadLetter.close()
        var report = cleaned
        report.files = adds.count
        report.deadLetterPath = deadLetter.written > 0 ? deadLetter.path : nil
        let info = options.commitInfo[kind]
        let removes = options.removes[kind] ?? []
        if !adds.isEmpty || info != nil || !removes.isEmpty || !DeltaLog(table: table).exists {
            let txn = options.transaction.map { (appId: Cleaner.transactionAppId($0.appId, kind), version: options.transactionVersions[kind] ?? $0.version) }
            let v = try DeltaLog(table: table).commitAppend(
                schema: writer.schema, partitionColumns: writer.partitionColumns, files: adds, txn: txn, info: info,
                removes: removes, nowMs: now())
            report.commitVersion = v
            report.skippedCommit = v == nil
        }
        precondition(report.balanced, "accounting: \(report)")
        return report
    }
}

/// Collects per-thread results.
final class ResultBox: Sendable {
    private let items: Mutex<[Result<KindReport, any Error>?]>
    init(count: Int) { items = Mutex(Array(repeating: nil, count: count)) }
    func set(_ i: Int, _ r: sending Result<KindReport, any Error>) { items.withLock { $0[i] = r } }
    var values: [Result<KindReport, any Error>?] { items.withLock { $0 } }
}


// MARK: one table

/// Parses one table's records straight into column buffers and runs the kernels on each full batch.
final class KindCleaner {
    let kind: RecordKind
    let batchRows: Int
    let batchBytes: Int
    /// Input bytes in the batch being filled.
    var jobBytes = 0
    let writer: PartitionedTableWriter
    let deadLetterWriter: DeadLetterWriter
    var report: KindReport
    /// The batch being filled; full ones go to the write stage (dedupe, partition, encode, compress,
    /// write) on its own thread, so parsing and writing one table use two cores.
    var job: CleanJob
    var out: ColumnBatch { job.batch }
    let free = Channel<CleanJob>()
    let full = Channel<CleanJob>()
    var writeThread: StageThread?
    let stage = WriteStage()
    let keys: JSONKeyTable
    let fields: UnsafeMutableBufferPointer<JSONField>
    /// The open job's columns by output index, unretained, bound at every job swap: the per-record path
    /// reaches them without reference counting (a retain and release per field cost about 5% of a clean).
    /// Indices of other types hold a placeholder.
    let strViews: UnsafeMutablePointer<Unmanaged<StringColumn>>
    let intViews: UnsafeMutablePointer<Unmanaged<Int64Column>>
    let dblViews: UnsafeMutablePointer<(Unmanaged<DoubleColumn>, Unmanaged<DoubleColumn>)>
    let placeholders = (StringColumn(), Int64Column(), DoubleColumn())
    /// Raw text columns that kernels turn into typed output columns.
    let rawA = StringColumn(capacity: 1024)
    let rawB = StringColumn(capacity: 1024)
    let rawC = StringColumn(capacity: 1024)
    var rawViews: (Unmanaged<StringColumn>, Unmanaged<StringColumn>, Unmanaged<StringColumn>) {
        (.passUnretained(rawA), .passUnretained(rawB), .passUnretained(rawC))
    }

    static let descriptionPlaceholders: [[UInt8]] = Placeholder.descriptions.map { Array($0.utf8) }
    static let titlePlaceholder: [[UInt8]] = [Array(Placeholder.title.utf8)]
    static let userInfoError: [[UInt8]] = [Array(Placeholder.userInfoError.utf8)]
    static let tagPlaceholder: [[UInt8]] = [Array(Placeholder.tagList.utf8)]
    static let imagePlaceholder: [[UInt8]] = [Array(Placeholder.imageSrc.utf8)]
    static let savePrefix: [UInt8] = Array(Placeholder.saveLocationPrefix.utf8)

    /// A parse worker of a parallel clean: no write stage of its own; a job is filled with one byte range
    /// (`fill`), its dead letters kept in the job for the ordered write stage.
    let isWorker: Bool

    init(kind: RecordKind, batchRows: Int, batchBytes: Int, writer: PartitionedTableWriter, deadLetter: DeadLetterWriter,
         worker: Bool = false) {
        self.kind = kind
        self.batchRows = worker ? Int.max : batchRows
        self.batchBytes = worker ? Int.max : batchBytes
        self.writer = writer
        self.deadLetterWriter = deadLetter
        isWorker = worker
        report = KindReport(kind: kind)
        job = CleanJob(schema: CleanSchemas.schema(kind), capacity: worker ? 16 : batchRows)
        if !worker { for _ in 0..<2 { free.put(CleanJob(schema: CleanSchemas.schema(kind), capacity: batchRows)) } }
        switch kind {
        case .pin: keys = PinRecord.keyTable
        case .geo: keys = GeoRecord.keyTable
        case .user: keys = UserRecord.keyTable
        }
        fields = .allocate(capacity: 16)
        let width = CleanSchemas.schema(kind).columns.count
        strViews = .allocate(capacity: width)
        strViews.initialize(repeating: .passUnretained(placeholders.0), count: width)
        intViews = .allocate(capacity: width)
        intViews.initialize(repeating: .passUnretained(placeholders.1), count: width)
        dblViews = .allocate(capacity: width)
        dblViews.initialize(repeating: (.passUnretained(placeholders.2), .passUnretained(placeholders.2)), count: width)
        let (full, free, stage, writer) = (self.full, self.free, self.stage, self.writer)
        nonisolated(unsafe) let w = writer
        if worker {
            bindViews()
            return
        }
        writeThread = StageThread(name: "clean-write-\(kind.name)") {
            while let j = full.take() {
                if stage.error == nil {
                    do { try stage.write(j, to: w) } catch { stage.error = error }
                }
                j.batch.reset()
                free.put(j)
            }
        }
        bindViews()
    }

    /// Points the views at the open job's columns (the job owns them: they live while it is open).
    func bindViews() {
        for (i, c) in job.batch.columns.enumerated() {
            switch c {
            case .string(let v): strViews[i] = .passUnretained(v)
            case .int64(let v), .timestamp(let v): intViews[i] = .passUnretained(v)
            case .doublePair(let a, let b): dblViews[i] = (.passUnretained(a), .passUnretained(b))
            case .double(let v): dblViews[i] = (.passUnretained(v), .passUnretained(v))
            }
        }
    }

    /// Flushes the last batch and waits for the write stage.
    func finish() throws {
        try flush()
        full.close()
        if let t = writeThread { t.join(); writeThread = nil }
        if let e = stage.error { throw e }
        report.written = stage.written
        report.duplicates = stage.duplicates
    }

    deinit {
        fields.deallocate()
        strViews.deallocate()
        intViews.deallocate()
        dblViews.deallocate()
    }

    func deadLetter(_ bytes: UnsafeRawBufferPointer, reason: String, source: String) throws {
        report.deadLettered += 1
        let key = reason.split(separator: ":").first.map(String.init) ?? reason
        report.deadLetterReasons[key, default: 0] += 1
        if isWorker {
            // The write stage writes it, in file order, with its absolute line number.
            job.deadLetters.append((Array(bytes), reason, source))
        } else {
            try deadLetterWriter.write(bytes, reason: reason, source: source)
        }
    }

    /// Worker mode: parses `lines` into `j` (the kernels run at the end), and returns how many lines the range
    /// had. Dead letters name their line as `#<line in the range>`; the write stage makes it absolute.
    func fill(_ j: CleanJob, maxRecordBytes: Int, _ forEachLine: ((SourceRecord) throws -> Void) throws -> Void) throws {
        job = j
        bindViews()
        try forEachLine { try take($0) }
        runKernels()
    }

    /// One record as a source handed it over: parsed into the batch, or dead-lettered with the problem the
    /// source found (oversize, no value).
    @inline(__always)
    func take(_ rec: SourceRecord) throws {
        report.inputBytes += rec.bytes.count
        switch rec.problem {
        case .none: try add(rec.bytes, source: rec.location)
        case .some(let reason):
            report.recordsIn += 1
            try deadLetter(rec.bytes, reason: reason, source: rec.location())
        }
    }

    @inline(__always)
    func str(_ i: Int) -> StringColumn {
        guard case .string(let c) = out.columns[i] else { preconditionFailure() }
        return c
    }

    @inline(__always)
    func int(_ i: Int) -> Int64Column {
        switch out.columns[i] {
        case .int64(let c), .timestamp(let c): return c
        default: preconditionFailure()
        }
    }

    /// Appends a string field (decoding escapes) or null; counts a value of another JSON type. `field` is the
    /// input field's index (its name is looked up only to count a wrong type).
    @inline(__always)
    func appendString(_ s: JSONScanner, _ field: Int, to column: Unmanaged<StringColumn>, numberAsText: Bool = false) {
        let f = fields[field]
        column._withUnsafeGuaranteedRef { c in
            switch f.kind {
            case .string:
                if !f.escaped {
                    c.append(UnsafeRawBufferPointer(start: s.base + Int(f.start), count: Int(f.end - f.start)))
                } else {
                    try? s.withDecodedString(start: Int(f.start), end: Int(f.end)) { (b: UnsafeRawBufferPointer) throws(JSONError) in c.append(b) }
                }
            case .absent, .null:
                c.appendNull()
            case .number where numberAsText:
                // A count sent as a JSON number: keep its text for the kernel.
                c.append(UnsafeRawBufferPointer(start: s.base + Int(f.start), count: Int(f.end - f.start)))
            default:
                c.appendNull()
                report.wrongType[keys.names[field], default: 0] += 1
            }
        }
    }

    @inline(__always)
    func appendInt(_ s: JSONScanner, _ field: Int, to column: Unmanaged<Int64Column>) {
        let f = fields[field]
        column._withUnsafeGuaranteedRef { c in
            if f.kind == .number, let v = try? s.int(f, name: "") {
                c.append(Int64(v))
            } else {
                if f.kind != .absent && f.kind != .null { report.wrongType[keys.names[field], default: 0] += 1 }
                c.appendNull()
            }
        }
    }

    @inline(__always)
    func appendDouble(_ s: JSONScanner, _ field: Int, to column: Unmanaged<DoubleColumn>) {
        let f = fields[field]
        column._withUnsafeGuaranteedRef { c in
            if f.kind == .number, let v = try? s.double(f, name: "") {
                c.append(v)
            } else {
                if f.kind != .absent && f.kind != .null { report.wrongType[keys.names[field], default: 0] += 1 }
                c.appendNull()
            }
        }
    }

    /// One record: validated and located by the scanner, then appended column by column.
    func add(_ bytes: UnsafeRawBufferPointer, source: () -> String) throws {
        report.recordsIn += 1
        var s = JSONScanner(bytes)
        do {
            try s.scanObject(keys: keys, into: UnsafeMutableBufferPointer(rebasing: fields[0..<keys.names.count]))
        } catch {
            return try deadLetter(bytes, reason: "invalid JSON: \(error)", source: source())
        }
        let keyName = keys.names[0]
        let kf = fields[0]
        guard kf.kind != .absent && kf.kind != .null else {
            return try deadLetter(bytes, reason: "missing key field: \(keyName)", source: source())
        }
        guard kf.kind == .number, let ind = try? s.int(kf, name: keyName) else {
            return try deadLetter(bytes, reason: "key field is not an integer: \(keyName)", source: source())
        }
        intViews[0]._withUnsafeGuaranteedRef { $0.append(Int64(ind)) }
        switch kind {
        case .pin:
            // Input fields by their spec position (PinField), output columns by CleanSchemas.pin's order.
            appendString(s, PinField.uniqueId.rawValue, to: strViews[1])
            appendString(s, PinField.title.rawValue, to: strViews[2])
            appendString(s, PinField.description.rawValue, to: strViews[3])
            appendString(s, PinField.posterName.rawValue, to: strViews[5])
            appendString(s, PinField.followerCount.rawValue, to: rawViews.0, numberAsText: true)
            appendString(s, PinField.tagList.rawValue, to: strViews[6])
            appendString(s, PinField.isImageOrVideo.rawValue, to: strViews[7])
            appendString(s, PinField.imageSrc.rawValue, to: strViews[8])
            appendString(s, PinField.saveLocation.rawValue, to: strViews[9])
            appendString(s, PinField.category.rawValue, to: strViews[10])
        case .geo:
            appendString(s, GeoField.timestamp.rawValue, to: rawViews.0)
            appendDouble(s, GeoField.latitude.rawValue, to: dblViews[2].0)
            appendDouble(s, GeoField.longitude.rawValue, to: dblViews[2].1)
            appendString(s, GeoField.country.rawValue, to: strViews[1])
        case .user:
            appendString(s, UserField.firstName.rawValue, to: rawViews.0)
            appendString(s, UserField.lastName.rawValue, to: rawViews.1)
            appendInt(s, UserField.age.rawValue, to: intViews[2])
            appendString(s, UserField.dateJoined.rawValue, to: rawViews.2)
        }
        jobBytes += bytes.count
        if rawA.count >= batchRows || jobBytes >= batchBytes { try flush() }
    }

    private func noteNulls(_ name: String, _ n: Int) { if n > 0 { report.nulled[name, default: 0] += n } }

    /// Runs the kernels over the batch, removes duplicates and hands the rows to the table writer.
    func flush() throws {
        guard rawA.count > 0 else { return }
        runKernels()
        if let e = stage.error { throw e }
        full.put(job)
        job = free.take()!
        bindViews()
    }

    /// The rules over the open job's columns, then its rows' fingerprints.
    func runKernels() {
        jobBytes = 0
        switch kind {
        case .pin:
            noteNulls("unique_id", Kernels.nullPlaceholders(str(1), []))
            noteNulls("title", Kernels.nullPlaceholders(str(2), KindCleaner.titlePlaceholder))
            noteNulls("description", Kernels.nullPlaceholders(str(3), KindCleaner.descriptionPlaceholders))
            noteNulls("poster_name", Kernels.nullPlaceholders(str(5), KindCleaner.userInfoError))
            noteNulls("tag_list", Kernels.nullPlaceholders(str(6), KindCleaner.tagPlaceholder))
            noteNulls("is_image_or_video", Kernels.nullPlaceholders(str(7), []))
            noteNulls("image_src", Kernels.nullPlaceholders(str(8), KindCleaner.imagePlaceholder))
            noteNulls("save_location", Kernels.nullPlaceholders(str(9), []))
            noteNulls("category", Kernels.nullPlaceholders(str(10), []))
            noteNulls("follower_count", Kernels.nullPlaceholders(rawA, KindCleaner.userInfoError))
            noteNulls("follower_count", Kernels.parseFollowerCounts(rawA, into: int(4)))
            Kernels.stripPrefix(str(9), KindCleaner.savePrefix)
        case .geo:
            noteNulls("country", Kernels.nullPlaceholders(str(1), []))
            noteNulls("timestamp", Kernels.nullPlaceholders(rawA, []))
            noteNulls("timestamp", Kernels.parseTimestamps(rawA, into: int(3)))
        case .user:
            noteNulls("user_name", Kernels.nullPlaceholders(rawA, []) + Kernels.nullPlaceholders(rawB, []))
            Kernels.joinNames(rawA, rawB, into: str(1))
            noteNulls("date_joined", Kernels.nullPlaceholders(rawC, []))
            noteNulls("date_joined", Kernels.parseTimestamps(rawC, into: int(3)))
        }
        rawA.reset(); rawB.reset(); rawC.reset()
        Kernels.rowHashes(out, job.h1, job.h2)
    }
}

/// A batch on its way to the write stage, with its rows' fingerprints.
final class CleanJob: @unchecked Sendable {
    let batch: ColumnBatch
    let h1 = ColumnVector<UInt64>()
    let h2 = ColumnVector<UInt64>()
    /// A parallel clean's range: its dead letters (record, reason, `#line` in the range) and line count.
    var deadLetters: [([UInt8], String, String)] = []
    var lines = 0
    init(schema: TableSchema, capacity: Int) { batch = ColumnBatch(schema: schema, capacity: capacity) }
}

/// The write stage of one table: drops rows seen before (128-bit fingerprints, first kept), then hands
/// the rest to the table writer. Runs on one thread; its counters are read after it finished.
final class WriteStage: @unchecked Sendable {
    let seen = FingerprintSet()
    var written = 0
    var duplicates = 0
    var error: (any Error)?
    var keep: [Int32] = []

    func write(_ job: CleanJob, to writer: PartitionedTableWriter) throws {
        let out = job.batch
        let n = out.rowCount
        keep.removeAll(keepingCapacity: true)
        for i in 0..<n where seen.insert(job.h1[i], job.h2[i]) { keep.append(Int32(i)) }
        if keep.count == n {
            try writer.append(out)
        } else {
            let kept = ColumnBatch(schema: out.schema, capacity: keep.count)
            keep.withUnsafeBufferPointer { kept.append(from: out, rows: $0) }
            try writer.append(kept)
        }
        written += keep.count
        duplicates += n - keep.count
    }
}

// MARK: dead letters

/// `<tables>/_dead_letter/<table>-<run>.jsonl`: one JSON object per refused record with where it came
/// from, why, and the record itself (as text when it is UTF-8, else base64). Created on the first record.
final class DeadLetterWriter {
    let path: String
    let kind: RecordKind
    private var file: UnsafeMutablePointer<FILE>?
    private let line = ByteBuffer(capacity: 4096)
    private(set) var written = 0

    init(path: String, kind: RecordKind) {
        self.path = path
        self.kind = kind
    }

    func write(_ record: UnsafeRawBufferPointer, reason: String, source: String) throws {
        if file == nil {
            let dir = String(path[..<path.lastIndex(of: "/")!])
            try createDirectories(dir)
            guard let f = fopen(path, "a") else { throw CleanError("cannot create \(path): \(String(cString: strerror(errno)))") }
            file = f
        }
        line.reset()
        var w = JSONWriter(into: line)
        w.beginObject()
        w.field("table", kind.name)
        w.field("source", source)
        w.field("reason", reason)
        w.field("bytes", record.count)
        if String(validating: record, as: UTF8.self) != nil {
            w.field("record", bytes: record)
        } else {
            w.field("record_base64", Base64.encode(Array(record)))
        }
        w.endObject()
        line.append(UInt8(ascii: "\n"))
        guard fwrite(line.base, 1, line.count, file) == line.count else {
            throw CleanError("write \(path): \(String(cString: strerror(errno)))")
        }
        written += 1
    }

    func close() throws {
        guard let f = file else { return }
        file = nil
        if fflush(f) != 0 || fsync(fileno(f)) != 0 {
            let e = errno
            fclose(f)
            throw CleanError("write \(path): \(String(cString: strerror(e)))")
        }
        fclose(f)
    }
}


// MARK: one table, several parse threads

/// One table's input cut into byte ranges (`CleanSource.parseRanges`: a jsonl file's or a landing root's
/// objects' lines, or the embedded log's segments' batches) cleaned by several parse threads: each thread
/// takes the next range and a free job, parses the range into it and runs the kernels; the calling thread
/// takes the jobs in reading order (so rows, duplicates kept and dead letters come out exactly as one
/// thread would give them), writes the dead letters with their locations (a line number within the file,
/// or the record's topic-partition and offset) and hands the rows to the write stage. A thread holds its job
/// before it takes a range, so the range the writer waits for always has one: free jobs never run out under it.
final class ParallelParse: @unchecked Sendable {
    let kind: RecordKind
    let options: CleanOptions
    let threads: Int
    let writer: PartitionedTableWriter
    let deadLetter: DeadLetterWriter
    /// Byte ranges in reading order, each within one file.
    let ranges: [ParseRange]
    let free = Channel<CleanJob>()
    private let lock = ConditionLock()
    private var done: [Int: CleanJob] = [:]
    private var failure: (any Error)?
    private let next = Atomic<Int>(0)

    init(kind: RecordKind, ranges: [ParseRange], options: CleanOptions, threads: Int, writer: PartitionedTableWriter,
         deadLetter: DeadLetterWriter) {
        self.kind = kind
        self.options = options
        self.threads = threads
        self.writer = writer
        self.deadLetter = deadLetter
        self.ranges = ranges
        for _ in 0..<(threads + 2) { free.put(CleanJob(schema: CleanSchemas.schema(kind), capacity: 1024)) }
    }

    func run() throws -> KindReport {
        let cleaners = (0..<threads).map { _ in
            KindCleaner(kind: kind, batchRows: options.batchRows, batchBytes: options.batchBytes, writer: writer, deadLetter: deadLetter, worker: true)
        }
        let workers = cleaners.enumerated().map { i, c in
            nonisolated(unsafe) let c = c
            return StageThread(name: "clean-parse-\(kind.name)-\(i)") { self.work(c) }
        }
        let stage = WriteStage()
        var lines = 0
        var caught: (any Error)?
        for r in ranges.indices {
            let job: CleanJob? = lock.wait(until: { done[r] != nil || failure != nil }) { done.removeValue(forKey: r) }
            guard let job else { break }
            let path = ranges[r].path
            let isLines = ranges[r].log == nil
            if r > 0 && ranges[r - 1].path != path { lines = 0 }  // line numbers count within each file
            if caught == nil {
                do {
                    for (bytes, reason, at) in job.deadLetters {
                        // A line is numbered within its range (`#n`); a log record carries its own place.
                        let source = isLines ? "\(path):\(lines + (Int(at.dropFirst()) ?? 0))" : at
                        try bytes.withUnsafeBytes { try deadLetter.write($0, reason: reason, source: source) }
                    }
                    try stage.write(job, to: writer)
                } catch { caught = error }
            }
            lines += job.lines
            job.batch.reset()
            job.deadLetters.removeAll()
            free.put(job)
        }
        free.close()
        for w in workers { w.join() }
        if let e = caught ?? lock.withLock({ failure }) { throw e }
        var report = KindReport(kind: kind)
        for c in cleaners {
            let r = c.report
            report.recordsIn += r.recordsIn
            report.inputBytes += r.inputBytes
            report.deadLettered += r.deadLettered
            report.deadLetterReasons.merge(r.deadLetterReasons, uniquingKeysWith: +)
            report.nulled.merge(r.nulled, uniquingKeysWith: +)
            report.wrongType.merge(r.wrongType, uniquingKeysWith: +)
        }
        report.written = stage.written
        report.duplicates = stage.duplicates
        return report
    }

    /// A parse thread: a free job, then the next range, until none is left or something failed.
    private func work(_ cleaner: KindCleaner) {
        var fd: Int32 = -1, openPath: String? = nil
        defer { if fd >= 0 { close(fd) } }
        let buf = ByteBuffer(capacity: options.rangeBytes + 4096)
        let codec = Codec(), scratch = ByteBuffer(capacity: 1 << 20)
        while let job = free.take() {
            let r = next.add(1, ordering: .relaxed).oldValue
            guard r < ranges.count, lock.withLock({ failure == nil }) else { free.put(job); return }
            if options.stop?.isSet == true { return fail(CleanError.interrupted) }
            do {
                let (path, start, end) = (ranges[r].path, ranges[r].start, ranges[r].end)
                if openPath != path {
                    if fd >= 0 { close(fd) }
                    fd = open(path, O_RDONLY | O_CLOEXEC)
                    openPath = path
                    if fd < 0 { throw CleanError("cannot open \(path): \(String(cString: strerror(errno)))") }
                }
                buf.reset()
                let got = preadFully(fd, buf.reserve(end - start), count: end - start, offset: start)
                if got < 0 { throw CleanError("read \(path): \(String(cString: strerror(errno)))") }
                if got < end - start { throw CleanError("\(path) shrank while it was cleaned") }
                buf.count = got
                var count = 0
                let bytes = UnsafeRawBufferPointer(start: buf.base, count: got), max = options.maxRecordBytes
                try cleaner.fill(job, maxRecordBytes: max) { body in
                    if let log = ranges[r].log {
                        try LogInspector.forEachRecord(inSegment: path, bytes: bytes, firstByte: start, expectedBase: log.expectedBase,
                                                       gaps: log.gaps, codec: codec, scratch: scratch) { rec in
                            try body(SourceRecord(log: rec, topic: log.topic, partition: log.partition, maxRecordBytes: max))
                        }
                    } else {
                        count = try forEachLine(in: bytes, maxRecordBytes: max, body)
                    }
                }
                job.lines = count
                options.progress?.add(job.batch.rowCount + job.deadLetters.count)
            } catch {
                return fail(error)
            }
            lock.withLock { done[r] = job }
            lock.broadcast()
        }
    }

    private func fail(_ e: any Error) {
        lock.withLock { if failure == nil { failure = e } }
        lock.broadcast()
    }
}

/// Calls `body` for every non-empty line of `text` (`Lines`: without its `\n` / `\r\n`, the last one needing no
/// newline), located as `#<line>` (1-based within `text`), or as `<path>:<line>` counting on from `linesBefore`;
/// returns how many lines it had. A line longer than `maxRecordBytes` comes with a problem set.
func forEachLine(in text: UnsafeRawBufferPointer, maxRecordBytes: Int, path: String? = nil, linesBefore: Int = 0,
                 _ body: (SourceRecord) throws -> Void) throws -> Int {
    try Lines.forEach(in: text) { (line, number) throws(any Error) -> Bool in
        let n = linesBefore + number
        try body(SourceRecord(bytes: line, problem: line.count > maxRecordBytes ? "record over \(maxRecordBytes) bytes: \(line.count)" : nil,
                              location: { path.map { "\($0):\(n)" } ?? "#\(n)" }))
        return true
    }
}
