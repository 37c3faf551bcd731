import Dispatch
import Foundation
import RingBuffers
import Synchronization
import Testing

/// An element that names its producer and its sequence number within that producer.
struct Tagged: Sendable {
    var producer: Int
    var seq: Int
}

@Suite struct RingStressTests {
    @Test func spscDeliversEverythingInOrderThroughATinyRing() {
        let ring = SPSCRing<Int>(capacity: 8)
        let n = 300_000
        let group = DispatchGroup()
        DispatchQueue(label: "stress-\(UUID())").async(group: group) {
            for i in 0..<n { ring.push(i) }
            ring.close()
        }
        var expected = 0
        var ok = true
        while let v = ring.pop() {
            if v != expected { ok = false }
            expected += 1
        }
        group.wait()
        #expect(ok)
        #expect(expected == n)
    }

    @Test func mpmcLosesNothingDuplicatesNothingReordersNothingPerProducer() {
        let producers = 4, consumers = 3, perProducer = 100_000
        let ring = MPMCRing<Tagged>(capacity: 64, producers: producers)
        let group = DispatchGroup()
        for p in 0..<producers {
            DispatchQueue(label: "stress-\(UUID())").async(group: group) {
                for s in 0..<perProducer { ring.push(Tagged(producer: p, seq: s)) }
                ring.producerDone()
            }
        }
        // Each consumer records, per producer, the sequence numbers it saw, in the order it saw them.
        let results = Mutex<[[[Int]]]>([])
        for _ in 0..<consumers {
            DispatchQueue(label: "stress-\(UUID())").async(group: group) {
                var seen = [[Int]](repeating: [], count: producers)
                while let t = ring.pop() { seen[t.producer].append(t.seq) }
                results.withLock { $0.append(seen) }
            }
        }
        group.wait()
        let all = results.withLock { $0 }
        #expect(all.count == consumers)
        for p in 0..<producers {
            var union: [Int] = []
            for c in all {
                // Per producer, each consumer sees a strictly increasing subsequence: no reordering.
                #expect(zip(c[p], c[p].dropFirst()).allSatisfy { $0 < $1 }, "producer \(p) reordered")
                union += c[p]
            }
            union.sort()
            // Together: every sequence number exactly once (none lost, none twice).
            #expect(union == Array(0..<perProducer), "producer \(p)")
        }
    }

    @Test func fullRingRefusesAndGivesTheElementBack() {
        let ring = SPSCRing<Int>(capacity: 4)
        for i in 0..<4 { #expect(ring.tryPush(i) == nil) }
        #expect(ring.tryPush(99) == 99)
        #expect(ring.count == 4)
        #expect(ring.tryPop() == 0)
        #expect(ring.tryPush(4) == nil)
        let m = MPMCRing<Int>(capacity: 2)
        #expect(m.tryPush(1) == nil && m.tryPush(2) == nil)
        #expect(m.tryPush(3) == 3)
        #expect(m.tryPop() == 1 && m.tryPop() == 2 && m.tryPop() == nil)
    }

    @Test func ringReleasesElementsLeftInside() {
        // Strings are heap-backed past 15 bytes; leaving some in the ring must not leak or crash.
        let ring = SPSCRing<String>(capacity: 8)
        for i in 0..<5 { ring.push(String(repeating: "x", count: 40) + "\(i)") }
        #expect(ring.pop()!.hasSuffix("0"))
    }
}
