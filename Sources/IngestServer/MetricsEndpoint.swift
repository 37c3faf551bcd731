import NIOCore
import NIOPosix

/// A small HTTP endpoint for Prometheus: `GET /metrics` answers what `text()` returns now; anything else
/// 404. For `run --metrics-listen` (one event-loop thread; each answer closes its connection).
public final class MetricsEndpoint: Sendable {
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel
    /// The port bound (useful with port 0).
    public let port: Int

    public init(host: String, port: Int, text: @escaping @Sendable () -> String) throws {
        let g = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            channel = try ServerBootstrap(group: g)
                .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { ch in
                    ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(MetricsHandler(text: text)) }
                }
                .bind(host: host, port: port).wait()
        } catch {
            try? g.syncShutdownGracefully()
            throw error
        }
        group = g
        self.port = channel.localAddress?.port ?? port
    }

    public func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

final class MetricsHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let text: @Sendable () -> String
    var head: [UInt8] = []

    init(text: @escaping @Sendable () -> String) { self.text = text }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buf = unwrapInboundIn(data)
        if let bytes = buf.readBytes(length: buf.readableBytes) { head += bytes }
        guard head.count <= 16 << 10 else { context.close(promise: nil); return }  // a request line and headers only
        guard let end = head.firstRange(of: [13, 10, 13, 10]) else { return }
        let line = String(decoding: head[..<end.lowerBound].prefix { $0 != 13 }, as: UTF8.self)
        let ok = line.hasPrefix("GET /metrics ") || line.hasPrefix("GET /metrics?")
        let body = ok ? text() : "not found: GET /metrics\n"
        let reply = "HTTP/1.1 \(ok ? "200 OK" : "404 Not Found")\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        var out = context.channel.allocator.buffer(capacity: reply.utf8.count)
        out.writeString(reply)
        context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in context.close(promise: nil) }
    }
}
