/// A growable, reusable byte buffer for hot paths: one heap block, grown by doubling, never shrunk.
///
/// A stage owns one (or a few) and `reset()`s it between batches, so steady state allocates nothing.
/// It is a final class so that a stage can hand it to helpers by reference; it is not thread-safe and
/// is never shared between threads while in use.
///
/// The three fields live behind a pointer rather than in stored class properties: Swift checks
/// exclusive access to a class's stored `var`s at run time on every access, which cost more than the
/// byte copies themselves on the JSON and batch hot paths (measured with perf: ~50% in swift_beginAccess).
public final class ByteBuffer {
    @usableFromInline
    struct Storage {
        @usableFromInline var base: UnsafeMutableRawPointer
        @usableFromInline var count: Int
        @usableFromInline var capacity: Int
    }

    @usableFromInline let s: UnsafeMutablePointer<Storage>

    public init(capacity: Int = 4096) {
        let cap = Swift.max(capacity, 64)
        s = UnsafeMutablePointer<Storage>.allocate(capacity: 1)
        s.initialize(to: Storage(base: UnsafeMutableRawPointer.allocate(byteCount: cap, alignment: 16), count: 0, capacity: cap))
    }

    deinit {
        s.pointee.base.deallocate()
        s.deallocate()
    }

    @inlinable public var base: UnsafeMutableRawPointer { s.pointee.base }

    @inlinable public var count: Int {
        @inline(__always) get { s.pointee.count }
        @inline(__always) set { s.pointee.count = newValue }
    }

    @inlinable public var capacity: Int { s.pointee.capacity }

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
        s.pointee.base = nb
        s.pointee.capacity = cap
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
        p.copyMemory(from: bytes, byteCount: n)
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

    /// Appends the decimal digits of `v`.
    @inlinable
    public func appendDecimal(_ v: Int) {
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes of scratch on the stack
        withUnsafeMutableBytes(of: &tmp) { scratch in
            var n = v.magnitude
            var i = 24
            repeat {
                i -= 1
                scratch[i] = UInt8(truncatingIfNeeded: 48 &+ n % 10)
                n /= 10
            } while n != 0
            if v < 0 { i -= 1; scratch[i] = UInt8(ascii: "-") }
            append(scratch.baseAddress! + i, count: 24 - i)
        }
    }

    /// Appends `v` as 16 lowercase hex digits.
    @inlinable
    public func appendHex(_ v: UInt64) {
        let p = reserve(16)
        for i in 0..<16 {
            let d = UInt8(truncatingIfNeeded: (v >> UInt64(60 - 4 * i)) & 0xF)
            p.storeBytes(of: d < 10 ? 48 &+ d : 87 &+ d, toByteOffset: i, as: UInt8.self)
        }
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
