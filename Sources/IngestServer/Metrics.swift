import AWSClient
import Bytes
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Platform
import Sinks
import Synchronization
import JSON
import PinModel

/// Counters for /metrics and for the accounting `accepted == stored + rejected`.
final class IngestMetrics: Sendable {
    let requests = Atomic<Int>(0)
    let recordsAccepted = Atomic<Int>(0)
    let recordsRejected = Atomic<Int>(0)
    let bytes = Atomic<Int>(0)
    /// Connections closed at once because --max-connections were open.
    let refusedConnections = Atomic<Int>(0)
    let errors = Mutex<[Int: Int]>([:])
    /// Request latency buckets (seconds) for a Prometheus histogram.
    static let buckets: [Double] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1]
    let latency = Mutex<(counts: [Int], sum: Double, n: Int)>(([Int](repeating: 0, count: 10), 0, 0))

    func observe(_ seconds: Double) {
        latency.withLock { l in
            for (i, b) in Self.buckets.enumerated() where seconds <= b { l.counts[i] += 1 }
            l.sum += seconds
            l.n += 1
        }
    }
}

extension IngestService {
    // MARK: metrics

    func prometheus() -> Reply {
        Reply(status: 200, contentType: "text/plain; version=0.0.4", body: prometheusText(labels: ""), headers: [])
    }

    /// The /metrics text; `labels` (e.g. `worker="1/4"`) go on every series, as a fleet's dashboards group them.
    public func prometheusText(labels: String) -> String {
        let l = labels.isEmpty ? "" : "{\(labels)}"
        let sep = labels.isEmpty ? "" : labels + ","
        var s = "# HELP pinbench_ingest_requests_total HTTP requests received.\n# TYPE pinbench_ingest_requests_total counter\n"
        s += "pinbench_ingest_requests_total\(l) \(metrics.requests.load(ordering: .relaxed))\n"
        s += "# TYPE pinbench_ingest_records_accepted_total counter\npinbench_ingest_records_accepted_total\(l) \(accepted)\n"
        s += "# TYPE pinbench_ingest_records_stored_total counter\npinbench_ingest_records_stored_total\(l) \(stored)\n"
        s += "# TYPE pinbench_ingest_records_rejected_total counter\npinbench_ingest_records_rejected_total\(l) \(rejected)\n"
        s += "# TYPE pinbench_ingest_bytes_total counter\npinbench_ingest_bytes_total\(l) \(metrics.bytes.load(ordering: .relaxed))\n"
        s += "# TYPE pinbench_ingest_connections_refused_total counter\npinbench_ingest_connections_refused_total\(l) \(metrics.refusedConnections.load(ordering: .relaxed))\n"
        s += "# TYPE pinbench_ingest_errors_total counter\n"
        for (code, n) in metrics.errors.withLock({ $0 }).sorted(by: { $0.key < $1.key }) { s += "pinbench_ingest_errors_total{\(sep)code=\"\(code)\"} \(n)\n" }
        let h = metrics.latency.withLock { $0 }
        s += "# TYPE pinbench_ingest_request_seconds histogram\n"
        for (i, b) in IngestMetrics.buckets.enumerated() { s += "pinbench_ingest_request_seconds_bucket{\(sep)le=\"\(b)\"} \(h.counts[i])\n" }
        s += "pinbench_ingest_request_seconds_bucket{\(sep)le=\"+Inf\"} \(h.n)\npinbench_ingest_request_seconds_sum\(l) \(h.sum)\npinbench_ingest_request_seconds_count\(l) \(h.n)\n"
        return s
    }
}
