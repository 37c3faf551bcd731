import Foundation
import Testing
import TestSupport
import Workloads

// Issue 15 item 4: workload files. Every example loads; a bad field is one line with the file, the line and
// the reason; `bench --workload` runs one, and a rate search bisects steady runs under a p99 bound.

private let repo: String = {
    var d = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: d.appendingPathComponent("Package.swift").path) { d = d.deletingLastPathComponent() }
    return d.path
}()

@Suite struct WorkloadTests {
    @Test func everyExampleLoads() throws {
        let dir = "\(repo)/deploy/workloads"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(files.count >= 3)
        for f in files {
            #expect(throws: Never.self, "\(f)") { _ = try Workload.load(file: "\(dir)/\(f)") }
        }
        let seed = try Workload.load(file: "\(dir)/seed-pipeline.yaml")
        #expect(seed.backend == .kafka && seed.partitionsPerTopic == 3 && seed.producerRate == 2000 && seed.durationSeconds == 600 && seed.warmupSeconds == 60)
        let search = try Workload.load(file: "\(dir)/rate-search.yaml")
        #expect(search.producerRate == 0 && search.search == Workload.Search(p99Ms: 50, low: 10_000, high: 2_000_000, steps: 7, stepSeconds: 10))
        #expect(try Workload.load(file: "\(dir)/fleet.yaml").workers == 4)
    }

    @Test(arguments: [
        ("name: x\nproducerRate: fast\ntestDuration: 10s\n", "w.yaml:2: producerRate must be a number"),
        ("name: x\nproducerRate: 10\ntestDuration: 10s\npartitions: 3\n", "w.yaml:4: unknown field partitions (did you mean partitionsPerTopic?)"),
        ("name: x\nproducerRate: 10\ntestDuration: soon\n", "w.yaml:3: testDuration must be a duration"),
        ("name: x\nproducerRate: 0\ntestDuration: 10s\n", "w.yaml:2: producerRate 0 searches for a rate"),
        ("name: x\nproducerRate: 10\ntestDuration: 10s\nbackend: pulsar\n", "w.yaml:4: backend pulsar"),
        ("name: x\nproducerRate: 10\ntestDuration: 10s\ntopics: 5\n", "w.yaml:4: topics is 5"),
        ("- a\n- b\n", "w.yaml:1: a workload is a mapping"),
    ])
    func aBadFieldSaysFileLineAndReason(_ text: String, _ says: String) throws {
        do {
            _ = try Workload.parse(text, file: "w.yaml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.hasPrefix(says), "\(error.description)")
        }
    }

    @Test func benchRunsAWorkloadAndSearchesForARate() throws {
        let dir = tempDir("workload")
        try "name: small\nbackend: embedded\npartitionsPerTopic: 2\nproducerRate: 5000\ntestDuration: 2s\nwarmupDuration: 1s\ncompression: zstd\n"
            .write(toFile: "\(dir)/small.yaml", atomically: true, encoding: .utf8)
        let one = try pinbench("bench", "--workload", "\(dir)/small.yaml", "--out", "\(dir)/one", "--quiet", "--format", "json")
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stdout.contains("\"small\"") && FileManager.default.fileExists(atPath: "\(dir)/one/report.html"), "\(one.stdout.prefix(300))")
        try """
        name: search
        backend: embedded
        producerRate: 0
        testDuration: 1s
        search: {p99Ms: 200, low: 2000, high: 400000, steps: 3, stepDuration: 1s}
        """.write(toFile: "\(dir)/search.yaml", atomically: true, encoding: .utf8)
        let s = try pinbench("bench", "--workload", "\(dir)/search.yaml", "--out", "\(dir)/search", "--quiet")
        #expect(s.status == 0, "\(s.stderr)")
        let j = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/search/search.json"))) as? [String: Any]) ?? [:]
        let steps = j["steps"] as? [String] ?? []
        #expect(steps.count == 3 && steps[0].hasPrefix("2000 posts/s: pass"), "\(steps)")
        // The answer is the highest rate that passed, and every passing step kept p99 under the bound.
        let best = j["highest_rate_posts_per_s"] as? Double ?? 0
        #expect(best >= 2000 && (j["p99_ms_at_that_rate"] as? Double ?? 999) <= 200, "\(j)")
        #expect(s.stdout.contains("highest rate with p99 ≤ 200.0 ms"), "\(s.stdout)")
    }
}
