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

/// A JSON answer written as bytes: literals, integers and escaped strings, no String formatting per field.
struct JSONBytes {
    var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func append(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ v: Int64) {
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        var m = v.magnitude
        let start = bytes.count
        repeat { bytes.append(UInt8(truncatingIfNeeded: 48 + m % 10)); m /= 10 } while m > 0
        bytes[start...].reverse()
    }

    /// A quoted JSON string; quotes and backslashes escaped, control characters become spaces.
    mutating func appendString(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(UInt8(ascii: "\\")); bytes.append(c)
            case 0..<0x20: bytes.append(0x20)
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// The HTTP/1.1 side of `pinbench serve`, straight on SwiftNIO (no async hops): NIO's parser and pipelining
/// assistance in front, the body gathered into one buffer (past the size limit it is read and dropped, then
/// answered 413), the request routed synchronously on the event loop, and the answer written from the event
/// loop when the writer has stored the records. Idle or half-sent requests are closed by the read timeout.
final class IngestHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let service: IngestService
    var head: HTTPRequestHead?
    var body: ByteBuffer?
    var tooLarge = false

    init(service: IngestService) { self.service = service }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            tooLarge = false
            body = nil
            if let cl = h.headers.first(name: "content-length").flatMap(Int.init), cl > service.config.maxBodyBytes { tooLarge = true }
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
                    handler.write(make(), version: version, keepAlive: keepAlive, context: ctx)
                    service.finished(startedNs: t0)
                } else {
                    loop.execute {
                        let (handler, ctx) = bound.value
                        handler.write(make(), version: version, keepAlive: keepAlive, context: ctx)
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

    func write(_ reply: Reply, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: reply.contentType)
        headers.add(name: "Content-Length", value: String(reply.body.count))
        headers.add(name: "Server", value: "pinbench")
        for (k, v) in reply.headers { headers.add(name: k, value: v) }
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: reply.status), headers: headers))), promise: nil)
        var buf = context.channel.allocator.buffer(capacity: reply.body.count)
        buf.writeBytes(reply.body)
        context.write(wrapOutboundOut(.body(.byteBuffer(buf))), promise: nil)
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            // Idle keep-alive connections and half-sent requests: close, freeing what they held.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
