import Foundation
import Testing
import TestSupport

// Issue 15 item 8: the DAGs run in Apache Airflow itself (`airflow dags test` on a SQLite metadata database in
// a temporary AIRFLOW_HOME), not against stand-ins: Airflow parses the files, renders the templates with its
// Variables and `ds`, runs the BashOperators and records each task's state. `make test` installs Airflow in
// its own virtual environment (.build/airflow-venv); PINBENCH_AIRFLOW names another `airflow` executable.

private let repo: String = {
    var d = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: d.appendingPathComponent("Package.swift").path) { d = d.deletingLastPathComponent() }
    return d.path
}()

/// One Airflow installation with its own home and metadata database, the repository's DAG folder loaded.
private struct Airflow {
    let bin: String
    let home: String

    init() throws {
        let env = ProcessInfo.processInfo.environment["PINBENCH_AIRFLOW"]
        bin = env ?? "\(repo)/.build/airflow-venv/bin/airflow"
        home = tempDir("airflow")
        guard FileManager.default.isExecutableFile(atPath: bin) else {
            throw AirflowMissing(path: bin)
        }
        let m = try run(["db", "migrate"])
        guard m.status == 0 else { throw AirflowFailed(what: "airflow db migrate", output: m.stdout + m.stderr) }
    }

    @discardableResult
    func run(_ args: [String], environment: [String: String] = [:]) throws -> ProcessResult {
        try runProcess(bin, args, environment: [
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__DAGS_FOLDER": "\(repo)/airflow/dags",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        ].merging(environment) { _, new in new })
    }

    func setVariable(_ key: String, _ value: String) throws {
        let r = try run(["variables", "set", key, value])
        guard r.status == 0 else { throw AirflowFailed(what: "airflow variables set \(key)", output: r.stdout + r.stderr) }
    }

    /// The state Airflow recorded for each task of the DAG's run on `day`.
    func taskStates(_ dag: String, _ day: String) throws -> [String: String] {
        let r = try run(["tasks", "states-for-dag-run", dag, try runId(dag, day), "--output", "json"])
        guard r.status == 0, let start = r.stdout.firstIndex(of: "[") else { return [:] }
        let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout[start...].utf8))) as? [[String: Any]] ?? []
        var out: [String: String] = [:]
        for row in rows { if let t = row["task_id"] as? String { out[t] = row["state"] as? String ?? "none" } }
        return out
    }

    func runId(_ dag: String, _ day: String) throws -> String {
        let r = try run(["dags", "list-runs", dag, "--output", "json"])
        guard let start = r.stdout.firstIndex(of: "[") else { return "" }
        let rows = (try? JSONSerialization.jsonObject(with: Data(r.stdout[start...].utf8))) as? [[String: Any]] ?? []
        return rows.first { ($0["logical_date"] as? String ?? "").hasPrefix(day) }?["run_id"] as? String ?? ""
    }
}

private struct AirflowMissing: Error, CustomStringConvertible {
    let path: String
    var description: String { "Apache Airflow is not installed at \(path): run `make airflow` (make test does), or set PINBENCH_AIRFLOW" }
}

private struct AirflowFailed: Error, CustomStringConvertible {
    let what: String
    let output: String
    var description: String { "\(what) failed: \(output.suffix(3000))" }
}

@Suite(.serialized) struct AirflowTests {
    /// The daily batch DAG runs one day end to end against the embedded log: land, clean, analyze. deltalake
    /// counts every record in the tables; a second run of the same day (an Airflow retry or a re-run) adds
    /// no row.
    @Test func theDailyBatchDagRunsADayEndToEnd() throws {
        let af = try Airflow()
        let dir = tempDir("airflow-batch")
        #expect(try pinbench("run", "--count", "1200", "--seed", "5", "--data-dir", "\(dir)/data", "--quiet").status == 0)
        let day = String(ISO8601DateFormatter().string(from: Date()).prefix(10))
        try af.setVariable("pinbench_bin", pinbenchBinary())
        try af.setVariable("pinbench_source", "--data-dir \(dir)/data")
        try af.setVariable("pinbench_root", dir)
        func rows() throws -> String {
            let r = try python3(["-c", """
                import deltalake, os, sys
                for k in ("pin", "geo", "user"):
                    t = deltalake.DeltaTable(sys.argv[1] + "/" + k)
                    n = deltalake.QueryBuilder().register("t", t).execute("SELECT count(*) AS n FROM t").read_all().column("n")[0].as_py()
                    print(k, n)
                sys.stdout.flush()
                os._exit(0)
                """, "\(dir)/tables"])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout
        }
        let t = try af.run(["dags", "test", "pinbench_batch", day])
        #expect(t.status == 0, "\((t.stdout + t.stderr).suffix(4000))")
        #expect(try af.taskStates("pinbench_batch", day) == ["batch": "success"])
        #expect(try rows() == "pin 1200\ngeo 1200\nuser 1200\n")
        #expect(FileManager.default.fileExists(atPath: "\(dir)/analysis/date=\(day)/q1.csv"))
        // The day again, as a retry would run it: nothing is landed or cleaned twice.
        let again = try af.run(["dags", "test", "pinbench_batch", day])
        #expect(again.status == 0, "\((again.stdout + again.stderr).suffix(4000))")
        #expect(try rows() == "pin 1200\ngeo 1200\nuser 1200\n")
    }

    /// The nightly fleet DAG runs deploy/ec2/fleet.sh (ssh and scp stood in by local commands: two workers on
    /// this host, each with its own embedded log) and then its check of the merged report; a fleet whose
    /// worker fails makes the DAG run fail at the flood, and the check does not run.
    @Test func theNightlyFleetDagFloodsMergesAndChecks() throws {
        let af = try Airflow()
        let dir = tempDir("airflow-fleet")
        try "#!/bin/sh\nshift\nexec /bin/sh -c \"$1\"\n".write(toFile: "\(dir)/ssh", atomically: true, encoding: .utf8)
        try "#!/bin/sh\nexec cp \"${1#*:}\" \"$2\"\n".write(toFile: "\(dir)/scp", atomically: true, encoding: .utf8)
        chmod("\(dir)/ssh", 0o755)
        chmod("\(dir)/scp", 0o755)
        let env = ["SSH": "\(dir)/ssh", "SCP": "\(dir)/scp", "PINBENCH": pinbenchBinary(), "LEAD": "3"]
        try af.setVariable("pinbench_repo", repo)
        try af.setVariable("pinbench_root", dir)
        try af.setVariable("pinbench_fleet_hosts", "h0 h1")
        // `$$` is each worker's shell (quoted from the task's own bash): one data directory per worker, as on
        // separate hosts. (Unquoted, both workers shared one, and the second was refused: the log is locked.)
        try af.setVariable("pinbench_fleet_args", "--count 600 --seed 4 --data-dir '\(dir)/data-$$'")
        let day = "2026-11-20"
        let t = try af.run(["dags", "test", "pinbench_fleet_bench", day], environment: env)
        #expect(t.status == 0, "\((t.stdout + t.stderr).suffix(4000))")
        #expect(try af.taskStates("pinbench_fleet_bench", day) == ["fleet_flood": "success", "check_merge": "success"])
        let m = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/fleet/20261120/fleet/report.json")))) as? [String: Any] ?? [:]
        #expect(m["records_out"] as? Int == 1_800 && m["workers"] as? Int == 2 && m["accounting_holds"] as? Bool == true, "\(m)")

        // A worker that cannot run (an unknown flag): the flood task fails, the check is not reached.
        try af.setVariable("pinbench_fleet_args", "--count 600 --no-such-flag")
        let bad = "2026-11-21"
        let f = try af.run(["dags", "test", "pinbench_fleet_bench", bad], environment: env)
        let states = try af.taskStates("pinbench_fleet_bench", bad)
        #expect(states["fleet_flood"] == "failed", "\(states) \((f.stdout + f.stderr).suffix(2000))")
        #expect(states["check_merge"] != "success", "\(states)")
    }
}
