import Bytes
import Foundation
import Histogram
import JSON
import Pipeline
import Platform

/// `pinbench report merge`: the reports of a fleet's workers made one. Latency percentiles come from the
/// sum of the workers' histograms (exact, never an average of percentiles); rates are summed by
/// wall-clock second; the slices are checked to be disjoint and complete and the accounting to hold over
/// the fleet; a worker that started late or stalled is flagged.
public struct FleetMerge {
    public struct Worker {
        public var path: String
        public var slice: WorkerSlice
        public var seed: Int
        public var fleetCount: Int?
        public var mode: String
        public var posts: Int
        public var recordsIn: Int
        public var recordsOut: Int
        public var deadLettered: Int
        public var interrupted: Bool
        public var startedUnixMs: Int64
        public var seconds: Double
        public var histogram: Histogram<UInt64>
        /// (seconds since start, records out so far).
        public var timeline: [(Double, Int)]
    }

    public struct MergeError: Error, CustomStringConvertible {
        public var description: String
        init(_ s: String) { description = s }
    }

    public var workers: [Worker]
    public var histogram: Histogram<UInt64>
    /// (Unix second, records out in it) over the fleet, and per worker.
    public var perSecond: [(Int64, Int)]
    public var perWorkerSecond: [[(Int64, Int)]]
    public var flags: [String]

    /// Reads one worker's report (a report.json, or a folder holding one; a bench worker's folder holds its
    /// run's report as worker.json).
    public static func load(_ path: String) throws(MergeError) -> Worker {
        let file = isDirectory(path) ? (isRegularFile(path + "/worker.json") ? path + "/worker.json" : path + "/report.json") : path
        guard let text = readSmallTextFile(file, limit: 256 << 20) else { throw MergeError("\(file): cannot read it") }
        guard let j = try? JSONValue.parse(text) else { throw MergeError("\(file): not a JSON report") }
        guard let w = j["config"]?["worker"]?.stringValue, let slice = WorkerSlice(w) else {
            throw MergeError("\(file): not a worker's report (its config has no worker I/N; run with --worker or --workers)")
        }
        guard let enc = j["latency_histogram_hdr"]?.stringValue, let bytes = Base64.decode(enc), let h = HdrEncoding.decode(bytes) else {
            throw MergeError("\(file): holds no readable latency histogram (latency_histogram_hdr); written by an older pinbench?")
        }
        // A report is input: every count, time and length is held to a plausible range (2^50), so the sums
        // and differences of a merge cannot overflow.
        let limit = 1 << 50
        func int(_ v: JSONValue?, _ k: String) throws(MergeError) -> Int {
            let x = v?.intValue ?? 0
            guard x >= 0, x <= limit else { throw MergeError("\(file): \(k) \(x) is not a plausible value") }
            return x
        }
        var timeline: [(Double, Int)] = []
        for p in j["timeline"]?.arrayValue ?? [] {
            guard let t = p["t"]?.doubleValue, t.isFinite, t >= 0, t <= 1e9 else { continue }
            timeline.append((t, try int(p["records_out"], "timeline records_out")))
        }
        let seconds = j["seconds"]?.doubleValue ?? 0
        guard seconds.isFinite, seconds >= 0, seconds <= 1e9 else { throw MergeError("\(file): seconds \(seconds) is not a plausible value") }
        return Worker(path: file, slice: slice, seed: j["config"]?["seed"]?.intValue ?? 0,
                      fleetCount: j["config"]?["fleet_count"]?.intValue == nil ? nil : try int(j["config"]?["fleet_count"], "fleet_count"),
                      mode: j["mode"]?.stringValue ?? "", posts: try int(j["posts"], "posts"), recordsIn: try int(j["records_in"], "records_in"),
                      recordsOut: try int(j["records_out"], "records_out"), deadLettered: try int(j["dead_lettered"], "dead_lettered"),
                      interrupted: { if case .bool(true)? = j["interrupted"] { return true }; return false }(),
                      startedUnixMs: Int64(try int(j["started_unix_ms"], "started_unix_ms")), seconds: seconds, histogram: h, timeline: timeline)
    }

    /// Checks the fleet and adds it up.
    public static func merge(_ input: [Worker]) throws(MergeError) -> FleetMerge {
        guard let first = input.first else { throw MergeError("no worker reports given") }
        let n = first.slice.count
        var byIndex: [Int: Worker] = [:]
        for w in input {
            guard w.slice.count == n else { throw MergeError("\(w.path) is worker \(w.slice.index)/\(w.slice.count), \(first.path) is of a fleet of \(n)") }
            guard w.seed == first.seed, w.mode == first.mode else { throw MergeError("\(w.path) ran seed \(w.seed) into \(w.mode), \(first.path) seed \(first.seed) into \(first.mode): not one load") }
            if let other = byIndex[w.slice.index] { throw MergeError("worker \(w.slice.index)/\(n) appears twice (\(other.path), \(w.path)): the slices overlap") }
            byIndex[w.slice.index] = w
        }
        let missing = (0..<n).filter { byIndex[$0] == nil }
        guard missing.isEmpty else {
            throw MergeError("worker\(missing.count > 1 ? "s" : "") \(missing.map { "\($0)/\(n)" }.joined(separator: ", ")) missing: the slices do not cover the load")
        }
        let workers = (0..<n).compactMap { byIndex[$0] }
        var flags: [String] = []
        // Each worker sent its whole slice (with --count), or the report says why not.
        for w in workers {
            if let total = w.fleetCount, w.posts != w.slice.share(of: total) {
                flags.append("worker \(w.slice.index)/\(n) sent \(w.posts) of its \(w.slice.share(of: total)) posts\(w.interrupted ? " (interrupted)" : "")")
            }
            if w.recordsIn != w.recordsOut + w.deadLettered {
                flags.append("worker \(w.slice.index)/\(n): records in \(w.recordsIn) ≠ out \(w.recordsOut) + dead-lettered \(w.deadLettered)")
            }
        }
        let start = workers.map(\.startedUnixMs).min() ?? 0
        for w in workers where w.startedUnixMs - start > 1000 {
            flags.append("worker \(w.slice.index)/\(n) started \(formatDuration(Double(w.startedUnixMs - start) / 1000)) after the first")
        }
        var hist = newLatencyHistogram()
        for w in workers { hist.add(w.histogram) }
        // Per wall-clock second: each worker's cumulative samples turned into records per second.
        var total: [Int64: Int] = [:]
        var perWorker: [[(Int64, Int)]] = []
        for w in workers {
            var prev = 0
            var mine: [Int64: Int] = [:]
            for (t, out) in w.timeline {
                let sec = (w.startedUnixMs + Int64(t * 1000)) / 1000
                mine[sec, default: 0] += out - prev
                prev = out
            }
            let sorted = mine.sorted { $0.key < $1.key }
            perWorker.append(sorted.map { ($0.key, $0.value) })
            for (s, r) in sorted { total[s, default: 0] += r }
            // A second with nothing out between seconds with records: the worker stalled.
            if sorted.count > 2 {
                for k in 1..<(sorted.count - 1) where sorted[k].value == 0 {
                    flags.append("worker \(w.slice.index)/\(n) stalled: nothing out in its second \(k + 1)")
                    break
                }
            }
        }
        return FleetMerge(workers: workers, histogram: hist, perSecond: total.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                          perWorkerSecond: perWorker, flags: flags)
    }

    public var recordsIn: Int { workers.map(\.recordsIn).reduce(0, +) }
    public var recordsOut: Int { workers.map(\.recordsOut).reduce(0, +) }
    public var deadLettered: Int { workers.map(\.deadLettered).reduce(0, +) }
    public var accountingHolds: Bool { recordsIn == recordsOut + deadLettered }
    /// From the first worker's start to the last one's end.
    public var seconds: Double {
        let s = workers.map(\.startedUnixMs).min() ?? 0
        let e = workers.map { Double($0.startedUnixMs) + $0.seconds * 1000 }.max() ?? 0
        return max(0, (e - Double(s)) / 1000)
    }

    func us(_ p: Double) -> Int { histogram.totalCount == 0 ? 0 : Int(histogram.valueAtPercentile(p)) }

    public var json: JSONValue {
        .object([
            ("pinbench_version", .string(pinbenchVersion)),
            ("kind", .string("fleet merge")),
            ("workers", .int(workers.count)),
            ("records_in", .int(recordsIn)), ("records_out", .int(recordsOut)), ("dead_lettered", .int(deadLettered)),
            ("accounting_holds", .bool(accountingHolds)),
            ("seconds", .double((seconds * 1000).rounded() / 1000)),
            ("records_per_s", .double(seconds > 0 ? (Double(recordsOut) / seconds).rounded() : 0)),
            ("latency_us", .object([("p50", .int(us(50))), ("p90", .int(us(90))), ("p99", .int(us(99))), ("p999", .int(us(99.9))),
                                    ("max", .int(histogram.totalCount == 0 ? 0 : Int(histogram.max))), ("count", .int(Int(histogram.totalCount)))])),
            ("flags", .array(flags.map { .string($0) })),
            ("per_second", .array(perSecond.map { .object([("unix_s", .int(Int($0.0))), ("records_out", .int($0.1))]) })),
            ("per_worker", .array(workers.map { w in
                .object([("worker", .string("\(w.slice.index)/\(w.slice.count)")), ("report", .string(w.path)), ("posts", .int(w.posts)),
                         ("records_in", .int(w.recordsIn)), ("records_out", .int(w.recordsOut)), ("dead_lettered", .int(w.deadLettered)),
                         ("started_unix_ms", .int(Int(w.startedUnixMs))), ("seconds", .double(w.seconds)),
                         ("latency_us", .object([("p50", .int(Int(w.histogram.valueAtPercentile(50)))), ("p99", .int(Int(w.histogram.valueAtPercentile(99)))),
                                                 ("max", .int(w.histogram.totalCount == 0 ? 0 : Int(w.histogram.max)))]))])
            })),
        ])
    }

    /// The one-line summary both renderings start with.
    var headline: String {
        "\(formatCount(seconds > 0 ? Double(recordsOut) / seconds : 0)) records/s over the fleet, \(recordsOut) records out in \(String(format: "%.1f", seconds)) s; "
            + "latency p50 \(String(format: "%.2f", Double(us(50)) / 1000)) ms, p99 \(String(format: "%.2f", Double(us(99)) / 1000)) ms (merged histograms); "
            + (accountingHolds ? "in == out + dead-lettered over the fleet ✓" : "ACCOUNTING MISMATCH over the fleet")
    }

    static let columns = ["worker", "posts", "records out", "dead-lettered", "started (ms after the first)", "seconds", "p50 ms", "p99 ms"]

    /// One row per worker, the cells of `columns`.
    var rows: [[String]] {
        let s0 = workers.map(\.startedUnixMs).min() ?? 0
        return workers.map { w in
            ["\(w.slice.index)/\(w.slice.count)", "\(w.posts)", "\(w.recordsOut)", "\(w.deadLettered)", "\(w.startedUnixMs - s0)",
             String(format: "%.2f", w.seconds), String(format: "%.2f", Double(w.histogram.valueAtPercentile(50)) / 1000),
             String(format: "%.2f", Double(w.histogram.valueAtPercentile(99)) / 1000)]
        }
    }

    public var markdown: String {
        var md = "# Fleet of \(workers.count) workers\n\n\(headline)\n\n"
        if !flags.isEmpty { md += "Flags:\n\n" + flags.map { "- \($0)\n" }.joined() + "\n" }
        md += "| " + Self.columns.joined(separator: " | ") + " |\n|" + String(repeating: "---|", count: Self.columns.count) + "\n"
        for r in rows { md += "| " + r.joined(separator: " | ") + " |\n" }
        return md
    }

    public var html: String {
        let s0 = perSecond.first?.0 ?? 0
        var series = [Series(name: "fleet", points: perSecond.map { (Double($0.0 - s0), Double($0.1)) })]
        for (i, ws) in perWorkerSecond.enumerated() {
            series.append(Series(name: "worker \(i)", points: ws.map { (Double($0.0 - s0), Double($0.1)) }))
        }
        let chart = SVGChart.chart(title: "Records out per wall-clock second", xLabel: "seconds", yLabel: "records/s", series: series)
        let head = "<tr>" + Self.columns.map { "<th>\(SVGChart.escape($0))</th>" }.joined() + "</tr>"
        let body = rows.map { "<tr>" + $0.map { "<td>\(SVGChart.escape($0))</td>" }.joined() + "</tr>" }.joined(separator: "\n")
        return """
        <!doctype html><html><head><meta charset="utf-8"><title>pinbench fleet</title></head><body>
        <h1>Fleet of \(workers.count) workers</h1>
        <p>\(SVGChart.escape(headline))</p>
        \(flags.isEmpty ? "" : "<ul>" + flags.map { "<li>\(SVGChart.escape($0))</li>" }.joined() + "</ul>")
        \(chart)
        <table>\(head)
        \(body)
        </table></body></html>
        """
    }
}
