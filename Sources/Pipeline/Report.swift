import Bytes
import Histogram
import JSON
import Platform
import Sinks
import KafkaLog

extension RunResult {
    public func percentileMs(_ p: Double) -> Double {
        latencyMicros.totalCount == 0 ? 0 : Double(latencyMicros.valueAtPercentile(p)) / 1000
    }

    private var latencyJSON: JSONValue {
        let none = latencyMicros.totalCount == 0
        let minMs: Double = none ? 0 : Double(latencyMicros.min) / 1000
        let maxMs: Double = none ? 0 : Double(latencyMicros.max) / 1000
        return .object([
            ("p50", .double(percentileMs(50))), ("p90", .double(percentileMs(90))), ("p99", .double(percentileMs(99))),
            ("p999", .double(percentileMs(99.9))), ("min", .double(minMs)), ("max", .double(maxMs)),
            ("count", .int(Int(latencyMicros.totalCount))),
            ("measured_from", .string(config.rate == nil ? "generation time" : "scheduled send time (open loop)")),
            ("measured_to", .string(latencyEndpoint)),
        ])
    }

    /// The JSON report: every figure of the run and the effective configuration.
    public var json: JSONValue {
        let hdr: String = HdrEncoding.compressed(latencyMicros).map { Base64.encode($0) } ?? ""
        let started: JSONValue = .int(Int(startedUnixMs))
        return .object([
            ("pinbench_version", .string(pinbenchVersion)),
            ("mode", .string(mode.rawValue)),
            ("records_in", .int(recordsIn)),
            ("records_out", .int(recordsOut)),
            ("dead_lettered", .int(deadLettered)),
            ("accounting_holds", .bool(accountingHolds)),
            ("interrupted", .bool(stopReason == .interrupted || stopReason == .terminated)),
            ("stop_reason", stopReason.map { .string($0.name) } ?? .null),
            ("offered_rate", offeredRateJSON),
            ("posts", .int(posts)),
            ("payload_bytes", .int(payloadBytes)),
            ("stored_bytes", .int(storedBytes)),
            ("compression_ratio", .double(storedBytes > 0 ? (Double(payloadBytes) / Double(storedBytes) * 1000).rounded() / 1000 : 0)),
            ("batches", .int(batches)),
            ("seconds", .double(round3(seconds))),
            ("records_per_s", .double(recordsPerSecond.rounded())),
            ("mb_per_s", .double(round3(megabytesPerSecond))),
            ("latency_ms", latencyJSON),
            ("cpu_seconds", .double(round3(cpuSeconds))),
            ("cpu_seconds_per_million_records", .double(recordsOut > 0 ? round3(cpuSeconds / Double(recordsOut) * 1e6) : 0)),
            ("stages", stagesJSON),
            ("peak_rss_bytes", .int(peakRSSBytes)),
            ("generator_stalls", .int(generatorStalls)),
            ("retries", .int(retries)),
            ("retries_by_code", .object(retriesByCode.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("requests", .int(requests)),
            ("dead_letter_reasons", .object(deadLetterReasons.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
            ("partitions", .array(partitions.map {
                .object([("topic", .string($0.topic)), ("partition", .int($0.partition)), ("records", .int($0.records)),
                         ("batches", .int($0.batches)), ("next_offset", .int(Int($0.nextOffset)))])
            })),
            ("recoveries", .array(recoveries.map {
                .object([("segment", .string($0.segment)), ("kept_bytes", .int($0.keptBytes)),
                         ("truncated_bytes", .int($0.truncatedBytes)), ("reason", .string($0.reason))])
            })),
            ("started_unix_ms", started),
            // The whole latency histogram (HdrHistogram compressed V2, base64): fleet merges add these exactly.
            ("latency_histogram_hdr", .string(hdr)),
            ("timeline", .array(timeline.map {
                .object([("t", .double(round3($0.seconds))), ("records_out", .int($0.recordsOut)),
                         ("payload_bytes_out", .int($0.payloadBytesOut)), ("queue_depth", .int($0.queueDepth))])
            })),
            ("latency_by_second", .array(latencyBySecond.map {
                .object([("t", .double(round3($0.t))), ("p99_ms", .double(round3($0.p99Ms))), ("count", .int($0.count))])
            })),
            ("error", error.map { .string($0) } ?? .null),
            ("config", config.summary),
        ])
    }

    /// Under `--rate`: target and achieved posts/s, whether the rate was met, posts never sent, the worst lag.
    var offeredRateJSON: JSONValue {
        guard let target = config.rate else { return .null }
        let achieved: Double = seconds > 0 ? (Double(posts) / seconds).rounded() : 0
        return .object([
            ("target_posts_per_s", .double(target)), ("achieved_posts_per_s", .double(achieved)),
            ("met", .bool(!rateNotMet)), ("unsent_posts", .int(unsentPosts)),
            ("max_schedule_lag_s", .double(round3(maxScheduleLagSeconds))),
        ])
    }

    /// Each stage's share of the run's wall time and its CPU seconds: generators working, blocked on a full
    /// ring, idle (the schedule); sink stages on the CPU, waiting inside the sink's calls (the broker, the
    /// service, a full queue, or a CPU), idle (waiting for input): what the flood itself costs beside what it measures.
    var stagesJSON: JSONValue {
        let wall = max(seconds, 1e-9), gens = wall * Double(max(config.threads, 1))
        let gBusy = min(1, generatorBusySeconds / gens), gBlocked = min(1 - gBusy, generatorBlockedSeconds / gens)
        let sink = sinkShares
        return .object([
            ("generators", .object([("threads", .int(config.threads)), ("busy_share", .double(round3(gBusy))),
                                    ("blocked_share", .double(round3(gBlocked))), ("idle_share", .double(round3(max(0, 1 - gBusy - gBlocked)))),
                                    ("cpu_seconds", .double(round3(generatorCPUSeconds)))])),
            ("sink", .object([("stages", .int(config.sinkStages)), ("busy_share", .double(round3(sink.busy))),
                              ("waiting_share", .double(round3(sink.waiting))), ("idle_share", .double(round3(sink.idle))),
                              ("cpu_seconds", .double(round3(sinkCPUSeconds)))])),
        ])
    }

    /// A human summary table: only the rows that apply to the run's backend.
    public var summaryTable: String {
        var rows: [(String, String)] = [
            ("posts", "\(posts)"),
            ("records in", "\(recordsIn)"),
            ("records out", "\(recordsOut)\(mode == .kinesis ? " (accepted)" : mode == .kafka ? " (acknowledged)" : " (stored)")"),
            ("dead-lettered", "\(deadLettered)"),
            ("payload", formatBytes(payloadBytes)),
        ]
        switch mode {
        case .embedded, .kafka:
            rows.append(("\(mode == .kafka ? "sent" : "stored") (\(config.sink.compression))",
                         "\(formatBytes(storedBytes))  (ratio \(storedBytes > 0 ? fmt(Double(payloadBytes) / Double(storedBytes), 2) : "-"))"))
            rows.append(("batches", "\(batches)"))
        case .kinesis:
            break
        }
        rows += [
            ("seconds", fmt(seconds, 3)),
            ("records/s", fmt(recordsPerSecond, 0)),
            ("MB/s", fmt(megabytesPerSecond, 1)),
            ("latency p50/p99/p99.9/max", "\(fmt(percentileMs(50), 2)) / \(fmt(percentileMs(99), 2)) / \(fmt(percentileMs(99.9), 2)) / \(fmt(latencyMicros.totalCount == 0 ? 0 : Double(latencyMicros.max) / 1000, 2)) ms"),
            ("latency ends at", latencyEndpoint),
            ("CPU seconds", fmt(cpuSeconds, 2)),
            ("accounting", accountingHolds ? "in == out + dead-lettered ✓" : "MISMATCH"),
        ] + (mode != .embedded ? [("\(mode == .kafka ? "requests" : "PutRecords calls") / retries", "\(requests) / \(retries)")] : [])
            + retriesByCode.sorted { $0.key < $1.key }.map { ("retried: \($0.key)", "\($0.value)") }
        if let why = stopReason { rows.insert(("stopped early", why.name), at: 0) }
        if let target = config.rate {
            let achieved = seconds > 0 ? Double(posts) / seconds : 0
            rows.append(("offered rate", rateNotMet
                ? "NOT MET: target \(formatCount(target)) posts/s, achieved \(formatCount(achieved))/s, \(unsentPosts) posts scheduled but never sent, schedule up to \(fmt(maxScheduleLagSeconds, 1)) s behind"
                : "met: \(formatCount(target)) posts/s"))
        }
        let w = rows.map(\.0.count).max() ?? 0
        var s = ""
        for (k, v) in rows { s += k + String(repeating: " ", count: w - k.count) + "  " + v + "\n" }
        for (reason, n) in deadLetterReasons.sorted(by: { $0.key < $1.key }) { s += "dead-lettered \(n): \(reason)\n" }
        if let e = error { s += "error: \(e)\n" }
        for r in recoveries { s += "recovered \(r.segment): kept \(r.keptBytes) bytes, cut \(r.truncatedBytes) (\(r.reason))\n" }
        return s
    }
}

public let pinbenchVersion = "0.1.0"


