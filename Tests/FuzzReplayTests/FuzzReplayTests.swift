import Foundation
import FuzzTargets
import Testing

/// Every input in Tests/Fuzz/Corpus/<target> (the seed corpus) and Tests/Fuzz/Regressions/<target> (each
/// input a fuzzer crashed on, kept once fixed) goes through its target on every test run, without the
/// fuzzer build: a fixed crash cannot come back unseen.
@Suite struct FuzzReplayTests {
    static let root: String = {
        var d = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: d.appendingPathComponent("Package.swift").path) { d = d.deletingLastPathComponent() }
        return d.appendingPathComponent("Tests/Fuzz").path
    }()

    static func inputs(_ t: FuzzTarget) -> [String] {
        ["Corpus", "Regressions"].flatMap { kind -> [String] in
            let dir = "\(root)/\(kind)/\(t.rawValue)"
            return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }.sorted().map { "\(dir)/\($0)" }
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func everyKeptInputRunsToTheEnd(_ t: FuzzTarget) throws {
        let files = Self.inputs(t)
        #expect(files.count >= 3, "a seed corpus for \(t.rawValue) in Tests/Fuzz/Corpus/\(t.rawValue)")
        for f in files {
            let data = try Data(contentsOf: URL(fileURLWithPath: f))
            data.withUnsafeBytes { t.run($0) }
        }
    }
}
