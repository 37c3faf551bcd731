import Foundation
import Testing
import TestSupport

/// librdkafka's mock cluster (Debian librdkafka-dev) driven by a small C helper: injects broker errors,
/// takes a broker down and up, adds round-trip time, and counts what the cluster holds.
final class MockCluster {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    var bootstrap = ""
    var buffer = Data()

    static let helper: String = {
        let src = Bundle.module.path(forResource: "mock_cluster", ofType: "c", inDirectory: "Peers")!
        let bin = NSTemporaryDirectory() + "pinbench-mock-cluster-\(getpid())"
        let r = try? runProcess("/usr/bin/env", ["gcc", "-O2", "-o", bin, src, "-lrdkafka"])
        precondition(r?.status == 0, "cannot build the mock cluster helper (apt-get install librdkafka-dev gcc): \(r?.stderr ?? "")")
        return bin
    }()

    init(prefix: String, partitions: Int = 3, brokers: Int = 3) throws {
        process.executableURL = URL(fileURLWithPath: MockCluster.helper)
        process.arguments = [prefix, String(partitions), String(brokers)]
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = readLine()
        precondition(line.hasPrefix("bootstrap "), "mock cluster said: \(line)")
        bootstrap = String(line.dropFirst("bootstrap ".count))
    }

    func readLine() -> String {
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = String(decoding: buffer[buffer.startIndex..<nl], as: UTF8.self)
                buffer = Data(buffer[(nl + 1)...])
                return line
            }
            let d = output.fileHandleForReading.availableData
            if d.isEmpty { return "" }
            buffer.append(d)
        }
    }

    @discardableResult
    func command(_ c: String) -> String {
        input.fileHandleForWriting.write(Data((c + "\n").utf8))
        return readLine()
    }

    /// (records, distinct keys, duplicates) in a topic.
    func count(_ topic: String) -> (Int, Int, Int) {
        let parts = command("count \(topic)").split(separator: " ").compactMap { Int($0) }
        return parts.count == 3 ? (parts[0], parts[1], parts[2]) : (-1, -1, -1)
    }

    deinit {
        input.fileHandleForWriting.write(Data("quit\n".utf8))
        stopProcess(process)
    }
}

@Suite(.serialized) struct KafkaFaultTests {
    /// Starts a flood of `posts` at `rate` posts/s against the mock cluster and injects faults while it runs;
    /// `ioThreads`: an I/O thread per broker, or the sender doing its own I/O.
    func floodWithFaults(idempotence: Bool, posts: Int, rate: Int, ioThreads: Bool) throws -> (MockCluster, [String: Any], ProcessResult, String) {
        let prefix = "f\(UUID().uuidString.prefix(6).lowercased())"
        let mock = try MockCluster(prefix: prefix)
        let dir = tempDir("fault")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: pinbenchBinary())
        p.arguments = ["run", "--kafka", mock.bootstrap, "--topic-prefix", prefix, "--count", String(posts), "--rate", String(rate),
                       "--idempotence", String(idempotence), "--batch-bytes", "16k", "--linger-ms", "5", "--compression", "lz4",
                       "--io-threads", String(ioThreads), "--report-json", "\(dir)/report.json", "--quiet"]
        let errPath = "\(dir)/stderr.txt"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
        p.standardOutput = FileHandle.nullDevice
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let pause = { (s: Double) in usleep(UInt32(s * 1_000_000)) }
        pause(0.4)
        #expect(mock.command("perr 4 6") == "ok")  // NOT_LEADER_OR_FOLLOWER
        pause(0.3)
        #expect(mock.command("perr 4 7") == "ok")  // REQUEST_TIMED_OUT
        pause(0.3)
        #expect(mock.command("rtt 1 40") == "ok")
        #expect(mock.command("down 2") == "ok")
        pause(0.6)
        #expect(mock.command("up 2") == "ok")
        pause(0.2)
        #expect(mock.command("rtt 1 0") == "ok")
        #expect(mock.command("perr 3 6") == "ok")
        pause(0.3)
        #expect(mock.command("perr 2 45") == "ok")  // OUT_OF_ORDER_SEQUENCE_NUMBER: the idempotent producer bumps its epoch
        p.waitUntilExit()
        let stderr = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        let report = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/report.json")))) as? [String: Any] ?? [:]
        return (mock, report, ProcessResult(status: p.terminationStatus, stdout: "", stderr: stderr), prefix)
    }

    @Test(arguments: [true, false])
    func idempotentProducerDeliversEveryRecordExactlyOnceThroughFaults(ioThreads: Bool) throws {
        let posts = 6000
        let (mock, report, run, prefix) = try floodWithFaults(idempotence: true, posts: posts, rate: 2000, ioThreads: ioThreads)
        #expect(((report["config"] as? [String: Any])?["io_threads"] as? Bool) == ioThreads)
        // A modest --rate: the sink stage compresses each batch as it seals it; retries resend those bytes.
        #expect(((report["config"] as? [String: Any])?["compress_on_seal"] as? Bool) == true)
        // Without I/O threads the sink stage also does the sender's work (no sender thread): exactly once both ways.
        #expect(((report["config"] as? [String: Any])?["sender_thread"] as? Bool) == ioThreads)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(report["records_out"] as? Int == 3 * posts)
        #expect(report["dead_lettered"] as? Int == 0)
        #expect((report["retries"] as? Int ?? 0) > 0, "faults were injected, so something was retried")
        let byCode = report["retries_by_code"] as? [String: Int] ?? [:]
        #expect(byCode["NOT_LEADER_OR_FOLLOWER"] ?? 0 > 0 && byCode["REQUEST_TIMED_OUT"] ?? 0 > 0, "\(byCode)")
        for kind in ["pin", "geo", "user"] {
            let (n, distinct, dups) = mock.count("\(prefix).\(kind)")
            #expect(n == posts && distinct == posts && dups == 0, "\(kind): \(n) records, \(distinct) distinct, \(dups) duplicates")
        }
    }

    @Test func withoutIdempotenceEveryLossIsReported() throws {
        let posts = 6000
        let (mock, report, _, prefix) = try floodWithFaults(idempotence: false, posts: posts, rate: 2000, ioThreads: true)
        let out = report["records_out"] as? Int ?? -1
        let dead = report["dead_lettered"] as? Int ?? -1
        #expect(report["records_in"] as? Int == 3 * posts)
        #expect(out + dead == 3 * posts)
        var present = 0
        for kind in ["pin", "geo", "user"] { present += mock.count("\(prefix).\(kind)").1 }
        // Duplicates are allowed without idempotence; a record missing from the cluster must have been reported.
        #expect(3 * posts - present <= dead, "\(3 * posts - present) records missing, \(dead) reported")
        #expect(present >= out)
    }
}
