import ArgumentParser
import Cleaning
import Codecs
import Foundation
import PinModel
import TableStore

// MARK: - clean

struct Clean: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Clean pin, geo and user records into Delta tables of Parquet files (spec §3).",
        discussion: """
            --from is a folder with pin.jsonl/geo.jsonl/user.jsonl (pinbench emulate), a landing root \
            (pinbench land: topics/<prefix>.<kind>/partition=<p>/...) or an embedded data dir (pinbench run). \
            Each run appends one Delta commit per table; refused records go to <tables>/_dead_letter/.
            """)

    @Option(help: "Input folder (jsonl files, landing root or embedded data dir).") var from: String
    @Option(help: "Tables root: <tables>/pin, <tables>/geo, <tables>/user.") var tables: String
    @Option(help: "Topics are <prefix>.pin|geo|user (landing root and embedded log).") var topicPrefix: String = "pinbench"
    @Option(help: "Parquet page compression: snappy, zstd, gzip or none.") var compression: CompressionCodec = .snappy
    @Option(help: "Codec level (zstd, gzip).") var compressionLevel: Int32?
    @Option(help: "Partition columns, e.g. pin=category,geo=country,user=none (default: pin=category).") var partitionBy: String?
    @Option(help: "Rows per row group.") var rowGroupRows: Int = 131_072
    @Option(help: "Records longer than this go to the dead-letter file.") var maxRecordBytes: Int = 1 << 20
    @Option(help: "Write the JSON report here.") var reportJson: String?
    @Flag(help: "Clean the three tables one after another instead of in parallel.") var sequential = false

    func validate() throws {
        guard compression != .lz4 else { throw ValidationError("--compression lz4 is not written to Parquet; use snappy, zstd, gzip or none") }
        guard rowGroupRows >= 1 else { throw ValidationError("--row-group-rows must be ≥ 1") }
        _ = try parsePartitionBy(partitionBy)
    }

    func run() throws {
        var o = CleanOptions(tablesDir: tables)
        o.write.codec = compression
        o.write.level = compressionLevel
        o.write.rowGroupRows = rowGroupRows
        o.maxRecordBytes = maxRecordBytes
        o.parallel = !sequential
        for (k, v) in try parsePartitionBy(partitionBy) { o.partitionBy[k] = v }
        do {
            let source = try CleanSource.detect(from, topicPrefix: topicPrefix)
            let report = try Cleaner.run(source: source, options: o)
            printCleanReport(report, source: source)
            if let reportJson { try report.json().serialized().write(toFile: reportJson, atomically: true, encoding: .utf8) }
        } catch {
            fail("\(error)")
        }
    }
}

func parsePartitionBy(_ s: String?) throws -> [(RecordKind, String?)] {
    guard let s else { return [] }
    var out: [(RecordKind, String?)] = []
    for item in s.split(separator: ",") {
        let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
        guard kv.count == 2, let k = RecordKind(name: kv[0]) else {
            throw ValidationError("--partition-by takes TABLE=COLUMN items (tables pin, geo, user), got '\(item)'")
        }
        if kv[1] == "none" { out.append((k, nil)); continue }
        let schema = CleanSchemas.schema(k)
        guard let c = schema.columns.first(where: { $0.name == kv[1] }), c.type == .string else {
            let strings = schema.columns.filter { $0.type == .string }.map(\.name).joined(separator: ", ")
            throw ValidationError("--partition-by \(k.name)=\(kv[1]): partition by one of \(strings), or none")
        }
        out.append((k, kv[1]))
    }
    return out
}

func printCleanReport(_ r: CleanReport, source: CleanSource) {
    print("cleaned \(source.description) in \(String(format: "%.2f", r.seconds)) s: \(r.recordsIn) records, "
          + "\(String(format: "%.0f", Double(r.recordsIn) / max(r.seconds, 1e-9))) records/s, "
          + "\(String(format: "%.1f", Double(r.inputBytes) / 1e6 / max(r.seconds, 1e-9))) MB/s")
    print("table  records_in    written  duplicates  dead_lettered  files  commit")
    for t in r.tables {
        let commit = t.skippedCommit ? "skipped (already committed)" : t.commitVersion.map { "v\($0)" } ?? "-"
        print(t.kind.name.padding(toLength: 5, withPad: " ", startingAt: 0)
              + String(format: "  %10d %10d  %10d  %13d  %5d  ", t.recordsIn, t.written, t.duplicates, t.deadLettered, t.files) + commit)
        if let p = t.deadLetterPath { print("       dead letters: \(p) \(t.deadLetterReasons.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))") }
    }
}
