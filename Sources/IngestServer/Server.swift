import AWSClient
import Bytes
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Platform
import Sinks
import Synchronization
import JSON
import PinModel

/// Settings of `pinbench serve`.
public struct IngestConfig: Sendable {
    public var host = "127.0.0.1"
    public var port = 8082
    /// Topics `<prefix>.pin|geo|user` and streams `streaming-<prefix>-pin|geo|user` (the paths clients post to),
    /// partitions and batching of the backend.
    public var sink = SinkSettings()
    /// Requests must carry it (`X-API-Key` or `Authorization: Bearer`), when set.
    public var apiKey: String?
    public var maxBodyBytes = 10 << 20
    public var maxRecordBytes = 1 << 20
    /// Requests the writer may hold before new ones get 429.
    public var queueCapacity = 4096
    /// Bytes of requests the writer may hold (accepted, not yet stored or failed); beyond, 429.
    public var maxQueueBytes = 256 << 20
    /// Idle or half-open connections are closed after this many seconds.
    public var idleTimeoutSeconds: Int64 = 30
    /// On SIGTERM/SIGINT, what was accepted gets this long to reach the backend; the rest is answered as
    /// failed and counted (a stalled backend cannot hold the exit).
    public var drainTimeoutSeconds: Double = 30
    /// Open connections at most; beyond, new ones are closed at once (and counted).
    public var maxConnections = 10_000
    /// Where accepted records go: the embedded log (default), a Kafka cluster or Kinesis.
    public var backend: Backend = .embedded(LogOptions())
    /// SwiftNIO event-loop threads (HTTP parsing and routing); the backend has its own writer thread.
    public var eventLoops = max(1, usableCPUs())
    /// HTTPS (swift-nio-ssl): a PEM certificate chain and its key, as API Gateway and the REST proxy serve.
    public var tlsCertificate: String?
    public var tlsKey: String?
    public init() {}
}


/// The ingest HTTP API: Kafka REST Proxy v2 (`POST /topics/{topic}`) and the API Gateway shapes in front of
/// Kinesis (`PUT /streams/{stream}/record(s)`), routed to the configured backend by one writer thread.
public final class IngestService: Sendable {
    public let config: IngestConfig
    let store: IngestWriter
    let metrics = IngestMetrics()
    let topics: [String]
    let streams: [String]
    /// The same names as bytes, for matching request paths without String comparison.
    let topicBytes: [[UInt8]]
    let streamBytes: [[UInt8]]

    public init(config: IngestConfig) throws(SinkFailure) {
        self.config = config
        topics = RecordKind.topics(prefix: config.sink.topicPrefix)
        streams = RecordKind.streams(prefix: config.sink.topicPrefix)
        topicBytes = topics.map { Array($0.utf8) }
        streamBytes = streams.map { Array($0.utf8) }
        var backend = config.backend
        // Behind the API, the streams' names follow the topic prefix.
        if case .kinesis(var k) = backend {
            k.streamPrefix = config.sink.topicPrefix
            backend = .kinesis(k)
        }
        store = try IngestWriter(backend: backend, settings: config.sink, capacity: config.queueCapacity)
    }

    /// The server's TLS context (TLS 1.2+), or nil for plain HTTP; a certificate or key that cannot be read
    /// is one line.
    func makeTLSContext() throws -> NIOSSLContext? {
        guard let certFile = config.tlsCertificate, let keyFile = config.tlsKey else { return nil }
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certFile) } catch {
            throw SinkFailure.config("--tls-cert \(certFile): not a readable PEM certificate (\(error))")
        }
        guard !chain.isEmpty else { throw SinkFailure.config("--tls-cert \(certFile): no certificate in it") }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: keyFile, format: .pem) } catch {
            throw SinkFailure.config("--tls-key \(keyFile): not a readable PEM private key (\(error))")
        }
        var c = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        c.minimumTLSVersion = .tlsv12
        do { return try NIOSSLContext(configuration: c) } catch {
            throw SinkFailure.config("--tls-cert/--tls-key: \(error) (does the key belong to the certificate?)")
        }
    }

    public var accepted: Int { metrics.recordsAccepted.load(ordering: .relaxed) }
    public var stored: Int { store.storedCount }
    public var rejected: Int { metrics.recordsRejected.load(ordering: .relaxed) }

    /// Runs until SIGTERM/SIGINT; then stops accepting connections, waits for the requests in flight,
    /// drains what was accepted and closes the backend.
    public func run(onStarted: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let tls = try makeTLSContext()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: config.eventLoops)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 1024)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Out of file descriptors (EMFILE/ENFILE): accepting pauses a second instead of spinning, said
                    // once on stderr; and no more than --max-connections are open at once.
                    try channel.pipeline.syncOperations.addHandler(ConnectionLimiter(limit: self.config.maxConnections, metrics: self.metrics))
                }
            }
            .childChannelOption(ChannelOptions.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 16)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // HTTPS: TLS first; a plain-HTTP request or a bad handshake fails this connection only.
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    // Our own lean request decoder (one complete request per hop) and handler (answers encoded
                    // once, pipelined requests kept in order): NIO's HTTP codec, pipelining and error handlers
                    // cost a pipeline hop each per request part and a String per header.
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(IngestRequestDecoder(maxBody: self.config.maxBodyBytes)))
                    try channel.pipeline.syncOperations.addHandler(IngestHTTPHandler(service: self))
                }
            }
        let server: any NIOCore.Channel
        do {
            server = try await bootstrap.bind(host: config.host, port: config.port).get()
        } catch {
            try? await group.shutdownGracefully()
            store.shutdown()
            let io = error as? IOError
            let why = io?.errnoCode == EADDRINUSE ? "the address is in use (another server? pick another --listen port)"
                : io?.errnoCode == EACCES ? "permission denied (ports below 1024 need privileges)"
                : io.map { (e: IOError) -> String in String(cString: strerror(e.errnoCode)) } ?? "\(error)"
            throw IngestError(status: 0, code: 0, message: "cannot listen on \(config.host):\(config.port): \(why)")
        }
        onStarted(server.localAddress?.port ?? 0)
        // SIGTERM / SIGINT: stop accepting, let requests in flight finish.
        let stopping = Atomic<Bool>(false)
        let sources = [SIGTERM, SIGINT].map { sig -> any DispatchSourceSignal in
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler {
                if !stopping.exchange(true, ordering: .relaxed) {
                    self.stoppedBy.store(sig, ordering: .relaxed)
                    server.close(promise: nil)
                }
            }
            src.resume()
            return src
        }
        try await server.closeFuture.get()
        store.beginDrain(timeoutSeconds: config.drainTimeoutSeconds)
        // Requests in flight are answered once their records are stored or, at the drain's end, failed.
        let deadline = monotonicNanos() &+ UInt64((config.drainTimeoutSeconds + 2) * 1e9)
        while inFlight.load(ordering: .relaxed) > 0 && monotonicNanos() < deadline {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        for s in sources { s.cancel() }
        store.shutdown()
        let lost = store.undelivered
        if lost > 0 {
            FileHandle.standardError.write(Data("pinbench serve: drain timeout (\(formatDuration(config.drainTimeoutSeconds))): \(lost) accepted records not delivered to the backend, answered as failed\n".utf8))
        }
        try await group.shutdownGracefully()
    }

    /// Requests read but not yet answered (SIGTERM waits for them).
    let inFlight = Atomic<Int>(0)

    /// Bytes of the jobs accepted and not yet completed (`maxQueueBytes` bounds it).
    let queuedBytes = Atomic<Int>(0)

    /// The signal that stopped the server (SIGINT or SIGTERM; 0 while running): the CLI exits 128 + it.
    public let stoppedBy = Atomic<Int32>(0)

    /// A request was answered: its latency goes to the histogram, and it no longer counts as in flight.
    func finished(startedNs: UInt64) {
        metrics.observe(Double(monotonicNanos() - startedNs) / 1e9)
        inFlight.subtract(1, ordering: .relaxed)
    }

    func json(_ status: Int, _ body: String, headers: [(String, String)] = []) -> Reply {
        Reply(status: status, contentType: "application/json", body: body, headers: headers)
    }

    func json(_ status: Int, _ body: [UInt8], headers: [(String, String)] = []) -> Reply {
        Reply(status: status, contentType: "application/json", body: body, headers: headers)
    }

    /// The REST proxy's error shape.
    func error(_ status: Int, _ code: Int, _ message: String, records: Int = 0, headers: [(String, String)] = []) -> Reply {
        metrics.errors.withLock { $0[code, default: 0] += 1 }
        if records > 0 { metrics.recordsRejected.add(records, ordering: .relaxed) }
        return json(status, "{\"error_code\":\(code),\"message\":\(jsonString(message))}", headers: headers)
    }

}

/// On the server channel: closes a new connection when `limit` are already open, and reports running out
/// of file descriptors once (the accept back-off before it pauses accepting).
final class ConnectionLimiter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = any NIOCore.Channel
    typealias InboundOut = any NIOCore.Channel
    let limit: Int
    let metrics: IngestMetrics
    final class Count: Sendable { let value = Atomic<Int>(0) }
    let open = Count()
    var warned = false

    init(limit: Int, metrics: IngestMetrics) {
        self.limit = limit
        self.metrics = metrics
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = unwrapInboundIn(data)
        if open.value.add(1, ordering: .relaxed).oldValue >= limit {
            open.value.subtract(1, ordering: .relaxed)
            metrics.refusedConnections.add(1, ordering: .relaxed)
            child.close(promise: nil)
            return
        }
        let counter = open
        child.closeFuture.whenComplete { _ in counter.value.subtract(1, ordering: .relaxed) }
        context.fireChannelRead(data)
    }

    /// Out of descriptors (or memory for sockets): stop reading the listening socket for a second (autoRead
    /// off takes it out of the poll set, so the loop does not spin on a backlog it cannot accept), then retry.
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let io = error as? IOError, [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(io.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        if !warned {
            warned = true
            FileHandle.standardError.write(Data("pinbench serve: out of file descriptors (\(String(cString: strerror(io.errnoCode)))): accepting pauses 1 s at a time; raise ulimit -n or lower --max-connections\n".utf8))
        }
        let channel = context.channel
        _ = channel.setOption(ChannelOptions.autoRead, value: false)
        channel.eventLoop.scheduleTask(in: .seconds(1)) { _ = channel.setOption(ChannelOptions.autoRead, value: true) }
    }
}
