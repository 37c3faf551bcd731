import Dispatch
import Synchronization

/// Wakes one waiting thread when another makes progress on a ring (a push into an empty ring, a pop out of a
/// full one, a close), so an idle stage sleeps instead of spinning. The ringer pays a fence and a load, and a
/// semaphore signal only when the waiter is really asleep. One waiter per doorbell; any number of ringers.
public final class Doorbell: @unchecked Sendable {
    @usableFromInline let sleeping = Atomic<Bool>(false)
    @usableFromInline let semaphore = DispatchSemaphore(value: 0)
    /// How a ringer wakes a waiter that sleeps somewhere else than on the semaphore (in `curl_multi_poll`:
    /// `curl_multi_wakeup`). Set once, by the waiter's side, before any thread rings.
    @usableFromInline nonisolated(unsafe) var waker: (@Sendable () -> Void)?

    public init() {}

    /// Makes `ring` call `wake` instead of signalling the semaphore, for a waiter that sleeps in its own
    /// poll (`wait(timeoutNs:until:sleep:)`). Call before the bell is shared; `wake` must be thread-safe.
    public func wakes(with wake: @escaping @Sendable () -> Void) { waker = wake }

    /// Call after making progress the waiter may be waiting for.
    @inlinable
    public func ring() {
        // Pairs with the fence in `wait`: either the waiter sees our progress, or we see it asleep.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if sleeping.load(ordering: .relaxed), sleeping.exchange(false, ordering: .acquiringAndReleasing) {
            if let w = waker { w() } else { semaphore.signal() }
        }
    }

    /// Returns once `ready()` holds, the doorbell rang, or `timeoutNs` passed (callers re-check what they wait
    /// for). Spins a few times first: progress often comes within microseconds.
    public func wait(timeoutNs: Int, until ready: () -> Bool) {
        precondition(waker == nil, "a bell with a waker sleeps in the waiter's own poll: use wait(timeoutNs:until:sleep:)")
        for _ in 0..<64 where ready() { return }
        sleeping.store(true, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if ready() {
            // A ringer that saw us asleep has signalled (or will): take that signal so it cannot end a later wait.
            if !sleeping.exchange(false, ordering: .acquiringAndReleasing) { semaphore.wait() }
            return
        }
        if semaphore.wait(timeout: .now() + .nanoseconds(timeoutNs)) == .timedOut {
            if !sleeping.exchange(false, ordering: .acquiringAndReleasing) { semaphore.wait() }
        }
    }

    /// The same, for a waiter that sleeps in its own poll (`sleep(timeoutNs)`), which the waker set with
    /// `wakes(with:)` interrupts. A wake that comes late only ends a later sleep early (callers re-check).
    public func wait(timeoutNs: Int, until ready: () -> Bool, sleep: (Int) -> Void) {
        for _ in 0..<64 where ready() { return }
        sleeping.store(true, ordering: .relaxed)
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if !ready() { sleep(timeoutNs) }
        sleeping.store(false, ordering: .relaxed)
    }
}
