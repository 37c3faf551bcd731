/// Published figures a capacity plan rests on, each with its source and the date it was taken. A plan prints
/// the ones it used; `--price` and `--broker-*` flags replace any of them.
public struct Sourced<T: Sendable>: Sendable {
    public var value: T
    public var source: String
    public var asOf: String
}

/// One MSK broker size: the partitions AWS recommends per broker (leaders and followers), and for Express the
/// recommended (sustained) ingress and egress per broker, MB/s. Standard brokers have no published network
/// figure: their ingress is bounded here by the default EBS storage throughput (250 MiB/s of writes, replicas
/// included), and `--broker-ingress-mbps` gives a measured figure instead.
public struct BrokerSize: Sendable {
    public var name: String
    public var express: Bool
    public var partitionsPerBroker: Int
    public var ingressMBps: Double?
    public var egressMBps: Double?
}

public enum CapacityFacts {
    static let expressSource = "https://docs.aws.amazon.com/msk/latest/developerguide/bestpractices-express.html (recommended throughput per broker) and limits.html#msk-express-broker-partition-quota"
    static let standardSource = "https://docs.aws.amazon.com/msk/latest/developerguide/bestpractices.html (partitions per Standard broker) and msk-provision-throughput-management.html (250 MiB/s default storage throughput)"
    static let asOf = "2026-11-30"

    public static let brokers: [String: Sourced<BrokerSize>] = {
        var out: [String: Sourced<BrokerSize>] = [:]
        for (name, parts, inMB, outMB) in [
            ("express.m7g.large", 1000, 15.6, 31.2), ("express.m7g.xlarge", 1000, 31.2, 62.5),
            ("express.m7g.2xlarge", 2500, 62.5, 125.0), ("express.m7g.4xlarge", 6000, 124.9, 249.8),
            ("express.m7g.8xlarge", 12000, 250.0, 500.0), ("express.m7g.12xlarge", 16000, 375.0, 750.0),
            ("express.m7g.16xlarge", 20000, 500.0, 1000.0),
        ] {
            out[name] = Sourced(value: BrokerSize(name: name, express: true, partitionsPerBroker: parts, ingressMBps: inMB, egressMBps: outMB),
                                source: expressSource, asOf: asOf)
        }
        for (name, parts) in [
            ("kafka.t3.small", 300), ("kafka.m5.large", 1000), ("kafka.m5.xlarge", 1000), ("kafka.m5.2xlarge", 2000),
            ("kafka.m5.4xlarge", 4000), ("kafka.m5.8xlarge", 4000), ("kafka.m5.12xlarge", 4000), ("kafka.m5.16xlarge", 4000),
            ("kafka.m5.24xlarge", 4000), ("kafka.m7g.large", 1000), ("kafka.m7g.xlarge", 1000), ("kafka.m7g.2xlarge", 2000),
            ("kafka.m7g.4xlarge", 4000), ("kafka.m7g.8xlarge", 4000), ("kafka.m7g.12xlarge", 4000), ("kafka.m7g.16xlarge", 4000),
        ] {
            out[name] = Sourced(value: BrokerSize(name: name, express: false, partitionsPerBroker: parts, ingressMBps: nil, egressMBps: nil),
                                source: standardSource, asOf: asOf)
        }
        return out
    }()

    /// Standard brokers' default storage throughput: 250 MiB/s per broker, which replicated writes share.
    public static let standardStorageMBps = 250.0 * 1.048576

    /// Kinesis Data Streams: per shard 1 MiB/s or 1,000 records/s in, 2 MiB/s out (shared by the consumers
    /// without enhanced fan-out).
    public static let kinesisSource = "https://docs.aws.amazon.com/streams/latest/dev/service-sizes-and-limits.html"
    public static let shardInBytes = 1_048_576.0
    public static let shardInRecords = 1000.0
    public static let shardOutBytes = 2_097_152.0

    /// List prices, USD, us-east-1. These are the figures pinbench's authors had on the date shown; the
    /// pricing pages could not be read from the machine that built this table, so check them (the plan says
    /// so) or give `--price NAME=USD`. A size without a price here has no cost line unless one is given.
    public static let pricesSource = "https://aws.amazon.com/msk/pricing/, https://aws.amazon.com/kinesis/data-streams/pricing/ (us-east-1; not re-read on the date shown: check, or give --price)"
    public static let prices: [String: Double] = [
        "kafka.m5.large": 0.21, "kafka.m5.xlarge": 0.42, "kafka.m5.2xlarge": 0.84, "kafka.m5.4xlarge": 1.68,
        "kafka.m5.8xlarge": 3.36, "kafka.m5.12xlarge": 5.04, "kafka.m5.16xlarge": 6.72, "kafka.m5.24xlarge": 10.08,
        "kinesis.shard-hour": 0.015, "kinesis.put-payload-units-per-million": 0.014,
        "kinesis.on-demand.stream-hour": 0.04, "kinesis.on-demand.gb-in": 0.08, "kinesis.on-demand.gb-out": 0.04,
    ]
    public static let hoursPerMonth = 730.0
}
