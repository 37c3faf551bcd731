import Bytes
import Codecs
import Dispatch
import KafkaLog
import KafkaWire
import RingBuffers
import Synchronization

/// Records of one request, waiting for the writer. Allocated once per request.
final class IngestJob: @unchecked Sendable {
    let kind: Int
    let records: [(partition: Int32, key: [UInt8]?, value: [UInt8])]
    let completion: @Sendable (Result<[(Int32, Int64)], IngestError>) -> Void

    init(kind: Int, records: [(partition: Int32, key: [UInt8]?, value: [UInt8])],
         completion: @escaping @Sendable (Result<[(Int32, Int64)], IngestError>) -> Void) {
        self.kind = kind
        self.records = records
        self.completion = completion
    }
}

public struct IngestError: Error, Sendable {
    public var status: Int
    public var code: Int
    public var message: String
}

/// The embedded log behind the ingest API: one writer thread owns the partitions; request handlers hand
/// it jobs through a bounded lock-free ring. A full ring is refused at once (the caller answers 429), so
/// an accepted request is never dropped; the writer answers a job after its records are appended.
final class EmbeddedStore: @unchecked Sendable {
    let ring: MPMCRing<IngestJob>
    let logs: [[PartitionLog]]
    let partitions: Int
    let done = DispatchGroup()
    let stop = Atomic<Bool>(false)
    let stored = Atomic<Int>(0)

    init(dataDir: String, topics: [String], partitions: Int, capacity: Int) throws {
        self.partitions = partitions
        ring = MPMCRing(capacity: capacity, producers: 1)
        logs = try topics.map { t in try (0..<partitions).map { try PartitionLog(topic: t, partition: $0, config: LogConfig(dataDir: dataDir)) } }
        DispatchQueue(label: "pinbench.ingest.writer").async(group: done) { self.run() }
    }

    /// False when the writer is full (backpressure: answer 429/503 before accepting).
    func submit(_ job: IngestJob) -> Bool { ring.tryPush(job) == nil }

    func shutdown() {
        stop.store(true, ordering: .releasing)
        done.wait()
        for row in logs { for l in row { try? l.close() } }
    }

    private func run() {
        let codec = Codec()
        let out = ByteBuffer(capacity: 1 << 20)
        var builders = (0..<(logs.count * partitions)).map { _ in RecordBatchBuilder(capacity: 64 * 1024) }
        var backoff = Backoff()
        while true {
            var jobs: [IngestJob] = []
            while jobs.count < 512, let j = ring.tryPop() { jobs.append(j) }
            if jobs.isEmpty {
                if stop.load(ordering: .acquiring) { return }
                backoff.wait()
                continue
            }
            backoff.reset()
            // Records of all jobs, batched per topic-partition; each record remembers where it sits.
            var slots = [[(Int, Int)]](repeating: [], count: builders.count)  // (job, record) per builder position
            let ts = Int64(Double(DispatchTime.now().uptimeNanoseconds) / 1e6)
            for (ji, j) in jobs.enumerated() {
                for (ri, r) in j.records.enumerated() {
                    let b = j.kind * partitions + Int(r.partition)
                    r.value.withUnsafeBytes { v in
                        if let k = r.key { k.withUnsafeBytes { builders[b].append(key: $0, value: v, timestamp: ts) } } else {
                            builders[b].append(key: nil, value: v, timestamp: ts)
                        }
                    }
                    slots[b].append((ji, ri))
                }
            }
            var offsets = jobs.map { [(Int32, Int64)](repeating: (0, -1), count: $0.records.count) }
            var failed = [IngestError?](repeating: nil, count: jobs.count)
            for b in builders.indices where !builders[b].isEmpty {
                let log = logs[b / partitions][b % partitions]
                out.reset()
                do {
                    try builders[b].seal(into: out, codec: .none, compressor: codec)
                    let base = try log.append(batch: UnsafeMutableRawBufferPointer(start: out.base, count: out.count))
                    for (n, (ji, ri)) in slots[b].enumerated() { offsets[ji][ri] = (Int32(b % partitions), base + Int64(n)) }
                } catch {
                    for (ji, _) in slots[b] { failed[ji] = IngestError(status: 500, code: 50001, message: "storage failed: \(error)") }
                }
                builders[b].reset()
            }
            for (ji, j) in jobs.enumerated() {
                if let e = failed[ji] { j.completion(.failure(e)) } else {
                    stored.add(j.records.count, ordering: .relaxed)
                    j.completion(.success(offsets[ji]))
                }
            }
        }
    }
}
