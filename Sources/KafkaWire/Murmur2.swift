/// Java-compatible murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`), as Kafka's default partitioner uses.
public enum Murmur2 {
    @inlinable
    public static func hash(_ data: UnsafeRawBufferPointer) -> Int32 {
        let seed: UInt32 = 0x9747_B28C
        let m: UInt32 = 0x5BD1_E995
        let r: UInt32 = 24
        let length = data.count
        var h: UInt32 = seed ^ UInt32(truncatingIfNeeded: length)
        let words = length / 4
        guard let base = data.baseAddress else { return Int32(bitPattern: finish(h)) }
        for i in 0..<words {
            var k = UInt32(littleEndian: base.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))
            k = k &* m
            k ^= k >> r
            k = k &* m
            h = h &* m
            h ^= k
        }
        let tail = words * 4
        switch length % 4 {
        case 3:
            h ^= UInt32(base.load(fromByteOffset: tail + 2, as: UInt8.self)) << 16
            fallthrough
        case 2:
            h ^= UInt32(base.load(fromByteOffset: tail + 1, as: UInt8.self)) << 8
            fallthrough
        case 1:
            h ^= UInt32(base.load(fromByteOffset: tail, as: UInt8.self))
            h = h &* m
        default: break
        }
        return Int32(bitPattern: finish(h))
    }

    @inlinable @inline(__always)
    static func finish(_ h0: UInt32) -> UInt32 {
        var h = h0
        h ^= h >> 13
        h = h &* 0x5BD1_E995
        h ^= h >> 15
        return h
    }

    public static func hash(_ s: String) -> Int32 {
        var s = s
        return s.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }

    /// Kafka's keyed partition choice: `(murmur2(key) & 0x7fffffff) % partitions`.
    @inlinable
    public static func partition(_ key: UnsafeRawBufferPointer, partitions: Int) -> Int {
        Int(hash(key) & 0x7FFF_FFFF) % partitions
    }

    public static func partition(_ key: String, partitions: Int) -> Int {
        Int(hash(key) & 0x7FFF_FFFF) % partitions
    }
}
