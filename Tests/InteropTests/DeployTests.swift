import Foundation
import Testing
import TestSupport

// Issue 15 item 5: the fleet on existing engines. The Kubernetes manifest is checked for its structure and
// its worker and merge commands are run as the Job would run them (N local processes with
// JOB_COMPLETION_INDEX set, a shared folder for /reports); the ssh script runs with ssh and scp stood in by
// local commands, its workers flooding one Tansu (the nightly DAG runs in Airflow itself: AirflowTests).

private let repo: String = {
    var d = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: d.appendingPathComponent("Package.swift").path) { d = d.deletingLastPathComponent() }
    return d.path
}()

@Suite(.serialized) struct DeployTests {
    @Test func theIndexedJobRunsAsKubernetesWouldRunIt() throws {
        let dir = tempDir("k8s")
        // Structure, and the two scripts out of the manifest.
        let parse = try python3(["-c", """
        import sys, yaml, json
        docs = list(yaml.safe_load_all(open(sys.argv[1])))
        by = {(d["kind"], d["metadata"]["name"]): d for d in docs}
        cm = by[("ConfigMap", "pinbench-flood")]["data"]
        job = by[("Job", "pinbench-flood")]["spec"]
        merge = by[("Job", "pinbench-merge")]["spec"]
        assert job["completionMode"] == "Indexed", "not an Indexed Job"
        assert job["completions"] == job["parallelism"] == int(cm["WORKERS"]), "completions, parallelism and WORKERS differ"
        c = job["template"]["spec"]["containers"][0]
        assert c["envFrom"][0]["configMapRef"]["name"] == "pinbench-flood"
        assert {m["mountPath"] for m in c["volumeMounts"]} == {"/reports"}
        claim = by[("PersistentVolumeClaim", "pinbench-reports")]["spec"]
        assert "ReadWriteMany" in claim["accessModes"]
        mc = merge["template"]["spec"]["containers"][0]
        assert "report merge /reports/worker-*.json" in mc["args"][0]
        json.dump({"worker": c["args"][0], "merge": mc["args"][0], "config": cm}, open(sys.argv[2], "w"))
        print("ok")
        """, "\(repo)/deploy/k8s/flood-job.yaml", "\(dir)/job.json"])
        #expect(parse.stdout.contains("ok"), "\(parse.stderr)")
        guard let job = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/job.json")))) as? [String: Any],
              let worker = job["worker"] as? String, let merge = job["merge"] as? String else { return }
        // The pods' view: /reports is a shared folder here, `pinbench` on PATH, a small load into embedded logs.
        try FileManager.default.createDirectory(atPath: "\(dir)/bin", withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(dir)/bin/pinbench", withDestinationPath: pinbenchBinary())
        let reports = "\(dir)/reports"
        try FileManager.default.createDirectory(atPath: reports, withIntermediateDirectories: true)
        let n = 4
        var procs: [Process] = []
        for i in 0..<n {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", worker.replacingOccurrences(of: "/reports", with: reports)]
            var env = ProcessInfo.processInfo.environment
            env["PATH"] = "\(dir)/bin:" + (env["PATH"] ?? "/usr/bin:/bin")
            env.merge(["WORKERS": String(n), "COUNT": "1200", "RATE": "2400", "SEED": "5", "START_AT": "now+2",
                       "BACKEND_ARGS": "--data-dir \(dir)/data\(i) --partitions 1", "JOB_COMPLETION_INDEX": String(i)]) { _, b in b }
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            try p.run()
            procs.append(p)
        }
        for p in procs { p.waitUntilExit(); #expect(p.terminationStatus == 0) }
        let m = try runProcess("/bin/sh", ["-c", merge.replacingOccurrences(of: "/reports", with: reports)],
                               environment: ["PATH": "\(dir)/bin:/usr/bin:/bin"])
        #expect(m.status == 0, "\(m.stderr)")
        let r = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(reports)/fleet/report.json"))) as? [String: Any]) ?? [:]
        #expect(r["records_out"] as? Int == 3_600 && r["workers"] as? Int == n, "\(r)")
        #expect((r["flags"] as? [String])?.isEmpty == true, "one start time for all pods: \(r["flags"] ?? "")")
        #expect(FileManager.default.fileExists(atPath: "\(reports)/worker-3.hlog"))
    }

    /// deploy/ec2/fleet.sh with ssh and scp stood in (the host argument dropped), three workers into one
    /// Tansu: every post's three records arrive exactly once, and the merge counts them.
    @Test func theSshScriptFloodsOneClusterFromManyWorkers() throws {
        let tansu = try Tansu.get()
        let dir = tempDir("ec2")
        try "#!/bin/sh\nshift\nexec /bin/sh -c \"$1\"\n".write(toFile: "\(dir)/ssh", atomically: true, encoding: .utf8)
        try "#!/bin/sh\nexec cp \"${1#*:}\" \"$2\"\n".write(toFile: "\(dir)/scp", atomically: true, encoding: .utf8)
        chmod("\(dir)/ssh", 0o755)
        chmod("\(dir)/scp", 0o755)
        let prefix = "fleet\(Int.random(in: 1000...9999))"
        let r = try runProcess("/bin/bash", ["\(repo)/deploy/ec2/fleet.sh", "\(dir)/out", "h0", "h1", "h2", "--",
                                             "--count", "900", "--seed", "9", "--kafka", tansu.bootstrap, "--topic-prefix", prefix, "--create-topics"],
                               environment: ["SSH": "\(dir)/ssh", "SCP": "\(dir)/scp", "PINBENCH": pinbenchBinary(), "LEAD": "3"])
        #expect(r.status == 0, "\(r.stdout) \(r.stderr)")
        let m = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/out/fleet/report.json"))) as? [String: Any]) ?? [:]
        #expect(m["records_out"] as? Int == 2_700 && m["accounting_holds"] as? Bool == true, "\(m)")
        let keys = try python3(["-c", """
        import sys, kafka, collections
        c = kafka.KafkaConsumer(bootstrap_servers=sys.argv[1], auto_offset_reset="earliest", consumer_timeout_ms=4000, api_version=(2, 8))
        c.subscribe([sys.argv[2] + "." + k for k in ("pin", "geo", "user")])
        seen = collections.Counter((m.topic, int(m.key)) for m in c)
        want = {(sys.argv[2] + "." + k, i) for k in ("pin", "geo", "user") for i in range(900)}
        print("ok" if set(seen) == want and max(seen.values()) == 1 else f"{len(seen)} distinct of {len(want)}, max {max(seen.values() or [0])}")
        """, tansu.bootstrap, prefix])
        #expect(keys.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok", "\(keys.stdout) \(keys.stderr)")
    }
}
