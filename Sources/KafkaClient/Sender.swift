import Bytes
import Codecs
import KafkaWire
import RingBuffers
import Synchronization

#if canImport(Glibc)
import Glibc
#endif
import Platform

/// Metadata and a control connection, shared by the owner thread (partition counts, topic creation)
/// and the sender thread (leaders). Touched per metadata refresh, never per record.
struct ControlState {
    var conn: BrokerConnection?
    var brokers: [Int32: BrokerAddress] = [:]
    var topics: [String: [PartitionInfo]] = [:]
}

struct PartitionKey: Hashable {
    var topic: String
    var partition: Int32
}

/// The sender thread's state for one topic-partition.
final class PartitionState {
    let key: PartitionKey
    var leader: Int32 = -1
    /// Batches waiting to be sent, in order (retries go back in by sequence).
    var queue = FIFO<ProducerBatch>()
    var inFlight = 0
    var nextSequence: Int32 = 0

    init(_ key: PartitionKey) { self.key = key }

    var waiting: Int { queue.count }
    var head: ProducerBatch? { queue.first }

    func popHead() -> ProducerBatch? { queue.popFirst() }

    /// Puts a batch back for another attempt, before every batch that came after it (by sequence; a batch
    /// without one goes first).
    func requeue(_ b: ProducerBatch) {
        queue.insert(b) { b.baseSequence >= 0 && $0.baseSequence >= 0 && $0.baseSequence < b.baseSequence }
    }
}

/// A connection the sender owns, with the requests in flight on it (answered in order). With an I/O thread
/// (`io`), the connection is that thread's: the sender hands requests over and takes the outcomes back.
final class SinkConnection {
    let nodeId: Int32
    let conn: BrokerConnection
    let version: Int16
    let io: BrokerIO?
    var inFlight: [[ProducerBatch]] = []
    let response = ByteBuffer(capacity: 64 * 1024)

    init(nodeId: Int32, conn: BrokerConnection, version: Int16, io: BrokerIO?) {
        self.nodeId = nodeId
        self.conn = conn
        self.version = version
        self.io = io
    }
}

/// The producer's network side: one thread that owns every piece of producer state, one connection per
/// broker with pipelined Produce requests, each with its own I/O thread (`BrokerIO`) unless the sender
/// does its own I/O (`ProducerConfiguration.ioThreads`).
final class Sender: @unchecked Sendable {
    let config: ProducerConfiguration
    let stats: ProducerStats
    let stop = Atomic<Bool>(false)
    /// Rung by the producer when it hands over a batch or closes: an idle sender sleeps on it.
    let wake = Doorbell()
    /// How `wake` reaches the sender while it sleeps in `poll` on its brokers' sockets.
    let waker: PollWaker
    /// The poll set of `sleepOnSockets` and `awaitResponses` and the connections behind it, kept between calls
    /// (no allocation per turn; sender-thread state, with no runtime exclusivity check at each use).
    @exclusivity(unchecked) private var pollSet: [pollfd] = []
    @exclusivity(unchecked) private var pollSinks: [SinkConnection] = []
    /// The partitions `dispatch` sends from this turn, grouped by leader (kept between turns: a dictionary
    /// built per turn cost an allocation and a resize each time).
    @exclusivity(unchecked) private var sendable: [PartitionState] = []
    /// Rung after each delivery report: a producer owner waiting for reports sleeps on it.
    let reportBell: Doorbell
    /// Ring `reportBell` when reports are pushed (false: the producer's `quietReports`, except while it waits).
    let reportsWake = Atomic<Bool>(true)
    /// Guarded by `controlLock` (a plain lock, not a `Mutex`: the state holds a connection, which is not Sendable).
    var control: ControlState
    let controlLock = ConditionLock()

    // Sender-thread state.
    var producerId: Int64 = -1
    var producerEpoch: Int16 = -1
    var parts: [PartitionKey: PartitionState] = [:]
    var sinks: [Int32: SinkConnection] = [:]
    var reconnectAfter: [Int32: UInt64] = [:]
    var needMetadata = false
    var nextMetadataNs: UInt64 = 0
    var bumpPending = false
    var nextBumpNs: UInt64 = 0
    var totalInFlight = 0
    var reportsUnrung = false
    var outbox: SPSCRing<DeliveryReport>!
    let codec = Codec()
    /// `compress`'s spare output buffer (sender-thread state).
    var compressSpare: ByteBuffer?
    /// The owner runs this sender's turns itself (`ProducerConfiguration.inlineSender`): no thread of its own,
    /// and its delivery reports wait in `inlineReports` (unbounded, so a turn never waits for its owner).
    var inline: Bool { config.inlineSender }
    var inlineReports = FIFO<DeliveryReport>()

    init(config: ProducerConfiguration, stats: ProducerStats, reportBell: Doorbell) throws(KafkaClientError) {
        self.config = config
        self.stats = stats
        self.reportBell = reportBell
        guard let waker = PollWaker() else { throw KafkaClientError(.config, "cannot create an eventfd: \(String(cString: strerror(errno)))") }
        self.waker = waker
        wake.wakes { waker.signal() }
        var state = ControlState()
        var lastError: KafkaClientError?
        for addr in config.bootstrap {
            do {
                state.conn = try BrokerConnection(addr, clientId: config.clientId, timeoutMs: config.requestTimeoutMs, security: config.security)
                break
            } catch { lastError = error }
        }
        guard state.conn != nil else {
            throw lastError ?? KafkaClientError(.connect, "no bootstrap broker reachable")
        }
        control = state
        try refreshMetadata(topics: [])
        if config.idempotence { try initProducerId() }
    }

    // MARK: control plane (any thread, under the control lock)

    func withControl<R>(_ body: (inout ControlState) throws(KafkaClientError) -> R) throws(KafkaClientError) -> R {
        controlLock.lock()
        defer { controlLock.unlock() }
        let r: Result<R, KafkaClientError> = { (st: inout ControlState) in
            do throws(KafkaClientError) {
                if st.conn == nil || !(st.conn!.isOpen) {
                    st.conn = nil
                    var last: KafkaClientError?
                    let candidates = Array(st.brokers.values) + config.bootstrap
                    for addr in candidates {
                        do throws(KafkaClientError) {
                            st.conn = try BrokerConnection(addr, clientId: config.clientId, timeoutMs: config.requestTimeoutMs, security: config.security)
                            break
                        } catch { last = error }
                    }
                    if st.conn == nil { throw last ?? KafkaClientError(.connect, "no broker reachable") }
                }
                return .success(try body(&st))
            } catch {
                return .failure(error)
            }
        }(&control)
        return try r.get()
    }

    func refreshMetadata(topics: [String]?) throws(KafkaClientError) {
        stats.metadataRefreshes.add(1, ordering: .relaxed)
        try withControl { (st) throws(KafkaClientError) in
            let c = st.conn!
            let v = try c.requireVersion(.metadata)
            let resp = try c.roundTrip(.metadata, version: v) { MetadataMessage.encodeRequest($0, version: v, topics: topics) }
            var r = resp.reader
            let m: MetadataMessage.Response
            do { m = try MetadataMessage.decodeResponse(&r, version: v) } catch {
                c.shutdown()
                throw KafkaClientError(.protocolViolation, "\(c.address): bad Metadata response: \(error)")
            }
            for b in m.brokers { st.brokers[b.nodeId] = BrokerAddress(host: b.host, port: Int(b.port)) }
            for t in m.topics where !t.errorCode.isError && !t.partitions.isEmpty { st.topics[t.name] = t.partitions }
        }
    }

    func partitionCount(_ topic: String) throws(KafkaClientError) -> Int {
        if let n = try withControl({ (st) throws(KafkaClientError) in st.topics[topic]?.count }) { return n }
        for attempt in 0..<10 {
            try refreshMetadata(topics: [topic])
            if let n = try withControl({ (st) throws(KafkaClientError) in st.topics[topic]?.count }) { return n }
            usleep(UInt32(min(100 * (attempt + 1), 1000)) * 1000)
        }
        throw KafkaClientError(.broker(.unknownTopicOrPartition), "topic \(topic) does not exist on the cluster (create it, or pass --create-topics)")
    }

    func createTopics(_ names: [String], partitions: Int32, replication: Int16) throws(KafkaClientError) {
        try withControl { (st) throws(KafkaClientError) in
            let c = st.conn!
            let v = try c.requireVersion(.createTopics)
            let resp = try c.roundTrip(.createTopics, version: v) {
                CreateTopicsMessage.encodeRequest($0, version: v, topics: names.map { ($0, partitions, replication) }, timeoutMs: 30_000)
            }
            var r = resp.reader
            let results: [(name: String, error: KafkaErrorCode, message: String?)]
            do { results = try CreateTopicsMessage.decodeResponse(&r, version: v) } catch {
                throw KafkaClientError(.protocolViolation, "bad CreateTopics response: \(error)")
            }
            for x in results where x.error.isError && x.error != .topicAlreadyExists {
                throw KafkaClientError(.broker(x.error), "cannot create topic \(x.name): \(x.error)\(x.message.map { ": \($0)" } ?? "")")
            }
        }
        try refreshMetadata(topics: names)
    }

    func initProducerId() throws(KafkaClientError) {
        let pid = producerId, epoch = producerEpoch
        let result = try withControl { (st) throws(KafkaClientError) -> InitProducerIdMessage.Response in
            let c = st.conn!
            let v = try c.requireVersion(.initProducerId)
            let resp = try c.roundTrip(.initProducerId, version: v) {
                InitProducerIdMessage.encodeRequest($0, version: v, producerId: pid, producerEpoch: epoch)
            }
            var r = resp.reader
            do { return try InitProducerIdMessage.decodeResponse(&r, version: v) } catch {
                throw KafkaClientError(.protocolViolation, "bad InitProducerId response: \(error)")
            }
        }
        guard !result.errorCode.isError else {
            throw KafkaClientError(.broker(result.errorCode), "InitProducerId failed: \(result.errorCode)")
        }
        producerId = result.producerId
        producerEpoch = result.producerEpoch
    }

    // MARK: sender thread

    /// The sender thread's loop. `inboxes`: the producer's ring, or one ring per compression thread.
    func run(inboxes: [SPSCRing<ProducerBatch>], outbox: SPSCRing<DeliveryReport>) {
        self.outbox = outbox
        func anyWaiting() -> Bool { inboxes.contains { $0.count > 0 } }
        while true {
            let (progress, done) = turn(inboxes)
            if done { break }
            // Idle: sleep in one poll on the sockets with requests in flight and on the producer's doorbell, until
            // an answer comes, the producer hands over a batch, or the next timer is due (a retry's backoff, a
            // metadata refresh, an epoch bump; at most 50 ms, which also paces the request timeouts).
            if !progress {
                wake.wait(timeoutNs: idleWaitNs(monotonicNanos()), until: { anyWaiting() || Self.drained(inboxes) || stop.load(ordering: .relaxed) || outcomesWaiting() }) { ns in
                    sleepOnSockets(ns)
                }
            }
        }
        finish()
    }

    /// One turn of the sender's work, never sleeping: takes the batches handed over, refreshes leaders, bumps
    /// the epoch, expires, sends what it may and handles the answers already here. `progress`: something
    /// moved; `done`: every inbox is closed and drained and every batch has its report (or `stop` was set:
    /// then every batch left has failed).
    func turn(_ inboxes: [SPSCRing<ProducerBatch>]) -> (progress: Bool, done: Bool) {
        var got = false
        for inbox in inboxes {
            while let b = inbox.tryPop() {
                got = true
                let key = PartitionKey(topic: b.topic, partition: b.partition)
                let st = parts[key] ?? {
                    let s = PartitionState(key)
                    parts[key] = s
                    needMetadata = true
                    return s
                }()
                st.queue.append(b)
            }
        }
        let now = monotonicNanos()
        if needMetadata && now >= nextMetadataNs { refreshLeaders(now) }
        if bumpPending && totalInFlight == 0 && now >= nextBumpNs { bumpEpoch(now) }
        expire(now)
        let sent = dispatch(now)
        let received = awaitResponses()
        timeOutRequests(monotonicNanos())
        announceReports()
        if Self.drained(inboxes) && totalInFlight == 0 && parts.values.allSatisfy({ $0.waiting == 0 }) {
            return (true, true)
        }
        if stop.load(ordering: .relaxed) {
            for s in sinks.values { if let io = s.io { io.abort(); io.join() } }  // no batch is read after its report
            failEverything("producer closed")
            return (true, true)
        }
        return (got || sent || received, false)
    }

    /// Every inbox closed and empty: nothing more will be handed over.
    static func drained(_ inboxes: [SPSCRing<ProducerBatch>]) -> Bool { inboxes.allSatisfy { $0.isClosed && $0.count == 0 } }

    /// Sleeps until a socket this sender reads itself has an answer, `waker` is signalled (the producer's
    /// doorbell, or an I/O thread's outcome) or `ns` pass.
    ///
    /// `answersCanWait` (an owner that will call again soon, by its own schedule): a connection that stamps
    /// arrivals and still has room for another request does not end the sleep; its answers are read at the
    /// owner's next turn and keep the time they came. A paced flood then wakes once per tick, not twice.
    func sleepOnSockets(_ ns: Int, answersCanWait: Bool = false) {
        pollSet.removeAll(keepingCapacity: true)
        for s in sinks.values where s.io == nil && !s.inFlight.isEmpty {
            if answersCanWait && s.conn.stampsArrivals && hasRoom(s) { continue }
            if s.conn.hasBufferedInput { return }  // bytes already read: poll cannot see them
            pollSet.append(pollfd(fd: s.conn.fd, events: Int16(POLLIN), revents: 0))
        }
        waker.poll(&pollSet, timeoutNs: ns)
    }

    /// After the last turn: ends the I/O threads and closes the connections.
    func finish() {
        announceReports()
        for s in sinks.values {
            if let io = s.io { io.close(); io.join() }
            s.conn.shutdown()
        }
        sinks.removeAll()
    }

    /// True when an I/O thread has an outcome for the sender to take.
    func outcomesWaiting() -> Bool { sinks.values.contains { ($0.io?.outcomes.count ?? 0) > 0 } }

    /// How long an idle sender may sleep: until the earliest retry backoff, metadata refresh or epoch bump
    /// that is waiting (at least 0.1 ms), else 50 ms; the producer's doorbell ends it sooner.
    func idleWaitNs(_ now: UInt64) -> Int {
        var due = UInt64.max
        for st in parts.values { if let h = st.head { due = min(due, h.notBeforeNs) } }
        if needMetadata { due = min(due, nextMetadataNs) }
        if bumpPending { due = min(due, nextBumpNs) }
        let limit = requestTimeoutNs
        for s in sinks.values { if let b = s.inFlight.first?.first { due = min(due, b.sentNs &+ limit) } }
        return idleSleepNs(until: due, now: now)
    }

    var requestTimeoutNs: UInt64 { UInt64(max(1, config.requestTimeoutMs)) * 1_000_000 }

    /// A broker that has not answered a Produce request within `request.timeout.ms` loses its connection,
    /// as librdkafka does: the batches in flight on it go back for a retry (idempotence keeps that exact),
    /// or fail once past the delivery timeout. Without this a stalled broker held a flood, and its drain, forever.
    func timeOutRequests(_ now: UInt64) {
        let limit = requestTimeoutNs
        // Gathered first (connectionLost removes from `sinks`); nothing is allocated while none is late.
        var late: [SinkConnection] = []
        for s in sinks.values { if let b = s.inFlight.first?.first, now &- b.sentNs > limit { late.append(s) } }
        for s in late {
            connectionLost(s, KafkaClientError(.timeout, "\(s.conn.address): no answer to a Produce request within \(config.requestTimeoutMs) ms"))
        }
    }

    /// `ackNs`: when the broker's answer came (0: now).
    func report(_ b: ProducerBatch, offset: Int64, error: KafkaClientError?, ackNs: UInt64 = 0) {
        let r = DeliveryReport(batch: b, baseOffset: offset, error: error, retries: max(0, b.attempts - 1),
                               ackNs: ackNs != 0 ? ackNs : monotonicNanos())
        if inline {
            inlineReports.append(r)
            return
        }
        var pending: DeliveryReport? = r
        var backoff = Backoff()
        while let x = pending {
            pending = outbox.tryPush(x)
            if pending != nil { reportBell.ring(); backoff.wait() }
        }
        reportsUnrung = true
    }

    /// Rings the owner once for the reports made since the last ring (once per loop, not per batch: an owner
    /// woken for the first report of a response would sleep again and wake for each of the others).
    func announceReports() {
        guard reportsUnrung else { return }
        // Pairs with the producer's store of `reportsWake` before it checks for reports (`awaitReport`).
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        guard reportsWake.load(ordering: .relaxed) else { return }  // quiet: the owner takes them at its next poll
        reportsUnrung = false
        reportBell.ring()
    }

    func refreshLeaders(_ now: UInt64) {
        let topics = Array(Set(parts.keys.map(\.topic)))
        do {
            try refreshMetadata(topics: topics)
            let snapshot = try withControl { (st) throws(KafkaClientError) in st.topics }
            var missing = false
            for (k, st) in parts {
                if let infos = snapshot[k.topic], let info = infos.first(where: { $0.partition == k.partition }), info.leader >= 0, !info.errorCode.isError {
                    st.leader = info.leader
                } else {
                    st.leader = -1
                    missing = true
                }
            }
            needMetadata = missing
        } catch {
            needMetadata = true
        }
        nextMetadataNs = now + UInt64(config.retryBackoffMs) * 1_000_000
    }

    /// Fails queued batches older than the delivery timeout.
    func expire(_ now: UInt64) {
        let limit = UInt64(config.deliveryTimeoutMs) * 1_000_000
        for st in parts.values {
            while let b = st.head, now &- b.createdNs > limit {
                _ = st.popHead()
                report(b, offset: -1, error: KafkaClientError(.timeout, "delivery timeout: not acknowledged within \(config.deliveryTimeoutMs) ms after \(b.attempts) attempts"))
            }
        }
    }

    func sink(for node: Int32, now: UInt64) -> SinkConnection? {
        if let s = sinks[node], let io = s.io {
            // The I/O thread holds requests back for a SASL renewal itself. One that has ended has said why:
            // take its outcomes (the failure ends the connection); one that closed without a failure is lost too.
            if !io.finished.load(ordering: .acquiring) { return s }
            _ = collect(s)
            if sinks[node] === s { connectionLost(s, KafkaClientError(.closed, "connection to \(io.address) closed")) }
        } else if let s = sinks[node], s.conn.isOpen {
            // A SASL session due for renewal takes no new requests until those in flight are answered;
            // then the next send renews it first (KIP-368): nothing reordered, nothing lost.
            if !s.inFlight.isEmpty && s.conn.needsReauthentication(now: now) { return nil }
            return s
        } else if let s = sinks[node] {
            connectionLost(s, KafkaClientError(.closed, "connection to \(s.conn.address) closed"))
        }
        if let after = reconnectAfter[node], now < after { return nil }
        guard let addr = try? withControl({ (st) throws(KafkaClientError) in st.brokers[node] }) else {
            needMetadata = true
            return nil
        }
        do {
            let c = try BrokerConnection(addr, clientId: config.clientId, timeoutMs: config.requestTimeoutMs, security: config.security)
            let v = try c.requireVersion(.produce)
            let io = config.effectiveIOThreads
                ? BrokerIO(conn: c, version: v, acks: config.acks, timeoutMs: config.requestTimeoutMs, capacity: inFlightLimit, senderBell: wake)
                : nil
            let s = SinkConnection(nodeId: node, conn: c, version: v, io: io)
            sinks[node] = s
            reconnectAfter[node] = nil
            return s
        } catch {
            stats.reconnects.add(1, ordering: .relaxed)
            reconnectAfter[node] = now + UInt64(config.retryBackoffMs) * 1_000_000
            needMetadata = true
            if !error.isRetriable {
                // A broker we cannot speak to: fail its partitions' batches with the reason.
                for st in parts.values where st.leader == node {
                    while let b = st.popHead() { report(b, offset: -1, error: error) }
                }
            }
            return nil
        }
    }

    /// Requests a connection may have in flight, and a partition too: `max.in.flight`. `validate` holds it to
    /// at most 5 with idempotence (a broker keeps the sequences of a producer's last five batches per partition).
    var inFlightLimit: Int { config.maxInFlight }

    /// A connection that can take another request now.
    func hasRoom(_ s: SinkConnection) -> Bool { s.inFlight.count < inFlightLimit }

    /// Builds and sends Produce requests: per broker up to max.in.flight, one batch per partition each.
    func dispatch(_ now: UInt64) -> Bool {
        if bumpPending { return false }
        let perPartition = inFlightLimit
        sendable.removeAll(keepingCapacity: true)
        for st in parts.values where st.waiting > 0 && st.leader >= 0 && st.inFlight < perPartition {
            if let h = st.head, h.notBeforeNs > now { continue }
            sendable.append(st)
        }
        if sendable.isEmpty { return false }
        sendable.sort { $0.leader < $1.leader }
        var sentAny = false
        var runStart = 0
        while runStart < sendable.count {
            let node = sendable[runStart].leader
            var runEnd = runStart + 1
            while runEnd < sendable.count && sendable[runEnd].leader == node { runEnd += 1 }
            defer { runStart = runEnd }
            guard let s = sink(for: node, now: now) else { continue }
            var candidates = Array(sendable[runStart..<runEnd])
            while hasRoom(s) && !candidates.isEmpty {
                var batches: [ProducerBatch] = []
                var bytes = 0
                var rest: [PartitionState] = []
                for st in candidates {
                    guard let h = st.head, h.notBeforeNs <= now, st.inFlight < perPartition, bytes < 8 << 20 else { continue }
                    guard let b = st.popHead() else { continue }
                    if let e = stamp(b, st, deferCRC: s.io != nil) {
                        report(b, offset: -1, error: e)
                        continue
                    }
                    batches.append(b)
                    bytes += b.bytes.count
                    st.inFlight += 1
                    if st.waiting > 0 { rest.append(st) }
                }
                if batches.isEmpty { break }
                candidates = rest
                batches.sort { $0.topic < $1.topic }
                let acks = config.acks
                let timeout = config.requestTimeoutMs
                let entries = batches.map { ProduceMessage.Entry(topic: $0.topic, partition: $0.partition, batch: $0.bytes.bytes) }
                if let io = s.io {
                    // The batches stay in `inFlight` (and their bytes untouched) until the thread's outcome.
                    for b in batches { b.sentNs = now }
                    s.inFlight.append(batches)
                    totalInFlight += 1
                    if !io.submit(BrokerIO.Request(entries: entries, batches: batches)) {
                        // The thread has ended: its failure, then these batches' retries, come from `collect`.
                        break
                    }
                    stats.requests.add(1, ordering: .relaxed)
                    sentAny = true
                    continue
                }
                do {
                    if acks == 0 {
                        try s.conn.sendNoResponse(.produce, version: s.version) {
                            ProduceMessage.encodeRequest($0, version: s.version, acks: acks, timeoutMs: timeout, entries: entries)
                        }
                        discardIncoming(s)
                        for b in batches {
                            parts[PartitionKey(topic: b.topic, partition: b.partition)]!.inFlight -= 1
                            report(b, offset: -1, error: nil)
                        }
                    } else {
                        try s.conn.send(.produce, version: s.version) {
                            ProduceMessage.encodeRequest($0, version: s.version, acks: acks, timeoutMs: timeout, entries: entries)
                        }
                        for b in batches { b.sentNs = now }
                        s.inFlight.append(batches)
                        totalInFlight += 1
                    }
                    stats.requests.add(1, ordering: .relaxed)
                    sentAny = true
                } catch {
                    for b in batches { parts[PartitionKey(topic: b.topic, partition: b.partition)]!.inFlight -= 1 }
                    for b in batches { retry(b, error, now: now) }
                    connectionLost(s, error)
                    break
                }
            }
        }
        return sentAny
    }

    /// Compresses the records region of a batch sealed uncompressed, and marks it compressed (the CRC is
    /// written later, with the producer fields). On a compression thread, or on the sender before a first send.
    /// `spare`: the compressing thread's buffer for the next output, when large enough; the uncompressed buffer
    /// this batch lets go becomes the next spare (a flood then compresses into memory already faulted in, not a
    /// fresh batch-sized block per batch).
    static func compress(_ b: ProducerBatch, _ compression: CompressionCodec, level: Int32?, codec: Codec,
                         spare: inout ByteBuffer?) -> KafkaClientError? {
        guard !b.compressed else { return nil }
        if compression != .none {
            let src = b.bytes
            let need = BatchLayout.headerSize + Codec.compressBound(src.count - BatchLayout.headerSize, codec: compression, level: level)
            let out: ByteBuffer
            if let s = spare, s.capacity >= need {
                s.reset()
                out = s
            } else {
                out = ByteBuffer(capacity: need)
            }
            spare = nil
            out.append(UnsafeRawBufferPointer(start: src.base, count: BatchLayout.headerSize))
            do {
                try codec.compress(
                    UnsafeRawBufferPointer(start: src.base + BatchLayout.headerSize, count: src.count - BatchLayout.headerSize),
                    codec: compression, level: level, into: out)
            } catch {
                return KafkaClientError(.config, "compression failed: \(error)")
            }
            let attrs = Int16(bigEndian: out.base.loadUnaligned(fromByteOffset: BatchLayout.attributes, as: Int16.self))
            out.storeBigEndian((attrs & ~0x07) | compression.rawValue, at: BatchLayout.attributes)
            out.storeBigEndian(Int32(out.count - BatchLayout.logOverhead), at: BatchLayout.batchLength)
            b.bytes = out
            b.needsCRC = true
            var old = consume src
            if isKnownUniquelyReferenced(&old) { spare = old }
        }
        b.compressed = true
        return nil
    }

    /// Before a batch's first send: compresses its records region (the owner sealed it uncompressed), and
    /// under idempotence writes producer id, epoch and sequence; then the CRC, or with `deferCRC` leaves it
    /// to the connection's I/O thread (`needsCRC` stays set until that thread has written it, so a batch that
    /// comes back unsent gets it on its next send). Retries keep their sequence: that is what lets the broker
    /// drop duplicates. Returns an error if compression failed.
    func stamp(_ b: ProducerBatch, _ st: PartitionState, deferCRC: Bool) -> KafkaClientError? {
        b.attempts += 1
        var dirty = false
        if let e = Self.compress(b, config.compression, level: config.compressionLevel, codec: codec, spare: &compressSpare) { return e }
        if b.needsCRC {
            b.needsCRC = false
            dirty = true
        }
        if config.idempotence && b.baseSequence < 0 {
            b.baseSequence = st.nextSequence
            st.nextSequence = st.nextSequence &+ Int32(b.records)
            if st.nextSequence < 0 { st.nextSequence = st.nextSequence & Int32.max }
            let buf = b.bytes
            buf.storeBigEndian(producerId, at: BatchLayout.producerId)
            buf.storeBigEndian(producerEpoch, at: BatchLayout.producerEpoch)
            buf.storeBigEndian(b.baseSequence, at: BatchLayout.baseSequence)
            dirty = true
        }
        if dirty {
            if deferCRC { b.needsCRC = true } else { b.writeCRC() }
        }
        return nil
    }

    /// Tansu answers even acks=0 produce requests: read and drop whatever has arrived.
    func discardIncoming(_ s: SinkConnection) { s.conn.discardAvailable() }

    /// Handles every answer already here (it never sleeps: the run loop sleeps on the sockets when idle).
    func awaitResponses() -> Bool {
        var any = false
        for s in sinks.values where s.io != nil { if collect(s) { any = true } }
        // The connections this sender reads itself, in `pollSinks` and `pollSet` (kept between calls).
        pollSinks.removeAll(keepingCapacity: true)
        pollSet.removeAll(keepingCapacity: true)
        var buffered = false
        for s in sinks.values where s.io == nil && !s.inFlight.isEmpty {
            pollSinks.append(s)
            pollSet.append(pollfd(fd: s.conn.fd, events: Int16(POLLIN), revents: 0))
            // Bytes already read ahead (or decrypted and waiting in TLS) are not seen by poll.
            if s.conn.hasBufferedInput { buffered = true }
        }
        guard !pollSinks.isEmpty else { return any }
        let n = poll(&pollSet, nfds_t(pollSet.count), 0)
        guard n > 0 || buffered else { return any }
        var ready = 0
        for i in pollSinks.indices where pollSet[i].revents != 0 || pollSinks[i].conn.hasBufferedInput {
            pollSinks.swapAt(ready, i)
            ready += 1
        }
        for s in pollSinks[..<ready] {
            // Take every response already here (each read blocks only until its frame is complete).
            repeat {
                handleOneResponse(s)
                any = true
                var p = pollfd(fd: s.conn.fd, events: Int16(POLLIN), revents: 0)
                if s.inFlight.isEmpty || !s.conn.isOpen || (!s.conn.hasBufferedInput && poll(&p, 1, 0) <= 0) { break }
            } while true
        }
        return any
    }

    /// Takes the outcomes an I/O thread has handed back, in order: answers are handled as the sender's own
    /// reads are; a failure ends the connection (its unanswered batches are retried). True when any came.
    func collect(_ s: SinkConnection, answersOnly: Bool = false) -> Bool {
        guard let io = s.io else { return false }
        var any = false
        while let o = io.outcomes.tryPop() {
            any = true
            switch o {
            case .answered(let results):
                handleAnswer(s, results, now: monotonicNanos())
            case .sent:
                let batches = s.inFlight.removeFirst()
                totalInFlight -= 1
                for b in batches {
                    parts[PartitionKey(topic: b.topic, partition: b.partition)]!.inFlight -= 1
                    report(b, offset: -1, error: nil)
                }
            case .failed(let e):
                if !answersOnly { connectionLost(s, e) }
                return true
            }
        }
        return any
    }

    func handleOneResponse(_ s: SinkConnection) {
        let now = monotonicNanos()
        let results: [ProducePartitionResult]
        var arrivedNs: UInt64 = 0
        do throws(KafkaClientError) {
            let resp = try s.conn.receive(into: s.response)
            arrivedNs = resp.arrivedNs
            var r = resp.reader
            do { results = try ProduceMessage.decodeResponse(&r, version: resp.version) } catch {
                s.conn.shutdown()
                throw KafkaClientError(.protocolViolation, "\(s.conn.address): bad Produce response: \(error)")
            }
        } catch {
            connectionLost(s, error)
            return
        }
        handleAnswer(s, results, now: now, arrivedNs: arrivedNs)
    }

    /// The broker's answer to the oldest request in flight on `s`; `arrivedNs`: when it reached the socket
    /// (0: unknown, now), which ends the batches' latency even when the answer is read later.
    func handleAnswer(_ s: SinkConnection, _ results: [ProducePartitionResult], now: UInt64, arrivedNs: UInt64 = 0) {
        let batches = s.inFlight.removeFirst()
        totalInFlight -= 1
        for b in batches {
            let key = PartitionKey(topic: b.topic, partition: b.partition)
            let st = parts[key]!
            st.inFlight -= 1
            guard let res = results.first(where: { $0.topic == b.topic && $0.partition == b.partition }) else {
                retry(b, KafkaClientError(.protocolViolation, "\(s.conn.address) did not answer for \(b.topic)-\(b.partition)"), now: now)
                continue
            }
            let code = res.errorCode
            if !code.isError || code == .duplicateSequence {
                // Never before the request went (a stamp moved by a wall-clock step).
                report(b, offset: res.baseOffset, error: nil, ackNs: arrivedNs == 0 ? 0 : max(arrivedNs, b.sentNs))
                continue
            }
            let err = KafkaClientError(.broker(code), "\(b.topic)-\(b.partition): \(code)\(res.errorMessage.map { " (\($0))" } ?? "")")
            if config.idempotence && (code == .outOfOrderSequence || code == .unknownProducerId || code == .invalidProducerEpoch) {
                // A retry of an earlier batch is ahead of this one: wait for it. Otherwise the broker lost our
                // sequence: bump the epoch and resend everything unacknowledged from sequence 0.
                let earlierPending = st.queue.elements.contains { $0.baseSequence >= 0 && $0.baseSequence < b.baseSequence }
                if !earlierPending { bumpPending = true }
                retry(b, err, now: now, countAgainstLimit: false)
                continue
            }
            if code.isRetriable {
                if code == .notLeaderOrFollower || code == .unknownTopicOrPartition || code == .leaderNotAvailable {
                    needMetadata = true
                    nextMetadataNs = 0
                }
                retry(b, err, now: now)
            } else {
                report(b, offset: -1, error: err)
            }
        }
    }

    func retry(_ b: ProducerBatch, _ err: KafkaClientError, now: UInt64, countAgainstLimit: Bool = true) {
        let key = PartitionKey(topic: b.topic, partition: b.partition)
        guard let st = parts[key] else { return }
        if !err.isRetriable && countAgainstLimit {
            report(b, offset: -1, error: err)
            return
        }
        if now &- b.createdNs > UInt64(config.deliveryTimeoutMs) * 1_000_000 {
            report(b, offset: -1, error: KafkaClientError(err.kind, "delivery timeout after \(b.attempts) attempts; last error: \(err.message)"))
            return
        }
        stats.retries.add(1, ordering: .relaxed)
        stats.retriesByReason.withLock { $0[err.reason, default: 0] += 1 }
        b.notBeforeNs = now + UInt64(config.retryPolicy.delayMs(attempt: b.attempts) * 1e6)
        st.requeue(b)
    }

    func connectionLost(_ s: SinkConnection, _ err: KafkaClientError) {
        if let io = s.io {
            // Stop the thread first, then take the answers it had already handed back: only what was not
            // answered is retried, and no batch is read by that thread any more.
            io.abort()
            io.join()
            _ = collect(s, answersOnly: true)
        }
        let now = monotonicNanos()
        s.conn.shutdown()
        sinks[s.nodeId] = nil
        stats.reconnects.add(1, ordering: .relaxed)
        reconnectAfter[s.nodeId] = now + UInt64(config.retryBackoffMs) * 1_000_000
        needMetadata = true
        // Every batch in flight has an unknown outcome: retry it (idempotence makes that safe).
        for batches in s.inFlight.reversed() {
            for b in batches {
                parts[PartitionKey(topic: b.topic, partition: b.partition)]!.inFlight -= 1
                retry(b, KafkaClientError(err.kind == .timeout ? .timeout : .io, err.message), now: now)
            }
            totalInFlight -= 1
        }
        s.inFlight.removeAll()
    }

    func bumpEpoch(_ now: UInt64) {
        nextBumpNs = now + UInt64(config.retryBackoffMs) * 1_000_000
        do {
            try initProducerId()
        } catch {
            // A broker without epoch bumps (KIP-360) refuses to bump an existing id: start a new producer id
            // instead; its sequences begin at 0 as well. Failing that, try again on the next turn of the loop
            // (batches stay queued until their delivery timeout).
            let (pid, epoch) = (producerId, producerEpoch)
            producerId = -1
            producerEpoch = -1
            do { try initProducerId() } catch {
                producerId = pid
                producerEpoch = epoch
                return
            }
        }
        bumpPending = false
        stats.epochBumps.add(1, ordering: .relaxed)
        for st in parts.values {
            st.nextSequence = 0
            for q in st.queue.elements { q.baseSequence = -1 }
        }
    }

    func failEverything(_ why: String) {
        for st in parts.values {
            while let b = st.popHead() { report(b, offset: -1, error: KafkaClientError(.closed, why)) }
        }
        for s in sinks.values {
            for batches in s.inFlight { for b in batches { report(b, offset: -1, error: KafkaClientError(.closed, why)) } }
        }
    }
}
