import Dispatch
#if canImport(Glibc)
import Glibc
#endif
import Platform
import RingBuffers
import Synchronization
import Testing

/// A waiter that sleeps on a doorbell must be woken by every push it waits for: a lost wake-up shows as a
/// sleep that ran to its (long) timeout although an element was waiting.
@Suite struct DoorbellTests {
    static let items = 20_000
    static let longSleepNs = 5_000_000_000

    /// Producer pushes one element at a time (pausing now and then so the consumer really falls asleep);
    /// the consumer sleeps on the bell between elements. Returns the sleeps that ended by timeout.
    static func handOff(wait: (Doorbell, SPSCRing<Int>) -> Bool, bell: Doorbell) -> (received: Int, timedOut: Int) {
        let ring = SPSCRing<Int>(capacity: 4)
        DispatchQueue.global().async {
            for i in 0..<items {
                ring.push(i)
                bell.ring()
                if i % 64 == 0 { usleep(50) }
            }
            ring.close()
            bell.ring()
        }
        var received = 0, timedOut = 0
        while true {
            if ring.tryPop() != nil { received += 1; continue }
            if ring.isClosed && ring.count == 0 { break }
            if wait(bell, ring) { timedOut += 1 }
        }
        return (received, timedOut)
    }

    @Test func aFutexWaiterMissesNoRing() {
        let r = Self.handOff(wait: { bell, ring in
            let t0 = DispatchTime.now().uptimeNanoseconds
            bell.wait(timeoutNs: Self.longSleepNs) { ring.count > 0 || ring.isClosed }
            return DispatchTime.now().uptimeNanoseconds - t0 >= UInt64(Self.longSleepNs)
        }, bell: Doorbell())
        #expect(r.received == Self.items)
        #expect(r.timedOut == 0)
    }

    @Test func aWaiterInItsOwnPollIsWokenByTheWaker() {
        // The waiter's own poll: a semaphore standing in for curl_multi_poll, woken by the bell's waker.
        let poll = DispatchSemaphore(value: 0)
        let bell = Doorbell()
        bell.wakes { poll.signal() }
        let r = Self.handOff(wait: { bell, ring in
            var timedOut = false
            bell.wait(timeoutNs: Self.longSleepNs, until: { ring.count > 0 || ring.isClosed }) { ns in
                timedOut = poll.wait(timeout: .now() + .nanoseconds(ns)) == .timedOut
            }
            return timedOut
        }, bell: bell)
        #expect(r.received == Self.items)
        #expect(r.timedOut == 0)
    }

    /// A ring that nobody slept through leaves nothing behind: the next wait still sleeps to its deadline (a
    /// semaphore-based bell kept such a signal, and a later wait had to take it back). And a wait whose
    /// condition never holds returns at its absolute deadline, not before it.
    @Test func aRingWithNoSleeperDoesNotEndALaterWaitAndDeadlinesAreAbsolute() {
        let bell = Doorbell()
        for _ in 0..<3 { bell.ring() }
        let t0 = monotonicNanos()
        let deadline = t0 + 30_000_000
        bell.wait(untilNs: deadline) { false }
        #expect(monotonicNanos() >= deadline)
        // A deadline already past: no sleep at all, whatever the condition.
        bell.wait(untilNs: t0) { false }
    }
}
