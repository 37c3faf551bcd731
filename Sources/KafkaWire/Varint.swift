import Bytes

/// Kafka's variable-length integers: zigzag varints in records, unsigned varints in flexible framing.
public enum Varint {
    @inlinable @inline(__always)
    public static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }

    @inlinable @inline(__always)
    public static func unzigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }

    /// Bytes taken by the unsigned varint `v`.
    @inlinable @inline(__always)
    public static func size(unsigned v: UInt64) -> Int {
        let bits = 64 - v.leadingZeroBitCount
        return bits == 0 ? 1 : (bits + 6) / 7
    }

    @inlinable @inline(__always)
    public static func size(_ v: Int64) -> Int { size(unsigned: zigzag(v)) }

    /// Writes an unsigned varint at `p`, returning the bytes written (≤ 10).
    @inlinable @inline(__always)
    public static func write(unsigned v: UInt64, to p: UnsafeMutableRawPointer) -> Int {
        var v = v
        var i = 0
        while v >= 0x80 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, toByteOffset: i, as: UInt8.self)
            v >>= 7
            i += 1
        }
        p.storeBytes(of: UInt8(truncatingIfNeeded: v), toByteOffset: i, as: UInt8.self)
        return i + 1
    }

    @inlinable @inline(__always)
    public static func append(_ v: Int64, to out: ByteBuffer) {
        let p = out.reserve(10)
        out.count += write(unsigned: zigzag(v), to: p)
    }

    @inlinable @inline(__always)
    public static func append(unsigned v: UInt64, to out: ByteBuffer) {
        let p = out.reserve(10)
        out.count += write(unsigned: v, to: p)
    }

    /// Reads an unsigned varint from `p[pos..<end]`; nil when truncated or longer than 10 bytes.
    @inlinable @inline(__always)
    public static func read(unsigned p: UnsafeRawPointer, _ pos: inout Int, _ end: Int) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while pos < end {
            let b = p.load(fromByteOffset: pos, as: UInt8.self)
            pos += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift >= 70 { return nil }
        }
        return nil
    }

    @inlinable @inline(__always)
    public static func read(_ p: UnsafeRawPointer, _ pos: inout Int, _ end: Int) -> Int64? {
        guard let u = read(unsigned: p, &pos, end) else { return nil }
        return unzigzag(u)
    }
}
