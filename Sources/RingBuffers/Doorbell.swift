import Dispatch
import Synchronization

/// Wakes one waiting thread when another makes progress on a ring (a push into an empty ring, a pop out of a
/// full one, a close), so an idle stage sleeps instead of spinning. The ringer pays a fence and a load, and a
/// semaphore signal only when the waiter is really asleep. One waiter per doorbell; any number of ringers.
public final class Doorbell: @unchecked Sendable {
    @usableFromInline let sleeping = Atomic<Bool>(false)
    @usableFromInline let semaphore = DispatchSemaphore(value: 0)

    public init() {}

    /// Call after making progress the waiter may be waiting for.
    @inlinable
    public func ring() {
        // Pairs with the fence in `wait`: either the waiter sees our progress, or we see it asleep.
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        if sleeping.load(ordering: .relaxed), sleeping.exchange(false, ordering: .acquiringAndReleasing) { semaphore.signal() }
    }

    /// Returns once `ready()` holds, the doorbell rang, or `timeoutNs` passed (callers re-check what they wait
    /// for). Spins a few times first: progress often comes within microseconds.
    public func wait(timeoutNs: Int, until ready: () -> Bool) {
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
}
