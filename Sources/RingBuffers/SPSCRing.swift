import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How a full (or empty) ring waits: spin a little, then yield the CPU, then sleep in short naps.
/// No locks and no condition variables: a waiting side polls the other side's index.
@frozen
public struct Backoff {
    @usableFromInline var step = 0

    @inlinable public init() {}

    @inlinable
    public mutating func wait() {
        step += 1
        if step < 64 {
            // busy spin
        } else if step < 128 {
            sched_yield()
        } else {
            var ts = timespec(tv_sec: 0, tv_nsec: 50_000)
            nanosleep(&ts, nil)
        }
    }

    @inlinable public mutating func reset() { step = 0 }
    /// True once the waiter has started sleeping (used to count stalls).
    @inlinable public var isSleeping: Bool { step >= 128 }
}

/// What every bounded ring offers: a non-blocking push that hands the element back when full.
public protocol BoundedRing: AnyObject {
    associatedtype Element
    func tryPush(_ e: consuming Element) -> Element?
}

extension BoundedRing {
    /// Adds one element, waiting while the ring is full (backpressure). Returns the number of times it had
    /// to wait (0 when there was room at once).
    @inlinable
    @discardableResult
    public func push(_ e: consuming Element) -> Int {
        var pending = e
        var backoff = Backoff()
        var waits = 0
        while true {
            guard let back = tryPush(pending) else { return waits }
            pending = back
            waits += 1
            backoff.wait()
        }
    }
}

/// A bounded single-producer single-consumer ring. Fixed power-of-two capacity, free-running indices
/// masked on access, `tail` published with a releasing store after the slot is written and read with
/// an acquiring load (and the same for `head` the other way). Each side caches the other's index so
/// most operations touch only their own cache line.
public final class SPSCRing<Element>: BoundedRing, @unchecked Sendable {
    @usableFromInline let mask: Int
    @usableFromInline let slots: UnsafeMutablePointer<Element>
    // Consumer side.
    @usableFromInline let head = Atomic<Int>(0)
    @usableFromInline var cachedTail = 0
    @usableFromInline let _pad0: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    // Producer side.
    @usableFromInline let tail = Atomic<Int>(0)
    @usableFromInline var cachedHead = 0
    @usableFromInline let _pad1: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    @usableFromInline let closedFlag = Atomic<Bool>(false)

    public let capacity: Int

    /// `capacity` is rounded up to a power of two.
    public init(capacity: Int) {
        precondition(capacity > 0)
        var c = 1
        while c < capacity { c <<= 1 }
        self.capacity = c
        self.mask = c - 1
        self.slots = UnsafeMutablePointer<Element>.allocate(capacity: c)
    }

    deinit {
        var h = head.load(ordering: .relaxed)
        let t = tail.load(ordering: .relaxed)
        while h != t {
            (slots + (h & mask)).deinitialize(count: 1)
            h &+= 1
        }
        slots.deallocate()
    }

    /// Producer: adds one element if there is room.
    @inlinable
    public func tryPush(_ e: consuming Element) -> Element? {
        let t = tail.load(ordering: .relaxed)
        if t &- cachedHead > mask {
            cachedHead = head.load(ordering: .acquiring)
            if t &- cachedHead > mask { return e }
        }
        (slots + (t & mask)).initialize(to: e)
        tail.store(t &+ 1, ordering: .releasing)
        return nil
    }

    /// Consumer: takes one element if any.
    @inlinable
    public func tryPop() -> Element? {
        let h = head.load(ordering: .relaxed)
        if h == cachedTail {
            cachedTail = tail.load(ordering: .acquiring)
            if h == cachedTail { return nil }
        }
        let e = (slots + (h & mask)).move()
        head.store(h &+ 1, ordering: .releasing)
        return e
    }

    /// Consumer: waits for the next element; nil once the producer has closed the ring and it is empty.
    @inlinable
    public func pop() -> Element? {
        var backoff = Backoff()
        while true {
            if let e = tryPop() { return e }
            if closedFlag.load(ordering: .acquiring) {
                // Re-check: the producer may have pushed just before closing.
                return tryPop()
            }
            backoff.wait()
        }
    }

    /// Producer: no more elements will come.
    public func close() { closedFlag.store(true, ordering: .releasing) }

    public var isClosed: Bool { closedFlag.load(ordering: .acquiring) }

    /// Elements in the ring now (approximate while both sides run).
    public var count: Int { tail.load(ordering: .relaxed) &- head.load(ordering: .relaxed) }
}
