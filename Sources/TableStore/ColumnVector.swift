/// A growable array of plain values for column buffers. Like `Bytes.ByteBuffer`, its fields live behind
/// a pointer: a Swift `Array` held in a class property pays an exclusivity check and a uniqueness check on
/// every append, which profiling showed as a third of the cleaning time. Not thread-safe; one owner.
public final class ColumnVector<Element: BitwiseCopyable>: RandomAccessCollection {
    @usableFromInline
    struct Storage {
        @usableFromInline var base: UnsafeMutablePointer<Element>
        @usableFromInline var count: Int
        @usableFromInline var capacity: Int
    }

    @usableFromInline let s: UnsafeMutablePointer<Storage>

    public init(capacity: Int = 0) {
        let cap = Swift.max(capacity, 16)
        s = .allocate(capacity: 1)
        s.initialize(to: Storage(base: .allocate(capacity: cap), count: 0, capacity: cap))
    }

    deinit {
        s.pointee.base.deallocate()
        s.deallocate()
    }

    public typealias Index = Int
    @inlinable public var startIndex: Int { 0 }
    @inlinable public var endIndex: Int { s.pointee.count }
    @inlinable public var count: Int { s.pointee.count }
    @inlinable public var base: UnsafeMutablePointer<Element> { s.pointee.base }

    @inlinable
    public subscript(i: Int) -> Element {
        @inline(__always) get { s.pointee.base[i] }
        @inline(__always) set { s.pointee.base[i] = newValue }
    }

    @inlinable @inline(__always)
    public func append(_ v: Element) {
        let c = s.pointee.count
        if _slowPath(c == s.pointee.capacity) { grow(to: c + 1) }
        s.pointee.base[c] = v
        s.pointee.count = c + 1
    }

    /// Appends `n` copies of `v`.
    @inlinable
    public func append(repeating v: Element, count n: Int) {
        let c = s.pointee.count
        if c + n > s.pointee.capacity { grow(to: c + n) }
        (s.pointee.base + c).initialize(repeating: v, count: n)
        s.pointee.count = c + n
    }

    @usableFromInline @inline(never)
    func grow(to needed: Int) {
        var cap = s.pointee.capacity
        while cap < needed { cap &*= 2 }
        let nb = UnsafeMutablePointer<Element>.allocate(capacity: cap)
        nb.initialize(from: s.pointee.base, count: s.pointee.count)
        s.pointee.base.deallocate()
        s.pointee.base = nb
        s.pointee.capacity = cap
    }

    public func reserveCapacity(_ n: Int) { if n > s.pointee.capacity { grow(to: n) } }

    public func removeAll(keepingCapacity: Bool = true) { s.pointee.count = 0 }

    @inlinable
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Element>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(start: s.pointee.base, count: s.pointee.count))
    }

    @inlinable
    public func withUnsafeMutableBufferPointer<R>(_ body: (UnsafeMutableBufferPointer<Element>) throws -> R) rethrows -> R {
        try body(UnsafeMutableBufferPointer(start: s.pointee.base, count: s.pointee.count))
    }
}
