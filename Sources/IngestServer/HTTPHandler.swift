import Dispatch
import NIOCore
import NIOHTTP1
import Platform
import Synchronization

/// One answer: status, content type, body and extra headers.
struct Reply: Sendable {
    var status: Int
    var contentType: String
    var body: [UInt8]
    var headers: [(String, String)]

    init(status: Int, contentType: String, body: [UInt8], headers: [(String, String)]) {
        self.status = status
        self.contentType = contentType
        self.body = body
        self.headers = headers
    }

    init(status: Int, contentType: String, body: String, headers: [(String, String)]) {
        self.init(status: status, contentType: contentType, body: Array(body.utf8), headers: headers)
    }
}

/// How a request is answered, exactly once: with a reply now, or with one made later on the connection's
/// event loop (`later`: the writer thread hands over the outcomes; the event loop formats them).
struct Responder: Sendable {
    let send: @Sendable (@escaping @Sendable () -> Reply) -> Void

    func callAsFunction(_ r: Reply) { send { r } }
    func later(_ make: @escaping @Sendable () -> Reply) { send(make) }
}

/// The HTTP/1.1 side of `pinbench serve`, straight on SwiftNIO (no async hops): `IngestRequestDecoder` in
/// front hands over complete requests (bodies over the limit read and dropped, then answered 413); each is
/// routed synchronously on the event loop, and the answer is written from the event loop when the writer has
/// stored the records, as one pre-encoded buffer (one pipeline hop and one write per answer). Pipelining:
/// while a request waits for its answer, later requests are queued (socket reads are held back once 16
/// wait), so answers leave in request order. Idle connections and unfinished requests are closed by the
/// idle timer.
final class IngestHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = IngestDecoded
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let service: IngestService
    /// A request is waiting for its answer.
    var busy = false
    /// Pipelined requests that arrived while busy.
    var queued = CircularBuffer<IngestRequest>()
    /// A read NIO asked for while busy, to be let through once the answer is out.
    var readPending = false
    var closing = false

    /// When the connection last delivered bytes; a check every half idle-timeout closes it when that is
    /// longer ago than the timeout and no answer is owed (idle keep-alive or half-sent requests), or when a
    /// request has been arriving for longer than the timeout (a trickling client). One timer per
    /// connection instead of an IdleStateHandler in the pipeline, which costs a hop per read.
    var lastRead = NIODeadline.now()
    /// When the last complete request ended (or the connection opened): bytes read after it belong to the next.
    var lastRequestAt = NIODeadline.now()
    var idleCheck: RepeatedTask?

    init(service: IngestService) { self.service = service }

    func handlerAdded(context: ChannelHandlerContext) {
        let timeout = TimeAmount.seconds(service.config.idleTimeoutSeconds)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let every = TimeAmount.nanoseconds(max(timeout.nanoseconds / 2, 1_000_000))
        idleCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
            let (handler, ctx) = bound.value
            let now = NIODeadline.now()
            // Idle, or bytes of an unfinished request arriving for longer than the timeout.
            let partial = handler.lastRead > handler.lastRequestAt
            if !handler.busy && (now - handler.lastRead >= timeout || (partial && now - handler.lastRequestAt >= timeout)) {
                handler.idleCheck?.cancel()
                ctx.close(promise: nil)
            }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        idleCheck = nil
        context.fireChannelInactive()
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        lastRead = NIODeadline.now()
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .continueExpected:
            // curl asks before sending bodies over 1 MiB; say go on (an oversize body is read, dropped, answered 413).
            var b = context.channel.allocator.buffer(capacity: 25)
            b.writeStaticString("HTTP/1.1 100 Continue\r\n\r\n")
            context.writeAndFlush(wrapOutboundOut(b), promise: nil)
        case .request(let r):
            lastRequestAt = NIODeadline.now()
            if closing { return }
            if busy || !queued.isEmpty { queued.append(r); return }
            process(r, context: context)
        }
    }

    /// Reads go on while an answer is owed (holding them back costs two epoll_ctl calls per request); a
    /// client that pipelines deeply (`maxQueued` requests waiting) is held back until answers catch up, and
    /// one that does not read its answers (the channel no longer writable: answers past the high-water mark
    /// wait in memory) is held back until it does. Memory per connection stays bounded either way.
    func read(context: ChannelHandlerContext) {
        if (busy && queued.count >= Self.maxQueued) || !context.channel.isWritable { readPending = true } else { context.read() }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readPending && !(busy && queued.count >= Self.maxQueued) {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    static let maxQueued = 16

    func process(_ r: IngestRequest, context: ChannelHandlerContext) {
        busy = true
        let keepAlive = r.keepAlive
        let minor = r.minorVersion
        service.inFlight.add(1, ordering: .relaxed)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        let service = self.service
        let t0 = monotonicNanos()
        let respond = Responder { make in
            if loop.inEventLoop {
                let (handler, ctx) = bound.value
                handler.answer(make(), minorVersion: minor, keepAlive: keepAlive, context: ctx)
                service.finished(startedNs: t0)
            } else {
                loop.execute {
                    let (handler, ctx) = bound.value
                    handler.answer(make(), minorVersion: minor, keepAlive: keepAlive, context: ctx)
                    service.finished(startedNs: t0)
                }
            }
        }
        if let b = r.body {
            b.withUnsafeReadableBytes { raw in
                service.handle(method: r.method, path: r.uri, header: r.header, body: raw, bodyTooLarge: r.tooLarge, respond: respond)
            }
        } else {
            service.handle(method: r.method, path: r.uri, header: r.header, body: nil, bodyTooLarge: r.tooLarge, respond: respond)
        }
    }

    /// Writes the answer, then goes on with pipelined requests (or lets the held-back read through).
    func answer(_ reply: Reply, minorVersion: Int, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        let close = !keepAlive || closing
        write(reply, minorVersion: minorVersion, close: close, context: context)
        busy = false
        if close {
            closing = true
            queued.removeAll()
            return
        }
        while !busy, let p = queued.popFirst() { process(p, context: context) }
        if readPending && queued.count < Self.maxQueued && context.channel.isWritable {
            readPending = false
            context.read()
        }
    }

    /// "HTTP/1.1 200 OK\r\nServer: pinbench\r\nContent-Type: application/json\r\nContent-Length: " as bytes,
    /// made once per status: an answer is then a few appends.
    static let jsonHeads: [Int: [UInt8]] = {
        var m: [Int: [UInt8]] = [:]
        for code in [200, 400, 401, 404, 413, 415, 422, 429, 431, 500, 503] {
            let st = HTTPResponseStatus(statusCode: code)
            m[code] = Array("HTTP/1.1 \(st.code) \(st.reasonPhrase)\r\nServer: pinbench\r\nContent-Type: application/json\r\nContent-Length: ".utf8)
        }
        return m
    }()

    func write(_ reply: Reply, minorVersion: Int, close: Bool, context: ChannelHandlerContext) {
        var buf = context.channel.allocator.buffer(capacity: 160 + reply.body.count)
        if minorVersion == 1, reply.contentType == "application/json", let head = Self.jsonHeads[reply.status] {
            buf.writeBytes(head)
        } else {
            let status = HTTPResponseStatus(statusCode: reply.status)
            buf.writeString(minorVersion == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
            buf.writeString("\(status.code) \(status.reasonPhrase)\r\nServer: pinbench\r\nContent-Type: \(reply.contentType)\r\nContent-Length: ")
        }
        writeDecimal(reply.body.count, into: &buf)
        buf.writeStaticString("\r\n")
        for (k, v) in reply.headers {
            buf.writeString(k)
            buf.writeStaticString(": ")
            buf.writeString(v)
            buf.writeStaticString("\r\n")
        }
        if close { buf.writeStaticString("Connection: close\r\n") }
        buf.writeStaticString("\r\n")
        buf.writeBytes(reply.body)
        if close {
            // A lingering close: the answer, then our FIN, while what the client still sends is read and
            // dropped; the connection ends when the client closes, or after `lingerSeconds`. Closing with
            // request bytes unread would send a reset, and a reset can destroy the answer before the client
            // reads it (the issue 16 item 18 case: a 400 or 413 to a client still sending its body).
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(buf)).whenComplete { _ in
                let halfClosed = channel.eventLoop.makePromise(of: Void.self)
                channel.close(mode: .output, promise: halfClosed)
                halfClosed.futureResult.whenComplete { r in
                    if case .failure = r { channel.close(promise: nil); return }
                    channel.eventLoop.scheduleTask(in: .seconds(Self.lingerSeconds)) { channel.close(promise: nil) }
                }
            }
        } else {
            context.writeAndFlush(wrapOutboundOut(buf), promise: nil)
        }
    }

    /// How long a connection closed after an answer may go on sending before it is closed regardless.
    static let lingerSeconds: Int64 = 2

    func writeDecimal(_ v: Int, into buf: inout ByteBuffer) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            var n = v.magnitude, i = 24
            repeat { i -= 1; d[i] = UInt8(truncatingIfNeeded: 48 &+ n % 10); n /= 10 } while n != 0
            buf.writeBytes(UnsafeRawBufferPointer(rebasing: d[i..<24]))
        }
    }

    /// Bad HTTP (a request line or headers the decoder refuses): 400, or 431 for a head over the limit, then
    /// close, unless an answer is still owed (then just close after it).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !closing else { return }
        closing = true
        queued.removeAll()
        if !busy, let e = error as? IngestDecodeError {
            let tooBig = e == .headersTooLarge
            var why = "request headers too large"
            if case .badRequest(let m) = e { why = "bad HTTP request: \(m)" }
            let reply = Reply(status: tooBig ? 431 : 400, contentType: "application/json",
                              body: "{\"error_code\":\(tooBig ? 431 : 400),\"message\":\"\(why)\"}", headers: [])
            service.metrics.errors.withLock { $0[tooBig ? 431 : 400, default: 0] += 1 }
            write(reply, minorVersion: 1, close: true, context: context)
        } else if !busy {
            context.close(promise: nil)
        }
    }
}
