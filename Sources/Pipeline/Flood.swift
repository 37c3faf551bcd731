import Dispatch
import PinEmulator
import RingBuffers
import Platform
import Sinks
import Synchronization
import Bytes
import KafkaWire

/// The generator side of a run, shared by every sink (embedded log, Kafka): generator threads filling
/// chunks of posts, the bounded rings that carry them, and the in-order hand-over to the sink stages.
/// With several sink stages (the embedded log's shards), every chunk goes to every stage (one SPSC ring
/// per generator and stage), each stage takes the records of the topic-partitions it owns, and the last
/// stage done with a chunk gives it back.
final class Flood: @unchecked Sendable {
    let cfg: RunConfig
    let emulator: Emulator
    let stats: LiveStats
    /// `full[g][s]`: generator g's filled chunks for stage s.
    let full: [[SPSCRing<Chunk>]]
    /// `free[g][s]`: chunks stage s (the last to finish them) gives back to generator g.
    let free: [[SPSCRing<Chunk>]]
    /// Rung by a generator after it pushes a chunk or closes its rings: stage s sleeps on `sinkBells[s]` when
    /// idle (its sink's own events ring it too: see `Backend.makeSinks`).
    let sinkBells: [Doorbell]
    var stages: Int { sinkBells.count }
    /// Embedded floods: the log's partitions, for the generator to write each post's partition into its chunk.
    let partitions: Int?
    /// Rung by the sink stage after it takes a chunk and gives one back: generator g sleeps on `generatorBells[g]`
    /// while its ring is full or it has no free chunk (backpressure).
    let generatorBells: [Doorbell]
    /// Free chunks a generator blocked on the sink waits for before it works again (half its pool, at most 8:
    /// a paced flood's pool of small chunks can hold hundreds, and a refill that large would hold a
    /// generator behind a slow sink for many ticks, then release them at once): it then
    /// fills them in one go instead of waking once per chunk given back, and generators beyond what the sink
    /// takes cost one wake-up per `refill` chunks. It wakes sooner when a stage has none of its chunks left to take.
    let refill: Int
    /// How long a blocked generator sleeps before it looks for a stop request again: the sink stage rings its
    /// bell whenever it frees room, so this only bounds how late a stop is seen.
    static let blockedWaitNs = 50_000_000
    /// How late a generator may be at a `--duration` end and still make the posts due before it.
    static let endGraceNs: UInt64 = 100_000_000
    let t0: UInt64
    let endNs: UInt64?
    let intervalNs: Double?
    /// Generation stops once this many payload bytes were made, for this reason (`--max-bytes`, free disk).
    let byteCap: (bytes: Int, reason: StopReason)?
    /// One generator and one sink stage under a modest `--rate` (`RunConfig.generatesInSinkStage`): the stage's
    /// thread makes each chunk itself, sleeps until it is due (doing the sink's work meanwhile) and takes it
    /// with no ring between. A paced flood then wakes one thread per tick instead of two, and reads the posts
    /// from the cache that made them.
    let inline: Bool

    /// Under `--rate`, a chunk holds the posts due within one tick at most: a chunk goes to the sink stage once
    /// its last post is due, so a longer chunk would hold its first posts back (latency counts from each
    /// post's schedule: 256 posts at 2,000/s held the first for 128 ms). The tick is the sink's own linger
    /// (the batching delay it adds anyway; at least 1 ms): fewer, fuller chunks cost less CPU per post. A batch
    /// then holds the records of two chunks (its linger ends as the next one comes), so a post waits up to two
    /// lingers from its schedule to its append. A sink stage that generates (`inline`) knows when its next chunk
    /// is due and has each batch sealed right after the chunk that filled it (`RecordSink.poll(noInputBeforeNs:)`):
    /// its tick is two lingers, for the same batches and latency with half the wake-ups.
    static func tickSeconds(_ cfg: RunConfig, inline: Bool) -> Double {
        max(0.001, (cfg.sink.lingerMs ?? SinkSettings.defaultLingerMs) / 1000) * (inline ? 2 : 1)
    }

    init(config given: RunConfig, emulator: Emulator, stats: LiveStats, sinkBells: [Doorbell], byteCap: (bytes: Int, reason: StopReason)? = nil) {
        var cfg = given
        let inline = given.generatesInSinkStage(stages: sinkBells.count)
        if let r = cfg.rate {
            let due = r * Flood.tickSeconds(cfg, inline: inline)  // posts due per tick (compared before converting: --rate is input)
            let perTick = due >= Double(cfg.chunkPosts) ? cfg.chunkPosts : max(1, Int(due))
            if perTick < cfg.chunkPosts {
                // More, smaller chunks: as many posts may wait for the sink stage as before.
                cfg.chunksPerGenerator = max(cfg.chunksPerGenerator, min(1024, cfg.chunksPerGenerator * cfg.chunkPosts / perTick))
                cfg.chunkPosts = perTick
            }
        }
        self.cfg = cfg
        self.sinkBells = sinkBells
        self.inline = inline
        if case .embedded = cfg.backend { partitions = cfg.sink.partitions } else { partitions = nil }
        self.byteCap = byteCap
        self.emulator = emulator
        self.stats = stats
        // Generating in the sink stage, one chunk is in use at a time: reusing that one keeps its buffers in
        // the cache (a ring of them would touch another cold chunk every tick).
        let perGenerator = inline ? 1 : cfg.chunksPerGenerator, posts = cfg.chunkPosts
        generatorBells = (0..<cfg.threads).map { _ in Doorbell() }
        refill = max(1, min(8, perGenerator / 2))
        let S = sinkBells.count
        full = (0..<cfg.threads).map { _ in (0..<S).map { _ in SPSCRing<Chunk>(capacity: perGenerator) } }
        free = (0..<cfg.threads).map { _ in
            // Any stage may be the last to finish every chunk: each ring back has room for all of them.
            let rings = (0..<S).map { _ in SPSCRing<Chunk>(capacity: perGenerator) }
            for _ in 0..<perGenerator { rings[0].push(Chunk(capacity: posts)) }
            return rings
        }
        let start = monotonicNanos()
        t0 = start
        endNs = cfg.duration.map { start + UInt64($0 * 1e9) }
        intervalNs = cfg.rate.map { 1e9 / $0 }
        let bells = sinkBells + generatorBells
        stats.stopBells.withLock { $0 = bells }
    }

    /// Starts one generator per `cfg.threads` on its own thread. Generator g fills chunks g, g+T, g+2T, …
    func startGenerators(group: DispatchGroup) {
        // Real threads (StageThread), not Dispatch's pool: a generator blocks on its ring and must not starve others.
        let T = cfg.threads
        if inline { return }  // the sink stage generates (forEachChunk)
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
        let key = ByteBuffer(capacity: 32)
        var busy = 0, blocked = 0
        let cpu0 = threadCPUNanos()
        while true {
            let first = seq * cfg.chunkPosts
            guard let (chunk, produced, short, due) = fillChunk(g, seq: seq, first: first, key: key, busy: &busy, blocked: &blocked) else { break }
            if produced > 0 {
                if intervalNs != nil {
                    // Open loop: the posts are made first, so none waits for its own making, and the chunk goes
                    // to the sink stage once its last post is due, never before (one sleep per chunk).
                    if !sleepUntil(due, unlessStopped: stats.stop) { break }
                }
                stats.recordsIn.add(3 * produced, ordering: .relaxed)
                stats.payloadBytesIn.add(chunk.payloadBytes, ordering: .relaxed)
                _ = stats.lastScheduledNs.max(chunk.scheduled[produced - 1], ordering: .relaxed)
                let p0 = monotonicNanos()
                stalls += pushFull(g, chunk) ? 1 : 0
                blocked += Int(monotonicNanos() - p0)
            }
            // A short chunk ends this generator. An empty one is dropped, not handed back, since only the sink
            // stages push onto the rings back.
            if short { break }
            seq += T
        }
        stats.generatorStalls.add(stalls, ordering: .relaxed)
        stats.generatorBusyNs.add(busy, ordering: .relaxed)
        stats.generatorBlockedNs.add(blocked, ordering: .relaxed)
        stats.generatorCpuNs.add(Int(threadCPUNanos() &- cpu0), ordering: .relaxed)
        _ = stats.generatorsEndNs.max(monotonicNanos(), ordering: .relaxed)
        for r in full[g] { r.close() }
        for b in sinkBells { b.ring() }
    }

    /// Fills chunk `seq` (posts from `first`) with the posts generator g makes for it: under `--rate` each keeps
    /// its own scheduled time (latency counts from it), and none due at or after a `--duration` end is made.
    /// Returns the chunk, how many posts it holds, whether it is short (the flood's end came within it), and
    /// when its last post is due (now, when unpaced); nil when the flood ends before it.
    private func fillChunk(_ g: Int, seq: Int, first: Int, key: ByteBuffer, busy: inout Int, blocked: inout Int) -> (Chunk, Int, Bool, UInt64)? {
        var n = cfg.chunkPosts
        if let c = cfg.count {
            if first >= c { return nil }
            n = min(n, c - first)
        }
        if stats.stop.load(ordering: .relaxed) { return nil }
        // `--duration` bounds wall time: posts due before the end but not generated by then are never sent
        // (the report counts them; a generator that falls behind never makes the run longer). A chunk is
        // short under --rate (one tick), so a generator a moment late at the end still makes the posts
        // that were due before it: the bound has 100 ms of grace, and no post due after the end is made.
        if let iv = intervalNs, let e = endNs {
            if t0 &+ UInt64(Double(first) * iv) >= e || monotonicNanos() >= e &+ Flood.endGraceNs { return nil }
        }
        if let cap = byteCap, stats.payloadBytesIn.load(ordering: .relaxed) >= cap.bytes {
            stats.requestStop(cap.reason)
            return nil
        }
        let w0 = monotonicNanos()
        guard let chunk = takeFreeChunk(g) else { return nil }
        let c0 = monotonicNanos()
        blocked += Int(c0 - w0)
        chunk.reset(seq: seq, firstIndex: first)
        var due = c0
        for i in 0..<n {
            let index = first + i
            var sched: UInt64
            if let iv = intervalNs {
                // Open loop: never moved by a slow sink, never caught up by skipping.
                sched = t0 + UInt64(Double(index) * iv)
                if let e = endNs, sched >= e { break }
            } else {
                sched = monotonicNanos()
                if let e = endNs, sched >= e { break }
            }
            chunk.scheduled[i] = sched
            due = sched
            let global = cfg.worker?.global(index) ?? index
            emulator.writePost(global, pin: chunk.pin, geo: chunk.geo, user: chunk.user, style: cfg.style)
            chunk.ends[0][i] = Int32(chunk.pin.count)
            chunk.ends[1][i] = Int32(chunk.geo.count)
            chunk.ends[2][i] = Int32(chunk.user.count)
            if let P = partitions {
                // The sink's own partitioner (murmur2 of the decimal key), done here where it scales.
                key.reset()
                key.appendDecimal(global)
                chunk.partition[i] = Int32(Murmur2.partition(key.bytes, partitions: P))
            }
            chunk.count = i + 1
        }
        busy += Int(monotonicNanos() - c0)
        return (chunk, chunk.count, chunk.count < n, due)
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

    /// A free chunk for generator g, sleeping while the sink stages hold them all (until `refill` are back, or
    /// a stage has run out of g's chunks); nil when the flood stops.
    private func takeFreeChunk(_ g: Int) -> Chunk? {
        let rings = free[g]
        while true {
            for r in rings { if let c = r.tryPop() { return c } }
            if stats.stop.load(ordering: .relaxed) { return nil }
            generatorBells[g].wait(timeoutNs: Self.blockedWaitNs) {
                let n = freeChunks(g)
                return n >= refill || (n > 0 && starved(g))
            }
        }
    }

    @inline(__always)
    private func freeChunks(_ g: Int) -> Int {
        var n = 0
        for r in free[g] { n &+= r.count }
        return n
    }

    /// Whether some stage has taken every chunk generator g handed it (it will wait on g next).
    @inline(__always)
    private func starved(_ g: Int) -> Bool { full[g].contains { $0.count == 0 } }

    /// Hands a filled chunk to every sink stage, sleeping while a ring is full (backpressure). True when it had to wait.
    private func pushFull(_ g: Int, _ chunk: Chunk) -> Bool {
        var waited = false
        chunk.holders.store(stages, ordering: .relaxed)
        for (s, ring) in full[g].enumerated() {
            var pending = chunk
            while let back = ring.tryPush(pending) {  // the push publishes the chunk (and its holder count)
                pending = back
                waited = true
                generatorBells[g].wait(timeoutNs: Self.blockedWaitNs) { ring.count < ring.capacity }
            }
            sinkBells[s].ring()
        }
        return waited
    }

    /// On sink stage `stage`'s thread: every chunk in sequence order (round robin over the generators, so
    /// records arrive in post-index order whatever the thread count), with the time before which no other
    /// chunk comes (known when the stage generates, else 0). `idle` runs while waiting for the next one: it
    /// sleeps (on the stage's bell, which a new chunk rings) until `ready()` or the sink has something to do.
    func forEachChunk(stage: Int, _ process: (Chunk, _ noInputBeforeNs: UInt64) -> Void,
                      idle: (_ ready: () -> Bool, _ atMostNs: Int) -> Void) {
        if inline { return generateInline(process, idle: idle) }
        let T = cfg.threads
        let full = self.full.map { $0[stage] }
        var done = [Bool](repeating: false, count: T)
        var doneCount = 0
        var seq = 0
        while doneCount < T {
            let g = seq % T
            seq += 1
            if done[g] { continue }
            while true {
                if let c = full[g].tryPop() {
                    // Taking g's last chunk: a generator waiting for more of its chunks back (`refill`) starts now.
                    if full[g].count == 0 { generatorBells[g].ring() }
                    timed(process, c, 0)
                    giveBack(c, g, stage)
                    break
                }
                if full[g].isClosed {
                    if let c = full[g].tryPop() {
                        timed(process, c, 0)
                        giveBack(c, g, stage)
                    } else {
                        done[g] = true
                        doneCount += 1
                    }
                    break
                }
                idle({ full[g].count > 0 || full[g].isClosed || stats.stop.load(ordering: .relaxed) }, .max)
            }
        }
    }

    /// `forEachChunk` when the one sink stage generates (`inline`): each chunk is made, then the stage does the
    /// sink's work (`idle`, at most until the chunk is due) and takes the chunk once due, never before; the
    /// same posts, schedule and accounting as a generator thread's.
    private func generateInline(_ process: (Chunk, UInt64) -> Void, idle: (_ ready: () -> Bool, _ atMostNs: Int) -> Void) {
        let key = ByteBuffer(capacity: 32)
        var busy = 0, blocked = 0, seq = 0
        // Generation's CPU is the generators' here, not the sink stage's (this thread does both).
        var generationCpu = 0
        defer {
            stats.generatorCpuNs.add(generationCpu, ordering: .relaxed)
            stats.sinkCpuNs.subtract(generationCpu, ordering: .relaxed)
        }
        generating: while true {
            let c0 = threadCPUNanos()
            let filled = fillChunk(0, seq: seq, first: seq * cfg.chunkPosts, key: key, busy: &busy, blocked: &blocked)
            generationCpu += Int(threadCPUNanos() &- c0)
            guard let (chunk, produced, short, due) = filled else { break }
            if produced > 0 {
                while true {
                    let now = monotonicNanos()
                    if now >= due { break }
                    if stats.stop.load(ordering: .relaxed) { break generating }
                    idle({ monotonicNanos() >= due || stats.stop.load(ordering: .relaxed) }, Int(min(due - now, 100_000_000)))
                }
                stats.recordsIn.add(3 * produced, ordering: .relaxed)
                stats.payloadBytesIn.add(chunk.payloadBytes, ordering: .relaxed)
                _ = stats.lastScheduledNs.max(chunk.scheduled[produced - 1], ordering: .relaxed)
                timed(process, chunk, nextChunkDueNs(after: seq))
            }
            free[0][0].push(chunk)
            if short { break }
            seq += 1
        }
        stats.generatorBusyNs.add(busy, ordering: .relaxed)
        stats.generatorBlockedNs.add(blocked, ordering: .relaxed)
        _ = stats.generatorsEndNs.max(monotonicNanos(), ordering: .relaxed)
    }

    /// The last stage done with a chunk hands it back to its generator.
    @inline(__always)
    private func giveBack(_ c: Chunk, _ g: Int, _ stage: Int) {
        if c.holders.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            free[g][stage].push(c)
            // Rung for what the generator waits for (`takeFreeChunk`). The fence orders this push before the
            // counts read: of two stages giving back at once, at least one sees both chunks.
            atomicMemoryFence(ordering: .sequentiallyConsistent)
            if freeChunks(g) >= refill || starved(g) { generatorBells[g].ring() }
        }
    }

    @inline(__always)
    private func timed(_ process: (Chunk, UInt64) -> Void, _ c: Chunk, _ noInputBeforeNs: UInt64) {
        stats.timedSinkCall { process(c, noInputBeforeNs) }
    }

    /// When chunk `seq + 1` of the one generator is due under `--rate` (its last post's schedule; at most the
    /// `--count` or `--duration` end), else 0: the sink stage that generates takes nothing before it.
    func nextChunkDueNs(after seq: Int) -> UInt64 {
        guard let iv = intervalNs else { return 0 }
        var last = (seq + 2) * cfg.chunkPosts - 1
        if let c = cfg.count { last = max(0, min(last, c - 1)) }
        let due = t0 &+ UInt64(Double(last) * iv)
        return endNs.map { min($0, due) } ?? due
    }

    /// What the monitor saw: the samples, and whether the offered rate held.
    struct Watch {
        var timeline: [ProgressSample] = []
        /// Seconds in a row the generators made under 90% of `--rate`, and whether that lasted 3 s or more.
        var shortSeconds = 0
        var rateNotMet = false
        var maxLagSeconds = 0.0
    }

    /// Samples progress about once a second until `group` finishes. Under `--rate`, a shortfall of more than
    /// 10% for 3 samples in a row is flagged once (the sample carries a warning line).
    func monitor(group: DispatchGroup, onProgress: ((ProgressSample) -> Void)?) -> Watch {
        var w = Watch()
        // Records the chunks between the generators and a sink stage hold at most (a sink stage that generates
        // has no queue: it takes each chunk as it makes it).
        let capacity = inline ? 0 : cfg.threads * cfg.chunksPerGenerator * cfg.chunkPosts * 3
        var prevSeconds = 0.0, prevPosts = 0
        while group.wait(timeout: .now() + .milliseconds(1000)) == .timedOut {
            var depth = 0
            for rings in full { depth += rings.map(\.count).max() ?? 0 }
            stats.queueDepth.store(depth * cfg.chunkPosts * 3, ordering: .relaxed)
            let now = monotonicNanos()
            let seconds = Double(now - t0) / 1e9
            let posts = stats.recordsIn.load(ordering: .relaxed) / 3
            let achieved = seconds > prevSeconds ? Double(posts - prevPosts) / (seconds - prevSeconds) : 0
            var s = ProgressSample(
                seconds: seconds, recordsOut: stats.recordsOut.load(ordering: .relaxed),
                payloadBytesOut: stats.payloadBytesOut.load(ordering: .relaxed), queueDepth: depth * cfg.chunkPosts * 3,
                queueCapacity: capacity)
            s.totalRecords = cfg.count.map { 3 * $0 }
            s.durationSeconds = cfg.duration
            s.postsIn = posts
            if let target = cfg.rate {
                let last = stats.lastScheduledNs.load(ordering: .relaxed)
                let lag = last > 0 && now > last ? Double(now - last) / 1e9 : 0
                s.targetRate = target
                s.achievedRate = achieved
                s.scheduleLagSeconds = lag
                w.maxLagSeconds = max(w.maxLagSeconds, lag)
                let generating = stats.generatorsEndNs.load(ordering: .relaxed) == 0
                w.shortSeconds = generating && achieved < 0.9 * target ? w.shortSeconds + 1 : 0
                if w.shortSeconds >= 3 && !w.rateNotMet {
                    w.rateNotMet = true
                    s.warning = "warning: offered rate not met: target \(formatCount(target)) posts/s, achieved \(formatCount(achieved))/s for 3 s; the schedule is \(fmt(lag, 1)) s behind (latency still counts from it)"
                }
            }
            prevSeconds = seconds
            prevPosts = posts
            w.timeline.append(s)
            onProgress?(s)
        }
        return w
    }
}
