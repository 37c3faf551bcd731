import Analytics
import Cleaning
import Codecs
import Landing
import PinModel
import TableStore

/// One day's batch job, as the Airflow DAG runs it: land the records whose Kafka timestamp falls on the
/// day into `<landing>/date=<day>`, clean them into the tables with the Delta transaction
/// `pinbench-batch-<day>` (a retried day is not appended twice), then write the analyses to
/// `<out>/date=<day>/q1.csv … q9.csv`.
public struct BatchDayOptions {
    public var date: String
    public var landing = "out/landing"
    public var tables = "out/tables"
    public var out = "out/analysis"
    public var topicPrefix = "pinbench"
    public var flushRecords = 10_000
    public var compression: CompressionCodec = .snappy

    public init(date: String) { self.date = date }

    public var transactionId: String { "pinbench-batch-\(date)" }
    public var landingRoot: String { "\(landing)/date=\(date)" }
    public var analysisDir: String { "\(out)/date=\(date)" }
}

public struct BatchDayReport {
    public var landed: LandingReport
    /// Nil when the day was already committed (then nothing was cleaned again).
    public var cleaned: CleanReport?
    public var source: CleanSource
    public var analysedRows: (pin: Int, geo: Int, user: Int)

    /// What `pinbench batch` prints.
    public func summary(_ o: BatchDayOptions) -> String {
        landed.summary(root: o.landingRoot) + "\n"
            + (cleaned.map { $0.summary(source: source) } ?? "\(o.date) is already in \(o.tables) (Delta txn \(o.transactionId)): not cleaned again\n")
            + "analysed pin \(analysedRows.pin), geo \(analysedRows.geo), user \(analysedRows.user) rows; wrote \(o.analysisDir)/q1.csv … q9.csv\n"
    }
}

public enum BatchDay {
    public static func run(_ o: BatchDayOptions, from source: LandingSource) throws -> BatchDayReport {
        guard let range = LandingOptions.dayRange(o.date) else { throw CleanError("--date needs YYYY-MM-DD, got '\(o.date)'") }
        var lo = LandingOptions(root: o.landingRoot, topics: RecordKind.topics(prefix: o.topicPrefix))
        lo.flushRecords = o.flushRecords
        lo.timeRange = range
        let landed = try Lander(options: lo).run(from: source)
        var co = CleanOptions(tablesDir: o.tables)
        co.write.codec = o.compression
        co.transaction = (appId: o.transactionId, version: 0)
        let src = CleanSource.landing(o.landingRoot, topicPrefix: o.topicPrefix)
        let cleaned = try Cleaner.isCommitted(tablesDir: o.tables, appId: o.transactionId) ? nil : try Cleaner.run(source: src, options: co)
        let (_, rows) = try Analysis.writeAll(tables: o.tables, out: o.analysisDir)
        return BatchDayReport(landed: landed, cleaned: cleaned, source: src, analysedRows: rows)
    }
}
