import Dispatch
import PinEmulator
import RingBuffers
import Platform
import Synchronization
import Bytes

/// The generator side of a run, shared by every sink (embedded log, Kafka): generator threads filling
/// chunks of posts, the bounded rings that carry them, and the in-order hand-over to the sink stage.
final class Flood: @unchecked Sendable {
    let cfg: RunConfig
    let emulator: Emulator
    let stats: LiveStats
    let full: [SPSCRing<Chunk>]
    let free: [SPSCRing<Chunk>]
    /// Rung by a generator after it pushes a chunk or closes its ring: the sink stage sleeps on it when idle
    /// (the sink's own events ring it too: see `Backend.makeSink`).
    let sinkBell: Doorbell
    /// Rung by the sink stage after it takes a chunk and gives one back: generator g sleeps on `generatorBells[g]`
    /// while its ring is full or it has no free chunk (backpressure).
    let generatorBells: [Doorbell]
    /// How long a blocked generator sleeps before it looks for a stop request again: the sink stage rings its
    /// bell whenever it frees room, so this only bounds how late a stop is seen.
    static let blockedWaitNs = 50_000_000
    let t0: UInt64
    let endNs: UInt64?
    let intervalNs: Double?

    init(config cfg: RunConfig, emulator: Emulator, stats: LiveStats, sinkBell: Doorbell) {
        self.cfg = cfg
        self.sinkBell = sinkBell
        self.emulator = emulator
        self.stats = stats
        let perGenerator = cfg.chunksPerGenerator, posts = cfg.chunkPosts
        generatorBells = (0..<cfg.threads).map { _ in Doorbell() }
        full = (0..<cfg.threads).map { _ in SPSCRing<Chunk>(capacity: perGenerator) }
        free = (0..<cfg.threads).map { _ in
            let ring = SPSCRing<Chunk>(capacity: perGenerator)
            for _ in 0..<perGenerator { ring.push(Chunk(capacity: posts)) }
            return ring
        }
        let start = monotonicNanos()
        t0 = start
        endNs = cfg.duration.map { start + UInt64($0 * 1e9) }
        intervalNs = cfg.rate.map { 1e9 / $0 }
    }

    /// Starts one generator per `cfg.threads` on its own thread. Generator g fills chunks g, g+T, g+2T, …
    func startGenerators(group: DispatchGroup) {
        // Real threads (StageThread), not Dispatch's pool: a generator blocks on its ring and must not starve others.
        let T = cfg.threads
        for g in 0..<T {
            group.enter()
            _ = StageThread(name: "generator-\(g)") {
                self.generate(g)
                group.leave()
            }
        }
    }

    private func generate(_ g: Int) {
        let T = cfg.threads
        if cfg.pinCPUs { Affinity.pinCurrentThread(to: g + 1) }
        var seq = g
        var stalls = 0
        var busy = 0, blocked = 0
        while true {
            let first = seq * cfg.chunkPosts
            var n = cfg.chunkPosts
            if let c = cfg.count {
                if first >= c { break }
                n = min(n, c - first)
            }
            if stats.stop.load(ordering: .relaxed) { break }
            let w0 = monotonicNanos()
            guard let chunk = takeFreeChunk(g) else { break }
            let c0 = monotonicNanos()
            blocked += Int(c0 - w0)
            var slept = 0
            chunk.reset(seq: seq, firstIndex: first)
            if let iv = intervalNs {
                // A chunk goes to the sink stage when it is full, so its posts can be written together once the
                // last of them is due: one sleep per chunk instead of one per post. Each post keeps its own
                // scheduled time (latency counts from it) and none is written before it.
                var last = n - 1
                while last >= 0, let e = endNs, t0 + UInt64(Double(first + last) * iv) >= e { last -= 1 }
                if last >= 0 {
                    let s0 = monotonicNanos()
                    if !sleepUntil(t0 + UInt64(Double(first + last) * iv), unlessStopped: stats.stop) { break }
                    slept += Int(monotonicNanos() - s0)
                }
            }
            for i in 0..<n {
                let index = first + i
                var sched: UInt64
                if let iv = intervalNs {
                    // Open loop: due by now (see above), never moved by a slow sink, never caught up by skipping.
                    sched = t0 + UInt64(Double(index) * iv)
                    if let e = endNs, sched >= e { break }
                } else {
                    sched = monotonicNanos()
                    if let e = endNs, sched >= e { break }
                }
                chunk.scheduled[i] = sched
                emulator.writePost(index, pin: chunk.data[0], geo: chunk.data[1], user: chunk.data[2], style: cfg.style)
                for k in 0..<3 { chunk.ends[k][i] = Int32(chunk.data[k].count) }
                chunk.count = i + 1
            }
            let produced = chunk.count
            busy += Int(monotonicNanos() - c0) - slept
            if produced > 0 {
                stats.recordsIn.add(3 * produced, ordering: .relaxed)
                let p0 = monotonicNanos()
                stalls += pushFull(g, chunk) ? 1 : 0
                blocked += Int(monotonicNanos() - p0)
            } else {
                free[g].push(chunk)
            }
            if produced < n { break }
            seq += T
        }
        stats.generatorStalls.add(stalls, ordering: .relaxed)
        stats.generatorBusyNs.add(busy, ordering: .relaxed)
        stats.generatorBlockedNs.add(blocked, ordering: .relaxed)
        full[g].close()
        sinkBell.ring()
    }

    /// Sleeps until `deadline` in absolute-deadline slices of at most 100 ms; false when a stop was asked for.
    private func sleepUntil(_ deadline: UInt64, unlessStopped stop: borrowing Atomic<Bool>) -> Bool {
        while true {
            let now = monotonicNanos()
            if now >= deadline { return true }
            if stop.load(ordering: .relaxed) { return false }
            sleepUntilAbsolute(min(deadline, now + 100_000_000))
        }
    }

    /// A free chunk for generator g, sleeping while the sink stage holds them all; nil when the flood stops.
    private func takeFreeChunk(_ g: Int) -> Chunk? {
        while true {
            if let c = free[g].tryPop() { return c }
            if stats.stop.load(ordering: .relaxed) { return nil }
            generatorBells[g].wait(timeoutNs: Self.blockedWaitNs) { free[g].count > 0 }
        }
    }

    /// Hands a filled chunk to the sink stage, sleeping while the ring is full (backpressure). True when it had to wait.
    private func pushFull(_ g: Int, _ chunk: Chunk) -> Bool {
        var pending = chunk
        var waited = false
        while let back = full[g].tryPush(pending) {
            pending = back
            waited = true
            generatorBells[g].wait(timeoutNs: Self.blockedWaitNs) { full[g].count < full[g].capacity }
        }
        sinkBell.ring()
        return waited
    }

    /// On the sink thread: every chunk in sequence order (round robin over the generators, so records
    /// arrive in post-index order whatever the thread count). `idle` runs while waiting for the next one: it
    /// sleeps (on `sinkBell`, which a new chunk rings) until `ready()` or the sink has something to do.
    func forEachChunk(_ process: (Chunk) -> Void, idle: (_ ready: () -> Bool) -> Void) {
        let T = cfg.threads
        var done = [Bool](repeating: false, count: T)
        var doneCount = 0
        var seq = 0
        while doneCount < T {
            let g = seq % T
            seq += 1
            if done[g] { continue }
            while true {
                if let c = full[g].tryPop() {
                    timed(process, c)
                    free[g].push(c)
                    generatorBells[g].ring()
                    break
                }
                if full[g].isClosed {
                    if let c = full[g].tryPop() {
                        timed(process, c)
                        free[g].push(c)
                        generatorBells[g].ring()
                    } else {
                        done[g] = true
                        doneCount += 1
                    }
                    break
                }
                idle { full[g].count > 0 || full[g].isClosed || stats.stop.load(ordering: .relaxed) }
            }
        }
    }

    @inline(__always)
    private func timed(_ process: (Chunk) -> Void, _ c: Chunk) {
        let t = monotonicNanos()
        process(c)
        stats.sinkBusyNs.add(Int(monotonicNanos() - t), ordering: .relaxed)
    }

    /// Samples progress about once a second until `group` finishes.
    func monitor(group: DispatchGroup, onProgress: ((ProgressSample) -> Void)?) -> [ProgressSample] {
        var timeline: [ProgressSample] = []
        let capacity = cfg.threads * cfg.chunksPerGenerator * cfg.chunkPosts * 3
        while group.wait(timeout: .now() + .milliseconds(1000)) == .timedOut {
            var depth = 0
            for r in full { depth += r.count }
            let s = ProgressSample(
                seconds: Double(monotonicNanos() - t0) / 1e9, recordsOut: stats.recordsOut.load(ordering: .relaxed),
                payloadBytesOut: stats.payloadBytesOut.load(ordering: .relaxed), queueDepth: depth * cfg.chunkPosts * 3,
                queueCapacity: capacity)
            timeline.append(s)
            onProgress?(s)
        }
        return timeline
    }
}
