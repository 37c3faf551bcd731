import Synchronization

/// A bounded multi-producer multi-consumer ring (Dmitry Vyukov's design): each slot carries a sequence
/// number, producers and consumers claim positions with a compare-and-swap on their own index and hand
/// slots over through the sequence with acquire/release. Lock-free; FIFO per producer.
public final class MPMCRing<Element>: BoundedRing, @unchecked Sendable {
    @usableFromInline let mask: Int
    @usableFromInline let sequences: UnsafeMutablePointer<Atomic<Int>>
    @usableFromInline let slots: UnsafeMutablePointer<Element>
    @usableFromInline let enqueuePos = Atomic<Int>(0)
    @usableFromInline let _pad0: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    @usableFromInline let dequeuePos = Atomic<Int>(0)
    @usableFromInline let _pad1: (Int, Int, Int, Int, Int, Int, Int, Int) = (0, 0, 0, 0, 0, 0, 0, 0)
    @usableFromInline let openProducers: Atomic<Int>
    public let capacity: Int

    /// `producers` is how many producers will call `producerDone()`; the ring reads as finished after the last.
    public init(capacity: Int, producers: Int = 1) {
        var c = 2
        while c < capacity { c <<= 1 }
        self.capacity = c
        self.mask = c - 1
        self.sequences = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: c)
        for i in 0..<c { (sequences + i).initialize(to: Atomic<Int>(i)) }
        self.slots = UnsafeMutablePointer<Element>.allocate(capacity: c)
        self.openProducers = Atomic<Int>(producers)
    }

    deinit {
        while tryPop() != nil {}
        sequences.deinitialize(count: capacity)
        sequences.deallocate()
        slots.deallocate()
    }

    @inlinable
    public func tryPush(_ e: consuming Element) -> Element? {
        var pos = enqueuePos.load(ordering: .relaxed)
        while true {
            let seq = sequences[pos & mask].load(ordering: .acquiring)
            let dif = seq &- pos
            if dif == 0 {
                let (exchanged, current) = enqueuePos.weakCompareExchange(
                    expected: pos, desired: pos &+ 1, successOrdering: .relaxed, failureOrdering: .relaxed)
                if exchanged {
                    (slots + (pos & mask)).initialize(to: e)
                    sequences[pos & mask].store(pos &+ 1, ordering: .releasing)
                    return nil
                }
                pos = current
            } else if dif < 0 {
                return e  // full
            } else {
                pos = enqueuePos.load(ordering: .relaxed)
            }
        }
    }

    @inlinable
    /// True when no element was waiting at the moment of the look (a hint: another thread may push next).
    public var isEmptyApprox: Bool {
        enqueuePos.load(ordering: .acquiring) == dequeuePos.load(ordering: .acquiring)
    }

    public func tryPop() -> Element? {
        var pos = dequeuePos.load(ordering: .relaxed)
        while true {
            let seq = sequences[pos & mask].load(ordering: .acquiring)
            let dif = seq &- (pos &+ 1)
            if dif == 0 {
                let (exchanged, current) = dequeuePos.weakCompareExchange(
                    expected: pos, desired: pos &+ 1, successOrdering: .relaxed, failureOrdering: .relaxed)
                if exchanged {
                    let e = (slots + (pos & mask)).move()
                    sequences[pos & mask].store(pos &+ mask &+ 1, ordering: .releasing)
                    return e
                }
                pos = current
            } else if dif < 0 {
                return nil  // empty
            } else {
                pos = dequeuePos.load(ordering: .relaxed)
            }
        }
    }

    /// Waits for an element; nil once every producer is done and the ring is empty.
    @inlinable
    public func pop() -> Element? {
        var backoff = Backoff()
        while true {
            if let e = tryPop() { return e }
            if openProducers.load(ordering: .acquiring) <= 0 { return tryPop() }
            backoff.wait()
        }
    }

    public func producerDone() { openProducers.subtract(1, ordering: .releasing) }
}
