import Benchmark
import Bytes
import Codecs
import Dispatch
import KafkaWire
import PinEmulator
import PinModel
import RingBuffers
import JSON

/// A fixed corpus: 2,000 emulated posts as JSON, each kind back to back with record boundaries.
final class Corpus: @unchecked Sendable {
    let emu = Emulator(seed: 1)
    let posts = 2000
    let buffers = [ByteBuffer(capacity: 2 << 20), ByteBuffer(capacity: 1 << 20), ByteBuffer(capacity: 1 << 20)]
    var ends: [[Int]] = [[], [], []]

    init() {
        for i in 0..<posts {
            emu.writePost(i, pin: buffers[0], geo: buffers[1], user: buffers[2])
            for k in 0..<3 { ends[k].append(buffers[k].count) }
        }
    }

    var bytes: Int { buffers.reduce(0) { $0 + $1.count } }

    func record(_ k: Int, _ i: Int) -> UnsafeRawBufferPointer {
        let start = i == 0 ? 0 : ends[k][i - 1]
        return UnsafeRawBufferPointer(start: buffers[k].base + start, count: ends[k][i] - start)
    }
}

let corpus = Corpus()

let benchmarks: @Sendable () -> Void = {
    // Thresholds/ holds each benchmark's p90 from a good run (`make bench-thresholds`); `make bench-check`
    // fails when a run is slower by more than the tolerance below or allocates more at all (allocation counts do not drift with load). Runs on the 2-core
    // VM vary by about a third from one minute to the next, so time and throughput get 35%.
    let time = BenchmarkThresholds(relative: [.p90: 35.0])
    let rate = BenchmarkThresholds(relative: [.p90: 35.0])
    let allocations = BenchmarkThresholds(absolute: [.p90: 0])
    Benchmark.defaultConfiguration = .init(metrics: [.throughput, .wallClock, .mallocCountTotal], maxDuration: .seconds(2), maxIterations: 1_000_000,
                                           thresholds: [.wallClock: time, .throughput: rate, .mallocCountTotal: allocations])
    let corpusBytes = corpus.bytes

    // JSON write: the emulator generating 2,000 posts straight into reused buffers.
    Benchmark("JSON write (emulator, 2000 posts)") { benchmark in
        let bufs = [ByteBuffer(capacity: 2 << 20), ByteBuffer(capacity: 1 << 20), ByteBuffer(capacity: 1 << 20)]
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for b in bufs { b.reset() }
            for i in 0..<corpus.posts { corpus.emu.writePost(i, pin: bufs[0], geo: bufs[1], user: bufs[2]) }
            blackHole(bufs[0].count)
        }
    }

    // JSON parse: full validation (UTF-8, escapes, numbers, structure) and field location, no allocation.
    Benchmark("JSON scan (validate + locate fields, 6000 records)") { benchmark in
        let keys = [PinRecord.keyTable, GeoRecord.keyTable, UserRecord.keyTable]
        let fields = UnsafeMutableBufferPointer<JSONField>.allocate(capacity: 16)
        defer { fields.deallocate() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for k in 0..<3 {
                for i in 0..<corpus.posts {
                    var s = JSONScanner(corpus.record(k, i))
                    try s.scanObject(keys: keys[k], into: fields)
                }
            }
            blackHole(fields[0].start)
        }
    }

    // The ingest server's body pass: a Kafka REST request of 500 pins as Python's json.dumps writes it
    // (spaces after ':' and ','), validated once with each value compacted into one block as it is met.
    let restBody: [UInt8] = {
        var b: [UInt8] = Array(#"{"records": ["#.utf8)
        for i in 0..<500 {
            if i > 0 { b.append(contentsOf: ", ".utf8) }
            b.append(contentsOf: #"{"value": "#.utf8)
            let r = corpus.record(0, i)
            for c in r {
                b.append(c)
                if c == UInt8(ascii: ",") || c == UInt8(ascii: ":") { b.append(0x20) }  // json.dumps separators (and inside strings: still valid)
            }
            b.append(UInt8(ascii: "}"))
        }
        b.append(contentsOf: "]}".utf8)
        return b
    }()
    Benchmark("Ingest body: validate + compact, 500 pins in one pass", configuration: .init(scalingFactor: .one)) { benchmark in
        let arrayKeys = JSONKeyTable(["records"]), elementKeys = JSONKeyTable(["value", "key", "partition"])
        let out = ByteBuffer(capacity: restBody.count + 64)
        let fields = UnsafeMutableBufferPointer<JSONField>.allocate(capacity: 3)
        defer { fields.deallocate() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            out.reset()
            let n = try restBody.withUnsafeBytes { raw in
                var s = JSONScanner(raw)
                return try s.scanArrayOfObjects(arrayKeys: arrayKeys, elementKeys: elementKeys, fields: fields, compactSlot: 0, compact: out) { _, _, _ in }
            }
            blackHole(n)
            blackHole(out.count)
        }
    }

    // Base64 of 1 MiB (Kinesis record data): AVX2 blocks of 24 bytes, scalar tail.
    let raw1M = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 13) }
    Benchmark("Base64 encode (1 MiB)", configuration: .init(scalingFactor: .one)) { benchmark in
        let out = ByteBuffer(capacity: Base64.encodedCount(raw1M.count) + 16)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            out.reset()
            raw1M.withUnsafeBytes { Base64.encode($0, into: out) }
            blackHole(out.count)
        }
    }

    // JSON decode: the same into record structs with Swift Strings (allocates per long string).
    Benchmark("JSON decode to records (6000 records)") { benchmark in
        for _ in benchmark.scaledIterations {
            for i in 0..<corpus.posts {
                blackHole(try PinRecord.decode(corpus.record(0, i)))
                blackHole(try GeoRecord.decode(corpus.record(1, i)))
                blackHole(try UserRecord.decode(corpus.record(2, i)))
            }
        }
    }

    Benchmark("CRC-32C hardware (1 MiB)") { benchmark in
        let data = corpus.buffers[0]
        let slice = UnsafeRawBufferPointer(start: data.base, count: min(data.count, 1 << 20))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(CRC32C.checksum(slice)) }
    }

    Benchmark("CRC-32C software (1 MiB)") { benchmark in
        let data = corpus.buffers[0]
        let slice = UnsafeRawBufferPointer(start: data.base, count: min(data.count, 1 << 20))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(CRC32C.softwareChecksum(slice)) }
    }

    // Batch encode: 2,000 pin records into one RecordBatch v2, sealed with each codec.
    for codec in CompressionCodec.allCases {
        Benchmark("RecordBatch encode 2000 pins, \(codec)") { benchmark in
            var builder = RecordBatchBuilder(capacity: 2 << 20)
            let out = ByteBuffer(capacity: 4 << 20)
            let c = Codec()
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                builder.reset()
                out.reset()
                for i in 0..<corpus.posts { builder.append(key: nil, value: corpus.record(0, i), timestamp: 1_700_000_000_000) }
                try builder.seal(into: out, codec: codec, compressor: c)
                blackHole(out.count)
            }
        }
    }

    // Ring throughput: 1,000,000 integers through an SPSC ring between two threads.
    // Two threads handing elements over depend on how the OS schedules them (on 2 cores, mostly): its time
    // varies by more than half between runs, so only a collapse (80%) or any new allocation counts.
    let loose = BenchmarkThresholds(relative: [.p90: 80.0])
    Benchmark("SPSC ring 1M elements across threads",
              configuration: .init(thresholds: [.wallClock: loose, .throughput: loose, .mallocCountTotal: allocations])) { benchmark in
        for _ in benchmark.scaledIterations {
            let ring = SPSCRing<Int>(capacity: 1024)
            let g = DispatchGroup()
            DispatchQueue(label: "producer").async(group: g) {
                for i in 0..<1_000_000 { ring.push(i) }
                ring.close()
            }
            var sum = 0
            while let v = ring.pop() { sum &+= v }
            g.wait()
            blackHole(sum)
        }
    }
    _ = corpusBytes
}
