import JSON
import Platform

/// What the measured runs say, read from reports: `run --report-json`, a bench folder (report.json, or a
/// worker's worker.json), a fleet merge (report.json with workers), and `bench --consume`'s consumer.json.
public struct Measured: Sendable {
    /// Records/s one producer host sustained (a fleet's rate divided by its workers), per report.
    public var perHost: [(source: String, recordsPerSecond: Double)] = []
    /// Records/s one partition took from the producer (a run's rate over the partitions it wrote).
    public var perPartitionProduce: [(source: String, recordsPerSecond: Double)] = []
    /// Records/s a consumer read from one partition alone (consumer.json's median partition).
    public var perPartitionConsume: [(source: String, recordsPerSecond: Double)] = []
    public var payloadBytes = 0
    public var records = 0

    public var recordBytes: Double? { records > 0 ? Double(payloadBytes) / Double(records) : nil }

    public init() {}
}

public struct PlanError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}

extension Measured {
    /// Reads each report (a file or a folder). A run whose latency kept rising is refused with the reason:
    /// its rate is not one the setup sustains.
    public static func read(_ paths: [String]) throws(PlanError) -> Measured {
        var m = Measured()
        for path in paths {
            var files: [String] = []
            if isDirectory(path) {
                for f in ["worker.json", "report.json", "consumer.json"] where isRegularFile("\(path)/\(f)") { files.append("\(path)/\(f)") }
                if files.contains("\(path)/worker.json") { files.removeAll { $0 == "\(path)/report.json" } }
                guard !files.isEmpty else { throw PlanError("\(path): no report.json, worker.json or consumer.json there") }
            } else {
                files = [path]
            }
            for file in files { try m.add(file) }
        }
        return m
    }

    mutating func add(_ file: String) throws(PlanError) {
        guard let text = readSmallTextFile(file, limit: 256 << 20) else { throw PlanError("\(file): cannot read it") }
        guard let j = try? JSONValue.parse(text) else { throw PlanError("\(file): not a JSON report") }
        func finite(_ v: JSONValue?) -> Double? { v?.doubleValue.flatMap { $0.isFinite && $0 >= 0 && $0 < 1e15 ? $0 : nil } }
        if let c = finite(j["median_partition_records_per_s"]) {  // consumer.json
            guard c > 0 else { throw PlanError("\(file): the consumer read nothing back") }
            perPartitionConsume.append((file, c))
            return
        }
        if let scenarios = j["scenarios"]?.arrayValue {  // a bench folder's report.json
            guard !scenarios.isEmpty else { throw PlanError("\(file): a bench report without scenarios") }
            for (i, s) in scenarios.enumerated() {
                let name = "\(file) [\(s["name"]?.stringValue ?? "\(i)")]"
                let f = s["figures"]
                guard let rps = finite(f?["records_per_s"]), rps > 0 else { throw PlanError("\(name): no records/s") }
                try Self.checkSteady(s["latency_by_second"], warmup: finite(s["warmup"]?["seconds"]) ?? 0, name)
                perHost.append((name, rps))
                addPartitions(s["partitions"], rps, name)
                if let mb = finite(f?["mb_per_s"]), let secs = finite(f?["seconds"]) {
                    payloadBytes += Int(mb * 1e6 * secs)
                    records += Int(rps * secs)
                }
            }
            return
        }
        guard let rps = finite(j["records_per_s"]), rps > 0 else { throw PlanError("\(file): no records_per_s: not a pinbench run, bench or merge report") }
        if let workers = j["workers"]?.intValue, workers > 0 {  // a fleet merge
            perHost.append(("\(file) (\(workers) workers)", rps / Double(workers)))
        } else {
            let warmup = finite(j["config"]?["warmup_s"]) ?? 0
            try Self.checkSteady(j["latency_by_second"], warmup: warmup, file)
            perHost.append((file, rps))
            addPartitions(j["partitions"], rps, file)
        }
        if let p = j["payload_bytes"]?.intValue, let r = j["records_out"]?.intValue, p >= 0, r >= 0, p < 1 << 50, r < 1 << 50 {
            payloadBytes += p
            records += r
        }
    }

    mutating func addPartitions(_ v: JSONValue?, _ rps: Double, _ name: String) {
        let written = (v?.arrayValue ?? []).filter { ($0["records"]?.intValue ?? 0) > 0 }.count
        if written > 0 { perPartitionProduce.append((name, rps / Double(written))) }
    }

    /// Steady: the median (the upper middle one) per-second p99 of the last third of the measured seconds is under 1.5× that of
    /// the first third (or within 2 ms of it). A backlog that grows shows as latency that keeps rising.
    static func checkSteady(_ v: JSONValue?, warmup: Double, _ name: String) throws(PlanError) {
        let secs = (v?.arrayValue ?? []).compactMap { s -> Double? in
            guard let t = s["t"]?.doubleValue, t > warmup, let p = s["p99_ms"]?.doubleValue, p.isFinite else { return nil }
            return p
        }
        guard secs.count >= 6 else { return }
        let third = secs.count / 3
        func median(_ a: ArraySlice<Double>) -> Double { let s = a.sorted(); return s[s.count / 2] }
        let first = median(secs.prefix(third)), last = median(secs.suffix(third))
        if last > first * 1.5 && last - first > 2 {
            throw PlanError("\(name): not a steady run: p99 rose from \(fmt(first, 1)) ms in its first third to \(fmt(last, 1)) ms in its last (the load was above what it sustains); measure at a rate it holds (bench --workload with producerRate: 0 finds one)")
        }
    }
}

public enum PlanBackend: String, Sendable { case kafka, kinesis }

/// `pinbench plan`: a sized setup for a target rate from measured runs and published figures.
public struct CapacityPlan: Sendable {
    public struct Row: Sendable {
        public var what: String
        public var value: String
        public var why: String
    }

    public var rows: [Row] = []
    public var notes: [String] = []
    public var json: [(String, JSONValue)] = []
    public var monthlyUSD: Double?

    public struct Input: Sendable {
        /// Target ingress: records/s, or bytes/s when given in MB/s.
        public var targetRecords: Double?
        public var targetBytes: Double?
        public var egressBytes: Double?
        public var consumerGroups = 1
        public var recordBytes: Double?
        public var headroom = 0.3
        public var backend = PlanBackend.kafka
        public var brokerType = "express.m7g.large"
        public var replication = 3
        public var azs = 3
        public var brokerIngressMBps: Double?
        public var topics = 3
        public var prices: [String: Double] = [:]
        public init() {}
    }

    public static func make(_ input: Input, measured m: Measured) throws(PlanError) -> CapacityPlan {
        var plan = CapacityPlan()
        guard input.headroom >= 0, input.headroom <= 10 else { throw PlanError("--headroom must be in 0...10 (0.3 is 30%)") }
        let k = 1 + input.headroom
        guard let recordBytes = input.recordBytes ?? m.recordBytes, recordBytes > 0 else {
            throw PlanError("the record size is unknown: give --record-bytes N, or --from a report (auto takes it from there)")
        }
        let records: Double, bytes: Double
        if let r = input.targetRecords { records = r; bytes = r * recordBytes } else if let b = input.targetBytes { bytes = b; records = b / recordBytes } else {
            throw PlanError("give --target, e.g. 2M/s (records) or 45MB/s")
        }
        let egress = input.egressBytes ?? bytes * Double(max(1, input.consumerGroups))
        let (pr, pb, pe) = (records * k, bytes * k, egress * k)
        plan.rows.append(Row(what: "target", value: "\(formatCount(records)) records/s, \(fmt(bytes / 1e6, 1)) MB/s in, \(fmt(egress / 1e6, 1)) MB/s out",
                             why: "records of \(Int(recordBytes.rounded())) bytes\(input.recordBytes == nil ? " (measured)" : ""); planned with \(Int((input.headroom * 100).rounded()))% headroom: \(formatCount(pr)) records/s, \(fmt(pb / 1e6, 1)) MB/s in, \(fmt(pe / 1e6, 1)) MB/s out"))
        plan.json += [("target_records_per_s", .double(records.rounded())), ("target_mb_per_s_in", .double(round3(bytes / 1e6))),
                      ("target_mb_per_s_out", .double(round3(egress / 1e6))), ("record_bytes", .double(recordBytes.rounded())),
                      ("headroom", .double(input.headroom))]

        // Producer hosts: the slowest measured host decides (a plan must hold on every host).
        if let host = m.perHost.min(by: { $0.recordsPerSecond < $1.recordsPerSecond }) {
            let n = Int((pr / host.recordsPerSecond).rounded(.up))
            plan.rows.append(Row(what: "producer hosts", value: "\(n)", why: "\(formatCount(pr)) records/s ÷ \(formatCount(host.recordsPerSecond)) records/s measured per host (\(host.source))"))
            plan.json.append(("producer_hosts", .int(n)))
        } else {
            plan.notes.append("producer hosts: no run report given (--from): not sized")
        }

        var monthly = 0.0, priced = true
        func price(_ key: String) -> Double? { input.prices[key] ?? CapacityFacts.prices[key] }
        switch input.backend {
        case .kafka:
            // Partitions (Confluent): per topic, at least max(t/p, t/c).
            let perTopic = pr / Double(input.topics)
            let p = m.perPartitionProduce.map(\.recordsPerSecond).min()
            let c = m.perPartitionConsume.map(\.recordsPerSecond).min()
            var partitions: Int?
            if p != nil || c != nil {
                let byP = p.map { perTopic / $0 } ?? 0, byC = c.map { perTopic / $0 } ?? 0
                let n = max(1, Int(max(byP, byC).rounded(.up)))
                partitions = n * input.topics
                var why = "per topic max(t/p, t/c) with t = \(formatCount(perTopic)) records/s"
                why += p.map { ", p = \(formatCount($0)) records/s per partition produced" } ?? ", p not measured"
                why += c.map { ", c = \(formatCount($0)) records/s per partition consumed" } ?? ", c not measured (bench --consume)"
                plan.rows.append(Row(what: "partitions", value: "\(n) per topic, \(n * input.topics) in all", why: why))
                plan.json += [("partitions_per_topic", .int(n)), ("partitions", .int(n * input.topics)),
                              ("p_records_per_s", p.map { .double($0.rounded()) } ?? .null), ("c_records_per_s", c.map { .double($0.rounded()) } ?? .null)]
            } else {
                plan.notes.append("partitions: no per-partition figures (--from a run report for p, bench --consume's consumer.json for c): not sized")
            }
            guard let size = CapacityFacts.brokers[input.brokerType] else {
                throw PlanError("unknown --broker-type \(input.brokerType): one of \(CapacityFacts.brokers.keys.sorted().joined(separator: ", "))")
            }
            let b = size.value
            let rf = b.express ? 3 : input.replication
            var need: [(Int, String)] = []
            if let inMB = input.brokerIngressMBps ?? b.ingressMBps {
                need.append((Int((pb / 1e6 / inMB).rounded(.up)), "\(fmt(pb / 1e6, 1)) MB/s in ÷ \(fmt(inMB, 1)) MB/s per broker"))
            } else {
                need.append((Int((pb / 1e6 * Double(rf) / CapacityFacts.standardStorageMBps).rounded(.up)),
                             "\(fmt(pb / 1e6, 1)) MB/s in × RF \(rf) ÷ \(fmt(CapacityFacts.standardStorageMBps, 1)) MB/s default storage throughput per broker (Standard brokers publish no network figure: --broker-ingress-mbps gives yours)"))
            }
            if let outMB = b.egressMBps { need.append((Int((pe / 1e6 / outMB).rounded(.up)), "\(fmt(pe / 1e6, 1)) MB/s out ÷ \(fmt(outMB, 1)) MB/s per broker")) }
            if let parts = partitions {
                need.append((Int((Double(parts * rf) / Double(b.partitionsPerBroker)).rounded(.up)), "\(parts) partitions × RF \(rf) ÷ \(b.partitionsPerBroker) recommended per broker"))
            }
            let (raw, reason) = need.max { $0.0 < $1.0 } ?? (1, "")
            let azs = b.express ? 3 : max(1, input.azs)
            let brokers = max(azs, (max(raw, 1) + azs - 1) / azs * azs)
            plan.rows.append(Row(what: "brokers", value: "\(brokers) × \(b.name)", why: "\(reason), rounded up to a multiple of \(azs) AZs (source: \(size.source), \(size.asOf))"))
            plan.json += [("brokers", .int(brokers)), ("broker_type", .string(b.name)), ("replication", .int(rf)),
                          ("broker_figures_source", .string(size.source)), ("broker_figures_as_of", .string(size.asOf))]
            if let h = price(b.name) {
                let cost = Double(brokers) * h * CapacityFacts.hoursPerMonth
                monthly += cost
                plan.rows.append(Row(what: "cost (brokers)", value: "$\(fmt(cost, 0))/month", why: "\(brokers) × $\(h)/h × \(Int(CapacityFacts.hoursPerMonth)) h; storage and data transfer not included"))
            } else {
                priced = false
                plan.notes.append("no list price known for \(b.name): give --price \(b.name)=USD_PER_HOUR for a cost")
            }
        case .kinesis:
            // Per stream (the three record kinds, equal record counts; bytes split alike).
            let s = Double(input.topics)
            let perStream = max(Int((pb / s / CapacityFacts.shardInBytes).rounded(.up)), Int((pr / s / CapacityFacts.shardInRecords).rounded(.up)),
                                Int((pe / s / CapacityFacts.shardOutBytes).rounded(.up)), 1)
            let shards = perStream * input.topics
            plan.rows.append(Row(what: "shards (provisioned)", value: "\(perStream) per stream, \(shards) in all",
                                 why: "per stream max(\(fmt(pb / s / 1e6, 2)) MB/s ÷ 1 MiB/s, \(formatCount(pr / s)) records/s ÷ 1,000, \(fmt(pe / s / 1e6, 2)) MB/s out ÷ 2 MiB/s) (source: \(CapacityFacts.kinesisSource))"))
            plan.json += [("shards_per_stream", .int(perStream)), ("shards", .int(shards))]
            let seconds = CapacityFacts.hoursPerMonth * 3600
            if let sh = price("kinesis.shard-hour"), let pu = price("kinesis.put-payload-units-per-million") {
                let units = (recordBytes / 25_600).rounded(.up)
                let cost = Double(shards) * sh * CapacityFacts.hoursPerMonth + records * units * seconds / 1e6 * pu
                monthly += cost
                plan.rows.append(Row(what: "cost (provisioned)", value: "$\(fmt(cost, 0))/month",
                                     why: "\(shards) shards × $\(sh)/h + \(formatCount(records)) records/s × \(Int(units)) PUT payload unit(s) × $\(pu) per million"))
            }
            if let sh = price("kinesis.on-demand.stream-hour"), let gin = price("kinesis.on-demand.gb-in"), let gout = price("kinesis.on-demand.gb-out") {
                let billedIn = records * (recordBytes / 1024).rounded(.up) * 1024  // each record rounded up to 1 KiB
                let cost = s * sh * CapacityFacts.hoursPerMonth + billedIn * seconds / 1e9 * gin + egress * seconds / 1e9 * gout
                plan.rows.append(Row(what: "cost (on-demand, the alternative)", value: "$\(fmt(cost, 0))/month",
                                     why: "\(Int(s)) streams × $\(sh)/h + \(fmt(billedIn * seconds / 1e9, 0)) GB in × $\(gin) + \(fmt(egress * seconds / 1e9, 0)) GB out × $\(gout)"))
                plan.json.append(("on_demand_monthly_usd", .double(cost.rounded())))
            }
        }
        plan.monthlyUSD = priced ? monthly : nil
        plan.json.append(("monthly_usd", plan.monthlyUSD.map { .double($0.rounded()) } ?? .null))
        plan.json.append(("prices_source", .string(CapacityFacts.pricesSource)))
        plan.json.append(("notes", .array(plan.notes.map { .string($0) })))
        return plan
    }

    public var table: String {
        let w = rows.map(\.what.count).max() ?? 0
        var out = rows.map { r in r.what + String(repeating: " ", count: w - r.what.count) + "  " + r.value + "\n" + String(repeating: " ", count: w + 2) + r.why }.joined(separator: "\n") + "\n"
        for n in notes { out += "note: \(n)\n" }
        out += "prices: \(CapacityFacts.pricesSource)\n"
        return out
    }
}

