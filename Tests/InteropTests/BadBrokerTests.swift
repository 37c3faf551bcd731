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
