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
    let t0: UInt64
    let endNs: UInt64?
    let intervalNs: Double?

    init(config cfg: RunConfig, emulator: Emulator, stats: LiveStats) {
        self.cfg = cfg
        self.emulator = emulator
        self.stats = stats
        let perGenerator = cfg.chunksPerGenerator, posts = cfg.chunkPosts
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
            guard let chunk = free[g].pop() else { break }
            let c0 = monotonicNanos()
            blocked += Int(c0 - w0)
            var slept = 0
            chunk.reset(seq: seq, firstIndex: first)
            for i in 0..<n {
                let index = first + i
                var sched: UInt64
                if let iv = intervalNs {
                    sched = t0 + UInt64(Double(index) * iv)
                    if let e = endNs, sched >= e { break }
                    let s0 = monotonicNanos()
                    sleepUntil(sched)  // open loop: never later than the schedule says, never catching up by skipping
                    slept += Int(monotonicNanos() - s0)
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
                stalls += full[g].push(chunk) > 0 ? 1 : 0
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
    }

    /// On the sink thread: every chunk in sequence order (round robin over the generators, so records
    /// arrive in post-index order whatever the thread count). `idle` runs while waiting for the next one.
    func forEachChunk(_ process: (Chunk) -> Void, idle: () -> Void) {
        let T = cfg.threads
        var done = [Bool](repeating: false, count: T)
        var doneCount = 0
        var seq = 0
        while doneCount < T {
            let g = seq % T
            seq += 1
            if done[g] { continue }
            var backoff = Backoff()
            while true {
                if let c = full[g].tryPop() {
                    timed(process, c)
                    free[g].push(c)
                    break
                }
                if full[g].isClosed {
                    if let c = full[g].tryPop() {
                        timed(process, c)
                        free[g].push(c)
                    } else {
                        done[g] = true
                        doneCount += 1
                    }
                    break
                }
                idle()
                backoff.wait()
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
