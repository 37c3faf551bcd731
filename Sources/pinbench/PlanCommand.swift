import ArgumentParser
import Capacity
import Console
import Foundation
import JSON
import Platform

/// `pinbench plan`: measured runs and published figures turned into a sized setup.
struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Size a setup for a target rate from measured runs: producer hosts, partitions, MSK brokers or Kinesis shards, and a monthly cost.",
        discussion: "Producer hosts come from the records/s each measured host sustained; partitions from Confluent's rule (per topic at least max(t/p, t/c), p and c measured per partition by run/bench and bench --consume); brokers from MSK's published figures per broker size (printed with their source and date); shards from Kinesis's per-shard limits. A run whose latency kept rising is refused.\n\n"
            + examples("pinbench plan --target 2M/s --from run.json --from bench-out", "pinbench plan --target 45MB/s --egress 90MB/s --broker-type express.m7g.large --headroom 0",
                       "pinbench plan --target 3000/s --record-bytes 2000 --kinesis"))

    @Option(help: "Target ingress: records/s (2M/s, 450k, 3000/s) or MB/s (45MB/s).") var target: String
    @Option(help: "Target egress in MB/s (default: ingress × --consumer-groups).") var egress: String?
    @Option(help: "Consumer groups reading everything (egress = ingress × this).") var consumerGroups: Int = 1
    @Option(help: "Record size in bytes, or auto (from the reports).") var recordBytes: String = "auto"
    @Option(name: .customLong("from"), help: "A measured run: run --report-json, a bench folder, a fleet merge, bench --consume's consumer.json (repeat).") var from: [String] = []
    @Flag(help: "Plan Kafka (MSK) brokers and partitions (the default).") var kafka = false
    @Flag(help: "Plan Kinesis shards instead.") var kinesis = false
    @Option(help: "MSK broker size (express.m7g.* or kafka.m5.* / kafka.m7g.*).") var brokerType: String = "express.m7g.large"
    @Option(help: "Replication factor (Standard brokers; Express is always 3).") var replication: Int = 3
    @Option(help: "Availability zones (Standard brokers; Express uses 3).") var azs: Int = 3
    @Option(help: "Measured ingress one Standard broker takes, MB/s (Standard brokers publish none).") var brokerIngressMbps: Double?
    @Option(help: "Share of the target kept free, e.g. 0.3.") var headroom: Double = 0.3
    @Option(help: "A price, NAME=USD (e.g. express.m7g.large=0.5 per hour, kinesis.shard-hour=0.015); repeat.") var price: [String] = []
    @Option(help: "What to print: text or json.") var format: OutputFormat = .text
    @Option(help: "Also write the plan as JSON to this file.") var out: String?

    /// "2M/s", "450k", "3000/s" → records/s; "45MB/s", "45MBps" → bytes/s.
    static func parseRate(_ s: String) -> (records: Double?, bytes: Double?)? {
        var t = s.trimmingCharacters(in: .whitespaces)
        for suffix in ["MB/s", "MBps", "mb/s"] where t.hasSuffix(suffix) {
            t.removeLast(suffix.count)
            guard let v = Double(t), v.isFinite, v > 0, v < 1e9 else { return nil }
            return (nil, v * 1e6)
        }
        if t.hasSuffix("/s") { t.removeLast(2) }
        var mult = 1.0
        if let last = t.last, let m = ["k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9][String(last)] { mult = m; t.removeLast() }
        guard let v = Double(t), v.isFinite, v > 0, v * mult < 1e13 else { return nil }
        return (v * mult, nil)
    }

    func validate() throws {
        guard PlanCommand.parseRate(target) != nil else { throw ValidationError("--target needs a rate: 2M/s, 450k, 3000/s or 45MB/s; got '\(target)'") }
        if let e = egress, PlanCommand.parseRate(e)?.bytes == nil { throw ValidationError("--egress needs MB/s, e.g. 90MB/s; got '\(e)'") }
        if kafka && kinesis { throw ValidationError("give --kafka or --kinesis, not both") }
        if recordBytes != "auto", Int(recordBytes).map({ $0 > 0 && $0 <= 100 << 20 }) != true { throw ValidationError("--record-bytes needs auto or a size in 1...104857600") }
        if !(1...100).contains(consumerGroups) { throw ValidationError("--consumer-groups must be in 1...100") }
        if !(1...5).contains(replication) { throw ValidationError("--replication must be in 1...5") }
        if !(1...6).contains(azs) { throw ValidationError("--azs must be in 1...6") }
        if let b = brokerIngressMbps, !(b > 0 && b < 1e6) { throw ValidationError("--broker-ingress-mbps must be > 0") }
        for p in price {
            guard let eq = p.firstIndex(of: "="), let v = Double(p[p.index(after: eq)...]), v.isFinite, v >= 0 else {
                throw ValidationError("--price needs NAME=USD, e.g. express.m7g.large=0.5; got '\(p)'")
            }
        }
    }

    func run() throws {
        var input = CapacityPlan.Input()
        let rate = PlanCommand.parseRate(target)
        input.targetRecords = rate?.records
        input.targetBytes = rate?.bytes
        input.egressBytes = egress.flatMap { PlanCommand.parseRate($0)?.bytes }
        input.consumerGroups = consumerGroups
        input.recordBytes = Int(recordBytes).map(Double.init)
        input.headroom = headroom
        input.backend = kinesis ? .kinesis : .kafka
        input.brokerType = brokerType
        input.replication = replication
        input.azs = azs
        input.brokerIngressMBps = brokerIngressMbps
        for p in price {
            if let eq = p.firstIndex(of: "="), let v = Double(p[p.index(after: eq)...]) { input.prices[String(p[..<eq])] = v }
        }
        let plan: CapacityPlan
        do { plan = try CapacityPlan.make(input, measured: try Measured.read(from)) } catch { throw RunFailure(error.description) }
        let json = JSONValue.object(plan.json + [("rows", .array(plan.rows.map { .object([("what", .string($0.what)), ("value", .string($0.value)), ("why", .string($0.why))]) }))])
        if let out { try writeText(json.serialized(), to: out) }
        print(format == .json ? json.serialized(pretty: false) : plan.table, terminator: format == .json ? "\n" : "")
    }
}
