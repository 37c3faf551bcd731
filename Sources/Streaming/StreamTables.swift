import AWSClient
import Cleaning
import PinModel
import TableStore
import JSON
import Platform

/// What `pinbench stream` did in one call.
public struct StreamReport: Sendable {
    public var rounds = 0
    /// Kinesis records read, and the user records inside them (more when the producer aggregated).
    public var kinesisRecords = 0
    public var records = 0
    public var written = 0
    public var duplicates = 0
    public var deadLettered = 0
    public var commits = 0
    public var resumedShards = 0
    public var seconds = 0.0
    public var perTable: [String: Int] = [:]

    /// One line for people.
    public var summary: String {
        "streamed \(records) records (\(kinesisRecords) Kinesis records) in \(rounds) rounds: \(written) rows written, \(duplicates) duplicates dropped, "
            + "\(deadLettered) dead-lettered, \(commits) commits, resumed \(resumedShards) shards, \(fmt(seconds, 2)) s"
    }

    public func json() -> JSONValue {
        .object([
            ("rounds", .int(rounds)), ("kinesis_records", .int(kinesisRecords)), ("records", .int(records)),
            ("written", .int(written)), ("duplicates", .int(duplicates)), ("dead_lettered", .int(deadLettered)),
            ("commits", .int(commits)), ("resumed_shards", .int(resumedShards)), ("seconds", .double(seconds)),
            ("per_table", .object(perTable.sorted { $0.key < $1.key }.map { ($0.key, .int($0.value)) })),
        ])
    }
}

public struct StreamOptions: Sendable {
    public var tablesDir: String
    public var streamPrefix = "pinbench"
    /// Keep reading (a round every `pollMs`) until `stop` says so or nothing came for `idleMs`.
    public var follow = false
    public var pollMs = 1000.0
    public var idleMs: Double? = nil
    /// A round ends when this many records were read (then it is cleaned and committed).
    public var roundRecords = 500_000
    public var partitionBy: [RecordKind: String?] = RecordKind.defaultPartitionColumns
    public init(tablesDir: String) { self.tablesDir = tablesDir }
    public func stream(_ k: RecordKind) -> String { k.stream(prefix: streamPrefix) }
}

/// The streaming path: reads every shard of the three streams (GetShardIterator / GetRecords, unpacking
/// KPL aggregates), cleans with the batch kernels and appends one Delta commit per table per round. Each
/// commit carries the last sequence number read from every shard (`commitInfo.pinbench.checkpoints`), so
/// a restart resumes right after what is in the table: nothing lost, nothing twice.
public final class StreamTables {
    public let options: StreamOptions
    let client: KinesisClient
    public var shouldStop: () -> Bool = { false }
    /// Records read so far (bumped per round), for a progress line.
    public var progress: ProgressCounter?

    public init(options: StreamOptions, aws: AWSConfig) throws(AWSError) {
        self.options = options
        client = try KinesisClient(config: aws)
    }

    /// shardId → last sequence number committed, from the table's newest commit.
    public static func checkpoints(table: String) throws -> [String: String] {
        guard let snap = try DeltaLog(table: table).snapshot(), let cp = snap.pinbenchInfo?["checkpoints"]?.objectValue else { return [:] }
        var out: [String: String] = [:]
        for (k, v) in cp { if let s = v.stringValue { out[k] = s } }
        return out
    }

    struct ShardCursor {
        var shard: String
        var iterator: String?
        var last: String?
        var closed = false
    }

    public func run() throws -> StreamReport {
        let t0 = monotonicMs()
        var report = StreamReport()
        var (cursors, committed) = try openCursors(&report)
        var lastData = monotonicMs()
        while true {
            let mem = MemoryRecords()
            let (read, caughtUp) = try readRound(&cursors, into: mem, &report)
            report.records += read
            progress?.add(read)
            if read > 0 {
                lastData = monotonicMs()
                try commitRound(mem, cursors: cursors, committed: &committed, &report)
            }
            if shouldStop() { break }
            if !options.follow && caughtUp { break }
            if options.follow {
                if let idle = options.idleMs, monotonicMs() - lastData >= idle { break }
                if caughtUp { sleepMs(options.pollMs) }
            }
        }
        report.seconds = (monotonicMs() - t0) / 1000
        return report
    }

    /// An iterator per shard of each stream: after the table's checkpoint for that shard, else from the trim horizon.
    func openCursors(_ report: inout StreamReport) throws -> (cursors: [[ShardCursor]], committed: [[String: String]]) {
        var cursors: [[ShardCursor]] = []
        var committed: [[String: String]] = []
        for k in RecordKind.allCases {
            let stream = options.stream(k)
            let cps = try StreamTables.checkpoints(table: "\(options.tablesDir)/\(k.name)")
            committed.append(cps)
            var cs: [ShardCursor] = []
            for shard in try client.listShards(stream) {
                let start: KinesisClient.IteratorStart
                if let seq = cps[shard] { start = .afterSequenceNumber(seq); report.resumedShards += 1 } else { start = .trimHorizon }
                cs.append(ShardCursor(shard: shard, iterator: try client.shardIterator(stream: stream, shard: shard, from: start), last: cps[shard]))
            }
            cursors.append(cs)
        }
        return (cursors, committed)
    }

    /// Reads every open shard until caught up or a round's worth of records came (KPL aggregates unpacked).
    func readRound(_ cursors: inout [[ShardCursor]], into mem: MemoryRecords, _ report: inout StreamReport) throws -> (read: Int, caughtUp: Bool) {
        var caughtUp = false
        var read = 0
        // Each pass visits every open shard once (none starves); a page holds at most the round's share per
        // shard, so a round of --round-records ends near that many records (GetRecords allows 10,000).
        let open = cursors.reduce(0) { $0 + $1.filter { !$0.closed }.count }
        let perPage = max(1, min(10_000, options.roundRecords / max(1, open)))
        while !caughtUp && read < options.roundRecords && !shouldStop() {
            caughtUp = true
            for (ki, k) in RecordKind.allCases.enumerated() {
                let stream = options.stream(k)
                for ci in cursors[ki].indices where !cursors[ki][ci].closed {
                    guard let it = cursors[ki][ci].iterator else { cursors[ki][ci].closed = true; continue }
                    let page = try client.getRecords(iterator: it, limit: perPage)
                    for r in page.records {
                        report.kinesisRecords += 1
                        let loc = "\(stream)/\(cursors[ki][ci].shard)@\(r.sequenceNumber)"
                        if let users = KPLAggregator.deaggregate(r.data) {
                            for (i, u) in users.enumerated() { u.data.withUnsafeBytes { mem.append(k, $0, location: "\(loc)#\(i)") } }
                            read += users.count
                        } else {
                            r.data.withUnsafeBytes { mem.append(k, $0, location: loc) }
                            read += 1
                        }
                        cursors[ki][ci].last = r.sequenceNumber
                    }
                    cursors[ki][ci].iterator = page.nextIterator
                    if page.nextIterator == nil { cursors[ki][ci].closed = true }
                    if !page.records.isEmpty || page.millisBehindLatest > 0 { caughtUp = false }
                }
            }
        }
        return (read, caughtUp)
    }

    /// Cleans what a round read and commits it: each table whose shards moved gets its checkpoints in the commit.
    func commitRound(_ mem: MemoryRecords, cursors: [[ShardCursor]], committed: inout [[String: String]], _ report: inout StreamReport) throws {
        var co = CleanOptions(tablesDir: options.tablesDir)
        co.partitionBy = options.partitionBy
        for (ki, k) in RecordKind.allCases.enumerated() {
            var cp: [(String, JSONValue)] = []
            for c in cursors[ki] { if let l = c.last { cp.append((c.shard, .string(l))) } }
            // Only tables whose shards moved get a commit.
            let moved = cursors[ki].contains { $0.last != committed[ki][$0.shard] }
            if moved {
                co.commitInfo[k] = .object([("checkpoints", .object(cp)), ("stream", .string(options.stream(k)))])
            }
        }
        let r = try Cleaner.run(source: .memory(mem), options: co)
        for t in r.tables {
            report.written += t.written
            report.duplicates += t.duplicates
            report.deadLettered += t.deadLettered
            report.perTable[t.kind.name, default: 0] += t.written
            if t.commitVersion != nil { report.commits += 1 }
        }
        for ki in cursors.indices {
            for c in cursors[ki] { if let l = c.last { committed[ki][c.shard] = l } }
        }
        report.rounds += 1
    }
}
