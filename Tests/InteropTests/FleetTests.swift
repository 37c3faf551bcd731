import Foundation
import Testing
import TestSupport

// Issue 15, items 1 and 2: workers that split one load, and HdrHistogram interval logs that HdrHistogram's
// own readers (the Python `hdrhistogram` package, Java's HistogramLogProcessor) read.

@Suite(.serialized) struct FleetTests {
    /// Four workers as local processes started together (two with --worker I/4, two with JOB_COMPLETION_INDEX
    /// as an Indexed Job sets it), each into its own embedded log: the union of what they wrote is exactly what `emulate` makes
    /// with the same seed and count, no post twice; each .hlog holds one latency per stored record.
    @Test func fourWorkersWriteExactlyOneProcesssPostsAndTheirLogsAreRead() throws {
        let dir = tempDir("fleet")
        let posts = 2_000, n = 4
        var counts: [Int] = []
        // All four at once, started together by --start-at (two seconds from now), as a fleet would be.
        let at = String(Int(Date().timeIntervalSince1970) + 3)
        var procs: [Process] = []
        for i in 0..<n {
            var args = ["run", "--count", String(posts), "--seed", "7", "--data-dir", "\(dir)/w\(i)", "--partitions", "1", "--start-at", at,
                        "--threads", "1", "--rate", "4000", "--hlog", "\(dir)/w\(i).hlog", "--report-json", "\(dir)/w\(i).json", "--quiet"]
            var env = ProcessInfo.processInfo.environment
            if i < 2 { args += ["--worker", "\(i)/\(n)"] } else { args += ["--workers", String(n)]; env["JOB_COMPLETION_INDEX"] = String(i) }
            let p = Process()
            p.executableURL = URL(fileURLWithPath: pinbenchBinary())
            p.arguments = args
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            p.standardInput = FileHandle.nullDevice
            try p.run()
            procs.append(p)
        }
        for (i, p) in procs.enumerated() {
            p.waitUntilExit()
            #expect(p.terminationStatus == 0, "worker \(i)")
            let j = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/w\(i).json"))) as? [String: Any]) ?? [:]
            counts.append(j["records_out"] as? Int ?? -1)
        }
        #expect(counts == [1_500, 1_500, 1_500, 1_500], "each worker a quarter of 2,000 posts × 3 records: \(counts)")
        #expect(try pinbench("emulate", "--count", String(posts), "--seed", "7", "--out", "\(dir)/one").status == 0)
        // Every record of every kind, compared as parsed JSON (a multiset: nothing twice, nothing missing).
        let check = try python3(["-c", """
        import json, subprocess, sys, collections
        d, binary, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
        bad = []
        for kind in ("pin", "geo", "user"):
            want = collections.Counter(json.dumps(json.loads(l), sort_keys=True) for l in open(f"{d}/one/{kind}.jsonl"))
            got = collections.Counter()
            for i in range(n):
                out = subprocess.run([binary, "log", "cat", "--data-dir", f"{d}/w{i}", "--topic", f"pinbench.{kind}"], capture_output=True, text=True, check=True).stdout
                got.update(json.dumps(json.loads(l), sort_keys=True) for l in out.splitlines() if l)
            if got != want:
                bad.append(f"{kind}: {sum((got - want).values())} extra, {sum((want - got).values())} missing")
        print("ok" if not bad else "; ".join(bad))
        """, dir, pinbenchBinary(), String(n)])
        #expect(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok", "\(check.stdout) \(check.stderr)")
        // The Python hdrhistogram package reads each log; its intervals add up to one latency per record.
        let py = try python3(["-c", """
        import sys
        from hdrh.log import HistogramLogReader
        from hdrh.histogram import HdrHistogram
        out = []
        for path in sys.argv[1:]:
            total = HdrHistogram(1, 3600000000, 3)
            reader = HistogramLogReader(path, total)
            intervals = 0
            while True:
                h = reader.add_next_interval_histogram()
                if not h: break
                intervals += 1
            out.append(f"{total.get_total_count()}:{intervals}:{total.get_value_at_percentile(99)}")
        print(" ".join(out))
        """] + (0..<n).map { "\(dir)/w\($0).hlog" })
        let per = py.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map { $0.split(separator: ":") }
        #expect(per.count == n, "\(py.stdout) \(py.stderr)")
        for (i, p) in per.enumerated() where p.count == 3 {
            #expect(Int(p[0]) == counts[i] && (Int(p[1]) ?? 0) >= 1 && (Int(p[2]) ?? 0) > 0, "worker \(i): \(p)")
        }
        // The merge: counts add up, and its percentiles are those of the Python package merging the .hlog files.
        let merged = try pinbench(["report", "merge"] + (0..<n).map { "\(dir)/w\($0).json" } + ["--out", "\(dir)/fleet"])
        #expect(merged.status == 0, "\(merged.stderr)")
        let m = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/fleet/report.json"))) as? [String: Any]) ?? [:]
        #expect(m["records_out"] as? Int == 6_000 && m["records_in"] as? Int == 6_000 && m["accounting_holds"] as? Bool == true)
        #expect((m["flags"] as? [String])?.isEmpty == true, "started together, nothing to flag: \(m["flags"] ?? "")")
        let lat = m["latency_us"] as? [String: Int] ?? [:]
        let theirs = try python3(["-c", """
        import sys
        from hdrh.log import HistogramLogReader
        from hdrh.histogram import HdrHistogram
        total = HdrHistogram(1, 3600000000, 3)
        for path in sys.argv[1:]:
            r = HistogramLogReader(path, total)
            while r.add_next_interval_histogram(): pass
        print(total.get_total_count(), total.get_value_at_percentile(50), total.get_value_at_percentile(99), total.get_max_value())
        """] + (0..<n).map { "\(dir)/w\($0).hlog" })
        let t = theirs.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(t.count == 4 && t[0] == lat["count"] && t[1] == lat["p50"] && t[2] == lat["p99"] && t[3] == lat["max"],
                "python \(theirs.stdout) \(theirs.stderr) vs merged \(lat)")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/fleet/report.html") && FileManager.default.fileExists(atPath: "\(dir)/fleet/report.md"))
        // Overlapping and missing slices are refused with one line.
        let twice = try pinbench("report", "merge", "\(dir)/w0.json", "\(dir)/w0.json", "\(dir)/w2.json", "\(dir)/w3.json", "--out", "\(dir)/bad")
        #expect(twice.status == 1 && twice.stderr.contains("appears twice"), "\(twice.stderr)")
        let short = try pinbench("report", "merge", "\(dir)/w0.json", "\(dir)/w1.json", "\(dir)/w3.json", "--out", "\(dir)/bad")
        #expect(short.status == 1 && short.stderr.contains("worker 2/4 missing") && short.stderr.split(separator: "\n").count == 1, "\(short.stderr)")
        // A worker that started 5 s late is flagged.
        _ = try python3(["-c", "import json,sys; p=sys.argv[1]; d=json.load(open(p)); d['started_unix_ms'] += 5000; json.dump(d, open(sys.argv[2], 'w'))",
                         "\(dir)/w3.json", "\(dir)/w3-late.json"])
        let late = try pinbench("report", "merge", "\(dir)/w0.json", "\(dir)/w1.json", "\(dir)/w2.json", "\(dir)/w3-late.json", "--out", "\(dir)/late")
        #expect(late.status == 0 && late.stdout.contains("worker 3/4 started 5."), "\(late.stdout) \(late.stderr)")
        // HdrHistogram's Java HistogramLogProcessor reads them too.
        for i in 0..<n {
            let j = try runProcess("/usr/bin/java", ["-cp", "/usr/share/java/hdrhistogram.jar", "org.HdrHistogram.HistogramLogProcessor",
                                                     "-i", "\(dir)/w\(i).hlog", "-csv"])
            #expect(j.status == 0, "\(j.stderr)")
            #expect(j.stdout.contains("\"Value\",\"Percentile\",\"TotalCount\""), "\(j.stdout.prefix(300))")
            #expect(j.stdout.contains(",\(counts[i]),"), "the last row's total count is the worker's records: \(j.stdout.suffix(300))")
        }
    }

    /// Issue 15 item 7 (started): a running flood's /metrics, scraped mid-run and during --metrics-hold after it,
    /// with the worker's label; the last scrape equals the final report.
    @Test func aRunningFloodsMetricsMatchItsReport() throws {
        let dir = tempDir("metrics")
        let port = freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: pinbenchBinary())
        p.arguments = ["run", "--duration", "4s", "--rate", "2000", "--worker", "1/2", "--data-dir", "\(dir)/data", "--quiet",
                       "--metrics-listen", "127.0.0.1:\(port)", "--metrics-hold", "5s", "--report-json", "\(dir)/r.json"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { stopProcess(p) }
        let r = try python3(["-c", """
        import sys, time, os, urllib.request, re
        port, report = sys.argv[1], sys.argv[2]
        def scrape():
            t = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
            return {m.group(1): float(m.group(2)) for m in re.finditer(r'^(pinbench_run_\\w+)\\{[^}]*worker="1/2"[^}]*\\} (\\S+)$', t, re.M)}, t
        time.sleep(2.5)
        mid, _ = scrape()
        while not os.path.exists(report): time.sleep(0.2)
        time.sleep(0.5)
        end, text = scrape()
        # A family is served when it has samples or is declared (# TYPE): failures and retries by code have
        # samples only once something failed.
        open(sys.argv[3], "w").write(",".join(sorted(set(re.findall(r"^(?:# TYPE )?(pinbench_run_[a-z_]+)", text, re.M)))))
        assert re.search(r'^pinbench_run_queue_depth\\{[^}]*worker="1/2"[^}]*\\} \\d+$', text, re.M), "no queue depth gauge"
        assert "# TYPE pinbench_run_failed_records_total counter" in text and "# TYPE pinbench_run_retries_total counter" in text
        print(int(mid["pinbench_run_records_out_total"]), int(end["pinbench_run_records_out_total"]), int(end["pinbench_run_records_in_total"]),
              int(end["pinbench_run_latency_seconds_count"]), 'le="+Inf"' in text)
        """, String(port), "\(dir)/r.json", "\(dir)/names"])
        let f = r.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        let j = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/r.json"))) as? [String: Any]) ?? [:]
        let out = j["records_out"] as? Int ?? -1, inn = j["records_in"] as? Int ?? -2
        #expect(f.count == 5, "\(r.stdout) \(r.stderr)")
        if f.count == 5 {
            #expect((Int(f[0]) ?? 0) > 0 && (Int(f[0]) ?? 0) < out, "mid-run \(f[0]) of \(out)")
            #expect(Int(f[1]) == out && Int(f[2]) == inn && Int(f[3]) == out && f[4] == "True", "\(f) vs report in \(inn) out \(out)")
        }
        // The Grafana dashboard asks only for metrics that exist: every name in its expressions is one the run
        // serves (pinbench_run_*) or serve's /metrics has (pinbench_ingest_*).
        let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let dash = try python3(["-c", """
        import json, re, sys
        d = json.load(open(sys.argv[1]))
        names = set()
        for p in d["panels"]:
            for t in p["targets"]:
                names |= set(re.findall(r"pinbench_[a-z_]+", t["expr"]))
        served = set(sys.argv[2].split(","))
        missing = sorted(n for n in names if n.startswith("pinbench_run") and n not in served)
        print("ok" if names and not missing else "missing " + ",".join(missing))
        """, "\(repoRoot)/deploy/grafana/pinbench.json", (try? String(contentsOfFile: "\(dir)/names", encoding: .utf8)) ?? ""])
        #expect(dash.stdout.contains("ok"), "\(dash.stdout) \(dash.stderr)")
    }

    /// `bench --worker I/N`: two bench workers start together (--start-at), each at half the offered rate, one
    /// scraped mid-run for its worker-labelled metrics; `report merge` of the two bench folders adds them up.
    @Test func benchWorkersMergeLikeRunWorkers() throws {
        let dir = tempDir("benchfleet")
        let port = freePort()
        let start = String(Int(Date().timeIntervalSince1970) + 2)
        var procs: [Process] = []
        for i in 0..<2 {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: pinbenchBinary())
            p.arguments = ["bench", "--worker", "\(i)/2", "--start-at", start, "--duration", "3s", "--warmup", "1s", "--rate", "2000",
                           "--threads", "1", "--out", "\(dir)/w\(i)", "--quiet"] + (i == 0 ? ["--metrics-listen", "127.0.0.1:\(port)"] : [])
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            procs.append(p)
        }
        defer { for p in procs { stopProcess(p) } }
        let scrape = try python3(["-c", """
        import sys, time, urllib.request
        time.sleep(4)
        t = urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/metrics", timeout=2).read().decode()
        print(any(l.startswith("pinbench_run_records_out_total{") and 'worker="0/2"' in l and 'mode="embedded"' in l and float(l.split()[-1]) > 0
                  for l in t.splitlines()))
        """, String(port)])
        for p in procs { p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        #expect(scrape.stdout.contains("True"), "\(scrape.stdout) \(scrape.stderr)")
        let m = try pinbench("report", "merge", "\(dir)/w0", "\(dir)/w1", "--out", "\(dir)/fleet")
        #expect(m.status == 0, "\(m.stderr)")
        let j = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/fleet/report.json"))) as? [String: Any]) ?? [:]
        let w = (0..<2).map { i in (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/w\(i)/worker.json"))) as? [String: Any]) ?? [:] }
        let sum = w.reduce(0) { $0 + ($1["records_out"] as? Int ?? 0) }
        #expect(sum > 0 && j["records_out"] as? Int == sum && j["workers"] as? Int == 2, "\(j)")
        #expect((j["flags"] as? [String])?.isEmpty == true, "\(j["flags"] ?? "")")
        // Each worker offered half the rate: 1,000 posts/s.
        for x in w { #expect((x["offered_rate"] as? [String: Any])?["target_posts_per_s"] as? Double == 1000, "\(x["offered_rate"] ?? "")") }
    }

    @Test func badWorkerSettingsAreOneLine() throws {
        let a = try pinbench("run", "--count", "10", "--worker", "4/4")
        #expect(a.status == 64 && a.stderr.contains("0 ≤ I < N"), "\(a.stderr)")
        let b = try runProcess(pinbenchBinary(), ["run", "--count", "10", "--workers", "3"], environment: ["JOB_COMPLETION_INDEX": ""])
        #expect(b.status == 64 && b.stderr.contains("JOB_COMPLETION_INDEX"), "\(b.stderr)")
        let c = try pinbench("run", "--count", "10", "--start-at", "tomorrow")
        #expect(c.status == 64 && c.stderr.contains("--start-at"), "\(c.stderr)")
    }
}
