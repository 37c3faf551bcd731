import Foundation
import Testing
import TestSupport
import Platform

/// The batch path read by independent readers: pyarrow, duckdb and deltalake (delta-rs) read our Parquet
/// files and Delta tables; values equal the spec's cleaning rules re-implemented in Python; DuckDB SQL gives
/// the same Q1-Q9 rows as `pinbench analyze` (Peers/check_tables.py).
@Suite(.serialized) struct TablesInteropTests {
    func check(_ input: String, _ tables: String, _ analysis: String?) throws -> [String: Any] {
        let script = Bundle.module.path(forResource: "check_tables", ofType: "py", inDirectory: "Peers")!
        let r = try runProcess("/usr/bin/env", ["python3", script, input, tables] + (analysis.map { [$0] } ?? []))
        #expect(r.status == 0, "check_tables: \(r.stdout) \(r.stderr)")
        return (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    }

    func report(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    func table(_ r: [String: Any], _ name: String) -> [String: Any] {
        (r["tables"] as! [[String: Any]]).first { $0["table"] as? String == name }!
    }

    @Test(arguments: [
        ["--compression", "snappy"],
        ["--compression", "zstd", "--partition-by", "pin=poster_name,geo=country", "--row-group-rows", "500"],
    ])
    func readersAgreeWithTheRulesAndTheQueries(_ options: [String]) throws {
        let dir = tempDir("tables-\(options[1])")
        #expect(try pinbench("emulate", "--count", "3000", "--seed", "5", "--out", "\(dir)/in", "--style", "python").status == 0)
        let clean = try pinbench(["clean", "--from", "\(dir)/in", "--tables", "\(dir)/t", "--report-json", "\(dir)/clean.json"] + options)
        #expect(clean.status == 0, "\(clean.stderr)")
        let an = try pinbench("analyze", "--tables", "\(dir)/t", "--out", "\(dir)/an")
        #expect(an.status == 0, "\(an.stderr)")
        #expect(an.stdout.contains("q1: most popular category per country"))
        let s = try check("\(dir)/in", "\(dir)/t", "\(dir)/an")
        #expect(s["ok"] as? Bool == true)
        #expect((s["rows"] as? [String: Int]) == ["pin": 3000, "geo": 3000, "user": 3000])
        #expect((s["queries"] as? [String: Int])?.count == 9)
        // A second run (named apart: the same input is otherwise not appended twice) appends a commit and never
        // rewrites the first.
        let v0 = try String(contentsOfFile: "\(dir)/t/pin/_delta_log/00000000000000000000.json", encoding: .utf8)
        #expect(try pinbench(["clean", "--from", "\(dir)/in", "--tables", "\(dir)/t", "--txn", "second"] + options).status == 0)
        #expect(try String(contentsOfFile: "\(dir)/t/pin/_delta_log/00000000000000000000.json", encoding: .utf8) == v0)
        #expect(FileManager.default.fileExists(atPath: "\(dir)/t/pin/_delta_log/00000000000000000001.json"))
    }

    /// Placeholders, invalid JSON, wrong types, huge strings, invalid UTF-8, duplicates: nulls or dead letters,
    /// counted, with records_in == written + duplicates + dead_lettered, and the readers see exactly the survivors.
    @Test func badInputEndsAsNullsOrDeadLetters() throws {
        let dir = tempDir("tables-bad")
        #expect(try pinbench("emulate", "--count", "200", "--seed", "9", "--out", "\(dir)/in").status == 0)
        func append(_ kind: String, _ lines: [Data]) throws {
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(dir)/in/\(kind).jsonl"))
            h.seekToEndOfFile()
            for l in lines { h.write(l); h.write(Data("\n".utf8)) }
            try h.close()
        }
        let pins = try String(contentsOfFile: "\(dir)/in/pin.jsonl", encoding: .utf8).split(separator: "\n")
        let first = Data(pins[0].utf8)
        let pythonStyle = Data(pins[1].replacingOccurrences(of: "\":", with: "\": ").replacingOccurrences(of: ",\"", with: ", \"").utf8)
        let placeholders = #"{"index":900001,"unique_id":"","title":"No Title Data Available","description":"No description available Story format","poster_name":"User Info Error","follower_count":"User Info Error","tag_list":"N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e","is_image_or_video":"","image_src":"Image src error.","downloaded":0,"save_location":"Local save in /data/art","category":"art"}"#
        let big = String(repeating: "é", count: 300_000)
        try append("pin", [
            first, pythonStyle, Data(placeholders.utf8),
            Data(#"{"index":900002,"title":5,"follower_count":true,"downloaded":"x","category":"art"}"#.utf8),
            Data(#"{"index":900003,"follower_count":"1.2k","category":"art","description":"\#(big)"}"#.utf8),
            Data(#"{"index":900004,"follower_count":"12.5","category":"art"}"#.utf8),
            Data(#"{"index":900005,"follower_count":"6M","category":null}"#.utf8),
            Data(#"{"index": 5, "title": "#.utf8),
            Data(#"{"title":"no key"}"#.utf8),
            Data(#"{"index":"7"}"#.utf8),
            Data(#"[1,2]"#.utf8),
            Data([UInt8](#"{"index":900006,"title":""#.utf8) + [0xFF, 0xFE] + [UInt8](#""}"#.utf8)),
            Data((#"{"index":900007,"description":""# + String(repeating: "x", count: 1_100_000) + #""}"#).utf8),
            Data(),
            // Issue 16 item 4: follower counts whose value overflows Int64 once scaled (trapped clean before) become null.
            Data(#"{"index":900008,"follower_count":"9223372036854775.9k","category":"a"}"#.utf8),
            Data(#"{"index":900009,"follower_count":"9223372036854.9M","category":"a"}"#.utf8),
            // 100,000 levels of nesting in one value: refused as invalid JSON, not a stack overflow.
            Data((#"{"index":900010,"title":"# + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}").utf8),
        ])
        try append("geo", [
            Data(#"{"ind":900001,"timestamp":"2020-02-30 00:00:00","latitude":"12.5","longitude":3,"country":""}"#.utf8),
            Data(#"{"ind":900002,"timestamp":"2021-06-01T10:00:00.25Z","latitude":-1.5,"longitude":2.25,"country":"Cote d'Ivoire"}"#.utf8),
            Data(#"{"ind":1.5}"#.utf8),
        ])
        try append("user", [
            Data(#"{"ind":900001,"first_name":null,"last_name":"Solo","age":30.0,"date_joined":"2016-01-01 00:00:00"}"#.utf8),
            Data(#"{"ind":900002,"first_name":"Ada","age":"x","date_joined":"not a date"}"#.utf8),
        ])
        let r = try pinbench("clean", "--from", "\(dir)/in", "--tables", "\(dir)/t", "--report-json", "\(dir)/clean.json")
        #expect(r.status == 0, "\(r.stderr)")
        let rep = try report("\(dir)/clean.json")
        let pin = table(rep, "pin"), geo = table(rep, "geo"), user = table(rep, "user")
        #expect(pin["records_in"] as? Int == 216)
        #expect(pin["duplicates"] as? Int == 2)
        #expect(pin["dead_lettered"] as? Int == 7)
        #expect(pin["written"] as? Int == 207)
        #expect((pin["dead_letter_reasons"] as? [String: Int]) == ["invalid JSON": 4, "missing key field": 1, "key field is not an integer": 1, "record over 1048576 bytes": 1])
        #expect((pin["wrong_type"] as? [String: Int]) == ["follower_count": 1, "title": 1])
        #expect(geo["records_in"] as? Int == 203 && geo["dead_lettered"] as? Int == 1 && geo["written"] as? Int == 202)
        #expect(user["records_in"] as? Int == 202 && user["dead_lettered"] as? Int == 0 && user["written"] as? Int == 202)
        for t in [pin, geo, user] { #expect(t["balanced"] as? Bool == true) }
        // Every dead letter is in the file with its reason and the record (base64 when not UTF-8).
        let dlPath = try #require(pin["dead_letter_file"] as? String)
        let dl = try String(contentsOfFile: dlPath, encoding: .utf8).split(separator: "\n")
        #expect(dl.count == 7)
        #expect(dl.contains { $0.contains("record_base64") })
        #expect(dl.contains { $0.contains(#""record":"[1,2]""#) })
        let s = try check("\(dir)/in", "\(dir)/t", nil)
        #expect(s["ok"] as? Bool == true)
        #expect((s["dead_expected"] as? [String: Int]) == ["pin": 7, "geo": 1, "user": 0])
    }

    /// Issue 16 item 9 and 17: a category equal to the null-partition marker, a null category and a 300-byte
    /// category each keep their rows: distinct folders and files, the value read back from the log by
    /// deltalake (delta-rs) and DuckDB's SQL over it.
    @Test func partitionValuesThatCollideOrAreTooLongKeepTheirRows() throws {
        let dir = tempDir("tables-partitions")
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        let long = String(repeating: "c", count: 300)
        let pins = [#"{"index":1,"category":"__HIVE_DEFAULT_PARTITION__"}"#, #"{"index":2,"category":null}"#,
                    #"{"index":3,"category":"\#(long)"}"#, #"{"index":4,"category":"art"}"#, #"{"index":5}"#]
        try (pins.joined(separator: "\n") + "\n").write(toFile: "\(dir)/in/pin.jsonl", atomically: true, encoding: .utf8)
        let r = try pinbench("clean", "--from", "\(dir)/in", "--tables", "\(dir)/t", "--quiet")
        #expect(r.status == 0, "\(r.stderr)")
        let read = try python3(["-c", """
            import deltalake, os, sys
            t = deltalake.DeltaTable(sys.argv[1] + "/pin")
            rows = deltalake.QueryBuilder().register("t", t).execute("SELECT ind, category FROM t ORDER BY ind").read_all()
            rows = [dict(zip(("ind", "category"), v)) for v in zip(rows.column("ind").to_pylist(), rows.column("category").to_pylist())]
            print(len(t.file_uris()), "|".join(f"{r['ind']}={r['category'] if r['category'] is None else len(r['category'])}:{(r['category'] or '')[:12]}" for r in rows))
            sys.stdout.flush(); os._exit(0)
            """, "\(dir)/t"])
        #expect(read.status == 0, "\(read.stderr)")
        #expect(read.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                == "4 1=26:__HIVE_DEFAU|2=None:|3=300:cccccccccccc|4=3:art|5=None:", "\(read.stdout)")
    }

    /// Issue 16 item 17: 3,000 distinct categories under `ulimit -n 256`: clean keeps at most 64 Parquet files
    /// open (the least recently written one is finished first), so it neither runs out of descriptors nor
    /// holds 3,000 writers' buffers; every row is in the table, read back by deltalake.
    @Test func thousandsOfPartitionValuesNeedNeitherThousandsOfFilesOpenNorTheirMemory() throws {
        let dir = tempDir("tables-many")
        try FileManager.default.createDirectory(atPath: "\(dir)/in", withIntermediateDirectories: true)
        let rows = (0..<9_000).map { #"{"index":\#($0),"category":"cat-\#($0 % 3000)","title":"t\#($0)"}"# }
        try (rows.joined(separator: "\n") + "\n").write(toFile: "\(dir)/in/pin.jsonl", atomically: true, encoding: .utf8)
        let r = try runProcess("/bin/sh", ["-c", "ulimit -n 256 && exec /usr/bin/time -f 'rss_kb=%M' \"$0\" clean --from \"$1\" --tables \"$2\" --quiet",
                                           pinbenchBinary(), "\(dir)/in", "\(dir)/t"])
        #expect(r.status == 0, "\(r.stderr)")
        let rss = r.stderr.split(separator: "\n").compactMap { $0.hasPrefix("rss_kb=") ? Int($0.dropFirst(7)) : nil }.first ?? .max
        #expect(rss < 400_000, "peak RSS \(rss) kB (988 MB before for a smaller input)")
        let read = try python3(["-c", """
            import deltalake, os, sys
            t = deltalake.DeltaTable(sys.argv[1] + "/pin")
            r = deltalake.QueryBuilder().register("t", t).execute("SELECT count(*) AS n, count(DISTINCT category) AS c FROM t").read_all()
            print(r.column("n")[0].as_py(), r.column("c")[0].as_py(), len(t.file_uris()))
            sys.stdout.flush(); os._exit(0)
            """, "\(dir)/t"])
        let f = read.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(f.count == 3 && f[0] == 9_000 && f[1] == 3_000 && f[2] >= 3_000, "\(read.stdout) \(read.stderr)")
    }

    /// Issue 16 item 11: `clean` killed (SIGKILL) after its first table committed, then re-run: no table
    /// holds a row twice (the run id comes from the input's identity); a third run appends nothing; `--txn`
    /// appends the same input again on purpose. deltalake counts the rows.
    @Test func aCleanRerunAfterAKillAppendsNothingTwice() throws {
        let dir = tempDir("clean-kill")
        #expect(try pinbench("emulate", "--count", "60000", "--seed", "4", "--out", "\(dir)/in").status == 0)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: pinbenchBinary())
        p.arguments = ["clean", "--from", "\(dir)/in", "--tables", "\(dir)/t", "--sequential", "--quiet"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        let first = "\(dir)/t/pin/_delta_log/00000000000000000000.json"
        var waited = 0
        while !FileManager.default.fileExists(atPath: first) && p.isRunning && waited < 2000 { usleep(5000); waited += 1 }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        func rows() throws -> String {
            let r = try python3(["-c", """
                import deltalake, os, sys
                for k in ("pin", "geo", "user"):
                    try:
                        t = deltalake.DeltaTable(sys.argv[1] + "/" + k)
                        n = deltalake.QueryBuilder().register("t", t).execute("SELECT count(*) AS n FROM t").read_all().column("n")[0].as_py()
                    except Exception:
                        n = 0
                    print(k, n)
                sys.stdout.flush(); os._exit(0)
                """, "\(dir)/t"])
            return r.stdout
        }
        let again = try pinbench("clean", "--from", "\(dir)/in", "--tables", "\(dir)/t", "--quiet")
        #expect(again.status == 0, "\(again.stderr)")
        let after = try rows()
        for k in ["pin", "geo", "user"] { #expect(after.contains("\(k) 60000"), "\(after)") }
        let third = try pinbench("clean", "--from", "\(dir)/in", "--tables", "\(dir)/t", "--quiet")
        #expect(third.stderr.contains("pin, geo, user already hold this input"), "\(third.stderr)")
        #expect(try rows() == after)
        #expect(try pinbench("clean", "--from", "\(dir)/in", "--tables", "\(dir)/t", "--quiet", "--txn", "again").status == 0)
        for k in ["pin", "geo", "user"] { #expect(try rows().contains("\(k) 120000")) }
    }

    /// Landing in the Confluent layout: a re-run, and a re-run after a "crash" (last object gone, a temp
    /// file left), give the same objects byte for byte; cleaning the landing equals cleaning the log.
    @Test func landingIsRepeatableAndFeedsTheTables() throws {
        let dir = tempDir("land")
        #expect(try pinbench("run", "--count", "2500", "--seed", "3", "--data-dir", "\(dir)/data", "--partitions", "2", "--quiet").status == 0)
        let land = try pinbench("land", "--data-dir", "\(dir)/data", "--to", "\(dir)/landing", "--flush-records", "400")
        #expect(land.status == 0, "\(land.stderr)")
        #expect(land.stdout.contains("landed 7500 records"))
        func snapshot() throws -> [String: Data] {
            var out: [String: Data] = [:]
            let root = "\(dir)/landing/topics"
            for f in try FileManager.default.subpathsOfDirectory(atPath: root) where f.hasSuffix(".json") && !f.contains("/.") {
                out[f] = try Data(contentsOf: URL(fileURLWithPath: "\(root)/\(f)"))
            }
            return out
        }
        let first = try snapshot()
        #expect(first.keys.contains("pinbench.pin/partition=0/pinbench.pin+0+0000000000.json"))
        #expect(first.keys.contains("pinbench.pin/partition=0/pinbench.pin+0+0000000400.json"))
        let lines = first.values.reduce(0) { $0 + $1.split(separator: UInt8(ascii: "\n")).count }
        #expect(lines == 7500)
        #expect(try pinbench("land", "--data-dir", "\(dir)/data", "--to", "\(dir)/landing", "--flush-records", "400").status == 0)
        #expect(try snapshot() == first)
        // Crash: the newest object of one partition never got renamed into place, its temp file is left.
        let part = "\(dir)/landing/topics/pinbench.geo/partition=1"
        let newest = try FileManager.default.contentsOfDirectory(atPath: part).filter { $0.hasSuffix(".json") }.sorted().last!
        try FileManager.default.moveItem(atPath: "\(part)/\(newest)", toPath: "\(part)/.tmp-\(newest)")
        #expect(try pinbench("land", "--data-dir", "\(dir)/data", "--to", "\(dir)/landing", "--flush-records", "400").status == 0)
        #expect(try snapshot() == first)
        // Clean both sources: the same rows.
        #expect(try pinbench("clean", "--from", "\(dir)/landing", "--tables", "\(dir)/t1", "--report-json", "\(dir)/r1.json").status == 0)
        #expect(try pinbench("clean", "--from", "\(dir)/data", "--tables", "\(dir)/t2", "--report-json", "\(dir)/r2.json").status == 0)
        for k in ["pin", "geo", "user"] {
            #expect(table(try report("\(dir)/r1.json"), k)["written"] as? Int == 2500)
            #expect(table(try report("\(dir)/r2.json"), k)["written"] as? Int == 2500)
        }
    }

    /// `batch --date` as a user re-runs it: an Airflow retry lands nothing twice; records that arrive later
    /// are cleaned by the next run (and only they); `--force` redoes the day without duplicating a row; a
    /// day without records is said to be empty and marked nothing. deltalake (delta-rs) counts the rows.
    @Test func batchDayIsRerunnable() throws {
        let dir = tempDir("batch")
        #expect(try pinbench("run", "--count", "1500", "--data-dir", "\(dir)/data", "--quiet").status == 0)
        let day = ISO8601DateFormatter().string(from: Date()).prefix(10)
        let args = ["batch", "--date", String(day), "--data-dir", "\(dir)/data", "--landing", "\(dir)/landing",
                    "--tables", "\(dir)/t", "--out", "\(dir)/an", "--quiet"]
        func rows() throws -> String {
            let r = try runProcess("/usr/bin/env", ["python3", "-c", """
                import deltalake, os, sys
                for k in ("pin", "geo", "user"):
                    t = deltalake.DeltaTable(sys.argv[1] + "/" + k)
                    n = deltalake.QueryBuilder().register("t", t).execute("SELECT count(*) AS n FROM t").read_all().column("n")[0].as_py()
                    print(k, n, t.version())
                sys.stdout.flush()
                os._exit(0)  # pyarrow's threads at interpreter exit can abort ("terminate called") under load
                """, "\(dir)/t"])
            #expect(r.status == 0, "\(r.stderr)")
            return r.stdout
        }
        let a = try pinbench(args)
        #expect(a.status == 0, "\(a.stderr)")
        let b = try pinbench(args)
        #expect(b.status == 0, "\(b.stderr)")
        #expect(b.stdout.contains("(0 new)") && b.stdout.contains("nothing new to clean"), "\(b.stdout)")
        #expect(try rows().contains("pin 1500 0"))
        for q in 1...9 { #expect(FileManager.default.fileExists(atPath: "\(dir)/an/date=\(day)/q\(q).csv")) }
        #expect(try String(contentsOfFile: "\(dir)/an/date=\(day)/scope.json", encoding: .utf8).contains(#""scope":"day""#))
        // 500 more posts of the same day: the next run cleans those 1,500 records, no more.
        #expect(try pinbench("run", "--count", "500", "--seed", "9", "--data-dir", "\(dir)/data", "--quiet").status == 0)
        let c = try pinbench(args)
        #expect(c.status == 0, "\(c.stderr)")
        #expect(c.stdout.contains("(1500 new)"), "\(c.stdout)")
        let after = try rows()
        for k in ["pin", "geo", "user"] { #expect(after.contains("\(k) 2000 1"), "\(after)") }
        // --force: the day's rows are replaced, not doubled.
        let f = try pinbench(args + ["--force"])
        #expect(f.status == 0, "\(f.stderr)")
        #expect(f.stdout.contains("redone (--force)"))
        let forced = try rows()
        for k in ["pin", "geo", "user"] { #expect(forced.contains("\(k) 2000 2"), "\(forced)") }
        // Another day has no records: said so; no commit, no analyses.
        let other = try pinbench(["batch", "--date", "2019-01-01"] + args.dropFirst(3))
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stdout.contains("no records on 2019-01-01"), "\(other.stdout)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/an/date=2019-01-01/q1.csv"))
        #expect(try rows() == forced)
    }
}
