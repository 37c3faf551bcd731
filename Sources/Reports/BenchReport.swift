import Foundation
import Pipeline
import JSON
import Platform
import Sinks

/// A report folder: `report.json` (every figure, the configuration, the machine), `report.md`,
/// `report.html` with the plots inline, and each plot as its own `.svg`.
public struct ReportFolder {
    public var json: JSONValue
    public var plots: [(file: String, svg: String)]
    public var markdown: String
    public var html: String

    public func write(to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try json.serialized().write(toFile: "\(dir)/report.json", atomically: true, encoding: .utf8)
        try markdown.write(toFile: "\(dir)/report.md", atomically: true, encoding: .utf8)
        try html.write(toFile: "\(dir)/report.html", atomically: true, encoding: .utf8)
        for p in plots { try p.svg.write(toFile: "\(dir)/\(p.file)", atomically: true, encoding: .utf8) }
    }
}

enum Text {
    static func f(_ v: Double, _ d: Int = 1) -> String { String(format: "%.\(d)f", v) }
    static func html(_ s: String) -> String { SVGChart.escape(s) }
}

public enum BenchReport {
    /// Builds the folder for the scenarios that ran (and those skipped, with the reason).
    /// What `pinbench bench` prints: one line per scenario, then the skipped ones and why.
    public static func summary(_ scenarios: [ScenarioFigures], skipped: [(String, String)]) -> String {
        var out = ""
        for f in scenarios {
            out += "\(f.name): \(formatCount(f.recordsPerSecond)) records/s, \(fmt(f.megabytesPerSecond, 1)) MB/s, p99 \(fmt(f.latencyMs(99), 2)) ms, bottleneck: \(f.bottleneck)\n"
        }
        for (s, why) in skipped { out += "\(s): skipped (\(why))\n" }
        return out
    }

    public static func build(_ scenarios: [ScenarioFigures], skipped: [(String, String)] = [], command: String,
                             interrupted: Bool = false) -> ReportFolder {
        let json: JSONValue = .object([
            ("kind", .string("bench")),
            ("command", .string(command)),
            ("interrupted", .bool(interrupted)),
            ("created", .string(UTCTime.iso(micros: wallMillis() * 1000))),
            ("machine", Machine.json),
            ("scenarios", .array(scenarios.map(\.json))),
            ("skipped", .array(skipped.map { .object([("scenario", .string($0.0)), ("reason", .string($0.1))]) })),
        ])
        // The warm-up is in the time plots (shaded) but not in the headline figures.
        let warm = scenarios.map(\.result.config.warmup).max() ?? 0
        let shade: (from: Double, to: Double, label: String)? = warm > 0 ? (0, warm, "warm-up") : nil
        let throughput = SVGChart.chart(
            title: "Throughput per second", xLabel: "seconds since start (shaded: warm-up)", yLabel: "records/s",
            series: scenarios.map { s in Series(name: s.name, points: s.perSecond.map { ($0.t, $0.recordsPerSecond) }) }, shade: shade)
        let mbs = SVGChart.chart(
            title: "Payload MB/s per second", xLabel: "seconds since start (shaded: warm-up)", yLabel: "MB/s",
            series: scenarios.map { s in Series(name: s.name, points: s.perSecond.map { ($0.t, $0.mbPerSecond) }) }, shade: shade)
        let latency = SVGChart.chart(
            title: "Latency by percentile (warm-up excluded)", xLabel: "percentile", yLabel: "ms",
            series: scenarios.map { s in Series(name: s.name, points: s.latencyDistribution.map { ($0.0, $0.1) }) }, xScale: .nines)
        let queue = SVGChart.chart(
            title: "Records queued between generators and the sink stage", xLabel: "seconds since start (shaded: warm-up)", yLabel: "records",
            series: scenarios.map { s in Series(name: s.name, points: s.perSecond.map { ($0.t, Double($0.queueDepth)) }) }, shade: shade)
        let plots = [("throughput.svg", throughput), ("mb_per_s.svg", mbs), ("latency.svg", latency), ("queue_depth.svg", queue)]

        var md = "# pinbench bench report\n\n`\(command)`\n\n" + (interrupted ? "**Interrupted**: partial results (the run in progress was cut short).\n\n" : "")
        md += machineMarkdown()
        var body = interrupted ? "<p><strong>Interrupted</strong>: partial results (the run in progress was cut short).</p>\n" : ""
        for s in scenarios {
            let r = s.result
            md += "\n## Scenario: \(s.name)\n\n| figure | value |\n|---|---|\n"
            let rows: [(String, String)] = [
                ("records/s (after warm-up)", formatCount(s.recordsPerSecond)),
                ("MB/s (after warm-up)", Text.f(s.megabytesPerSecond)),
                ("records in / out / dead-lettered", "\(formatCount(Double(r.recordsIn))) / \(formatCount(Double(r.recordsOut))) / \(r.deadLettered)"),
                ("latency p50 / p90 / p99 / p99.9 / max (ms)",
                 [50.0, 90, 99, 99.9].map { Text.f(s.latencyMs($0), 2) }.joined(separator: " / ") + " / " + Text.f(s.latencyMaxMs, 2)),
                ("warm-up (\(Text.f(r.config.warmup, 1)) s): latency p50 / p99 (ms)",
                 "\(Text.f(ScenarioFigures.ms(r.warmupLatencyMicros, 50), 2)) / \(Text.f(ScenarioFigures.ms(r.warmupLatencyMicros, 99), 2))"),
                ("compression ratio", r.storedBytes > 0 ? Text.f(Double(r.payloadBytes) / Double(r.storedBytes), 2) : "-"),
                ("CPU seconds per million records", r.recordsOut > 0 ? Text.f(r.cpuSeconds / Double(r.recordsOut) * 1e6, 3) : "-"),
                ("peak memory", formatBytes(r.peakRSSBytes)),
                ("retries", "\(r.retries)"),
                ("bottleneck", s.bottleneck),
            ]
            for (k, v) in rows { md += "| \(k) | \(v) |\n" }
            md += "\n| stage | busy | blocked or waiting |\n|---|---|---|\n"
            for st in s.stages { md += "| \(st.name) | \(Text.f(st.busy * 100))% | \(Text.f(st.blocked * 100))% |\n" }
            if !r.deadLetterReasons.isEmpty {
                md += "\n| error | records |\n|---|---|\n"
                for (k, v) in r.deadLetterReasons.sorted(by: { $0.key < $1.key }) { md += "| \(k) | \(v) |\n" }
            }
            if !r.retriesByCode.isEmpty {
                md += "\n| retried because of | batches |\n|---|---|\n"
                for (k, v) in r.retriesByCode.sorted(by: { $0.key < $1.key }) { md += "| \(k) | \(v) |\n" }
            }
            md += "\n| topic | partition | records |\n|---|---|---|\n"
            for p in r.partitions { md += "| \(p.topic) | \(p.partition) | \(p.records) |\n" }

            body += "<h2>Scenario: \(Text.html(s.name))</h2>\n<table>\n"
            for (k, v) in rows { body += "<tr><th>\(Text.html(k))</th><td>\(Text.html(v))</td></tr>\n" }
            body += "</table>\n<h3>Stages</h3>\n<table><tr><th>stage</th><th>busy</th><th>blocked or waiting</th></tr>\n"
            for st in s.stages { body += "<tr><td>\(Text.html(st.name))</td><td>\(Text.f(st.busy * 100))%</td><td>\(Text.f(st.blocked * 100))%</td></tr>\n" }
            body += "</table>\n"
            if !r.deadLetterReasons.isEmpty {
                body += "<h3>Errors by code</h3><table>"
                for (k, v) in r.deadLetterReasons.sorted(by: { $0.key < $1.key }) { body += "<tr><td>\(Text.html(k))</td><td>\(v)</td></tr>" }
                body += "</table>\n"
            }
            if !r.retriesByCode.isEmpty {
                body += "<h3>Retries by code</h3><table>"
                for (k, v) in r.retriesByCode.sorted(by: { $0.key < $1.key }) { body += "<tr><td>\(Text.html(k))</td><td>\(v)</td></tr>" }
                body += "</table>\n"
            }
            body += "<h3>Partitions</h3>\n<table><tr><th>topic</th><th>partition</th><th>records</th></tr>\n"
            for p in r.partitions { body += "<tr><td>\(Text.html(p.topic))</td><td>\(p.partition)</td><td>\(p.records)</td></tr>\n" }
            body += "</table>\n"
        }
        for (name, why) in skipped { md += "\n_Scenario \(name) skipped: \(why)_\n"; body += "<p><em>Scenario \(Text.html(name)) skipped: \(Text.html(why))</em></p>\n" }
        md += "\n## Plots\n\n" + plots.map { "![\($0.0)](\($0.0))" }.joined(separator: "\n") + "\n"
        let html = page(title: "pinbench bench report", command: command, plots: plots.map(\.1), body: body)
        return ReportFolder(json: json, plots: plots, markdown: md, html: html)
    }

    static func machineMarkdown() -> String {
        "| machine | |\n|---|---|\n| CPU | \(Machine.cpuModel) |\n| cores | \(ProcessInfo.processInfo.activeProcessorCount) |\n"
            + "| memory | \(formatBytes(Machine.memoryBytes)) |\n| kernel | \(Machine.kernel) |\n| pinbench | \(pinbenchVersion) (\(Machine.gitRevision)) |\n"
    }

    /// SVG inside HTML needs no namespace declaration; dropping it keeps the page free of any URL.
    static func inlineSVG(_ svg: String) -> String {
        svg.replacingOccurrences(of: " xmlns=\"http://www.w3.org/2000/svg\"", with: "")
    }

    /// A self-contained page: inline CSS and SVG, no scripts, no external references.
    public static func page(title: String, command: String, plots: [String], body: String) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>\(Text.html(title))</title>
        <style>
        body { font-family: sans-serif; margin: 24px; color: #222; }
        table { border-collapse: collapse; margin: 8px 0 16px; }
        th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; font-size: 13px; }
        th { background: #f4f4f4; }
        code { background: #f4f4f4; padding: 2px 4px; }
        .plots svg { display: block; margin: 12px 0; border: 1px solid #ddd; width: 100%; height: auto; }
        </style></head><body>
        <h1>\(Text.html(title))</h1>
        <p><code>\(Text.html(command))</code></p>
        <table>
        <tr><th>CPU</th><td>\(Text.html(Machine.cpuModel))</td></tr>
        <tr><th>cores</th><td>\(ProcessInfo.processInfo.activeProcessorCount)</td></tr>
        <tr><th>memory</th><td>\(formatBytes(Machine.memoryBytes))</td></tr>
        <tr><th>kernel</th><td>\(Text.html(Machine.kernel))</td></tr>
        <tr><th>pinbench</th><td>\(pinbenchVersion) (\(Text.html(Machine.gitRevision)))</td></tr>
        </table>
        \(body)
        <h2>Plots</h2>
        <div class="plots">
        \(plots.map(inlineSVG).joined(separator: "\n"))
        </div>
        </body></html>

        """
    }
}
