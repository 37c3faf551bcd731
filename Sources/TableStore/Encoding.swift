#if canImport(Glibc)
import Glibc
#endif
import Bytes

/// Parquet's RLE / bit-packing hybrid (used for definition and repetition levels and dictionary indices).
///
/// Encoder: a run of 16 or more equal values becomes an RLE run; everything else goes out in
/// bit-packed groups of eight. Groups only ever pad at the very end of the stream, as the format requires.
enum RLEHybrid {
    static func appendVarint(_ v: UInt64, _ out: ByteBuffer) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    static func encode<T: FixedWidthInteger & UnsignedInteger>(_ values: UnsafeBufferPointer<T>, bitWidth: Int, into out: ByteBuffer) {
        let n = values.count
        let valueBytes = (bitWidth + 7) / 8
        var i = 0
        var literalStart = 0
        func flushLiterals(upTo end: Int) {
            guard end > literalStart else { return }
            let groups = (end - literalStart + 7) / 8
            appendVarint(UInt64(groups << 1 | 1), out)
            let bytes = groups * bitWidth
            let dst = out.reserve(bytes)
            dst.initializeMemory(as: UInt8.self, repeating: 0, count: bytes)
            if bitWidth > 0 {
                var bit = 0
                for j in literalStart..<end {
                    var v = UInt64(values[j])
                    var b = bit
                    var left = bitWidth
                    while left > 0 {
                        let byteIndex = b >> 3
                        let shift = b & 7
                        let take = Swift.min(left, 8 - shift)
                        let p = dst.advanced(by: byteIndex).assumingMemoryBound(to: UInt8.self)
                        p.pointee |= UInt8(truncatingIfNeeded: (v & ((1 << UInt64(take)) - 1)) << UInt64(shift))
                        v >>= UInt64(take)
                        b += take
                        left -= take
                    }
                    bit += bitWidth
                }
            }
            out.count += bytes
        }
        while i < n {
            let v = values[i]
            var r = 1
            while i + r < n && values[i + r] == v { r += 1 }
            if r >= 16 {
                flushLiterals(upTo: i)
                appendVarint(UInt64(r << 1), out)
                var x = UInt64(v)
                for _ in 0..<valueBytes {
                    out.append(UInt8(truncatingIfNeeded: x))
                    x >>= 8
                }
                i += r
                literalStart = i
            } else {
                i = Swift.min(i + 8, n)
            }
        }
        flushLiterals(upTo: n)
    }

    /// Decodes `count` values into `out` (appending). Throws on a stream that ends early.
    static func decode(_ bytes: UnsafeRawBufferPointer, bitWidth: Int, count: Int, into out: inout [UInt32]) throws(ParquetError) {
        guard (0...32).contains(bitWidth) else { throw ParquetError("bit width \(bitWidth) is not 0...32") }
        guard count >= 0 else { throw ParquetError("negative value count") }
        var pos = 0
        let valueBytes = (bitWidth + 7) / 8
        let mask: UInt64 = bitWidth >= 64 ? ~0 : (1 << UInt64(bitWidth)) - 1
        var produced = 0
        while produced < count {
            var header: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard pos < bytes.count else { throw ParquetError("level/index stream ends early") }
                let b = bytes[pos]
                pos += 1
                header |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { break }
                shift += 7
                guard shift < 64 else { throw ParquetError("bad varint in level stream") }
            }
            if header & 1 == 1 {
                // Input: a run's size is checked against the bytes there before any product is taken.
                guard let groups = Int(exactly: header >> 1), groups <= bytes.count - pos + 1 else { throw ParquetError("bit-packed run past the end") }
                let nbytes = groups * bitWidth
                guard nbytes <= bytes.count - pos else { throw ParquetError("bit-packed run past the end") }
                var bit = 0
                for _ in 0..<Swift.min(groups * 8, count - produced) {
                    var v: UInt64 = 0
                    var got = 0
                    var b = bit
                    while got < bitWidth {
                        let byte = UInt64(bytes[pos + (b >> 3)])
                        let sh = b & 7
                        let take = Swift.min(bitWidth - got, 8 - sh)
                        v |= ((byte >> UInt64(sh)) & ((1 << UInt64(take)) - 1)) << UInt64(got)
                        got += take
                        b += take
                    }
                    bit += bitWidth
                    out.append(UInt32(truncatingIfNeeded: v & mask))
                    produced += 1
                }
                pos += nbytes
            } else {
                let run = Int(truncatingIfNeeded: min(header >> 1, UInt64(Int.max)))
                guard pos + valueBytes <= bytes.count else { throw ParquetError("RLE run past the end") }
                var v: UInt64 = 0
                for k in 0..<valueBytes { v |= UInt64(bytes[pos + k]) << UInt64(8 * k) }
                pos += valueBytes
                let take = Swift.min(run, count - produced)
                out.append(contentsOf: repeatElement(UInt32(truncatingIfNeeded: v), count: take))
                produced += take
            }
        }
    }
}

public struct ParquetError: Error, CustomStringConvertible, Equatable {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Byte-wise (unsigned lexicographic) order, Parquet's order for BYTE_ARRAY statistics.
@inline(__always)
func bytesLess(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    let n = Swift.min(a.count, b.count)
    if n > 0 {
        let c = memcmp(a.baseAddress!, b.baseAddress!, n)
        if c != 0 { return c < 0 }
    }
    return a.count < b.count
}

/// A small open-addressing hash table from byte strings to dictionary indices, one per column chunk.
struct DictionaryBuilder {
    let data = ByteBuffer(capacity: 1 << 16)
    var starts: [Int32] = []
    var lengths: [Int32] = []
    var slots: [Int32]
    var mask: Int
    let maxEntries: Int
    let maxBytes: Int

    init(maxEntries: Int = 1 << 16, maxBytes: Int = 1 << 20) {
        self.maxEntries = maxEntries
        self.maxBytes = maxBytes
        slots = Array(repeating: -1, count: 1024)
        mask = 1023
    }

    var count: Int { starts.count }

    @inline(__always)
    static func hash(_ b: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        var i = 0
        let n = b.count
        while i + 8 <= n {
            h = (h ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x100_0000_01b3
            h ^= h >> 29
            i += 8
        }
        while i < n {
            h = (h ^ UInt64(b[i])) &* 0x100_0000_01b3
            i += 1
        }
        return h ^ (h >> 32)
    }

    func entry(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: data.base + Int(starts[i]), count: Int(lengths[i]))
    }

    /// The index of `b`, adding it when new; nil when the dictionary would grow past its limits.
    mutating func index(of b: UnsafeRawBufferPointer) -> Int32? {
        var s = Int(truncatingIfNeeded: DictionaryBuilder.hash(b)) & mask
        while true {
            let e = slots[s]
            if e < 0 { break }
            let eb = entry(Int(e))
            if eb.count == b.count && (b.count == 0 || memcmp(eb.baseAddress!, b.baseAddress!, b.count) == 0) { return e }
            s = (s + 1) & mask
        }
        guard count < maxEntries, data.count + b.count <= maxBytes else { return nil }
        let id = Int32(count)
        starts.append(Int32(data.count))
        lengths.append(Int32(b.count))
        data.append(b)
        slots[s] = id
        if count * 2 > mask { rehash() }
        return id
    }

    private mutating func rehash() {
        let size = (mask + 1) * 2
        slots = Array(repeating: -1, count: size)
        mask = size - 1
        for i in 0..<count {
            var s = Int(truncatingIfNeeded: DictionaryBuilder.hash(entry(i))) & mask
            while slots[s] >= 0 { s = (s + 1) & mask }
            slots[s] = Int32(i)
        }
    }
}
