import Glibc
import KafkaWire
import Platform
import RingBuffers
import Bytes
import Synchronization

/// One broker connection's I/O thread, as librdkafka has one per broker: it writes the CRC of each stamped
/// batch, encodes and sends the Produce requests the sender hands over, reads and decodes the answers, and hands them back in the order sent.
/// The sender keeps every piece of producer state (sequences, retries, what is in flight, timeouts); this
/// thread only moves bytes, so a flood into several brokers sends, receives and (under TLS) encrypts on as
/// many cores. Each request handed over gets exactly one outcome, or the thread fails: then its last outcome
/// is `.failed`, it closes the connection and ends, and every request the sender has not seen answered is
/// the sender's to retry (after `join`, so no batch is touched by two threads).
final class BrokerIO: @unchecked Sendable {
    /// A Produce request: the batches stay owned by the sender's `SinkConnection.inFlight` until its outcome;
    /// this thread only writes the CRC of those stamped with `needsCRC`, before encoding.
    struct Request: @unchecked Sendable {
        let entries: [ProduceMessage.Entry]
        let batches: [ProducerBatch]
    }

    enum Outcome: @unchecked Sendable {
        /// The broker's answer, per partition.
        case answered([ProducePartitionResult])
        /// Sent under acks=0: no answer comes.
        case sent
        /// The connection failed: nothing more comes from this thread.
        case failed(KafkaClientError)
    }

    let version: Int16
    let acks: Int16
    let timeoutMs: Int32
    let address: String
    private let conn: BrokerConnection
    /// A duplicate of the connection's socket, open as long as this object: `abort` shuts the socket down
    /// through it, so it can never reach a descriptor number the thread's close has freed for reuse.
    private let socket: Int32
    let requests: SPSCRing<Request>
    let outcomes: SPSCRing<Outcome>
    /// Wakes this thread from its poll: the sender rings it after handing over a request, or to stop it.
    private let waker: PollWaker
    /// The sender's bell, rung after each outcome.
    private let senderBell: Doorbell
    private let closing = Atomic<Bool>(false)
    private let aborted = Atomic<Bool>(false)
    /// True once the thread has failed or ended: it takes no more requests.
    let finished = Atomic<Bool>(false)
    private var thread: StageThread?

    /// Starts the thread; from here on `conn` belongs to it. `capacity`: the most requests the sender keeps
    /// outstanding on this connection (max.in.flight), so neither ring can fill.
    init?(conn: BrokerConnection, version: Int16, acks: Int16, timeoutMs: Int32, capacity: Int, senderBell: Doorbell) {
        guard let waker = PollWaker() else { return nil }
        let socket = dup(conn.fd)
        guard socket >= 0 else { return nil }
        self.conn = conn
        self.socket = socket
        self.address = conn.address.description
        self.version = version
        self.acks = acks
        self.timeoutMs = timeoutMs
        self.waker = waker
        self.senderBell = senderBell
        requests = SPSCRing(capacity: max(1, capacity))
        outcomes = SPSCRing(capacity: max(1, capacity) + 1)
        thread = StageThread(name: "kafka-io") { [self] in run() }
    }

    /// Hands a request over (the sender keeps at most `capacity` outstanding). False when the thread has
    /// ended: the request was not taken.
    func submit(_ r: Request) -> Bool {
        if finished.load(ordering: .acquiring) { return false }
        guard requests.tryPush(r) == nil else { return false }
        waker.signal()
        return true
    }

    /// Ends the thread once every request handed over is answered (the sender's drain).
    func close() {
        closing.store(true, ordering: .releasing)
        waker.signal()
    }

    /// Ends the thread now: the socket is shut down under it (a request timeout, a producer stop). What was not
    /// answered stays the sender's.
    func abort() {
        aborted.store(true, ordering: .releasing)
        _ = Glibc.shutdown(socket, Int32(SHUT_RDWR))
        waker.signal()
    }

    /// Waits for the thread to end (after `close` or `abort`, or once it has failed).
    func join() { thread?.join() }

    deinit { _ = Glibc.close(socket) }

    private func emit(_ o: Outcome) {
        var pending: Outcome? = o
        var backoff = Backoff()
        // The ring has room for every outstanding request's outcome plus the failure; this only guards the rule.
        while let x = pending {
            pending = outcomes.tryPush(x)
            if pending != nil { senderBell.ring(); backoff.wait() }
        }
        senderBell.ring()
    }

    private func fail(_ e: KafkaClientError) {
        finished.store(true, ordering: .releasing)
        emit(.failed(e))
    }

    private func run() {
        let response = ByteBuffer(capacity: 64 * 1024)
        var waiting = 0  // requests sent and not yet answered
        var held: Request?  // a request waiting for the SASL session's renewal (nothing may be in flight then)
        defer { conn.shutdown() }
        while true {
            if aborted.load(ordering: .acquiring) {
                fail(KafkaClientError(.closed, "\(address): connection closed by the producer"))
                return
            }
            // Send what has been handed over, in order.
            while let r = held ?? requests.tryPop() {
                if waiting > 0 && conn.needsReauthentication(now: monotonicNanos()) {
                    held = r  // KIP-368: renewed by the next send once the answers are in; nothing reordered
                    break
                }
                held = nil
                for b in r.batches where b.needsCRC {
                    b.writeCRC()
                    b.needsCRC = false
                }
                do throws(KafkaClientError) {
                    let (version, acks, timeout) = (self.version, self.acks, self.timeoutMs)
                    if acks == 0 {
                        try conn.sendNoResponse(.produce, version: version) {
                            ProduceMessage.encodeRequest($0, version: version, acks: acks, timeoutMs: timeout, entries: r.entries)
                        }
                        conn.discardAvailable()  // Tansu answers even acks=0 requests
                        emit(.sent)
                    } else {
                        try conn.send(.produce, version: version) {
                            ProduceMessage.encodeRequest($0, version: version, acks: acks, timeoutMs: timeout, entries: r.entries)
                        }
                        waiting += 1
                    }
                } catch {
                    fail(error)
                    return
                }
            }
            if waiting == 0 && held == nil && requests.count == 0 && closing.load(ordering: .acquiring) {
                finished.store(true, ordering: .releasing)
                return
            }
            // Sleep until an answer comes or the sender hands something over (or asks to stop); with a request
            // to send, only look whether an answer is here.
            let toSend = held == nil && requests.count > 0
            var readable = waiting > 0 && conn.hasBufferedInput  // bytes already read (read ahead or in TLS): poll cannot see them
            if !readable {
                // The socket only while an answer is awaited: a peer's hang-up would otherwise wake every poll.
                var fds = waiting > 0 ? [pollfd(fd: conn.fd, events: Int16(POLLIN), revents: 0)] : []
                waker.poll(&fds, timeoutNs: toSend ? 0 : 50_000_000)
                readable = waiting > 0 && fds[0].revents != 0
            }
            guard readable else { continue }
            // Take every answer already here (each read blocks only until its frame is complete).
            repeat {
                let results: [ProducePartitionResult]
                do throws(KafkaClientError) {
                    let resp = try conn.receive(into: response)
                    var rd = resp.reader
                    do { results = try ProduceMessage.decodeResponse(&rd, version: resp.version) } catch {
                        throw KafkaClientError(.protocolViolation, "\(address): bad Produce response: \(error)")
                    }
                } catch {
                    fail(error)
                    return
                }
                waiting -= 1
                emit(.answered(results))
                var p = pollfd(fd: conn.fd, events: Int16(POLLIN), revents: 0)
                if waiting == 0 || aborted.load(ordering: .relaxed) || (!conn.hasBufferedInput && poll(&p, 1, 0) <= 0) { break }
            } while true
        }
    }
}
