import Benchmark
import Bytes
import Codecs
import Dispatch
import KafkaWire
import PinEmulator
import PinModel
import RingBuffers

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
    Benchmark.defaultConfiguration = .init(metrics: [.throughput, .wallClock, .mallocCountTotal], maxDuration: .seconds(2), maxIterations: 1_000_000)
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
    Benchmark("SPSC ring 1M elements across threads") { benchmark in
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
