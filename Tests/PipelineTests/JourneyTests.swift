import Foundation
import Testing
import TestSupport

/// The journeys of a new user, run as they would run them (a subprocess; a pseudo-terminal from `script`
/// where the progress line matters): the lines they read and the exit codes they get.
@Suite struct JourneyTests {
    static func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    /// Runs `args` on a pseudo-terminal (util-linux `script`): what a user at a terminal sees, as one string.
    static func onTerminal(_ args: [String]) throws -> ProcessResult {
        let quoted = ([pinbenchBinary()] + args).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        return try runProcess("/usr/bin/script", ["-q", "-e", "-c", quoted, "/dev/null"])
    }

    @Test(arguments: [
        (["run"], "--duration"),
        (["emulat", "--count", "3"], "did you mean 'emulate'"),
        (["run", "--count", "-5"], "--count must be ≥ 0"),
        (["run", "--count", "1", "--partitions", "0"], "--partitions"),
        (["run", "--count", "1", "--kafka", "localhost"], "host:port"),
        (["clean", "--from", "/tmp", "--tables", "/tmp/t", "--compression", "lz4"], "lz4"),
        (["clean", "--from", "s3://bucket/landing", "--tables", "/tmp/t"], "aws s3 sync"),
        (["run", "--duration", "1s", "--rate", "0"], "--rate"),
    ])
    func usageErrorsAreOneLineAndExit64(_ args: [String], _ mentions: String) throws {
        let r = try pinbench(args)
        #expect(r.status == 64, "\(args): \(r.status) \(r.stderr)")
        #expect(r.stderr.contains(mentions), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
    }

    @Test func aDataDirMadeWithOtherSettingsIsRefusedUnlessAppending() throws {
        let dir = tempDir("journey-append")
        let first = try pinbench("run", "--count", "300", "--data-dir", dir)
        #expect(first.status == 0)
        #expect(first.stderr.contains("writing to embedded log in \(dir) (3 topics × 3 partitions, lz4)"), "\(first.stderr)")
        let other = try pinbench("run", "--count", "300", "--data-dir", dir, "--partitions", "5", "--compression", "zstd")
        #expect(other.status == 64)
        #expect(other.stderr.contains("--partitions 3 --compression lz4") && other.stderr.contains("--append"), "\(other.stderr)")
        let same = try pinbench("run", "--count", "300", "--data-dir", dir)
        #expect(same.status == 0)
        #expect(same.stderr.contains("appending to the 900 records there"), "\(same.stderr)")
        #expect(try pinbench("run", "--count", "300", "--data-dir", dir, "--partitions", "5", "--append", "--quiet").status == 0)
        #expect(try pinbench("log", "verify", "--data-dir", dir).status == 0)
    }

    @Test func plainErrorsNameWhatToDo() throws {
        let empty = tempDir("journey-empty")
        let verify = try pinbench("log", "verify", "--data-dir", empty)
        #expect(verify.status == 1 && verify.stderr.contains("no embedded log in \(empty)"), "\(verify.stderr)")
        let dir = tempDir("journey-cat")
        #expect(try pinbench("run", "--count", "30", "--data-dir", dir, "--quiet").status == 0)
        let cat = try pinbench("log", "cat", "--data-dir", dir, "--topic", "pinbench.pins")
        #expect(cat.status != 0 && cat.stderr.contains("it holds pinbench.geo, pinbench.pin, pinbench.user"), "\(cat.stderr)")
        let out = tempDir("journey-bench")
        #expect(try pinbench("bench", "--out", out, "--duration", "1s", "--warmup", "0s", "--quiet").status == 0)
        let again = try pinbench("bench", "--out", out, "--duration", "1s")
        #expect(again.status == 64 && again.stderr.contains("already holds a report"), "\(again.stderr)")
        #expect(try pinbench("run", "--count", "30", "--data-dir", "\(dir)/2", "--quiet", "--report-json", "\(dir)/run.json").status == 0)
        let compare = try pinbench("report", "compare", out, "\(dir)/run.json")
        #expect(compare.status == 64 && compare.stderr.contains("a bench report") && compare.stderr.contains("a run report"), "\(compare.stderr)")
        // A port in use: one line saying so.
        let taken = try Listener()
        defer { taken.close() }
        let serve = try pinbench("serve", "--listen", "127.0.0.1:\(taken.port)", "--data-dir", "\(dir)/serve")
        #expect(serve.status != 0 && serve.stderr.contains("the address is in use"), "\(serve.stderr)")
    }

    @Test func progressShowsOnATerminalAndNeverInPipes() throws {
        let dir = tempDir("journey-progress")
        let tty = try Self.onTerminal(["run", "--count", "60000", "--rate", "20000", "--data-dir", "\(dir)/a"])
        #expect(tty.status == 0, "\(tty.stdout)")
        #expect(tty.stdout.contains("% ETA") && tty.stdout.contains("posts/s  lag"), "\(tty.stdout)")
        #expect(tty.stdout.contains("offered rate") && tty.stdout.contains("met: 20.0 k posts/s"), "\(tty.stdout)")
        let pipe = try pinbench("run", "--count", "60000", "--rate", "20000", "--data-dir", "\(dir)/b")
        #expect(pipe.status == 0)
        #expect(!pipe.stderr.contains("\r") && !pipe.stderr.contains("ETA"), "\(pipe.stderr)")
    }

    @Test func anOfferedRateThatCannotBeMetIsSaidAndBoundedByTheDuration() throws {
        let dir = tempDir("journey-rate")
        let r = try pinbench("run", "--rate", "5000000", "--duration", "4s", "--threads", "1", "--data-dir", "\(dir)/d", "--report-json", "\(dir)/r.json")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: offered rate not met"), "\(r.stderr)")
        #expect(r.stdout.contains("NOT MET") && r.stdout.contains("posts scheduled but never sent"), "\(r.stdout)")
        let report = try Self.json("\(dir)/r.json")
        let rate = report["offered_rate"] as! [String: Any]
        #expect(rate["met"] as? Bool == false)
        #expect((rate["unsent_posts"] as? Int ?? 0) > 0)
        // --duration bounds the run: the posts it could not send are counted, not sent late.
        #expect((report["seconds"] as? Double ?? 99) < 4 + 10, "\(report["seconds"] ?? "")")
        #expect(report["accounting_holds"] as? Bool == true)
    }

    @Test(arguments: [(SIGINT, Int32(130)), (SIGTERM, Int32(143))])
    func aSignalStopsARunCleanly(_ sig: Int32, _ code: Int32) throws {
        let dir = tempDir("journey-signal")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: pinbenchBinary())
        p.arguments = ["run", "--duration", "60s", "--rate", "50000", "--data-dir", "\(dir)/d", "--report-json", "\(dir)/r.json", "--quiet"]
        try p.run()
        // The signal comes once the flood is writing (a debug build takes over a second to parse its options,
        // more on a loaded machine: a fixed delay sometimes stopped it before its first record).
        let writing = Date().addingTimeInterval(60)
        func stored() -> Bool {
            let log = "\(dir)/d/log"
            let parts = (try? FileManager.default.contentsOfDirectory(atPath: log)) ?? []
            return parts.contains { part in
                ((try? FileManager.default.contentsOfDirectory(atPath: "\(log)/\(part)")) ?? []).contains { f in
                    f.hasSuffix(".log") && ((try? FileManager.default.attributesOfItem(atPath: "\(log)/\(part)/\(f)")[.size] as? Int) ?? 0) > 0
                }
            }
        }
        while !stored() && p.isRunning && Date() < writing { usleep(20_000) }
        usleep(300_000)
        kill(p.processIdentifier, sig)
        let t0 = Date()
        p.waitUntilExit()
        #expect(p.terminationStatus == code)
        #expect(Date().timeIntervalSince(t0) < 10)
        let report = try Self.json("\(dir)/r.json")
        #expect(report["interrupted"] as? Bool == true)
        #expect(report["accounting_holds"] as? Bool == true)
        #expect((report["records_out"] as? Int ?? 0) > 0)
        #expect(try pinbench("log", "verify", "--data-dir", "\(dir)/d").status == 0)
    }

    @Test func anInterruptedBenchWritesItsPartialReportAndRemovesItsData() throws {
        let out = tempDir("journey-bench-int")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: pinbenchBinary())
        p.arguments = ["bench", "--out", out, "--duration", "60s", "--warmup", "0s", "--rate", "50000", "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        usleep(2_000_000)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        #expect(p.terminationStatus == 130)
        #expect(try Self.json("\(out)/report.json")["interrupted"] as? Bool == true)
        #expect(!FileManager.default.fileExists(atPath: "\(out)/data"))
    }

    @Test func maxBytesStopsCleanly() throws {
        let dir = tempDir("journey-max")
        let r = try pinbench("run", "--duration", "60s", "--max-bytes", "20m", "--data-dir", "\(dir)/d", "--report-json", "\(dir)/r.json")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("stops after 20m of payload"), "\(r.stderr)")
        let report = try Self.json("\(dir)/r.json")
        #expect(report["stop_reason"] as? String == "max-bytes reached")
        // The cap is checked per chunk (256 posts a generator): a few chunks over at most.
        #expect((report["payload_bytes"] as? Int ?? .max) < 20 << 20 + 8 << 20)
        #expect(try pinbench("log", "verify", "--data-dir", "\(dir)/d").status == 0)
    }
}

/// A socket listening on a free loopback port (a port in use).
final class Listener {
    let fd: Int32
    let port: Int
    init() throws {
        let s = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(s, $0, len) } }
        listen(s, 1)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(s, $0, &len) } }
        fd = s
        port = Int(UInt16(bigEndian: addr.sin_port))
    }
    func close() { Glibc.close(fd) }
}

@Suite struct VersionTests {
    /// The revision is the one the binary was built from (embedded at build time), not the cwd's.
    @Test func versionNamesTheBuiltRevision() throws {
        let v = try runProcess(pinbenchBinary(), ["--version"], cwd: "/")
        #expect(v.status == 0)
        let line = v.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(line.range(of: #"^0\.1\.0 \([0-9a-f]{12}(\+dirty)?\)$"#, options: .regularExpression) != nil, "\(line)")
    }
}

@Suite struct InterruptedBatchPathTests {
    /// Ctrl-C in `land`: what was landed stays, the report says interrupted, a re-run lands exactly the rest
    /// (together: every record of the log once). Ctrl-C in `clean`: no table gets a commit it did not finish.
    @Test func landAndCleanStopCleanlyAndResume() throws {
        let dir = tempDir("journey-land")
        #expect(try pinbench("run", "--count", "600000", "--data-dir", "\(dir)/d", "--quiet").status == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: pinbenchBinary())
        p.arguments = ["land", "--data-dir", "\(dir)/d", "--to", "\(dir)/l", "--report-json", "\(dir)/l.json", "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        usleep(400_000)
        kill(p.processIdentifier, SIGINT)
        p.waitUntilExit()
        let first = try JourneyTests.json("\(dir)/l.json")
        // A fast machine may have landed everything before the signal: then it is a normal run.
        #expect(p.terminationStatus == 130 || (p.terminationStatus == 0 && first["interrupted"] as? Bool == false))
        if p.terminationStatus == 130 { #expect(first["interrupted"] as? Bool == true) }
        let again = try pinbench("land", "--data-dir", "\(dir)/d", "--to", "\(dir)/l", "--report-json", "\(dir)/l2.json", "--quiet")
        #expect(again.status == 0)
        let second = try JourneyTests.json("\(dir)/l2.json")
        let landedOnce = (first["records"] as! Int) + (second["records"] as! Int) - (second["already_landed"] as! Int)
        #expect(landedOnce == 1_800_000, "\(first) \(second)")
        let wc = try runProcess("/bin/sh", ["-c", "cat '\(dir)'/l/topics/*/*/*.json | wc -l"])
        #expect(wc.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "1800000")

        let c = Process()
        c.executableURL = URL(fileURLWithPath: pinbenchBinary())
        c.arguments = ["clean", "--from", "\(dir)/l", "--tables", "\(dir)/t", "--quiet", "--sequential"]
        c.standardOutput = FileHandle.nullDevice
        try c.run()
        usleep(300_000)
        kill(c.processIdentifier, SIGTERM)
        c.waitUntilExit()
        #expect(c.terminationStatus == 143 || c.terminationStatus == 0)
        if c.terminationStatus == 143 {
            // The user table is cleaned last (--sequential): it cannot have a commit.
            #expect(!FileManager.default.fileExists(atPath: "\(dir)/t/user/_delta_log/00000000000000000000.json"))
        }
    }
}
