import Foundation
import Testing
import TestSupport

@Suite struct CLITests {
    @Test func runFloodsWhatEmulateWrites() throws {
        let dir = tempDir("cli")
        let run = try pinbench("run", "--count", "1500", "--seed", "7", "--threads", "2", "--data-dir", "\(dir)/data",
                               "--partitions", "1", "--report-json", "\(dir)/report.json", "--quiet")
        #expect(run.status == 0, "\(run.stderr)")
        let emu = try pinbench("emulate", "--count", "1500", "--seed", "7", "--out", "\(dir)/emu")
        #expect(emu.status == 0)
        for kind in ["pin", "geo", "user"] {
            // One partition: the log holds the posts in index order, exactly the emulator's lines.
            let cat = try pinbench("log", "cat", "--data-dir", "\(dir)/data", "--topic", "pinbench.\(kind)")
            #expect(cat.status == 0)
            let file = try String(contentsOfFile: "\(dir)/emu/\(kind).jsonl", encoding: .utf8)
            #expect(cat.stdout == file, "\(kind)")
        }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/report.json"))) as! [String: Any]
        #expect(report["records_in"] as? Int == 4500)
        #expect(report["records_out"] as? Int == 4500)
        #expect(report["dead_lettered"] as? Int == 0)
        let latency = report["latency_ms"] as! [String: Any]
        #expect(latency["p50"] is Double && latency["p999"] is Double && latency["max"] is Double)
        #expect((report["config"] as! [String: Any])["threads"] as? Int == 2)
    }

    /// A paced flood: each chunk's posts are made first and the chunk is handed over (or, when the sink stage
    /// makes the posts itself, taken) once its last post is due, so the log is still exactly the emulator's,
    /// and no record is stored before its scheduled time (that would show as a latency of 0, the clamp).
    /// Two generators and two sink stages, and the defaults under a modest --rate: one stage that generates.
    @Test(arguments: [(["--threads", "2", "--sink-stages", "2"], false), ([], true)])
    func aPacedFloodHandsEachPostOverNoSoonerThanItsSchedule(_ threads: [String], _ inStage: Bool) throws {
        let dir = tempDir("paced")
        let run = try pinbench(["run", "--count", "2000", "--rate", "4000", "--seed", "7"] + threads +
                               ["--data-dir", "\(dir)/data", "--partitions", "1", "--report-json", "\(dir)/report.json", "--quiet"])
        #expect(run.status == 0, "\(run.stderr)")
        let emu = try pinbench("emulate", "--count", "2000", "--seed", "7", "--out", "\(dir)/emu")
        #expect(emu.status == 0)
        for kind in ["pin", "geo", "user"] {
            let cat = try pinbench("log", "cat", "--data-dir", "\(dir)/data", "--topic", "pinbench.\(kind)")
            let file = try String(contentsOfFile: "\(dir)/emu/\(kind).jsonl", encoding: .utf8)
            #expect(cat.stdout == file, "\(kind)")
        }
        let report = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/report.json"))) as? [String: Any] ?? [:]
        #expect(report["records_in"] as? Int == 6000 && report["records_out"] as? Int == 6000, "\(report)")
        let config = report["config"] as? [String: Any] ?? [:]
        #expect(config["generator_in_sink_stage"] as? Bool == inStage, "\(config)")
        let latency = report["latency_ms"] as? [String: Any] ?? [:]
        #expect(latency["count"] as? Int == 6000)
        #expect((latency["min"] as? Double ?? 0) > 0, "a record was stored before it was due: \(latency)")
        // The run took its schedule: 2,000 posts at 4,000/s end no sooner than 0.5 s after the start.
        #expect((report["seconds"] as? Double ?? 0) >= 0.49, "\(report["seconds"] ?? "-")")
    }

    @Test func pythonStyleEmulation() throws {
        let dir = tempDir("py")
        #expect(try pinbench("emulate", "--count", "50", "--out", dir, "--style", "python").status == 0)
        let line = try String(contentsOfFile: "\(dir)/pin.jsonl", encoding: .utf8).split(separator: "\n")[0]
        #expect(line.hasPrefix(#"{"index": 0, "unique_id": ""#))
    }

    @Test func verifyFindsDamageAndExitsNonZero() throws {
        let dir = tempDir("verify")
        #expect(try pinbench("run", "--count", "300", "--data-dir", dir, "--partitions", "1", "--quiet").status == 0)
        let ok = try pinbench("log", "verify", "--data-dir", dir)
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("pinbench.pin-0") && ok.stdout.contains("900 records") && ok.stdout.contains("all batches good"))
        let seg = "\(dir)/log/pinbench.geo-0/00000000000000000000.log"
        var data = try Data(contentsOf: URL(fileURLWithPath: seg))
        data[data.count - 10] ^= 0xFF
        try data.write(to: URL(fileURLWithPath: seg))
        let bad = try pinbench("log", "verify", "--data-dir", dir)
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("DAMAGED") && bad.stdout.contains("CRC-32C mismatch"))
    }

    /// Issue 16 item 5, through the commands: a CRC-valid segment named and based at 2^63 - 3 (the base offset
    /// is outside the CRC). `log verify` reports it, `log cat` reads the rest, `run --append` fails that
    /// partition with a clear line and counts every record, and `serve` answers offsets and keeps serving.
    /// Before the fix, `run` trapped (exit 132) summing the partitions' next offsets.
    @Test func aSegmentBasedNearInt64MaxIsDamageNotATrap() throws {
        let dir = tempDir("crafted")
        #expect(try pinbench("run", "--count", "20", "--partitions", "1", "--data-dir", dir, "--quiet").status == 0)
        let base = Int64.max - 2
        let pdir = "\(dir)/log/pinbench.geo-0"
        var bytes = try Data(contentsOf: URL(fileURLWithPath: "\(pdir)/00000000000000000000.log"))
        withUnsafeBytes(of: base.bigEndian) { for (i, b) in $0.enumerated() { bytes[i] = b } }
        try FileManager.default.removeItem(atPath: "\(pdir)/00000000000000000000.log")
        let name = String(repeating: "0", count: 20 - String(base).count) + String(base) + ".log"
        try bytes.write(to: URL(fileURLWithPath: "\(pdir)/\(name)"))
        let copy = "\(dir)-serve"
        try FileManager.default.copyItem(atPath: dir, toPath: copy)

        let verify = try pinbench("log", "verify", "--data-dir", dir)
        #expect(verify.status == 1 && verify.stdout.contains("impossible offsets"), "\(verify.status) \(verify.stdout)\(verify.stderr)")
        let cat = try pinbench("log", "cat", "--data-dir", dir, "--topic", "pinbench.pin")
        #expect(cat.status == 0 && cat.stdout.split(separator: "\n").count == 20, "\(cat.stderr)")
        let run = try pinbench("run", "--count", "20", "--partitions", "1", "--data-dir", dir, "--append", "--report-json", "\(dir)/r.json")
        #expect(run.status != 0 && run.status != 132, "\(run.stderr)")
        #expect((run.stdout + run.stderr).contains("log write failed"), "\(run.stdout) \(run.stderr)")
        let r = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/r.json"))) as? [String: Any]) ?? [:]
        let (inn, out, dead) = (r["records_in"] as? Int ?? -1, r["records_out"] as? Int ?? -1, r["dead_lettered"] as? Int ?? -1)
        // The geo partition's 20 fail; pin and user (other partitions) are stored.
        #expect(inn == 60 && out == 40 && dead == 20, "\(r)")

        let port = freePort()
        let server = try startProcess(pinbenchBinary(), ["serve", "--listen", "127.0.0.1:\(port)", "--data-dir", copy, "--partitions", "1", "--quiet"])
        defer { stopProcess(server) }
        #expect(waitForPort(port, seconds: 20))
        let answers = try python3(["-c", """
        import json, sys, requests
        base = sys.argv[1]
        def post(topic, n):
            a = requests.post(base + "/topics/" + topic, data=json.dumps({"records": [{"value": {"a": i}} for i in range(n)]}),
                              headers={"Content-Type": "application/vnd.kafka.json.v2+json"}, timeout=10)
            return [a.status_code, [o.get("offset") for o in a.json().get("offsets", [])]]
        print(json.dumps([post("pinbench.geo", 1), post("pinbench.geo", 3), post("pinbench.pin", 1)]))
        """, "http://127.0.0.1:\(port)"])
        // One record fits below Int64.max; three more do not and are answered as failed; other topics go on.
        let got = (try? JSONSerialization.jsonObject(with: Data(answers.stdout.utf8)) as? [[Any]]) ?? []
        #expect(got.count == 3, "\(answers.stdout) \(answers.stderr)")
        if got.count == 3 {
            #expect(got[0][0] as? Int == 200 && (got[0][1] as? [Any])?.first as? Int == Int(base), "\(got[0])")
            #expect((got[1][1] as? [Any])?.allSatisfy { $0 is NSNull } == true, "\(got[1])")
            #expect(got[2][0] as? Int == 200 && (got[2][1] as? [Any])?.first as? Int == 20, "\(got[2])")
        }
        #expect(server.isRunning)
    }

    @Test(arguments: [
        (["run", "--count", "10", "--compression", "brotli"], "brotli"),
        (["run", "--count", "10", "--partitions", "0"], "--partitions"),
        (["run", "--duration", "0s"], "--duration"),
        (["run", "--count", "10", "--batch-bytes", "lots"], "batch-bytes"),
        (["log", "cat", "--data-dir", "/nonexistent/pinbench", "--topic", "x"], "/nonexistent/pinbench"),
        (["log", "verify", "--data-dir", "/nonexistent/pinbench"], "/nonexistent/pinbench"),
        (["serve", "--max-body-bytes", "3g"], "--max-body-bytes"),
        (["clean", "--from", "/tmp", "--tables", "/tmp/t", "--max-record-bytes", "3000000000"], "--max-record-bytes"),
    ])
    func badInputGivesOneClearLineAndNonZeroExit(_ args: [String], _ mentions: String) throws {
        let r = try runProcess(pinbenchBinary(), args)
        #expect(r.status != 0)
        #expect(r.stderr.contains(mentions), "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"))
    }
}

/// The README's CLI section against `--help`: every option it shows for a command exists there, and a
/// default it writes out (`[--linger-ms 5]`) is the one `--help` states.
@Suite struct ReadmeCLITests {
    static func readme() throws -> String {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
    }

    /// (command words, usage text) for each `pinbench …` entry of the CLI block.
    static func entries() throws -> [([String], String)] {
        let text = try readme()
        guard let start = text.range(of: "## CLI\n\n```\n"), let end = text.range(of: "\n```", range: start.upperBound..<text.endIndex) else { return [] }
        var out: [([String], String)] = []
        for line in text[start.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("pinbench ") {
                let words = line.split(separator: " ").dropFirst().prefix { $0.allSatisfy { $0.isLowercase || $0 == "-" } && !$0.hasPrefix("-") }
                out.append((words.map(String.init), String(line)))
            } else if let last = out.popLast() {
                // Continuation lines of the usage (indented, starting with an option); descriptions are not usage.
                let t = line.drop { $0 == " " }
                out.append(t.hasPrefix("[") || t.hasPrefix("--") ? (last.0, last.1 + " " + t) : last)
            }
        }
        return out
    }

    @Test func everyOptionInTheReadmeExistsWithTheDefaultItShows() throws {
        let entries = try Self.entries()
        #expect(entries.count >= 15)
        var help: [[String]: String] = [:]
        for (words, usage) in entries {
            if help[words] == nil {
                let r = try pinbench(words + ["--help"])
                #expect(r.status == 0, "\(words)")
                help[words] = r.stdout.replacingOccurrences(of: "\n", with: " ").split(separator: " ").joined(separator: " ")
            }
            let h = help[words]!
            let options = usage.split(whereSeparator: { " [|]".contains($0) }).filter { $0.hasPrefix("--") }
                .map { String($0.prefix { $0 != "=" }).trimmingCharacters(in: CharacterSet(charactersIn: ",.;:)")) }
            for o in options where o != "--help" {
                #expect(h.contains(o + " ") || h.contains(o + ","), "README shows \(o) for pinbench \(words.joined(separator: " ")), --help does not")
            }
            // `[--opt value]` with a literal lower-case value: the default --help states, when it states one.
            var rest = Substring(usage)
            while let open = rest.range(of: "[--") {
                let inner = rest[open.upperBound...].prefix { $0 != "]" }
                rest = rest[inner.endIndex...]
                let parts = inner.split(separator: " ")
                guard parts.count == 2, parts[1].allSatisfy({ $0.isLowercase || $0.isNumber || $0 == "." || $0 == ":" }) else { continue }
                let name = "--" + parts[0]
                guard let at = h.range(of: "\(name) <") else { continue }
                let after = h[at.upperBound...]
                let next = after.range(of: " --")?.lowerBound ?? after.endIndex
                guard let d = after[..<next].range(of: "default: ") else { continue }
                let value = after[d.upperBound...].prefix { $0 != ")" && $0 != ";" }
                #expect(String(value) == String(parts[1]), "README: [\(inner)] for pinbench \(words.joined(separator: " ")); --help: default \(value)")
            }
        }
    }
}

/// Issue 16 item 18: a new segment, a new partition folder and a Delta commit are durable only once their
/// directory entries are on disk: pinbench fsyncs those directories (seen with strace -y).
@Suite struct DirectoryDurabilityTests {
    @Test func newSegmentsAndCommitsAreSyncedInTheirDirectories() throws {
        let dir = tempDir("dirsync")
        let run = try runProcess("/usr/bin/strace", ["-f", "-qq", "-e", "trace=fsync", "-y", "-o", "\(dir)/run.st",
                                                     pinbenchBinary(), "run", "--count", "100", "--data-dir", "\(dir)/d", "--quiet"])
        #expect(run.status == 0, "\(run.stderr)")
        let st = try String(contentsOfFile: "\(dir)/run.st", encoding: .utf8)
        // strace -y writes fsync(FD</path>) — or "fsync(FD</path> <unfinished ...>" when threads interleave.
        #expect(st.contains("fsync(") && st.contains("<\(dir)/d/log/pinbench.pin-0>"), "segment folder not synced")
        #expect(st.contains("<\(dir)/d/log>"), "log folder not synced")
        #expect(try pinbench("emulate", "--count", "50", "--out", "\(dir)/in").status == 0)
        let clean = try runProcess("/usr/bin/strace", ["-f", "-qq", "-e", "trace=fsync", "-y", "-o", "\(dir)/clean.st",
                                                       pinbenchBinary(), "clean", "--from", "\(dir)/in", "--tables", "\(dir)/t", "--quiet"])
        #expect(clean.status == 0, "\(clean.stderr)")
        let cst = try String(contentsOfFile: "\(dir)/clean.st", encoding: .utf8)
        for k in ["pin", "geo", "user"] {
            #expect(cst.contains("<\(dir)/t/\(k)/_delta_log>"), "\(k): commit directory not synced")
            #expect(cst.contains("<\(dir)/t/\(k)>"), "\(k): table directory not synced")
        }
    }
}
