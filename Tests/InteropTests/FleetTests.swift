import Foundation
import Testing
import TestSupport

// Issue 15, items 1 and 2: workers that split one load, and HdrHistogram interval logs that HdrHistogram's
// own readers (the Python `hdrhistogram` package, Java's HistogramLogProcessor) read.

@Suite(.serialized) struct FleetTests {
    /// Four workers as local processes (two with --worker I/4, two with JOB_COMPLETION_INDEX as an Indexed Job
    /// sets it), each into its own embedded log: the union of what they wrote is exactly what `emulate` makes
    /// with the same seed and count, no post twice; each .hlog holds one latency per stored record.
    @Test func fourWorkersWriteExactlyOneProcesssPostsAndTheirLogsAreRead() throws {
        let dir = tempDir("fleet")
        let posts = 2_000, n = 4
        var counts: [Int] = []
        for i in 0..<n {
            var args = ["run", "--count", String(posts), "--seed", "7", "--data-dir", "\(dir)/w\(i)", "--partitions", "1",
                        "--threads", "1", "--rate", "4000", "--hlog", "\(dir)/w\(i).hlog", "--report-json", "\(dir)/w\(i).json", "--quiet"]
            var env: [String: String] = [:]
            if i < 2 { args += ["--worker", "\(i)/\(n)"] } else { args += ["--workers", String(n)]; env["JOB_COMPLETION_INDEX"] = String(i) }
            let r = try runProcess(pinbenchBinary(), args, environment: env)
            #expect(r.status == 0, "worker \(i): \(r.stderr)")
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
        // HdrHistogram's Java HistogramLogProcessor reads them too.
        for i in 0..<n {
            let j = try runProcess("/usr/bin/java", ["-cp", "/usr/share/java/hdrhistogram.jar", "org.HdrHistogram.HistogramLogProcessor",
                                                     "-i", "\(dir)/w\(i).hlog", "-csv"])
            #expect(j.status == 0, "\(j.stderr)")
            #expect(j.stdout.contains("\"Value\",\"Percentile\",\"TotalCount\""), "\(j.stdout.prefix(300))")
            #expect(j.stdout.contains(",\(counts[i]),"), "the last row's total count is the worker's records: \(j.stdout.suffix(300))")
        }
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
