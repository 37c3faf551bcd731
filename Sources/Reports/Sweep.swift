import Codecs
import Foundation
import JSON
import Pipeline
import Platform

/// One point of a sweep grid.
public struct SweepSettings: Sendable, Hashable {
    public var batchBytes: Int
    public var lingerMs: Double
    public var compression: CompressionCodec
    public var partitions: Int

    public init(batchBytes: Int, lingerMs: Double, compression: CompressionCodec, partitions: Int) {
        self.batchBytes = batchBytes
        self.lingerMs = lingerMs
        self.compression = compression
        self.partitions = partitions
    }

    public var label: String {
        // Batches are at most 256 MiB (`SinkSettings.validate`): the same m/k/bytes form the options read.
        return "\(formatByteSize(batchBytes))/\(SVGChart.trim(lingerMs))ms/\(compression)/p\(partitions)"
    }

    /// The flags that select this point.
    public var flags: String {
        "--batch-bytes \(batchBytes) --linger-ms \(SVGChart.trim(lingerMs)) --compression \(compression) --partitions \(partitions)"
    }
}

/// What one point measured: each repeat and the medians.
public struct SweepPoint: Sendable {
    public var settings: SweepSettings
    public var repeats: [(recordsPerSecond: Double, p99Ms: Double, p50Ms: Double, mbPerSecond: Double, cpuPerMillion: Double)]
    public var recordsPerSecond: Double { median(repeats.map(\.recordsPerSecond)) }
    public var p99Ms: Double { median(repeats.map(\.p99Ms)) }
    public var p50Ms: Double { median(repeats.map(\.p50Ms)) }
    public var mbPerSecond: Double { median(repeats.map(\.mbPerSecond)) }
    public var cpuPerMillion: Double { median(repeats.map(\.cpuPerMillion)) }

    public init(settings: SweepSettings) {
        self.settings = settings
        self.repeats = []
    }
}

public func median(_ xs: [Double]) -> Double {
    guard !xs.isEmpty else { return 0 }
    let s = xs.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}

public enum SweepGoal: String, Sendable, CaseIterable {
    case throughput, latency, balanced
}

public enum Sweep {
    /// Indexes of the points no other point beats on both throughput (higher) and p99 latency (lower).
    public static func paretoFront(_ points: [SweepPoint]) -> Set<Int> {
        var front = Set<Int>()
        for (i, a) in points.enumerated() {
            let dominated = points.enumerated().contains { (j, b) in
                j != i && b.recordsPerSecond >= a.recordsPerSecond && b.p99Ms <= a.p99Ms
                    && (b.recordsPerSecond > a.recordsPerSecond || b.p99Ms < a.p99Ms)
            }
            if !dominated { front.insert(i) }
        }
        return front
    }

    /// The recommended point, always one on the Pareto front.
    public static func recommend(_ points: [SweepPoint], goal: SweepGoal) -> Int? {
        let front = paretoFront(points).sorted()
        guard !front.isEmpty else { return nil }
        switch goal {
        case .throughput:
            return front.max { points[$0].recordsPerSecond < points[$1].recordsPerSecond }
        case .latency:
            return front.min { points[$0].p99Ms < points[$1].p99Ms }
        case .balanced:
            let maxT = front.map { points[$0].recordsPerSecond }.max() ?? 1
            let maxL = max(front.map { points[$0].p99Ms }.max() ?? 1, 1e-9)
            return front.max { a, b in
                (points[a].recordsPerSecond / maxT - points[a].p99Ms / maxL) < (points[b].recordsPerSecond / maxT - points[b].p99Ms / maxL)
            }
        }
    }

    /// What `pinbench sweep` prints: one line per point (front points starred), then the recommendation.
    public static func summary(_ points: [SweepPoint], goal: SweepGoal) -> String {
        let front = paretoFront(points)
        var out = ""
        for (i, p) in points.enumerated() {
            out += "\(front.contains(i) ? "*" : " ") \(p.settings.label.padding(toLength: 24, withPad: " ", startingAt: 0)) \(formatCount(p.recordsPerSecond)) records/s  p99 \(fmt(p.p99Ms, 2)) ms\n"
        }
        if let i = recommend(points, goal: goal) { out += "recommended (\(goal.rawValue)): \(points[i].settings.flags)\n" }
        return out
    }

    /// When exactly two settings vary over the grid: records/s (median) on a heatmap of the two.
    static func heatmap(_ points: [SweepPoint]) -> String? {
        let dims: [(name: String, value: (SweepSettings) -> String, order: (SweepSettings) -> Double)] = [
            ("batch bytes", { formatByteSize($0.batchBytes) }, { Double($0.batchBytes) }),
            ("linger ms", { SVGChart.trim($0.lingerMs) }, { $0.lingerMs }),
            ("compression", { $0.compression.description }, { Double($0.compression.rawValue) }),
            ("partitions", { String($0.partitions) }, { Double($0.partitions) }),
        ]
        let varying = dims.filter { d in Set(points.map { d.value($0.settings) }).count > 1 }
        guard varying.count == 2 else { return nil }
        let (dx, dy) = (varying[0], varying[1])
        func axis(_ d: (name: String, value: (SweepSettings) -> String, order: (SweepSettings) -> Double)) -> [String] {
            var seen: [String: Double] = [:]
            for p in points { seen[d.value(p.settings)] = d.order(p.settings) }
            return seen.sorted { $0.value < $1.value }.map(\.key)
        }
        let xs = axis(dx), ys = axis(dy)
        var values = [[Double?]](repeating: [Double?](repeating: nil, count: xs.count), count: ys.count)
        for p in points {
            if let i = xs.firstIndex(of: dx.value(p.settings)), let j = ys.firstIndex(of: dy.value(p.settings)) { values[j][i] = p.recordsPerSecond }
        }
        return SVGChart.heatmap(title: "records/s (median) by \(dx.name) and \(dy.name)", xLabel: dx.name, yLabel: dy.name, xs: xs, ys: ys, values: values)
    }

    public static func report(points: [SweepPoint], goal: SweepGoal, command: String, scenario: Scenario, interrupted: Bool = false) -> ReportFolder {
        let front = paretoFront(points)
        let pick = recommend(points, goal: goal)
        var rows: [JSONValue] = []
        for (i, p) in points.enumerated() {
            rows.append(.object([
                ("settings", .object([("batch_bytes", .int(p.settings.batchBytes)), ("linger_ms", .double(p.settings.lingerMs)),
                                      ("compression", .string(p.settings.compression.description)), ("partitions", .int(p.settings.partitions))])),
                ("label", .string(p.settings.label)),
                ("median", .object([("records_per_s", .double(p.recordsPerSecond.rounded())), ("mb_per_s", .double((p.mbPerSecond * 1000).rounded() / 1000)),
                                    ("p50_ms", .double(p.p50Ms)), ("p99_ms", .double(p.p99Ms)),
                                    ("cpu_seconds_per_million_records", .double((p.cpuPerMillion * 1000).rounded() / 1000))])),
                ("repeats", .array(p.repeats.map { .object([("records_per_s", .double($0.recordsPerSecond.rounded())), ("p99_ms", .double($0.p99Ms))]) })),
                ("pareto", .bool(front.contains(i))),
            ]))
        }
        let rec: JSONValue = pick.map { i in
            .object([("goal", .string(goal.rawValue)), ("label", .string(points[i].settings.label)), ("flags", .string(points[i].settings.flags)),
                     ("records_per_s", .double(points[i].recordsPerSecond.rounded())), ("p99_ms", .double(points[i].p99Ms))])
        } ?? .null
        let json: JSONValue = .object([
            ("kind", .string("sweep")), ("command", .string(command)), ("scenario", .string(scenario.rawValue)), ("interrupted", .bool(interrupted)),
            ("created", .string(UTCTime.iso(micros: wallMillis() * 1000))), ("machine", Machine.json),
            ("points", .array(rows)), ("recommendation", rec),
        ])
        let series = points.map { Series(name: $0.settings.label, points: [($0.p99Ms, $0.recordsPerSecond)]) }
        var emph: [Int: Set<Int>] = [:]
        for i in front { emph[i] = [0] }
        let scatter = SVGChart.chart(
            title: "Throughput vs p99 latency (median of repeats; ringed: Pareto front)", xLabel: "p99 latency (ms)", yLabel: "records/s",
            series: series, scatter: true, emphasised: emph, height: 360 + 18 * Double(points.count / 3))
        let bars = SVGChart.bars(
            title: "Throughput by configuration (median; dark: Pareto front)", valueLabel: "records/s",
            categories: points.map(\.settings.label), values: points.map(\.recordsPerSecond), highlight: front)
        var md = "# pinbench sweep report\n\n`\(command)`\n\n" + (interrupted ? "**Interrupted**: partial grid (the points measured before the stop).\n\n" : "") + BenchReport.machineMarkdown()
        md += "\n| # | configuration | records/s | MB/s | p50 ms | p99 ms | CPU s / M | Pareto |\n|---|---|---|---|---|---|---|---|\n"
        var table = "<table><tr><th>#</th><th>configuration</th><th>records/s</th><th>MB/s</th><th>p50 ms</th><th>p99 ms</th><th>CPU s / M records</th><th>Pareto</th></tr>\n"
        for (i, p) in points.enumerated() {
            let cells = ["\(i + 1)", p.settings.label, formatCount(p.recordsPerSecond), Text.f(p.mbPerSecond), Text.f(p.p50Ms, 2), Text.f(p.p99Ms, 2),
                         Text.f(p.cpuPerMillion, 3), front.contains(i) ? "yes" : ""]
            md += "| " + cells.joined(separator: " | ") + " |\n"
            table += "<tr>" + cells.map { "<td>\(Text.html($0))</td>" }.joined() + "</tr>\n"
        }
        table += "</table>\n"
        if let i = pick {
            let line = "Recommended for \(goal.rawValue): \(points[i].settings.label) → \(points[i].settings.flags)"
            md += "\n**\(line)**\n"
            table = "<p><strong>\(Text.html(line))</strong></p>\n" + table
        }
        md += "\n![throughput vs latency](throughput_vs_latency.svg)\n"
        var plots = [("throughput_vs_latency.svg", scatter), ("throughput_by_configuration.svg", bars)]
        if let heat = heatmap(points) { plots.append(("throughput_heatmap.svg", heat)) }
        if interrupted { table = "<p><strong>Interrupted</strong>: partial grid (the points measured before the stop).</p>\n" + table }
        let html = BenchReport.page(title: "pinbench sweep report", command: command, plots: plots.map(\.1), body: table)
        return ReportFolder(json: json, plots: plots, markdown: md, html: html)
    }
}
