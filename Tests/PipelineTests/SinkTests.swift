import Codecs
import Foundation
import KafkaLog
import KafkaWire
import PinModel
import Platform
import RingBuffers
import Sinks
import Testing
import TestSupport

/// The `RecordSink` contract on the embedded log, as the ingest writer uses it: every record sent ends in
/// exactly one outcome, partitioning happens in the sink, offsets and timestamps are what the log holds.
@Suite struct SinkTests {
    final class Outcomes {
        var stored: [(kind: RecordKind, token: UInt64, partition: Int32, offset: Int64)] = []
        var failed: [(token: UInt64, code: String, fatal: Bool)] = []
    }

    /// Every record's outcome, as the sink reports it.
    func collect(_ sink: any RecordSink) -> Outcomes {
        let o = Outcomes()
        sink.onOutcome = { out in
            switch out.status {
            case .stored(.offsets(let p, let base)):
                for (i, t) in out.tokens.enumerated() { o.stored.append((out.kind, t, p, base + Int64(i))) }
            case .stored(.shard): Issue.record("an embedded log reports offsets")
            case .failed(let f):
                for t in out.tokens { o.failed.append((t, f.code, f.isFatal)) }
            }
        }
        return o
    }

    func open(_ dir: String, partitions: Int = 3) throws -> (any RecordSink, Outcomes) {
        var s = SinkSettings(partitions: partitions, compression: .none)
        s.topicPrefix = "t"
        let sink = try Backend.embedded(LogOptions(dataDir: dir)).makeSink(s, role: .ingest)
        let o = collect(sink)
        return (sink, o)
    }

    func send(_ sink: any RecordSink, _ kind: RecordKind, key: String?, partition: Int32?, token: UInt64, timestamp: Int64) {
        let value = Array("{\"token\":\(token)}".utf8)
        value.withUnsafeBytes { v in
            if let key {
                Array(key.utf8).withUnsafeBytes { k in sink.send(kind, key: k, value: v, partition: partition, timestamp: timestamp, token: token) }
            } else {
                sink.send(kind, key: nil, value: v, partition: partition, timestamp: timestamp, token: token)
            }
        }
    }

    /// A flood's sink stages: three shards of one log share its nine topic-partitions, one lock keeps other
    /// writers out until the last shard closes, and a record sent to a shard that does not own its
    /// topic-partition fails (never lost, never written to another shard's files).
    @Test func shardsShareTheLogAndItsLock() throws {
        let dir = tempDir("shards")
        var s = SinkSettings(partitions: 3, compression: .lz4)
        s.topicPrefix = "t"
        let bells = (0..<3).map { _ in Doorbell() }
        let shards = try Backend.embedded(LogOptions(dataDir: dir, sealThreads: 2)).makeSinks(s, role: .flood, bells: bells)
        #expect(shards.count == 3)
        var owners: [Int] = []
        for kind in RecordKind.allCases {
            for p in 0..<3 {
                let owning = shards.indices.filter { (shards[$0] as? EmbeddedLogSink)?.ownsSlot(kind, partition: p) == true }
                #expect(owning.count == 1, "exactly one shard owns \(kind)-\(p)")
                owners += owning
            }
        }
        #expect(Set(owners) == [0, 1, 2])
        let outcomes = shards.map { collect($0) }
        // Every slot's record to its owner, and one to a shard that does not own it.
        var token: UInt64 = 0
        for kind in RecordKind.allCases {
            for p in 0..<3 {
                let owner = owners[kind.rawValue * 3 + p]
                send(shards[owner], kind, key: nil, partition: Int32(p), token: token, timestamp: 0)
                token += 1
            }
        }
        send(shards[(owners[0] + 1) % 3], .pin, key: nil, partition: 0, token: 99, timestamp: 0)
        // Another writer is refused while any shard is open.
        #expect(throws: SinkFailure.self) { _ = try EmbeddedLogSink(settings: s, options: LogOptions(dataDir: dir), role: .ingest) }
        #expect(shards[0].close() == nil && shards[1].close() == nil)
        #expect(throws: SinkFailure.self) { _ = try EmbeddedLogSink(settings: s, options: LogOptions(dataDir: dir), role: .ingest) }
        #expect(shards[2].close() == nil)
        let stored = outcomes.flatMap(\.stored)
        #expect(stored.map(\.token).sorted() == Array(0..<9))
        #expect(outcomes.flatMap(\.failed).map(\.token) == [99])
        // The log holds each record once, where its owner wrote it; the lock is free again.
        let verified = try LogInspector.verify(dataDir: dir)
        #expect(verified.count == 9 && verified.allSatisfy { $0.records == 1 })
        let again = try EmbeddedLogSink(settings: s, options: LogOptions(dataDir: dir), role: .ingest)
        #expect(again.existingRecords == 9)
        _ = again.close()
    }

    @Test func everyRecordEndsOnceWherePartitioningPutsIt() throws {
        let dir = tempDir("sink")
        let (sink, o) = try open(dir)
        let ts: Int64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z
        for t in 0..<10 { send(sink, .pin, key: nil, partition: 1, token: UInt64(t), timestamp: ts) }
        for t in 10..<20 { send(sink, .geo, key: "k7", partition: nil, token: UInt64(t), timestamp: ts + 1) }
        for t in 20..<25 { send(sink, .user, key: nil, partition: nil, token: UInt64(t), timestamp: ts + 2) }
        #expect(sink.pending == 25)
        sink.poll()  // behind the ingest API every round is sealed at once
        #expect(sink.pending == 0)
        for t in 25..<30 { send(sink, .user, key: nil, partition: nil, token: UInt64(t), timestamp: ts + 2) }
        #expect(sink.close() == nil)

        #expect(o.failed.isEmpty)
        #expect(o.stored.map(\.token).sorted() == Array(0..<30))
        // Explicit partitions are kept, offsets count from 0 in send order.
        let pins = o.stored.filter { $0.kind == .pin }
        #expect(pins.allSatisfy { $0.partition == 1 } && pins.map(\.offset) == Array(0..<10))
        // Keyed records go where Kafka's partitioner puts the key.
        let keyed = o.stored.filter { $0.kind == .geo }
        #expect(keyed.allSatisfy { Int($0.partition) == Murmur2.partition("k7", partitions: 3) })
        // Keyless records stick to one partition per round and move on with the next.
        let first = Set(o.stored.filter { $0.kind == .user && $0.token < 25 }.map(\.partition))
        let second = Set(o.stored.filter { $0.kind == .user && $0.token >= 25 }.map(\.partition))
        #expect(first.count == 1 && second.count == 1 && first != second)
        // The log holds each record at the reported offset with the timestamp it was sent with.
        var seen = 0
        for kind in RecordKind.allCases {
            try LogInspector.forEachRecord(dataDir: dir, topic: kind.topic(prefix: "t")) { p, r in
                let text = String(decoding: r.value ?? UnsafeRawBufferPointer(start: nil, count: 0), as: UTF8.self)
                let token = UInt64(text.dropFirst(9).dropLast()) ?? .max
                let reported = o.stored.first { $0.token == token }
                #expect(reported?.partition == Int32(p) && reported?.offset == r.offset, "\(text)")
                #expect(r.timestamp == ts + Int64(kind.rawValue))
                seen += 1
            }
        }
        #expect(seen == 30)
    }

    /// A flood's sink lingers; an owner that says when its next record comes has a batch whose linger ends
    /// before then sealed at once (the batch a paced flood's generating stage fills with one chunk), and one
    /// whose linger ends later keeps waiting for more records.
    @Test func aLingeringBatchIsSealedWhenNothingMoreCanComeBeforeItsDeadline() throws {
        let dir = tempDir("sink-quiet")
        var s = SinkSettings(partitions: 1, compression: .lz4)
        s.topicPrefix = "t"
        s.lingerMs = 10_000  // no deadline passes during the test
        let sink = try Backend.embedded(LogOptions(dataDir: dir, sealThreads: 0)).makeSink(s, role: .flood)
        let o = collect(sink)
        for t in 0..<5 { send(sink, .pin, key: nil, partition: 0, token: UInt64(t), timestamp: 0) }
        sink.poll()
        sink.poll(noInputBeforeNs: monotonicNanos() + 5_000_000_000)  // the next record could still join the batch
        #expect(sink.pending == 5 && o.stored.isEmpty)
        sink.poll(noInputBeforeNs: monotonicNanos() + 20_000_000_000)  // nothing more before its linger ends
        #expect(sink.pending == 0 && o.stored.map(\.token) == Array(0..<5))
        for t in 5..<8 { send(sink, .pin, key: nil, partition: 0, token: UInt64(t), timestamp: 0) }
        sink.poll(noInputBeforeNs: 0)  // unknown: the linger holds
        #expect(sink.pending == 3)
        #expect(sink.close() == nil)
        #expect(o.stored.map(\.token) == Array(0..<8) && o.stored.map(\.offset) == Array(0..<8))
        // Two batches: the five records sealed early, the three the close sealed.
        let held = try LogInspector.verify(dataDir: dir).filter { $0.records > 0 }
        #expect(held.map(\.records) == [8] && held.map(\.batches) == [2] && held.allSatisfy(\.problems.isEmpty))
    }

    @Test func aFullDiskFailsWhatItHoldsAndEverythingAfter() throws {
        let dir = tempDir("sink-full")
        let pdir = "\(dir)/log/t.pin-0"
        try FileManager.default.createDirectory(atPath: pdir, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: "\(pdir)/\(segmentFileName(0))", withDestinationPath: "/dev/full")
        let (sink, o) = try open(dir, partitions: 1)
        for t in 0..<5 { send(sink, .pin, key: nil, partition: 0, token: UInt64(t), timestamp: 0) }
        sink.poll()
        for t in 5..<8 { send(sink, .geo, key: nil, partition: 0, token: UInt64(t), timestamp: 0) }
        _ = sink.close()
        #expect(o.stored.isEmpty)
        #expect(o.failed.map(\.token).sorted() == Array(0..<8))
        #expect(o.failed.allSatisfy { $0.code == "DiskFull" && $0.fatal })
    }
}
