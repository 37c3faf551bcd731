import Foundation
import Testing
import TestSupport

/// A broker that sends garbage, closes mid-response or never answers gives a clear, bounded failure.
@Suite struct BadBrokerTests {
    @Test(arguments: [
        ("garbage", "not Kafka"),
        ("close", "closed the connection mid-response"),
        ("silent", "no response within 1500 ms"),
        ("huge", "not Kafka"),
    ])
    func misbehavingBrokerGivesAClearBoundedFailure(_ mode: String, _ mentions: String) throws {
        let script = Bundle.module.path(forResource: "bad_broker", ofType: "py", inDirectory: "Peers")!
        let port = freePort()
        let server = try startProcess("/usr/bin/env", ["python3", script, String(port), mode])
        defer { stopProcess(server) }
        #expect(waitForPort(port, seconds: 10))
        let start = Date()
        let r = try pinbench("run", "--kafka", "127.0.0.1:\(port)", "--count", "10", "--request-timeout-ms", "1500")
        #expect(r.status != 0)
        #expect(r.stderr.contains(mentions), "\(mode): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        #expect(Date().timeIntervalSince(start) < 20)
        #expect(!r.stderr.contains("Fatal error"))
    }
}

/// Issue 16 item 6: an S3 listing is input. A key that climbs out of its table (`pin/../../../x`) is refused
/// with one line, and nothing is written outside the staging folder.
@Suite struct HostileS3Tests {
    @Test func aTraversalKeyInAListingIsRefused() throws {
        let script = Bundle.module.path(forResource: "fake_s3", ofType: "py", inDirectory: "Peers")!
        let port = freePort()
        let name = "pinbench-escape-\(UUID().uuidString.prefix(8))"
        let server = try startProcess("/usr/bin/env", ["python3", script, String(port), name])
        defer { stopProcess(server) }
        #expect(waitForPort(port, seconds: 10))
        let dir = tempDir("hostile-s3")
        try FileManager.default.createDirectory(atPath: "\(dir)/tmp/a/b/c", withIntermediateDirectories: true)
        let r = try runProcess(pinbenchBinary(), ["analyze", "--tables", "s3://b/lake", "--out", "\(dir)/q", "--quiet",
                                                  "--aws-endpoint", "http://127.0.0.1:\(port)"],
                               environment: ["AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "us-east-1", "TMPDIR": "\(dir)/tmp/a/b/c"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("is not a plain path"), "\(r.stderr)")
        // The key climbs six levels from the staging table folder: wherever that lands, no file by its name.
        let found = try runProcess("/usr/bin/find", ["/tmp", "-maxdepth", "9", "-name", name])
        #expect(found.stdout.isEmpty, "\(found.stdout)")
    }
}

/// `partitions_broker.py` (every topic with `partitions` partitions, and a hostile `mode`) on a free loopback
/// port, started by PID and ready; the caller stops it.
func startPartitionsBroker(partitions: Int, mode: String? = nil) throws -> (Process, Int) {
    let script = Bundle.module.path(forResource: "partitions_broker", ofType: "py", inDirectory: "Peers")!
    let port = freePort()
    let p = try startProcess("/usr/bin/env", ["python3", script, String(port), String(partitions)] + (mode.map { [$0] } ?? []))
    #expect(waitForPort(port, seconds: 10))
    return (p, port)
}

/// Issue 16 item 16: a Metadata answer is input. A broker declaring 200,000 partitions per topic gets one
/// clear line, quickly, and pinbench does not allocate a batch buffer per declared partition on the way.
@Suite struct HostileMetadataTests {
    @Test func aTopicWithTooManyPartitionsIsRefusedWithoutAllocatingForThem() throws {
        let (server, port) = try startPartitionsBroker(partitions: 200000)
        defer { stopProcess(server) }
        let dir = tempDir("many-partitions")
        let r = try runProcess("/usr/bin/time", ["-f", "maxrss_kb=%M", pinbenchBinary(), "run", "--kafka", "127.0.0.1:\(port)", "--idempotence", "false",
                                                  "--count", "10", "--data-dir", dir, "--quiet"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("reports 200000 partitions"), "\(r.stderr)")
        let rss = r.stderr.split(separator: "\n").first { $0.hasPrefix("maxrss_kb=") }.flatMap { Int($0.dropFirst("maxrss_kb=".count)) } ?? .max
        #expect(rss < 300_000, "peak RSS \(rss) kB")
    }
}

/// A broker that takes Produce requests and never answers them (a stalled cluster): `run --kafka` gives
/// each request `--request-timeout-ms`, retries on a new connection, fails what is still unacknowledged at
/// `--delivery-timeout-ms` (every record dead-lettered as a timeout, exit 2), and sleeps while it waits.
/// Before, the flood and its drain waited forever (SIGTERM too), spinning on half a core. Unpaced (a sender
/// thread) and paced (the sink stage does the sender's work: `sender_thread` false) alike.
@Suite struct StalledBrokerTests {
    @Test(arguments: [nil, "200"])
    func aFloodIntoAStalledBrokerEndsAtItsDeliveryTimeout(rate: String?) throws {
        let (broker, port) = try startPartitionsBroker(partitions: 3, mode: "stall")
        defer { stopProcess(broker) }
        let dir = tempDir("stalled")
        let t0 = Date()
        let r = try runProcess("/usr/bin/env", ["timeout", "60", pinbenchBinary(), "run", "--kafka", "127.0.0.1:\(port)", "--idempotence", "false",
                                                "--count", "100", "--request-timeout-ms", "1500", "--delivery-timeout-ms", "4000",
                                                "--quiet", "--report-json", "\(dir)/r.json"] + (rate.map { ["--rate", $0] } ?? []))
        let wall = Date().timeIntervalSince(t0)
        #expect(r.status == 2, "exit \(r.status): \(r.stderr)")
        #expect(wall < 30, "ended after \(wall) s")
        let j = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/r.json"))) as? [String: Any]) ?? [:]
        #expect(j["records_in"] as? Int == 300 && j["records_out"] as? Int == 0 && j["dead_lettered"] as? Int == 300, "\(j)")
        #expect(j["dead_letter_reasons"] as? [String: Int] == ["timeout": 300], "\(j["dead_letter_reasons"] ?? "")")
        #expect((j["retries_by_code"] as? [String: Int])?["timeout"] ?? 0 > 0, "requests were timed out and retried")
        // Waiting is sleeping: the whole run, start-up included, takes a fraction of one core's time.
        #expect((j["cpu_seconds"] as? Double ?? 99) < 2.0, "cpu \(j["cpu_seconds"] ?? "")")
        #expect((j["config"] as? [String: Any])?["sender_thread"] as? Bool == (rate == nil))
    }
}

/// Issue 16 item 2: a broker answering every Produce with base offset 2^63 - 2. `serve --kafka` answers the
/// offsets it can represent and `null` past Int64.max (no trap), and keeps serving; `run --kafka` counts the
/// records acknowledged with an unknown next offset.
@Suite struct HugeOffsetTests {
    @Test func offsetsNearInt64MaxAreAnsweredNotTrapped() throws {
        let (broker, bport) = try startPartitionsBroker(partitions: 1, mode: "hugeoffset")
        defer { stopProcess(broker) }
        let sport = freePort()
        let server = try startProcess(pinbenchBinary(), ["serve", "--listen", "127.0.0.1:\(sport)", "--kafka", "127.0.0.1:\(bport)",
                                                         "--idempotence", "false", "--quiet"])
        defer { stopProcess(server) }
        #expect(waitForPort(sport, seconds: 20))
        let r = try python3(["-c", """
        import json, sys, requests
        base = sys.argv[1]
        a = requests.post(base + "/topics/pinbench.pin", data=json.dumps({"records": [{"value": {"a": i}} for i in range(3)]}),
                          headers={"Content-Type": "application/vnd.kafka.json.v2+json"}, timeout=10)
        t = requests.get(base + "/topics", timeout=5)
        print(json.dumps({"status": a.status_code, "offsets": [o["offset"] for o in a.json()["offsets"]], "topics": t.status_code}))
        """, "http://127.0.0.1:\(sport)"])
        let got = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        #expect(got["status"] as? Int == 200 && got["topics"] as? Int == 200, "\(r.stdout) \(r.stderr)")
        let offsets = got["offsets"] as? [Any] ?? []
        #expect(offsets.count == 3 && (offsets[0] as? Int) == Int.max - 1 && (offsets[1] as? Int) == Int.max && offsets[2] is NSNull, "\(offsets)")
        let dir = tempDir("huge")
        let run = try pinbench("run", "--kafka", "127.0.0.1:\(bport)", "--idempotence", "false", "--count", "10", "--quiet", "--report-json", "\(dir)/r.json")
        #expect(run.status == 0, "\(run.stderr)")
        let j = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/r.json"))) as? [String: Any]) ?? [:]
        #expect(j["records_out"] as? Int == 30)
        #expect((j["partitions"] as? [[String: Any]])?.allSatisfy { $0["next_offset"] as? Int == -1 } == true, "\(j["partitions"] ?? "")")
    }
}

/// Issue 16 items 1 and 3 through the commands, one fake-broker mode per hostile answer: ApiVersions with a
/// 10-byte varint length or a tagged field claiming 2^62 bytes (every Kafka command starts with it), and a
/// Fetch holding a CRC-valid control batch at base offset 2^63 - 1 or a record whose timestamp delta
/// overflows. Each gives one line naming what was wrong, quickly, and no trap (these trapped before e601ff7).
@Suite struct HostileAnswerTests {
    @Test(arguments: [
        ("varint", "bad ApiVersions response: length 18446744073709551615"),
        ("tagged", "bad ApiVersions response: length 4611686018427387904"),
        ("fetchcontrol", "Fetch t-0 from offset 0: the broker sent an unreadable batch: impossible offsets: base 9223372036854775807"),
        ("fetchdelta", "Fetch t-0 from offset 0: the broker sent an unreadable batch: record 0 is malformed"),
    ])
    func aHostileAnswerIsOneClearLine(_ mode: String, _ mentions: String) throws {
        let (broker, port) = try startPartitionsBroker(partitions: 1, mode: mode)
        defer { stopProcess(broker) }
        let start = Date()
        let r = mode.hasPrefix("fetch")
            ? try pinbench("consume", "--kafka", "127.0.0.1:\(port)", "--topic", "t", "--from-beginning", "--count", "1")
            : try pinbench("run", "--kafka", "127.0.0.1:\(port)", "--count", "10", "--quiet", "--data-dir", tempDir("hostile-\(mode)"))
        #expect(r.status == 1, "\(mode): exit \(r.status) \(r.stderr)")
        #expect(r.stderr.contains(mentions), "\(mode): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        #expect(Date().timeIntervalSince(start) < 20)
    }
}

/// Answers that arrive in awkward pieces: a broker that sends a Produce answer's size field split across two
/// reads and two answers run together in one read (`partitions_broker.py … chunky`). Each answer is taken whole,
/// in order, from what the connection read ahead: every record is acknowledged once, at the offsets given.
@Suite struct AwkwardAnswerTests {
    @Test func answersSplitAndRunTogetherAreEachTakenInOrder() throws {
        let (broker, port) = try startPartitionsBroker(partitions: 3, mode: "chunky")
        defer { stopProcess(broker) }
        let dir = tempDir("chunky")
        // Small batches at a pace: about a hundred Produce requests, several in flight at once.
        let r = try pinbench("run", "--kafka", "127.0.0.1:\(port)", "--idempotence", "false", "--count", "2000", "--batch-bytes", "4k",
                             "--rate", "20000", "--quiet", "--report-json", "\(dir)/r.json")
        #expect(r.status == 0, "\(r.stderr)")
        let j = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/r.json"))) as? [String: Any]) ?? [:]
        #expect(j["records_out"] as? Int == 6000 && j["dead_lettered"] as? Int == 0, "\(j)")
        #expect((j["requests"] as? Int ?? 0) > 20, "\(j["requests"] ?? "")")
        // A lost or misread answer would show as a request timed out and retried.
        #expect(j["retries"] as? Int == 0, "\(j["retries_by_code"] ?? "")")
        let records = (j["partitions"] as? [[String: Any]] ?? []).map { $0["records"] as? Int ?? 0 }
        #expect(records.count == 9 && records.reduce(0, +) == 6000, "\(j["partitions"] ?? "")")
    }
}
