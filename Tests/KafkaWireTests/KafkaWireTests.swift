import Bytes
import Codecs
import Platform
import KafkaWire
import Testing

func hex(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = s.utf8.makeIterator()
    while let a = it.next(), let b = it.next() {
        out.append(UInt8(String(decoding: [a, b], as: UTF8.self), radix: 16)!)
    }
    return out
}

let goldenBatch = hex(
    "00000000000000000000003a0000000002e99b8dd80000000000000000018bcfe568000000018bcfe56800ffffffffffffffffffffffffffff0000000110000000026b027600"
)

@Suite struct CRC32CTests {
    @Test func standardVector() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        Array("123456789".utf8).withUnsafeBytes { #expect(CRC32C.softwareChecksum($0) == 0xE306_9283) }
    }

    @Test func hardwareAndSoftwareAgreeOnEveryLengthAndAlignment() {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<60000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        data.withUnsafeBytes { all in
            // Lengths around the three-stream blocks (3 x 256 and 3 x 8192 bytes) too.
            for start in 0..<9 {
                for len in [0, 1, 7, 8, 31, 32, 33, 100, 767, 768, 769, 1000, 1543, 4000, 24575, 24576, 24577, 50000] {
                    let b = UnsafeRawBufferPointer(rebasing: all[start..<(start + len)])
                    #expect(CRC32C.checksum(b) == CRC32C.softwareChecksum(b))
                }
            }
            // Chaining: CRC of a||b computed in two calls equals one call.
            let a = UnsafeRawBufferPointer(rebasing: all[0..<1234])
            let b = UnsafeRawBufferPointer(rebasing: all[1234..<60000])
            #expect(CRC32C.checksum(b, seed: CRC32C.checksum(a)) == CRC32C.checksum(all))
        }
    }
}

@Suite struct Murmur2Tests {
    @Test func javaVectors() {
        #expect(Murmur2.hash("21") == -973_932_308)
        #expect(Murmur2.hash("foobar") == -790_332_482)
        #expect(Murmur2.hash("a-little-bit-long-string") == -985_981_536)
        #expect(Murmur2.hash("a-little-bit-longer-string") == -1_486_304_829)
        #expect(Murmur2.hash("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") == -58_897_971)
        #expect(Murmur2.hash("abc") == 479_470_107)
    }

    @Test func partitions() {
        #expect([3, 4, 6, 12].map { Murmur2.partition("foobar", partitions: $0) } == [0, 2, 0, 6])
        #expect([3, 4, 6, 12].map { Murmur2.partition("abc", partitions: $0) } == [0, 3, 3, 3])
        #expect([3, 4, 6, 12].map { Murmur2.partition("key-0", partitions: $0) } == [1, 1, 1, 1])
    }
}

@Suite struct VarintTests {
    @Test func zigzagRoundTrip() {
        let out = ByteBuffer()
        let values: [Int64] = [0, -1, 1, 63, -64, 64, 300, -300, Int64(Int32.max), Int64.min, Int64.max]
        for v in values { Varint.append(v, to: out) }
        var pos = 0
        for v in values {
            #expect(Varint.read(out.base, &pos, out.count) == v)
        }
        #expect(pos == out.count)
        #expect(Varint.size(-1) == 1 && Varint.size(64) == 2 && Varint.size(Int64.min) == 10)
        var p2 = 0
        #expect(Varint.read(out.base, &p2, 0) == nil)
    }
}

@Suite struct RecordBatchTests {
    @Test func goldenBatchFromKafkaFacts() throws {
        var b = RecordBatchBuilder()
        let key = Array("k".utf8), value = Array("v".utf8)
        key.withUnsafeBytes { k in value.withUnsafeBytes { v in b.append(key: k, value: v, timestamp: 1_700_000_000_000) } }
        let out = ByteBuffer()
        let r = try b.seal(into: out, codec: .none, compressor: Codec(), baseOffset: 0, partitionLeaderEpoch: 0)
        #expect(r == 0..<70)
        #expect(out.toArray() == goldenBatch)
    }

    @Test func sealedInPlaceEqualsTheGoldenBatchAndResetsCleanly() throws {
        var b = RecordBatchBuilder(capacity: 16, inPlace: true)
        let key = Array("k".utf8), value = Array("v".utf8)
        for _ in 0..<2 {
            key.withUnsafeBytes { k in value.withUnsafeBytes { v in b.append(key: k, value: v, timestamp: 1_700_000_000_000) } }
            #expect(b.sizeInBytes == 70)
            let sealed = b.sealInPlace(partitionLeaderEpoch: 0)
            #expect(Array(sealed) == goldenBatch)
            b.reset()
        }
        // The same records sealed the copying way give the same bytes after the header.
        key.withUnsafeBytes { k in value.withUnsafeBytes { v in b.append(key: k, value: v, timestamp: 1_700_000_000_000) } }
        let out = ByteBuffer()
        try b.seal(into: out, codec: .none, compressor: Codec(), baseOffset: 0, partitionLeaderEpoch: 0)
        #expect(out.toArray() == goldenBatch)
    }

    @Test func readsTheGoldenBatch() throws {
        var values: [String] = []
        let h = try goldenBatch.withUnsafeBytes { buf in
            try RecordBatchReader.forEachRecord(buf, codec: Codec(), scratch: ByteBuffer()) { r in
                values.append(String(decoding: r.key!, as: UTF8.self) + "=" + String(decoding: r.value!, as: UTF8.self))
                #expect(r.timestamp == 1_700_000_000_000 && r.offset == 0)
            }
        }
        #expect(values == ["k=v"])
        #expect(h.crc == 0xE99B_8DD8 && h.recordsCount == 1 && h.producerId == -1)
    }

    @Test func flippedByteFailsCRC() {
        var bad = goldenBatch
        bad[65] ^= 0x01
        #expect(throws: BatchError.crcMismatch(stored: 0xE99B_8DD8, computed: CRC32C.checksum(Array(bad[21...])))) {
            try bad.withUnsafeBytes { try RecordBatchReader.forEachRecord($0, codec: Codec(), scratch: ByteBuffer()) { _ in } }
        }
        #expect(throws: BatchError.truncated(have: 69, need: 70)) {
            try Array(goldenBatch.prefix(69)).withUnsafeBytes { try RecordBatchReader.header($0) }
        }
    }

    @Test(arguments: CompressionCodec.allCases)
    func everyCodecRoundTripsABatch(_ codec: CompressionCodec) throws {
        var b = RecordBatchBuilder()
        var expected: [String] = []
        for i in 0..<2000 {
            let v = #"{"index":\#(i),"title":"post number \#(i) ✓ with some repeated text repeated text"}"#
            expected.append(v)
            let k = "\(i)"
            Array(k.utf8).withUnsafeBytes { kb in Array(v.utf8).withUnsafeBytes { vb in b.append(key: kb, value: vb, timestamp: 1_700_000_000_000 + Int64(i)) } }
        }
        let out = ByteBuffer()
        let c = Codec()
        try b.seal(into: out, codec: codec, compressor: c, baseOffset: 42, producer: ProducerStamp(producerId: 7, producerEpoch: 1, baseSequence: 100))
        if codec != .none { #expect(out.count < b.sizeInBytes / 2, "\(codec) should shrink repetitive JSON") }
        var got: [String] = []
        var offsets: [Int64] = []
        let h = try RecordBatchReader.forEachRecord(out.bytes, codec: Codec(), scratch: ByteBuffer()) { r in
            got.append(String(decoding: r.value!, as: UTF8.self))
            offsets.append(r.offset)
        }
        #expect(got == expected)
        #expect(offsets == (42..<2042).map { Int64($0) })
        #expect(h.codecValue == codec.rawValue && h.producerId == 7 && h.baseSequence == 100 && h.lastOffsetDelta == 1999)
        #expect(h.maxTimestamp == 1_700_000_001_999)
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func codecRoundTripsAndRejectsGarbage(_ codec: CompressionCodec) throws {
        let c = Codec()
        for size in [0, 1, 100, 40_000, 300_000] {
            let input = (0..<size).map { UInt8(truncatingIfNeeded: ($0 * 31) ^ ($0 >> 7)) }
            let z = ByteBuffer(), back = ByteBuffer()
            try input.withUnsafeBytes { try c.compress($0, codec: codec, into: z) }
            try c.decompress(z.bytes, codec: codec, into: back)
            #expect(back.toArray() == input, "\(codec) size \(size)")
            if size > 100 {
                // A truncated stream is an error, never a silent short result.
                let cut = ByteBuffer()
                #expect(throws: CodecError.self) {
                    try c.decompress(UnsafeRawBufferPointer(rebasing: z.bytes[0..<(z.count / 2)]), codec: codec, into: cut)
                }
            }
        }
    }

    /// Bytes that do not compress (stored blocks in LZ4, raw in the others) and every LZ4 level come back whole;
    /// the fast LZ4 frame starts with the header LZ4F writes for the same preferences.
    @Test func incompressibleInputAndLZ4LevelsRoundTrip() throws {
        var rng = SplitMix64(seed: 18)
        let input = (0..<150_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let c = Codec()
        for (codec, level) in [(CompressionCodec.lz4, Int32(-4)), (.lz4, 0), (.lz4, 9), (.zstd, 3), (.gzip, 6), (.snappy, 0)] {
            let z = ByteBuffer(), back = ByteBuffer()
            try input.withUnsafeBytes { try c.compress($0, codec: codec, level: level, into: z) }
            #expect(z.count < input.count + 1024, "\(codec) \(level): stored blocks, not growth")
            try c.decompress(z.bytes, codec: codec, into: back)
            #expect(back.toArray() == input, "\(codec) level \(level)")
            if codec == .lz4 { #expect(Array(z.bytes.prefix(7)) == [0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82]) }
        }
    }

    /// A buffer with `compressBound` room takes the compressed form of any input, the worst (random bytes)
    /// included, without growing: a producer's batch costs one allocation.
    @Test func compressBoundIsRoomEnoughForEveryCodec() throws {
        var rng = SplitMix64(seed: 7)
        let random = (0..<300_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        let c = Codec()
        for (codec, level) in [(CompressionCodec.lz4, Int32(0)), (.lz4, 9), (.zstd, 3), (.zstd, 19), (.gzip, 6), (.gzip, 1), (.snappy, 0), (.none, 0)] {
            for n in [0, 1, 100, 4_096, 32 * 1024, 32 * 1024 + 1, 65_536, 65_537, 300_000] {
                let bound = Codec.compressBound(n, codec: codec, level: level)
                let out = ByteBuffer(capacity: bound)
                let base = out.base, room = out.capacity  // at least 64: ByteBuffer's least
                try random.withUnsafeBytes { try c.compress(UnsafeRawBufferPointer(rebasing: $0[0..<n]), codec: codec, level: level, into: out) }
                #expect(out.count <= bound && out.capacity == room && out.base == base, "\(codec) level \(level), \(n) bytes: \(out.count) of \(bound)")
            }
        }
    }

    @Test func snappyAcceptsARawBlock() throws {
        // Brokers and librdkafka also send one raw snappy block without xerial framing: "hello" as a literal.
        let raw: [UInt8] = [0x05, 0x10] + Array("hello".utf8)
        let out = ByteBuffer()
        try raw.withUnsafeBytes { try Codec().decompress($0, codec: .snappy, into: out) }
        #expect(String(decoding: out.bytes, as: UTF8.self) == "hello")
    }
}

/// Batches from a segment file or a broker are input: impossible offsets and timestamps are refused with a
/// BatchError (CRC-valid crafted batches included), never a trap.
@Suite struct HostileBatchTests {
    /// Two records (timestamps 0 and 1000, offset deltas 0 and 1), sealed uncompressed.
    func batch() throws -> [UInt8] {
        var b = RecordBatchBuilder()
        for (i, ts) in [Int64(0), 1000].enumerated() {
            let v = Array("v\(i)".utf8)
            v.withUnsafeBytes { b.append(key: nil, value: $0, timestamp: ts) }
        }
        let out = ByteBuffer()
        try b.seal(into: out, codec: .none, compressor: Codec(), baseOffset: 0, partitionLeaderEpoch: 0)
        return out.toArray()
    }

    func put<T: FixedWidthInteger>(_ v: T, at offset: Int, in bytes: inout [UInt8]) {
        withUnsafeBytes(of: v.bigEndian) { for (i, x) in $0.enumerated() { bytes[offset + i] = x } }
    }

    /// Recomputes the CRC-32C (attributes to the end), as a crafted batch would carry it.
    func reseal(_ bytes: inout [UInt8]) {
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[BatchLayout.attributes...])) }
        put(crc, at: BatchLayout.crc, in: &bytes)
    }

    func decode(_ bytes: [UInt8]) -> (any Error)? {
        bytes.withUnsafeBytes { b in
            do {
                _ = try RecordBatchReader.forEachRecord(b, codec: Codec(), scratch: ByteBuffer()) { _ in }
                return nil
            } catch { return error }
        }
    }

    @Test func aBaseOffsetNearTheEndIsRefused() throws {
        var bytes = try batch()
        #expect(decode(bytes) == nil)
        put(Int64.max, at: BatchLayout.baseOffset, in: &bytes)  // outside the CRC: still CRC-valid
        #expect(decode(bytes) as? BatchError == .offsetsOutOfRange(base: .max, lastDelta: 1))
        put(Int64(-5), at: BatchLayout.baseOffset, in: &bytes)
        #expect(decode(bytes) as? BatchError == .offsetsOutOfRange(base: -5, lastDelta: 1))
    }

    @Test func aTimestampDeltaThatOverflowsIsRefused() throws {
        var bytes = try batch()
        put(Int64.max - 10, at: BatchLayout.baseTimestamp, in: &bytes)
        reseal(&bytes)
        #expect(decode(bytes) as? BatchError == .corruptRecord(index: 1))
    }
}
