import AWSClient
import TableStore
import TableSync
import Foundation
import Testing
import TestSupport
import Platform
import AWSAuth

/// The streaming path against moto (server mode) with boto3 as the independent reader, the fault proxy for
/// what moto never does, and moto's signature checks for our SigV4.
@Suite(.serialized) struct KinesisMotoTests {
    static let creds = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"]

    func pb(_ args: [String], env: [String: String] = creds) throws -> ProcessResult {
        try runProcess(pinbenchBinary(), args, environment: env)
    }

    func peer(_ args: [String], env: [String: String] = creds) throws -> ProcessResult {
        let script = Bundle.module.path(forResource: "kinesis_peer", ofType: "py", inDirectory: "Peers")!
        return try runProcess("/usr/bin/env", ["python3", script] + args, environment: env)
    }

    func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    func report(_ path: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))) as? [String: Any] ?? [:]
    }

    /// With one sink stage, and with three (each stream on its own thread and curl handle, issue 13 item 3):
    /// boto3 reads every record once, each shard in index order.
    @Test(arguments: ["1", "3"]) func floodToThreeStreamsOfTwoShardsBoto3FindsEveryRecordOnce(_ stages: String) throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("kin-flood")
        let run = try pb(["run", "--kinesis", "--aws-endpoint", moto.endpoint, "--create-streams", "--shards", "2", "--count", "3000",
                          "--seed", "4", "--ordered", "--sink-stages", stages, "--report-json", "\(dir)/r.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let r = report("\(dir)/r.json")
        #expect(r["records_in"] as? Int == 9000)
        #expect(r["records_out"] as? Int == 9000)
        #expect(r["dead_lettered"] as? Int == 0)
        #expect(r["mode"] as? String == "kinesis")
        #expect((r["config"] as? [String: Any])?["sink_stages"] as? Int == Int(stages))
        #expect((r["partitions"] as? [[String: Any]])?.compactMap { $0["records"] as? Int } == [3000, 3000, 3000], "\(r["partitions"] ?? "")")
        #expect(!"\(r)".contains("testing"), "no secret in the report")
        #expect(try pb(["emulate", "--count", "3000", "--seed", "4", "--out", "\(dir)/emu"]).status == 0)
        // Payload bytes out are the records' data: the emulated lines' bytes, every one accepted.
        var lineBytes = 0
        for k in ["pin", "geo", "user"] {
            let text = try String(contentsOfFile: "\(dir)/emu/\(k).jsonl", encoding: .utf8)
            lineBytes += text.split(separator: "\n").reduce(0) { $0 + $1.utf8.count }
        }
        #expect(r["payload_bytes"] as? Int == lineBytes)
        #expect((r["mb_per_s"] as? Double ?? 0) > 0)
        for sample in r["timeline"] as? [[String: Any]] ?? [] where (sample["records_out"] as? Int ?? 0) > 0 {
            #expect((sample["payload_bytes_out"] as? Int ?? 0) > 0, "per-second MB/s: \(sample)")
        }
        #expect((r["latency_ms"] as? [String: Any])?["measured_to"] as? String == "Kinesis PutRecords acceptance")
        // moto takes a few thousand records a second and one call per stream is in flight (--ordered): the
        // producer stage spends its time waiting inside its calls for moto's answers, not on the CPU.
        let sink = (r["stages"] as? [String: Any])?["sink"] as? [String: Any] ?? [:]
        #expect((sink["waiting_share"] as? Double ?? 0) > (sink["busy_share"] as? Double ?? 1), "\(sink)")
        #expect((sink["cpu_seconds"] as? Double ?? 0) > 0 && (sink["cpu_seconds"] as? Double ?? 0) <= (r["cpu_seconds"] as? Double ?? 0) + 0.02, "\(sink)")
        // The summary shows what applies to Kinesis: no compression ratio, no stored batches.
        #expect(run.stdout.contains("latency ends at") && run.stdout.contains("Kinesis PutRecords acceptance"), "\(run.stdout)")
        #expect(!run.stdout.contains("ratio") && !run.stdout.contains("stored ("), "\(run.stdout)")
        let v = try peer(["verify", moto.endpoint, "pinbench", "\(dir)/emu", "--ordered"])
        #expect(v.status == 0, "boto3 reader: \(v.stdout) \(v.stderr)")
        let s = json(v.stdout)
        #expect(s["records"] as? Int == 9000)
        #expect(s["duplicates"] as? Int == 0)
        #expect(s["shards"] as? [String: Int] == ["pin": 2, "geo": 2, "user": 2])
    }

    @Test func aggregatedRecordsUnpackToTheSamePosts() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("kin-agg")
        let run = try pb(["run", "--kinesis", "--aws-endpoint", moto.endpoint, "--create-streams", "--shards", "2", "--count", "2000",
                          "--seed", "6", "--aggregate", "--ordered", "--quiet", "--report-json", "\(dir)/r.json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(report("\(dir)/r.json")["records_out"] as? Int == 6000)
        #expect(try pb(["emulate", "--count", "2000", "--seed", "6", "--out", "\(dir)/emu"]).status == 0)
        let v = try peer(["verify", moto.endpoint, "pinbench", "\(dir)/emu"])
        #expect(v.status == 0, "boto3 reader: \(v.stdout) \(v.stderr)")
        let s = json(v.stdout)
        #expect(s["records"] as? Int == 6000)
        #expect((s["kinesis_records"] as? Int ?? 6000) < 600, "posts share Kinesis records")
        // The streaming tables unpack them too.
        let st = try pb(["stream", "--tables", "\(dir)/tables", "--aws-endpoint", moto.endpoint, "--report-json", "\(dir)/s.json"])
        #expect(st.status == 0, "\(st.stderr)")
        #expect(report("\(dir)/s.json")["written"] as? Int == 6000)
    }

    @Test func faultsLoseNothingAndTheTablesRemoveTheDuplicates() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("kin-faults")
        let proxyPort = freePort()
        let proxyScript = Bundle.module.path(forResource: "fault_proxy", ofType: "py", inDirectory: "Peers")!
        let proxy = try startProcess("/usr/bin/env", ["python3", proxyScript, String(proxyPort), String(moto.port), "11", "\(dir)/faults.json"])
        defer { stopProcess(proxy) }
        #expect(waitForPort(proxyPort, seconds: 20))
        let run = try pb(["run", "--kinesis", "--aws-endpoint", "http://127.0.0.1:\(proxyPort)", "--create-streams", "--count", "3000",
                          "--seed", "8", "--ordered", "--quiet", "--report-json", "\(dir)/r.json"])
        #expect(run.status == 0, "\(run.stderr)")
        let r = report("\(dir)/r.json")
        #expect(r["records_out"] as? Int == 9000, "every record accepted in the end")
        #expect(r["dead_lettered"] as? Int == 0)
        let retries = r["retries_by_code"] as? [String: Int] ?? [:]
        #expect((retries["ProvisionedThroughputExceededException"] ?? 0) > 0, "\(retries)")
        #expect((retries["InternalFailure"] ?? 0) > 0, "\(retries)")
        let faults = report("\(dir)/faults.json")
        #expect((faults["partial"] as? Int ?? 0) > 0)

        #expect(try pb(["emulate", "--count", "3000", "--seed", "8", "--out", "\(dir)/emu"]).status == 0)
        let v = try peer(["verify", moto.endpoint, "pinbench", "\(dir)/emu", "--allow-duplicates"])
        #expect(v.status == 0, "boto3 reader: \(v.stdout) \(v.stderr)")
        let s = json(v.stdout)
        #expect(s["records"] as? Int == 9000, "nothing lost")
        // Duplicates only where Kinesis stored a call whose answer was lost (at-least-once), never from
        // retrying entries the service reported failed.
        let dups = s["duplicates"] as? Int ?? -1
        #expect(dups >= 0 && dups <= faults["dropped_after_entries"] as? Int ?? 0, "duplicates \(dups), faults \(faults)")

        let st = try pb(["stream", "--tables", "\(dir)/tables", "--aws-endpoint", moto.endpoint, "--report-json", "\(dir)/s.json"])
        #expect(st.status == 0, "\(st.stderr)")
        let sr = report("\(dir)/s.json")
        #expect(sr["written"] as? Int == 9000, "the tables hold each post once: \(sr)")
        #expect(sr["duplicates"] as? Int == dups)
    }

    @Test func onlyFailedEntriesAreRetried() throws {
        // Without the one fault that legitimately duplicates (a stored call whose answer is lost), a run
        // through partial failures, 500s, throttling and slow answers leaves every record exactly once.
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("kin-nodup")
        let proxyPort = freePort()
        let proxyScript = Bundle.module.path(forResource: "fault_proxy", ofType: "py", inDirectory: "Peers")!
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", proxyScript, String(proxyPort), String(moto.port), "3", "\(dir)/faults.json"]
        p.environment = ProcessInfo.processInfo.environment.merging(["NO_DROP_AFTER": "1"]) { _, n in n }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        defer { stopProcess(p) }
        #expect(waitForPort(proxyPort, seconds: 20))
        let run = try pb(["run", "--kinesis", "--aws-endpoint", "http://127.0.0.1:\(proxyPort)", "--create-streams", "--count", "2000",
                          "--seed", "9", "--ordered", "--quiet", "--report-json", "\(dir)/r.json"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(report("\(dir)/r.json")["records_out"] as? Int == 6000)
        #expect(try pb(["emulate", "--count", "2000", "--seed", "9", "--out", "\(dir)/emu"]).status == 0)
        let v = try peer(["verify", moto.endpoint, "pinbench", "\(dir)/emu"])
        #expect(v.status == 0, "boto3 reader: \(v.stdout) \(v.stderr)")
        #expect(json(v.stdout)["duplicates"] as? Int == 0)
    }

    @Test func streamTablesResumeWithoutLossOrDuplicates() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("kin-resume")
        let ep = moto.endpoint
        #expect(try pb(["run", "--kinesis", "--aws-endpoint", ep, "--create-streams", "--count", "1000", "--seed", "1", "--ordered", "--quiet"]).status == 0)
        let s1 = try pb(["stream", "--tables", "\(dir)/t", "--aws-endpoint", ep, "--report-json", "\(dir)/s1.json"])
        #expect(s1.status == 0, "\(s1.stderr)")
        #expect(report("\(dir)/s1.json")["written"] as? Int == 3000)
        // Nothing new: nothing read, no commit.
        let s2 = try pb(["stream", "--tables", "\(dir)/t", "--aws-endpoint", ep, "--report-json", "\(dir)/s2.json"])
        #expect(s2.status == 0)
        let r2 = report("\(dir)/s2.json")
        #expect(r2["records"] as? Int == 0)
        #expect(r2["resumed_shards"] as? Int == 6)
        #expect(r2["commits"] as? Int == 0)
        // More posts: only they are read.
        #expect(try pb(["run", "--kinesis", "--aws-endpoint", ep, "--count", "400", "--seed", "2", "--ordered", "--quiet"]).status == 0)
        let s3 = try pb(["stream", "--tables", "\(dir)/t", "--aws-endpoint", ep, "--report-json", "\(dir)/s3.json"])
        #expect(s3.status == 0)
        #expect(report("\(dir)/s3.json")["records"] as? Int == 1200)
        // deltalake (delta-rs) sees 1,400 rows per table.
        let count = try python3(["-c", """
            import deltalake, sys
            for k in ("pin", "geo", "user"):
                t = deltalake.DeltaTable(sys.argv[1] + "/" + k)
                n = deltalake.QueryBuilder().register("t", t).execute("SELECT count(*) AS n FROM t").read_all().column("n")[0].as_py()
                print(k, n, t.version())
            """, "\(dir)/t"])
        #expect(count.status == 0, "\(count.stderr)")
        #expect(count.stdout.contains("pin 1400 1"), "\(count.stdout)")
        #expect(count.stdout.contains("geo 1400 1"), "\(count.stdout)")
        #expect(count.stdout.contains("user 1400 1"), "\(count.stdout)")
    }

    @Test func s3LandingReadsBackWithBoto3() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("s3-land")
        #expect(try pb(["run", "--count", "2500", "--data-dir", "\(dir)/data", "--quiet"]).status == 0)
        let land = try pb(["land", "--data-dir", "\(dir)/data", "--to", "s3://landing/raw", "--create-bucket", "--aws-endpoint", moto.endpoint, "--flush-records", "1000"])
        #expect(land.status == 0, "\(land.stderr)")
        #expect(try pb(["land", "--data-dir", "\(dir)/data", "--to", "\(dir)/local", "--flush-records", "1000"]).status == 0)
        let v = try peer(["s3-verify", moto.endpoint, "landing", "raw", "\(dir)/local"])
        #expect(v.status == 0, "\(v.stdout) \(v.stderr)")
        #expect(json(v.stdout)["lines"] as? Int == 7500)
        // A re-run rewrites the last object of each partition with the same bytes: still the same objects.
        #expect(try pb(["land", "--data-dir", "\(dir)/data", "--to", "s3://landing/raw", "--aws-endpoint", moto.endpoint, "--flush-records", "1000"]).status == 0)
        let again = try peer(["s3-verify", moto.endpoint, "landing", "raw", "\(dir)/local"])
        #expect(again.status == 0, "\(again.stdout)")
    }

    @Test func multipartUploadIsOneObjectForBoto3() throws {
        let moto = try Moto()
        defer { moto.stop() }
        var cfg = AWSConfig(region: "us-east-1", credentials: Credentials(accessKeyId: "testing", secretAccessKey: "testing"), endpoint: moto.endpoint)
        cfg.retryDeadlineMs = 10_000
        let s3 = try S3Client(config: cfg, bucket: "big")
        s3.multipartThreshold = 6 << 20
        s3.partBytes = 5 << 20
        try s3.createBucket()
        var bytes = [UInt8](repeating: 0, count: 12 << 20 | 12345)
        for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 2654435761 >> 13) }
        try s3.putObject("blobs/big.bin", bytes)
        let check = try python3(["-c", """
            import boto3, hashlib, sys
            s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
            h = s3.head_object(Bucket="big", Key="blobs/big.bin")
            body = s3.get_object(Bucket="big", Key="blobs/big.bin")["Body"].read()
            print(len(body), hashlib.sha256(body).hexdigest(), h["ETag"])
            """, moto.endpoint])
        #expect(check.status == 0, "\(check.stderr)")
        let parts = check.stdout.split(separator: " ")
        #expect(parts.first.map(String.init) == String(bytes.count))
        #expect(parts.count > 1 && String(parts[1]) == Digest.hex(Digest.sha256(bytes)))
        #expect(check.stdout.contains("-3"), "a 3-part multipart ETag: \(check.stdout)")
        #expect(try s3.getObject("blobs/big.bin") == bytes)
        #expect(try s3.list(prefix: "blobs/") == [S3Object(key: "blobs/big.bin", size: bytes.count)])
    }

    @Test func motoChecksOurSignatures() throws {
        // moto verifies SigV4 once INITIAL_NO_AUTH_ACTION_COUNT calls have passed: the first three create an
        // IAM user with an access key; every later call must be signed with it.
        let moto = try Moto(authAfter: 3)
        defer { moto.stop() }
        let key = try peer(["iam-key", moto.endpoint])
        #expect(key.status == 0, "\(key.stderr)")
        let kv = key.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard kv.count == 2 else { Issue.record("no key: \(key.stdout)"); return }
        let good = ["AWS_ACCESS_KEY_ID": kv[0], "AWS_SECRET_ACCESS_KEY": kv[1], "AWS_REGION": "us-east-1"]
        let run = try pb(["run", "--kinesis", "--aws-endpoint", moto.endpoint, "--create-streams", "--count", "300", "--ordered", "--quiet"], env: good)
        #expect(run.status == 0, "signed with the right key: \(run.stderr)")
        let st = try pb(["stream", "--tables", tempDir("kin-auth"), "--aws-endpoint", moto.endpoint], env: good)
        #expect(st.status == 0, "\(st.stderr)")

        var cfg = AWSConfig(region: "us-east-1", credentials: Credentials(accessKeyId: kv[0], secretAccessKey: kv[1]), endpoint: moto.endpoint)
        cfg.maxAttempts = 1
        let s3 = try S3Client(config: cfg, bucket: "signed")
        try s3.createBucket()
        try s3.putObject("object.json", Array("{\"a\":1}".utf8), contentType: "application/json")
        #expect(try s3.getObject("object.json") == Array("{\"a\":1}".utf8))

        var wrongSecret = good
        wrongSecret["AWS_SECRET_ACCESS_KEY"] = "wrong" + kv[1]
        let bad = try pb(["run", "--kinesis", "--aws-endpoint", moto.endpoint, "--count", "300", "--quiet"], env: wrongSecret)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("SignatureDoesNotMatch"), "\(bad.stderr)")
        #expect(bad.stderr.split(separator: "\n").count == 1, "one clear line: \(bad.stderr)")
        #expect(!bad.stderr.contains(kv[1]), "the secret never shows")
        var wrongKey = good
        wrongKey["AWS_ACCESS_KEY_ID"] = "AKIAIOSFODNN7EXAMPLE"
        let unknown = try pb(["run", "--kinesis", "--aws-endpoint", moto.endpoint, "--count", "300", "--quiet"], env: wrongKey)
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("InvalidClientTokenId") || unknown.stderr.contains("UnrecognizedClient"), "\(unknown.stderr)")
    }

    @Test func unknownStreamAndBadEndpointGiveOneClearError() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let missing = try pb(["run", "--kinesis", "--aws-endpoint", moto.endpoint, "--stream-prefix", "nosuch", "--count", "10", "--quiet"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("streaming-nosuch-pin does not exist"), "\(missing.stderr)")
        #expect(missing.stderr.split(separator: "\n").count == 1, "\(missing.stderr)")
        let closed = freePort()
        let unreachable = try pb(["run", "--kinesis", "--aws-endpoint", "http://127.0.0.1:\(closed)", "--count", "10", "--quiet"])
        #expect(unreachable.status != 0)
        #expect(unreachable.stderr.contains("cannot reach http://127.0.0.1:\(closed)"), "\(unreachable.stderr)")
        #expect(unreachable.stderr.split(separator: "\n").count == 1, "\(unreachable.stderr)")
        let scheme = try pb(["run", "--kinesis", "--aws-endpoint", "127.0.0.1:\(closed)", "--count", "10", "--quiet"])
        #expect(scheme.status != 0)
        #expect(scheme.stderr.contains("must start with http://"), "\(scheme.stderr)")
        let noCreds = try runProcess(pinbenchBinary(), ["run", "--kinesis", "--aws-endpoint", moto.endpoint, "--count", "10", "--quiet"],
                                     environment: ["AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "HOME": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/c"])
        #expect(noCreds.status != 0)
        #expect(noCreds.stderr.contains("no AWS credentials"), "\(noCreds.stderr)")
    }

    @Test func deltaTablesInS3ReadByDeltaRs() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("s3-tables")
        #expect(try pb(["emulate", "--count", "1500", "--seed", "3", "--out", "\(dir)/a"]).status == 0)
        #expect(try pb(["emulate", "--count", "700", "--seed", "5", "--out", "\(dir)/b"]).status == 0)
        let s3 = try S3Client(config: AWSConfig(region: "us-east-1", credentials: Credentials(accessKeyId: "testing", secretAccessKey: "testing"), endpoint: moto.endpoint), bucket: "lake")
        try s3.createBucket()
        for from in ["a", "b"] {
            let c = try pb(["clean", "--from", "\(dir)/\(from)", "--tables", "s3://lake/tables", "--aws-endpoint", moto.endpoint])
            #expect(c.status == 0, "\(c.stderr)")
        }
        let read = try python3(["-c", """
            import deltalake, sys
            opts = {"AWS_ENDPOINT_URL": sys.argv[1], "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}
            for k in ("pin", "geo", "user"):
                t = deltalake.DeltaTable(f"s3://lake/tables/{k}", storage_options=opts)
                n = deltalake.QueryBuilder().register("t", t).execute("SELECT count(*) AS n FROM t").read_all().column("n")[0].as_py()
                print(k, t.version(), n)
            """, moto.endpoint])
        #expect(read.status == 0, "\(read.stderr)")
        for k in ["pin", "geo", "user"] { #expect(read.stdout.contains("\(k) 1 2200"), "\(read.stdout)") }
        let q = try pb(["analyze", "--tables", "s3://lake/tables", "--out", "\(dir)/q", "--quiet", "--aws-endpoint", moto.endpoint])
        #expect(q.status == 0, "\(q.stderr)")
        let local = try pb(["clean", "--from", "\(dir)/a", "--tables", "\(dir)/t"])
        #expect(local.status == 0)
        _ = try pb(["clean", "--from", "\(dir)/b", "--tables", "\(dir)/t"])
        #expect(try pb(["analyze", "--tables", "\(dir)/t", "--out", "\(dir)/ql", "--quiet"]).status == 0)
        for i in 1...9 {
            #expect(try String(contentsOfFile: "\(dir)/q/q\(i).csv", encoding: .utf8) == String(contentsOfFile: "\(dir)/ql/q\(i).csv", encoding: .utf8), "q\(i)")
        }
    }

    @Test func aCommitVersionTakenInS3IsNeverOverwritten() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let cfg = AWSConfig(region: "us-east-1", credentials: Credentials(accessKeyId: "testing", secretAccessKey: "testing"), endpoint: moto.endpoint)
        let s3 = try S3Client(config: cfg, bucket: "race")
        try s3.createBucket()
        let staging = try S3Tables.makeStaging()
        defer { removeTree(staging) }
        let tables = try S3Tables(url: "s3://race/t", aws: cfg, staging: staging)
        try tables.pull(tables: ["pin"])
        try FileManager.default.createDirectory(atPath: "\(staging)/pin/_delta_log", withIntermediateDirectories: true)
        try #"{"commitInfo":{"writer":"ours"}}"#.write(toFile: "\(staging)/pin/_delta_log/00000000000000000000.json", atomically: true, encoding: .utf8)
        // Another writer publishes version 0 between our pull and our push.
        #expect(try s3.putObjectIfAbsent("t/pin/_delta_log/00000000000000000000.json", Array(#"{"commitInfo":{"writer":"theirs"}}"#.utf8)))
        #expect(throws: StorageError.self) { try tables.push(tables: ["pin"]) }
        #expect(String(decoding: try s3.getObject("t/pin/_delta_log/00000000000000000000.json"), as: UTF8.self).contains("theirs"))
    }

    @Test func callsStayWithinTheServiceLimits() throws {
        // 12 records of 900 KB fit 5 per call (5 MiB), a 1.1 MB record is refused before sending, and calls
        // hold at most 500 entries: moto refuses calls over its limits, so acceptance shows it.
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("kin-limits")
        var lines: [String] = []
        for i in 0..<12 { lines.append("{\"i\":\(i),\"pad\":\"" + String(repeating: "x", count: 900_000) + "\"}") }
        lines.append("{\"big\":\"" + String(repeating: "y", count: 1_100_000) + "\"}")
        for i in 0..<1200 { lines.append("{\"small\":\(i)}") }
        try (lines.joined(separator: "\n") + "\n").write(toFile: "\(dir)/in.jsonl", atomically: true, encoding: .utf8)
        let py = try python3(["-c", "import boto3,sys; boto3.client('kinesis', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='t', aws_secret_access_key='t').create_stream(StreamName='limits', ShardCount=1)", moto.endpoint])
        #expect(py.status == 0, "\(py.stderr)")
        let r = try pb(["put-records", "--stream", "limits", "--file", "\(dir)/in.jsonl", "--aws-endpoint", moto.endpoint])
        #expect(r.status == 2, "one record refused: \(r.stderr)")
        let out = json(r.stdout)
        #expect(out["records"] as? Int == 1213)
        #expect(out["accepted"] as? Int == 1212)
        #expect(out["failed"] as? [String: Int] == ["RecordTooLarge": 1])
        // [5 big] [5 big] [2 big + 498 small] [500 small] [202 small]
        #expect(out["requests"] as? Int == 5, "\(out)")
    }

    @Test func benchHasAKinesisScenario() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let out = tempDir("kin-bench")
        let r = try pb(["bench", "--scenario", "kinesis", "--kinesis", "--ordered", "--aws-endpoint", moto.endpoint, "--duration", "2s",
                        "--warmup", "1s", "--rate", "300", "--quiet", "--format", "json", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let report = report("\(out)/report.json")
        let scenarios = report["scenarios"] as? [[String: Any]] ?? []
        #expect(scenarios.first?["name"] as? String == "kinesis", "\(report.keys)")
        #expect(!"\(report)".contains("\"testing\""), "no secret in the report")
    }

    @Test func benchNamesTheEndpointWhenTheProducerWaitsOnIt() throws {
        // Unbounded into moto (a few thousand records a second): the generators fill their rings and the
        // producer stage sits waiting for moto's answers, so the bottleneck is the endpoint, not pinbench.
        let moto = try Moto()
        defer { moto.stop() }
        let out = tempDir("kin-bench-bound")
        let r = try pb(["bench", "--scenario", "kinesis", "--kinesis", "--ordered", "--aws-endpoint", moto.endpoint, "--duration", "2s",
                        "--warmup", "0s", "--quiet", "--format", "json", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let scenario = (report("\(out)/report.json")["scenarios"] as? [[String: Any]])?.first ?? [:]
        let bottleneck = scenario["bottleneck"] as? String ?? ""
        #expect(bottleneck.hasPrefix("the Kinesis endpoint (the kinesis producer stage waits on it"), "\(bottleneck) \(scenario["stages"] ?? "")")
    }

    @Test func followPicksUpNewPostsAndStopsWhenIdle() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("kin-follow")
        let ep = moto.endpoint
        #expect(try pb(["run", "--kinesis", "--aws-endpoint", ep, "--create-streams", "--count", "300", "--seed", "1", "--ordered", "--quiet"]).status == 0)
        // The follower starts, takes the first 300 posts, then waits; 200 more posts arrive while it runs.
        let follower = Process()
        follower.executableURL = URL(fileURLWithPath: pinbenchBinary())
        follower.arguments = ["stream", "--tables", "\(dir)/t", "--aws-endpoint", ep, "--follow", "--idle", "6s", "--report-json", "\(dir)/f.json"]
        follower.environment = ProcessInfo.processInfo.environment.merging(Self.creds) { _, n in n }
        follower.standardOutput = FileHandle.nullDevice
        follower.standardError = FileHandle.nullDevice
        try follower.run()
        defer { if follower.isRunning { kill(follower.processIdentifier, SIGKILL) } }
        // Wait for its first commit, so the next posts surely arrive while it follows.
        let firstCommit = "\(dir)/t/user/_delta_log/00000000000000000000.json"
        var waited = 0
        while !FileManager.default.fileExists(atPath: firstCommit) && waited < 200 { usleep(100_000); waited += 1 }
        #expect(FileManager.default.fileExists(atPath: firstCommit))
        #expect(try pb(["run", "--kinesis", "--aws-endpoint", ep, "--count", "200", "--seed", "2", "--ordered", "--quiet"]).status == 0)
        follower.waitUntilExit()
        #expect(follower.terminationStatus == 0)
        let r = report("\(dir)/f.json")
        #expect(r["written"] as? Int == 1500, "\(r)")
        #expect((r["rounds"] as? Int ?? 0) >= 2, "a round for the first posts, then one for the new ones: \(r)")
    }
}
