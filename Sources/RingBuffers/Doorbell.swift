import CPinShims
import Platform
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Wakes one waiting thread when another makes progress on a ring (a push into an empty ring, a pop out of a
/// full one, a close), so an idle stage sleeps instead of spinning. The ringer pays a fence and a load, and a
/// futex wake only when the waiter is really asleep. One waiter per doorbell; any number of ringers.
///
/// The waiter sleeps on a futex word with an absolute CLOCK_MONOTONIC deadline (FUTEX_WAIT_BITSET): a
/// ring swaps the word from 1 to 0 before waking, so a ring that comes between the waiter's last look and
/// its sleep makes the sleep return at once, and a ring nobody sleeps through leaves nothing behind (a
/// semaphore kept such a signal, which the next wait had to take back).
public final class Doorbell: @unchecked Sendable {
    /// 1 while the waiter is asleep or about to be; a ringer that swaps it to 0 wakes the waiter.
    @usableFromInline let word: UnsafeMutablePointer<Atomic<UInt32>>
    /// How a ringer wakes a waiter that sleeps somewhere else than on the futex (in `curl_multi_poll`:
    /// `curl_multi_wakeup`). Set once, by the waiter's side, before any thread rings.
    @usableFromInline nonisolated(unsafe) var waker: (@Sendable () -> Void)?

    public init() {
        word = .allocate(capacity: 1)
        word.initialize(to: Atomic(0))
    }

    deinit {
        word.deinitialize(count: 1)
        word.deallocate()
    }

    /// Makes `ring` call `wake` instead of waking the futex, for a waiter that sleeps in its own poll
    /// (`wait(timeoutNs:until:sleep:)`). Call before the bell is shared; `wake` must be thread-safe.
    public func wakes(with wake: @escaping @Sendable () -> Void) { waker = wake }

    /// Call after making progress the waiter may be waiting for.
    @inlinable
    public func ring() {
        // Pairs with the fence in `wait`: either the waiter sees our progress, or we see it asleep.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if word.pointee.load(ordering: .relaxed) != 0, word.pointee.exchange(0, ordering: .acquiringAndReleasing) != 0 {
            if let w = waker { w() } else { pb_futex_wake_one(UnsafeMutableRawPointer(word)) }
        }
    }

    /// Returns once `ready()` holds, the doorbell rang, or `timeoutNs` passed (callers re-check what they wait
    /// for). Spins a few times first: progress often comes within microseconds.
    public func wait(timeoutNs: Int, until ready: () -> Bool) {
        wait(untilNs: monotonicNanos() &+ UInt64(max(0, timeoutNs)), until: ready)
    }

    /// The same with an absolute deadline (CLOCK_MONOTONIC ns, the clock of `monotonicNanos`): a schedule's
    /// next tick, which a sleep of a relative length would pass by the time taken to compute it.
    public func wait(untilNs deadline: UInt64, until ready: () -> Bool) {
        precondition(waker == nil, "a bell with a waker sleeps in the waiter's own poll: use wait(timeoutNs:until:sleep:)")
        for _ in 0..<64 where ready() { return }
        word.pointee.store(1, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        while !ready() {
            let r = pb_futex_wait_until(UnsafeMutableRawPointer(word), 1, deadline)
            // Woken or the word already 0: rung. A signal (EINTR) with the word still 1: sleep on.
            if r == ETIMEDOUT || word.pointee.load(ordering: .acquiring) == 0 { break }
        }
        word.pointee.store(0, ordering: .relaxed)
    }

    /// The same, for a waiter that sleeps in its own poll (`sleep(timeoutNs)`), which the waker set with
    /// `wakes(with:)` interrupts. A wake that comes late only ends a later sleep early (callers re-check).
    public func wait(timeoutNs: Int, until ready: () -> Bool, sleep: (Int) -> Void) {
        for _ in 0..<64 where ready() { return }
        word.pointee.store(1, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if !ready() { sleep(timeoutNs) }
        word.pointee.store(0, ordering: .relaxed)
    }
}
