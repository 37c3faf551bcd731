import Analytics
import Cleaning
import Codecs
import JSON
import Landing
import PinModel
import Platform
import TableStore

/// What the analyses of a batch day cover: the day's records, or the whole tables.
public enum AnalysisScope: String, Sendable, CaseIterable {
    case day, all
}

/// One day's batch job, as the Airflow DAG runs it: land the records whose Kafka timestamp falls on the
/// day into `<landing>/date=<day>`, clean what of them is not in the tables yet, then write the analyses to
/// `<out>/date=<day>/q1.csv … q9.csv`.
///
/// Re-runnable: each table's commit for the day carries (in `commitInfo.pinbench`, key `batch/<day>`) how
/// many lines of every landed object it holds, so a re-run cleans exactly the records landed since (the
/// landing only grows: objects are named by offsets and the last one is re-landed whole), and its Delta
/// `txn` (`pinbench-batch-<day>/<table>`, version = the day's records landed for that table) keeps two runs
/// at once from landing the same records twice. `force` redoes the day: the new commit removes the files
/// the day's earlier commits added. A day without records is reported as such and marked nothing.
public struct BatchDayOptions {
    public var date: String
    public var landing = "out/landing"
    public var tables = "out/tables"
    public var out = "out/analysis"
    public var topicPrefix = "pinbench"
    public var flushRecords = 10_000
    public var compression: CompressionCodec = .snappy
    public var force = false
    public var scope = AnalysisScope.day

    public init(date: String) { self.date = date }

    public var transactionId: String { "pinbench-batch-\(date)" }
    public var commitKey: String { "batch/\(date)" }
    public var landingRoot: String { "\(landing)/date=\(date)" }
    public var analysisDir: String { "\(out)/date=\(date)" }
}

public struct BatchDayReport {
    public var landed: LandingReport
    /// Records of the day in the landing (this run's and earlier runs').
    public var dayRecords: Int
    /// Records cleaned into the tables by this run (nil: nothing new, not cleaned).
    public var cleaned: CleanReport?
    public var source: CleanSource
    public var analysedRows: (pin: Int, geo: Int, user: Int)
    public var forced: Bool

    /// What `pinbench batch` prints.
    public func summary(_ o: BatchDayOptions) -> String {
        if dayRecords == 0 {
            return "no records on \(o.date) in the source: nothing landed, cleaned or analysed, and the day is not marked done\n"
        }
        let clean = cleaned.map { (forced ? "redone (--force): " : "") + $0.summary(source: source) }
            ?? "\(o.tables) already holds every record of \(o.date) (\(dayRecords) landed): nothing new to clean (--force redoes the day)\n"
        let scope = o.scope == .day ? "the \(dayRecords) records of \(o.date)" : "the whole tables"
        return landed.summary(root: o.landingRoot) + "\n" + clean
            + "analysed \(scope) (--scope \(o.scope.rawValue)): pin \(analysedRows.pin), geo \(analysedRows.geo), user \(analysedRows.user) rows; wrote \(o.analysisDir)/q1.csv … q9.csv\n"
    }
}

public enum BatchDay {
    /// Stopped through `stop` (Ctrl-C), it lands up to the object being written, commits no table it had not
    /// finished and throws `CleanError.interrupted`; scratch folders are removed either way.
    public static func run(_ o: BatchDayOptions, from source: LandingSource, progress: ProgressCounter? = nil, stop: StopFlag? = nil) throws -> BatchDayReport {
        guard let range = LandingOptions.dayRange(o.date) else { throw CleanError("--date needs YYYY-MM-DD, got '\(o.date)'") }
        var lo = LandingOptions(root: o.landingRoot, topics: RecordKind.topics(prefix: o.topicPrefix))
        lo.flushRecords = o.flushRecords
        lo.timeRange = range
        lo.progress = progress
        lo.stop = stop
        let landed = try Lander(options: lo).run(from: source)
        if landed.interrupted { throw CleanError.interrupted }
        let src = CleanSource.landing(o.landingRoot, topicPrefix: o.topicPrefix)

        // What the landing holds for the day, per table and object, against what each table holds of it.
        let scratch = "\(o.landing)/.batch-\(o.date)"
        removeTree(scratch)
        defer { removeTree(scratch) }
        var co = CleanOptions(tablesDir: o.tables)
        co.write.codec = o.compression
        co.transaction = (appId: o.transactionId, version: 0)
        co.progress = progress
        co.stop = stop
        var dayRecords = 0, newRecords = 0
        for kind in RecordKind.allCases {
            let topic = kind.topic(prefix: o.topicPrefix)
            let snap = try DeltaLog(table: "\(o.tables)/\(kind.name)").snapshot()
            let prior = o.force ? [:] : (snap?.pinbenchInfoByKey[o.commitKey]?["objects"]?.objectValue ?? []).reduce(into: [String: Int]()) { $0[$1.0] = $1.1.intValue ?? 0 }
            // Each landed object is read once: its lines counted, and those the table lacks copied to scratch.
            let topicDir = "\(o.landingRoot)/topics/\(topic)"
            var objects: [(name: String, lines: Int)] = []
            var fresh = 0
            for name in try landedObjectNames(topicDir) {
                let bytes = try readWhole("\(topicDir)/\(name)")
                let lines = countLines(bytes)
                objects.append((name, lines))
                let skip = max(0, prior[name] ?? 0)  // the log is input: a negative count means none
                guard lines > skip else { continue }
                fresh += lines - skip
                try write(bytes, skippingLines: skip, to: "\(scratch)/topics/\(topic)/\(name)")
            }
            let total = objects.reduce(0) { $0 + $1.lines }
            dayRecords += total
            guard fresh > 0 || (o.force && total > 0) else { continue }
            newRecords += fresh
            let appId = Cleaner.transactionAppId(o.transactionId, kind)
            co.transactionVersions[kind] = max(total, (snap?.transactions[appId] ?? -1) + 1)
            co.commitInfo[kind] = .object([("key", .string(o.commitKey)),
                                           ("objects", .object(objects.map { ($0.name, .int($0.lines)) }))])
            if o.force { co.removes[kind] = snap?.filesByKey[o.commitKey] ?? [] }
        }
        guard dayRecords > 0 else {
            return BatchDayReport(landed: landed, dayRecords: 0, cleaned: nil, source: src, analysedRows: (0, 0, 0), forced: o.force)
        }
        var cleaned: CleanReport?
        if newRecords > 0 || o.force {
            // Only the tables with something new get a commit (the others keep their last one for the day).
            cleaned = try Cleaner.run(source: .landing(scratch, topicPrefix: o.topicPrefix), options: co)
        }
        let rows: (pin: Int, geo: Int, user: Int)
        switch o.scope {
        case .all:
            (_, rows) = try Analysis.writeAll(tables: o.tables, out: o.analysisDir)
        case .day:
            // The day's records alone: cleaned once more into scratch tables, analysed, dropped.
            let dayTables = "\(scratch)/day-tables"
            var dco = CleanOptions(tablesDir: dayTables)
            dco.write.codec = .none
            dco.stop = stop
            _ = try Cleaner.run(source: src, options: dco)
            (_, rows) = try Analysis.writeAll(tables: dayTables, out: o.analysisDir)
        }
        let scopeJSON = JSONValue.object([("scope", .string(o.scope.rawValue)), ("date", .string(o.date)),
                                          ("rows", .object([("pin", .int(rows.pin)), ("geo", .int(rows.geo)), ("user", .int(rows.user))]))])
        try replaceFileAtomically("\(o.analysisDir)/scope.json", text: scopeJSON.serialized(pretty: false) + "\n")
        return BatchDayReport(landed: landed, dayRecords: dayRecords, cleaned: cleaned, source: src, analysedRows: rows, forced: o.force)
    }

    /// The landed objects under a topic folder, as `partition=<p>/<name>.json`.
    static func landedObjectNames(_ topicDir: String) throws -> [String] {
        guard isDirectory(topicDir) else { return [] }
        var out: [String] = []
        for part in try listDirectory(topicDir).filter({ $0.hasPrefix("partition=") }).sorted() {
            for f in try listDirectory("\(topicDir)/\(part)").filter({ $0.hasSuffix(".json") && !$0.hasPrefix(".") }).sorted() {
                out.append("\(part)/\(f)")
            }
        }
        return out
    }

    /// Writes `bytes` without their first `skipping` lines (the ones a table already holds).
    static func write(_ bytes: [UInt8], skippingLines skipping: Int, to: String) throws {
        var start = 0, seen = 0
        while seen < skipping, start < bytes.count {
            if let nl = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) { start = nl + 1 } else { start = bytes.count }
            seen += 1
        }
        if let slash = to.lastIndex(of: "/") { try makeDirectories(String(to[..<slash])) }
        try bytes[start...].withUnsafeBytes { try writeFileDurably(to, $0) }
    }

    static func countLines(_ bytes: [UInt8]) -> Int {
        var n = 0
        for b in bytes where b == UInt8(ascii: "\n") { n += 1 }
        if let last = bytes.last, last != UInt8(ascii: "\n") { n += 1 }
        return n
    }

    /// A landed object whole (objects hold `--flush-records` records: megabytes, not gigabytes).
    static func readWhole(_ path: String) throws -> [UInt8] {
        guard let bytes = readFileBytes(path, limit: 1 << 30) else { throw CleanError("\(path): cannot read the landed object (or it is over 1 GiB)") }
        return bytes
    }
}
