import Foundation
import KafkaLog
import Reports
import Testing
import TestSupport
import Platform
import Codecs

func loadJSON(_ path: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
}

/// Checks XML well-formedness with Python's parser (an independent one) and counts series groups.
func svgSeriesCount(_ path: String) throws -> Int {
    let r = try python3(["-c", "import sys,xml.etree.ElementTree as E;t=E.parse(sys.argv[1]);print(sum(1 for g in t.iter('{http://www.w3.org/2000/svg}g') if g.get('class')=='series'))", path])
    #expect(r.status == 0, "\(path) is not well-formed XML: \(r.stderr)")
    return Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
}

func artifactsDir() -> String {
    // .build/<triple>/debug/pinbench → .build/test-artifacts
    let d = URL(fileURLWithPath: pinbenchBinary()).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("test-artifacts").path
    try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

@Suite(.serialized) struct ReportTests {
    static let benchDir: String = {
        let dir = tempDir("bench")
        let r = try! pinbench("bench", "--scenario", "embedded", "--duration", "2s", "--warmup", "1s", "--rate", "5000",
                              "--out", dir, "--keep-data", "--quiet", "--partitions", "4")
        precondition(r.status == 0, "bench failed: \(r.stderr)")
        return dir
    }()

    @Test func benchReportHasEveryFigureAndAgreesWithTheLog() throws {
        let dir = Self.benchDir
        let report = try loadJSON("\(dir)/report.json")
        let machine = report["machine"] as! [String: Any]
        for k in ["cpu_model", "cores", "memory_bytes", "kernel", "pinbench_version", "git_revision"] { #expect(machine[k] != nil, "machine.\(k)") }
        let scenario = (report["scenarios"] as! [[String: Any]])[0]
        let figures = scenario["figures"] as! [String: Any]
        for k in ["records_per_s", "mb_per_s", "latency_ms", "compression_ratio", "cpu_seconds_per_million_records", "peak_rss_bytes", "errors_by_code", "retries"] {
            #expect(figures[k] != nil, "figures.\(k)")
        }
        let lat = figures["latency_ms"] as! [String: Any]
        for k in ["p50", "p90", "p99", "p999", "max"] { #expect(lat[k] is Double, "latency \(k)") }
        #expect((lat["method"] as? String)?.contains("scheduled send time") == true)
        // 5,000 posts/s × 3 records: about 15,000 records/s after the warm-up.
        let rps = figures["records_per_s"] as! Double
        #expect(rps > 12_000 && rps < 18_000, "\(rps)")
        let warm = scenario["warmup"] as! [String: Any]
        #expect(warm["seconds"] as? Double == 1)
        #expect(((warm["latency_ms"] as! [String: Any])["count"] as! Int) > 0)
        #expect((scenario["per_second"] as! [Any]).count >= 2)
        #expect((scenario["latency_distribution"] as! [Any]).count > 5)
        #expect((scenario["stages"] as! [Any]).count == 2)
        #expect(scenario["bottleneck"] is String)
        // Per-partition counts equal what the log holds.
        let parts = scenario["partitions"] as! [[String: Any]]
        let verified = try LogInspector.verify(dataDir: "\(dir)/data")
        #expect(parts.count == 12 && verified.count == 12)
        for v in verified {
            let p = parts.first { ($0["topic"] as! String) == v.topic && ($0["partition"] as! Int) == v.partition }
            #expect(p?["records"] as? Int == v.records, "\(v.topic)-\(v.partition)")
        }
        #expect(parts.reduce(0) { $0 + ($1["records"] as! Int) } == figures["records_out"] as! Int)
        #expect(FileManager.default.fileExists(atPath: "\(dir)/report.md"))
    }

    @Test func plotsAreWellFormedSVGWithOneSeriesPerConfiguration() throws {
        for f in ["throughput.svg", "mb_per_s.svg", "latency.svg", "queue_depth.svg"] {
            #expect(try svgSeriesCount("\(Self.benchDir)/\(f)") == 1, "\(f)")
        }
        // The warm-up (1 s) is shaded in the time plots, not in the percentile plot.
        for f in ["throughput.svg", "mb_per_s.svg", "queue_depth.svg"] {
            #expect(try String(contentsOfFile: "\(Self.benchDir)/\(f)", encoding: .utf8).contains(#"class="shade""#), "\(f)")
        }
        #expect(!(try String(contentsOfFile: "\(Self.benchDir)/latency.svg", encoding: .utf8).contains(#"class="shade""#)))
        let html = try String(contentsOfFile: "\(Self.benchDir)/report.html", encoding: .utf8)
        #expect(html.components(separatedBy: "<svg").count - 1 == 4)
        for bad in ["http:", "https:", "src=", "href=", "<script", "<link", "url(", "@import"] {
            #expect(!html.contains(bad), "report.html holds an external reference: \(bad)")
        }
    }

    @Test func sweepRunsEveryPointAndRecommendsAParetoPoint() throws {
        let dir = tempDir("sweep")
        let r = try pinbench("sweep", "--batch-bytes", "16k,256k", "--linger-ms", "0,20", "--duration", "1s", "--warmup", "0.3s",
                             "--repeat", "2", "--rate", "3000", "--goal", "latency", "--out", dir, "--quiet")
        #expect(r.status == 0, "\(r.stderr)")
        let report = try loadJSON("\(dir)/report.json")
        let points = report["points"] as! [[String: Any]]
        #expect(points.count == 4)
        for p in points { #expect((p["repeats"] as! [Any]).count == 2) }
        let rec = report["recommendation"] as! [String: Any]
        let chosen = points.first { ($0["label"] as! String) == (rec["label"] as! String) }!
        #expect(chosen["pareto"] as? Bool == true)
        #expect((rec["flags"] as! String).hasPrefix("--batch-bytes "))
        #expect(r.stdout.contains("recommended (latency): --batch-bytes"))
        #expect(try svgSeriesCount("\(dir)/throughput_vs_latency.svg") == 4)
        // Every point measured something (a run shorter than a progress sample still has its figures).
        for p in points { #expect(((p["median"] as! [String: Any])["records_per_s"] as? Double ?? 0) > 0, "\(p)") }
        // Configurations are names: one labelled bar each; two settings varied: a 2 × 2 heatmap.
        let labels = points.map { $0["label"] as! String }
        let bars = try python3(["-c", "import sys,xml.etree.ElementTree as E;print('|'.join(g.get('data-name') for g in E.parse(sys.argv[1]).iter('{http://www.w3.org/2000/svg}g') if g.get('class')=='bar'))", "\(dir)/throughput_by_configuration.svg"])
        #expect(bars.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == labels.joined(separator: "|"), "\(bars.stdout) \(bars.stderr)")
        let cells = try python3(["-c", "import sys,xml.etree.ElementTree as E;print(sum(1 for g in E.parse(sys.argv[1]).iter('{http://www.w3.org/2000/svg}g') if g.get('class')=='cell'))", "\(dir)/throughput_heatmap.svg"])
        #expect(cells.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "4", "\(cells.stderr)")
    }

    @Test func paretoFrontAndRecommendation() {
        func p(_ t: Double, _ l: Double) -> SweepPoint {
            var x = SweepPoint(settings: SweepSettings(batchBytes: Int(t), lingerMs: l, compression: .lz4, partitions: 1))
            x.repeats = [(t, l, l / 2, 1, 1)]
            return x
        }
        // (throughput, p99): b dominates d; a, b, c are the front.
        let pts = [p(100, 10), p(200, 20), p(300, 40), p(150, 25)]
        #expect(Sweep.paretoFront(pts) == [0, 1, 2])
        #expect(Sweep.recommend(pts, goal: .throughput) == 2)
        #expect(Sweep.recommend(pts, goal: .latency) == 0)
        #expect(Sweep.paretoFront(pts).contains(Sweep.recommend(pts, goal: .balanced)!))
        #expect(median([3, 1, 2]) == 2 && median([4, 1, 2, 3]) == 2.5)
    }

    @Test func compareShowsEveryFigureWithItsRatio() throws {
        let a = tempDir("cmp") + "/a.json", b = tempDir("cmp") + "/b.json"
        try #"{"records_per_s": 100, "latency_ms": {"p99": 4}, "config": {"x": 1}}"#.write(toFile: a, atomically: true, encoding: .utf8)
        try #"{"records_per_s": 150, "latency_ms": {"p99": 2}}"#.write(toFile: b, atomically: true, encoding: .utf8)
        let r = try pinbench("report", "compare", a, b, "--format", "json")
        #expect(r.status == 0)
        let rows = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [[String: Any]]
        let byName = Dictionary(uniqueKeysWithValues: rows.map { ($0["figure"] as! String, $0["ratio"] as? Double) })
        #expect(byName["records_per_s"] == 1.5 && byName["latency_ms.p99"] == 0.5)
        let text = try pinbench("report", "compare", Self.benchDir, Self.benchDir)
        #expect(text.stdout.contains("scenarios[embedded].figures.records_per_s") && text.stdout.contains("1.000"))
        let missing = try pinbench("report", "compare", "/nonexistent/a", b)
        #expect(missing.status != 0 && missing.stderr.contains("cannot read"))
    }

    @Test(arguments: [
        (["bench", "--scenario", "warp", "--out", "/tmp/x"], "unknown scenario"),
        (["bench", "--duration", "0s", "--out", "/tmp/x"], "--duration must be > 0"),
        (["sweep", "--linger-ms", "", "--out", "/tmp/x"], "--linger-ms is empty"),
        (["sweep", "--compression", "lz4,brotli", "--out", "/tmp/x"], "cannot read \"brotli\""),
        (["bench", "--scenario", "kinesis", "--out", "/tmp/x"], "needs --kinesis"),
        (["bench", "--scenario", "serve", "--out", "/tmp/x"], "serve_vs_nginx"),
    ])
    func badFlagsGiveOneLine(_ args: [String], _ mentions: String) throws {
        let r = try runProcess(pinbenchBinary(), args)
        #expect(r.status != 0)
        #expect(r.stderr.contains(mentions), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
    }

    /// Looks at the report as a person would: headless Chromium renders it to a PNG in the tests' output
    /// folder, and Pillow (an independent reader) checks the picture has the expected size and is not blank.
    @Test func htmlReportRendersWithPlotsInChromium() throws {
        let png = artifactsDir() + "/bench-report.png"
        try? FileManager.default.removeItem(atPath: png)
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        #expect(chromium != nil, "chromium is not installed (apt-get install chromium)")
        guard let chromium else { return }
        let r = try runProcess("/usr/bin/timeout", ["120", chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                                                     "--window-size=1100,1800", "--screenshot=\(png)", "file://\(Self.benchDir)/report.html"])
        #expect(FileManager.default.fileExists(atPath: png), "no screenshot: \(r.stderr.suffix(400))")
        let check = try python3(["-c", """
            import sys
            from PIL import Image
            im = Image.open(sys.argv[1]).convert('RGB')
            w, h = im.size
            px = list(im.getdata())
            colours = len(set(px))
            ink = sum(1 for p in px if p != (255, 255, 255)) / len(px)
            # The plot lines use the palette's first colour (#1f77b4): the charts are really drawn.
            blue = sum(1 for p in px if abs(p[0] - 0x1f) < 40 and abs(p[1] - 0x77) < 40 and abs(p[2] - 0xb4) < 40)
            print(w, h, colours, round(ink, 4), blue)
            sys.exit(0 if (w, h) == (1100, 1800) and colours > 20 and ink > 0.02 and blue > 500 else 1)
            """, png])
        #expect(check.status == 0, "screenshot check: \(check.stdout) \(check.stderr)")
    }
}
