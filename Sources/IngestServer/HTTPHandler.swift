import Dispatch
import NIOCore
import NIOHTTP1

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

/// The HTTP/1.1 side of `pinbench serve`, straight on SwiftNIO (no async hops): NIO's request decoder in
/// front, the body gathered into one buffer sized from Content-Length (past the size limit it is read and
/// dropped, then answered 413), the request routed synchronously on the event loop, and the answer written
/// from the event loop when the writer has stored the records, as one pre-encoded buffer (one pipeline
/// hop and one write per answer). Pipelining: while a request waits for its answer, parts of later
/// requests are queued (socket reads are held back once 64 parts wait), so answers leave in request order. Idle or
/// half-sent requests are closed by the idle timer.
final class IngestHTTPHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let service: IngestService
    var head: HTTPRequestHead?
    var body: ByteBuffer?
    var tooLarge = false
    /// A request is waiting for its answer.
    var busy = false
    /// Parts of pipelined requests that arrived while busy.
    var queued = CircularBuffer<HTTPServerRequestPart>()
    /// A read NIO asked for while busy, to be let through once the answer is out.
    var readPending = false
    var closing = false

    /// When the connection last delivered bytes; a check every half idle-timeout closes it when that is
    /// longer ago than the timeout and no answer is owed (idle keep-alive or half-sent requests). One timer per
    /// connection instead of an IdleStateHandler in the pipeline, which costs a hop per request part.
    var lastRead = NIODeadline.now()
    var headAt = NIODeadline.now()
    var idleCheck: RepeatedTask?

    init(service: IngestService) { self.service = service }

    func handlerAdded(context: ChannelHandlerContext) {
        let timeout = TimeAmount.seconds(service.config.idleTimeoutSeconds)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let every = TimeAmount.nanoseconds(max(timeout.nanoseconds / 2, 1_000_000))
        idleCheck = context.eventLoop.scheduleRepeatedTask(initialDelay: every, delay: every) { _ in
            let (handler, ctx) = bound.value
            let now = NIODeadline.now()
            // Idle, or a request begun (head read) but not finished within the timeout (a trickling client).
            if !handler.busy && (now - handler.lastRead >= timeout || (handler.head != nil && now - handler.headAt >= timeout)) {
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
        let part = unwrapInboundIn(data)
        if busy || !queued.isEmpty || closing {
            if !closing { queued.append(part) }
            return
        }
        process(part, context: context)
    }

    /// Reads go on while an answer is owed (holding them back costs two epoll_ctl calls per request); only
    /// a client that pipelines deeply (`maxQueuedParts` parts waiting) is held back until answers catch up.
    func read(context: ChannelHandlerContext) {
        if busy && queued.count >= Self.maxQueuedParts { readPending = true } else { context.read() }
    }

    static let maxQueuedParts = 64

    func process(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let h):
            head = h
            headAt = lastRead
            tooLarge = false
            body = nil
            if let cl = h.headers.first(name: "content-length").flatMap(Int.init) {
                if cl > service.config.maxBodyBytes { tooLarge = true } else if cl > 0 { body = context.channel.allocator.buffer(capacity: cl) }
            }
            // curl asks before sending bodies over 1 MiB; say go on (an oversize body is read, dropped, answered 413).
            if h.version.minor >= 1, h.headers.first(name: "expect")?.lowercased() == "100-continue" {
                var b = context.channel.allocator.buffer(capacity: 25)
                b.writeString("HTTP/1.1 100 Continue\r\n\r\n")
                context.writeAndFlush(wrapOutboundOut(b), promise: nil)
            }
        case .body(var chunk):
            guard !tooLarge else { return }
            if (body?.readableBytes ?? 0) + chunk.readableBytes > service.config.maxBodyBytes {
                tooLarge = true
                body = nil
                return
            }
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
        case .end:
            guard let h = head else { return }
            head = nil
            busy = true
            let keepAlive = h.isKeepAlive
            let version = h.version
            service.inFlight.add(1, ordering: .relaxed)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let loop = context.eventLoop
            let service = self.service
            let t0 = DispatchTime.now().uptimeNanoseconds
            let respond = Responder { make in
                if loop.inEventLoop {
                    let (handler, ctx) = bound.value
                    handler.answer(make(), version: version, keepAlive: keepAlive, context: ctx)
                    service.finished(startedNs: t0)
                } else {
                    loop.execute {
                        let (handler, ctx) = bound.value
                        handler.answer(make(), version: version, keepAlive: keepAlive, context: ctx)
                        service.finished(startedNs: t0)
                    }
                }
            }
            let headers = h.headers
            let header: (String) -> String? = { headers.first(name: $0) }
            if var b = body {
                let n = b.readableBytes
                b.withUnsafeReadableBytes { raw in
                    service.handle(method: h.method, path: h.uri, header: header, body: UnsafeRawBufferPointer(start: raw.baseAddress, count: n),
                                   bodyTooLarge: tooLarge, respond: respond)
                }
                b.clear()
            } else {
                service.handle(method: h.method, path: h.uri, header: header, body: nil, bodyTooLarge: tooLarge, respond: respond)
            }
            body = nil
        }
    }

    /// Writes the answer, then goes on with pipelined requests (or lets the held-back read through).
    func answer(_ reply: Reply, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        let close = !keepAlive || closing
        write(reply, version: version, close: close, context: context)
        busy = false
        if close {
            closing = true
            queued.removeAll()
            return
        }
        while !busy, let p = queued.popFirst() { process(p, context: context) }
        if readPending && queued.count < Self.maxQueuedParts {
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

    func write(_ reply: Reply, version: HTTPVersion, close: Bool, context: ChannelHandlerContext) {
        var buf = context.channel.allocator.buffer(capacity: 160 + reply.body.count)
        if version.minor == 1, reply.contentType == "application/json", let head = Self.jsonHeads[reply.status] {
            buf.writeBytes(head)
        } else {
            let status = HTTPResponseStatus(statusCode: reply.status)
            buf.writeString(version.minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ")
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
            context.writeAndFlush(wrapOutboundOut(buf)).whenComplete { _ in context.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(buf), promise: nil)
        }
    }

    func writeDecimal(_ v: Int, into buf: inout ByteBuffer) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { d in
            var n = v.magnitude, i = 24
            repeat { i -= 1; d[i] = UInt8(truncatingIfNeeded: 48 &+ n % 10); n /= 10 } while n != 0
            buf.writeBytes(UnsafeRawBufferPointer(rebasing: d[i..<24]))
        }
    }

    /// Bad HTTP (a request line or headers NIO's parser refuses): 400, or 431 for headers over the limit,
    /// then close, unless an answer is still owed (then just close after it).
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !closing else { return }
        closing = true
        queued.removeAll()
        if !busy, let e = error as? HTTPParserError {
            let tooBig = e == .headerOverflow
            let reply = Reply(status: tooBig ? 431 : 400, contentType: "application/json",
                              body: tooBig ? "{\"error_code\":431,\"message\":\"request headers too large\"}" : "{\"error_code\":400,\"message\":\"bad HTTP request\"}",
                              headers: [])
            service.metrics.errors.withLock { $0[tooBig ? 431 : 400, default: 0] += 1 }
            write(reply, version: .http1_1, close: true, context: context)
        } else if !busy {
            context.close(promise: nil)
        }
    }
}
