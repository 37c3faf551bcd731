/// A growable, reusable byte buffer for hot paths: one heap block, grown by doubling, never shrunk.
///
/// A stage owns one (or a few) and `reset()`s it between batches, so steady state allocates nothing.
/// It is a final class so that a stage can hand it to helpers by reference; it is not thread-safe and
/// is never shared between threads while in use.
///
/// The three fields are stored properties with exclusivity checking off: Swift checks exclusive access to a
/// class's stored `var`s at run time on every access, which cost more than the byte copies themselves on the
/// JSON and batch hot paths (measured with perf: ~50% in swift_beginAccess). Holding them behind a pointer
/// (as before) avoided the checks but cost a second dependent load on every access.
public final class ByteBuffer {
    @usableFromInline @exclusivity(unchecked) var _base: UnsafeMutableRawPointer
    @usableFromInline @exclusivity(unchecked) var _count: Int
    @usableFromInline @exclusivity(unchecked) var _capacity: Int

    public init(capacity: Int = 4096) {
        let cap = Swift.max(capacity, 64)
        _base = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16)
        _count = 0
        _capacity = cap
    }

    deinit {
        _base.deallocate()
    }

    @inlinable public var base: UnsafeMutableRawPointer { _base }

    @inlinable public var count: Int {
        @inline(__always) get { _count }
        @inline(__always) set { _count = newValue }
    }

    @inlinable public var capacity: Int { _capacity }

    @inlinable
    public func reset() { count = 0 }

    /// Makes room for `n` more bytes and returns a pointer to the first of them (count is not changed).
    @inlinable @inline(__always)
    public func reserve(_ n: Int) -> UnsafeMutableRawPointer {
        if _slowPath(count + n > capacity) { grow(to: count + n) }
        return base + count
    }

    @usableFromInline @inline(never)
    func grow(to needed: Int) {
        var cap = capacity
        while cap < needed { cap &*= 2 }
        let nb = UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16)
        nb.copyMemory(from: base, byteCount: count)
        base.deallocate()
        _base = nb
        _capacity = cap
    }

    @inlinable @inline(__always)
    public func append(_ byte: UInt8) {
        let p = reserve(1)
        p.storeBytes(of: byte, as: UInt8.self)
        count &+= 1
    }

    @inlinable @inline(__always)
    public func append(_ bytes: UnsafeRawPointer, count n: Int) {
        guard n > 0 else { return }
        let p = reserve(n)
        copyBytes(p, bytes, n)
        count &+= n
    }

    @inlinable
    public func append(_ bytes: UnsafeRawBufferPointer) {
        guard let b = bytes.baseAddress else { return }
        append(b, count: bytes.count)
    }

    @inlinable
    public func append(contentsOf bytes: some Sequence<UInt8>) {
        for b in bytes { append(b) }
    }

    /// Appends the UTF-8 of a static ASCII literal.
    @inlinable
    public func append(_ s: StaticString) {
        append(UnsafeRawPointer(s.utf8Start), count: s.utf8CodeUnitCount)
    }

    @inlinable
    public func append(utf8 s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    @inlinable @inline(__always)
    public func storeBigEndian<T: FixedWidthInteger>(_ v: T, at offset: Int) {
        (base + offset).storeBytes(of: v.bigEndian, toByteOffset: 0, as: T.self)
    }

    @inlinable @inline(__always)
    public func appendBigEndian<T: FixedWidthInteger>(_ v: T) {
        let p = reserve(MemoryLayout<T>.size)
        p.storeBytes(of: v.bigEndian, as: T.self)
        count &+= MemoryLayout<T>.size
    }

    /// Appends the decimal digits of `v`, written in place (counted first, then filled from the right).
    @inlinable
    public func appendDecimal(_ v: Int) {
        var n = v.magnitude
        var digits = 1
        var t = n
        while t >= 10 { t /= 10; digits &+= 1 }
        let len = digits &+ (v < 0 ? 1 : 0)
        let p = reserve(len)
        var i = len
        repeat {
            i &-= 1
            p.storeBytes(of: UInt8(truncatingIfNeeded: 48 &+ n % 10), toByteOffset: i, as: UInt8.self)
            n /= 10
        } while n != 0
        if v < 0 { p.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self) }
        count &+= len
    }

    /// Appends `v` as 16 lowercase hex digits.
    @inlinable
    public func appendHex(_ v: UInt64) {
        let p = reserve(16)
        p.storeBytes(of: hexDigits8(UInt32(truncatingIfNeeded: v >> 32)), as: UInt64.self)
        p.storeBytes(of: hexDigits8(UInt32(truncatingIfNeeded: v)), toByteOffset: 8, as: UInt64.self)
        count &+= 16
    }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    /// Appends a value in native byte order (for buffers used as arrays of fixed-size values).
    @inlinable @inline(__always)
    public func append<T: FixedWidthInteger>(native v: T) {
        reserve(MemoryLayout<T>.size).storeBytes(of: v, as: T.self)
        count += MemoryLayout<T>.size
    }

    /// The value at a byte offset, in native byte order.
    @inlinable @inline(__always)
    public func load<T: FixedWidthInteger>(_: T.Type, at byteOffset: Int) -> T {
        base.loadUnaligned(fromByteOffset: byteOffset, as: T.self)
    }

    public func toArray() -> [UInt8] { Array(bytes) }
}

/// Copies `n` bytes (the ranges do not overlap). Up to 32 bytes, the usual length of a JSON key, a word or a
/// number, it is two overlapping loads and stores of the largest width that fits instead of a call to memmove.
@inlinable @inline(__always)
public func copyBytes(_ dst: UnsafeMutableRawPointer, _ src: UnsafeRawPointer, _ n: Int) {
    if n > 32 {
        dst.copyMemory(from: src, byteCount: n)
    } else if n >= 16 {
        dst.storeBytes(of: src.loadUnaligned(as: SIMD16<UInt8>.self), as: SIMD16<UInt8>.self)
        dst.storeBytes(of: src.loadUnaligned(fromByteOffset: n &- 16, as: SIMD16<UInt8>.self), toByteOffset: n &- 16, as: SIMD16<UInt8>.self)
    } else if n >= 8 {
        dst.storeBytes(of: src.loadUnaligned(as: UInt64.self), as: UInt64.self)
        dst.storeBytes(of: src.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self), toByteOffset: n &- 8, as: UInt64.self)
    } else if n >= 4 {
        dst.storeBytes(of: src.loadUnaligned(as: UInt32.self), as: UInt32.self)
        dst.storeBytes(of: src.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self), toByteOffset: n &- 4, as: UInt32.self)
    } else if n > 0 {
        // 1, 2 or 3 bytes: the first, the middle and the last.
        dst.storeBytes(of: src.load(as: UInt8.self), as: UInt8.self)
        dst.storeBytes(of: src.load(fromByteOffset: n >> 1, as: UInt8.self), toByteOffset: n >> 1, as: UInt8.self)
        dst.storeBytes(of: src.load(fromByteOffset: n &- 1, as: UInt8.self), toByteOffset: n &- 1, as: UInt8.self)
    }
}

/// The 8 lowercase hex digits of `v`, most significant first, as the bytes of a UInt64 to store (little-endian
/// in memory: the first digit at the lowest address). No table and no branch: the nibbles are spread one per
/// byte, then each byte gets '0' added, and 39 more where it is 10 or above (to reach 'a').
@inlinable @inline(__always)
public func hexDigits8(_ v: UInt32) -> UInt64 {
    var x = UInt64(v)
    x = ((x & 0xFFFF_0000) << 16) | (x & 0xFFFF)
    x = ((x & 0x0000_FF00_0000_FF00) << 8) | (x & 0x0000_00FF_0000_00FF)
    x = ((x & 0x00F0_00F0_00F0_00F0) << 4) | (x & 0x000F_000F_000F_000F)
    let ten = ((x &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
    let ascii = x &+ 0x3030_3030_3030_3030 &+ ten &* 39
    return UInt64(littleEndian: ascii.byteSwapped)
}
