import Foundation
import Testing
import TestSupport

/// Issue 16, crash consistency: kill -9 at seeded random moments of `run`, `serve`, `land`, `clean`, `batch`
/// and `stream` (20 kills each, counted only when the process was still running), then a re-run: logs verify
/// and never hold fewer records than before a kill, no record `serve` answered 200 is lost, landings are the
/// same bytes as an uninterrupted landing, and deltalake reads exactly the rows of an uninterrupted `clean`,
/// `batch` or `stream` (no commit twice; `stream` reads from moto's Kinesis, in rounds of about 1,000 records
/// so that most kills land after a commit and the re-run resumes from the committed sequence numbers).
@Suite(.serialized) struct CrashConsistencyTests {
    @Test func twentyKillsOfEachCommandLoseAndDuplicateNothing() throws {
        let script = Bundle.module.path(forResource: "kill_campaign", ofType: "py", inDirectory: "Peers")!
        let dir = tempDir("kill-campaign")
        let r = try python3([script, pinbenchBinary(), dir, "16", "20", "run", "serve", "land", "clean", "batch", "stream"])
        let lines = r.stdout.split(separator: "\n").compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
        #expect(lines.count == 6, "\(r.stdout) \(r.stderr.suffix(2000))")
        for l in lines {
            #expect(l["ok"] as? Bool == true && (l["kills"] as? Int ?? 0) >= 20, "\(l)")
            if l["command"] as? String == "stream" { #expect((l["stream_killed_after_a_commit"] as? Int ?? 0) >= 5, "\(l)") }
        }
        try? FileManager.default.removeItem(atPath: dir)
    }
}
