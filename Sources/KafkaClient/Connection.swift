import Bytes
import KafkaWire

#if canImport(Glibc)
import Glibc
#endif

/// Why talking to a broker failed. Network failures are retriable; protocol failures are not.
public struct KafkaClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case connect, io, timeout, protocolViolation, unsupported, broker(KafkaErrorCode), config, closed
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var isRetriable: Bool {
        switch kind {
        case .connect, .io, .timeout, .closed: true
        case .broker(let c): c.isRetriable
        default: false
        }
    }

    public var description: String { message }

    /// A short name for counting: the broker's error code name, or the kind of failure.
    public var reason: String {
        switch kind {
        case .broker(let c): c.name
        case .connect: "connect"
        case .io: "network"
        case .timeout: "timeout"
        case .protocolViolation: "protocol"
        case .unsupported: "unsupported"
        case .config: "config"
        case .closed: "connection closed"
        }
    }
}

/// "host:port" parsing for bootstrap lists.
public struct BrokerAddress: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(_ s: String) {
        let t = s.trimmingCharacters(in: " ")
        guard let colon = t.lastIndex(of: ":"), let p = Int(t[t.index(after: colon)...]), p > 0, p < 65536 else { return nil }
        var h = String(t[..<colon])
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        guard !h.isEmpty else { return nil }
        host = h
        port = p
    }

    public static func parseList(_ s: String) -> [BrokerAddress]? {
        let parts = s.split(separator: ",").map(String.init)
        let addrs = parts.compactMap(BrokerAddress.init)
        return addrs.isEmpty || addrs.count != parts.count ? nil : addrs
    }

    public var description: String { "\(host):\(port)" }
}

extension String {
    fileprivate func trimmingCharacters(in c: Character) -> String {
        var s = Substring(self)
        while s.first == c { s = s.dropFirst() }
        while s.last == c { s = s.dropLast() }
        return String(s)
    }
}

/// One TCP connection to one broker: blocking I/O with timeouts (poll), API version negotiation on
/// connect, pipelined requests with responses matched in order. Used by one thread at a time.
public final class BrokerConnection {
    public let address: BrokerAddress
    public let clientId: String
    public private(set) var versions: [Int16: ClosedRange<Int16>] = [:]
    public private(set) var fd: Int32 = -1
    private var nextCorrelation: Int32 = 1
    private var pending: [(Int32, ApiKey, Int16)] = []
    private let out = ByteBuffer(capacity: 64 * 1024)
    /// Responses larger than this are refused as garbage.
    public var maxResponseBytes = 256 << 20
    public let timeoutMs: Int32

    public init(_ address: BrokerAddress, clientId: String = "pinbench", timeoutMs: Int32 = 30_000) throws(KafkaClientError) {
        self.address = address
        self.clientId = clientId
        self.timeoutMs = timeoutMs
        try connect()
        try negotiate()
    }

    deinit { if fd >= 0 { close(fd) } }

    public var isOpen: Bool { fd >= 0 }
    public var inFlight: Int { pending.count }

    public func shutdown() {
        if fd >= 0 { close(fd) }
        fd = -1
        pending.removeAll()
    }

    private func connect() throws(KafkaClientError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(address.host, String(address.port), &hints, &res)
        guard rc == 0, let first = res else {
            throw KafkaClientError(.connect, "cannot resolve \(address): \(String(cString: gai_strerror(rc)))")
        }
        defer { freeaddrinfo(res) }
        var lastErr: Int32 = 0
        var ai: UnsafeMutablePointer<addrinfo>? = first
        while let a = ai {
            let s = socket(a.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            if s >= 0 {
                let flags = fcntl(s, F_GETFL)
                _ = fcntl(s, F_SETFL, flags | O_NONBLOCK)
                var r = Glibc.connect(s, a.pointee.ai_addr, a.pointee.ai_addrlen)
                if r != 0 && errno == EINPROGRESS {
                    var p = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
                    let pr = poll(&p, 1, min(timeoutMs, 10_000))
                    if pr == 1 {
                        var err: Int32 = 0
                        var len = socklen_t(4)
                        getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len)
                        r = err == 0 ? 0 : -1
                        errno = err
                    } else {
                        r = -1
                        errno = pr == 0 ? ETIMEDOUT : errno
                    }
                }
                if r == 0 {
                    _ = fcntl(s, F_SETFL, flags)
                    var one: Int32 = 1
                    setsockopt(s, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
                    var buf: Int32 = 4 << 20
                    setsockopt(s, SOL_SOCKET, SO_SNDBUF, &buf, 4)
                    setsockopt(s, SOL_SOCKET, SO_RCVBUF, &buf, 4)
                    fd = s
                    return
                }
                lastErr = errno
                close(s)
            }
            ai = a.pointee.ai_next
        }
        throw KafkaClientError(.connect, "cannot connect to \(address): \(String(cString: strerror(lastErr)))")
    }

    /// ApiVersions v3, falling back to v0 when the broker answers UNSUPPORTED_VERSION (35).
    private func negotiate() throws(KafkaClientError) {
        var version: Int16 = 3
        while true {
            let resp = try roundTrip(.apiVersions, version: version) { w in
                ApiVersionsMessage.encodeRequest(w, version: version, softwareName: "pinbench", softwareVersion: "0.1.0")
            }
            var r = resp.reader
            let decoded: ApiVersionsMessage.Response
            do { decoded = try ApiVersionsMessage.decodeResponse(&r, version: version) } catch {
                throw KafkaClientError(.protocolViolation, "\(address): bad ApiVersions response: \(error)")
            }
            if decoded.errorCode == .unsupportedVersion && version > 0 {
                version = 0
                continue
            }
            guard !decoded.errorCode.isError else {
                throw KafkaClientError(.broker(decoded.errorCode), "\(address): ApiVersions failed: \(decoded.errorCode)")
            }
            versions = decoded.versions
            return
        }
    }

    /// The highest version both sides support, or nil.
    public func version(for api: ApiKey) -> Int16? {
        if api == .apiVersions { return 3 }
        guard let theirs = versions[api.rawValue] else { return nil }
        let hi = min(theirs.upperBound, api.supported.upperBound)
        let lo = max(theirs.lowerBound, api.supported.lowerBound)
        return hi >= lo ? hi : nil
    }

    public func requireVersion(_ api: ApiKey) throws(KafkaClientError) -> Int16 {
        guard let v = version(for: api) else {
            let theirs = versions[api.rawValue].map { "\($0.lowerBound)...\($0.upperBound)" } ?? "none"
            throw KafkaClientError(
                .unsupported,
                "\(address) offers \(api.name) versions \(theirs); pinbench needs \(api.supported.lowerBound)...\(api.supported.upperBound)")
        }
        return v
    }

    /// A decoded response: the buffer and a reader positioned after the response header.
    public struct Response {
        public let buffer: ByteBuffer
        public let api: ApiKey
        public let version: Int16
        public let bodyOffset: Int

        public var reader: ProtocolReader {
            var r = ProtocolReader(buffer.bytes, flexible: api.isFlexible(version))
            r.pos = bodyOffset
            return r
        }
    }

    /// Sends one request without waiting; returns its correlation id.
    @discardableResult
    public func send(_ api: ApiKey, version: Int16, body: (ProtocolWriter) -> Void) throws(KafkaClientError) -> Int32 {
        guard fd >= 0 else { throw KafkaClientError(.closed, "connection to \(address) is closed") }
        let cid = nextCorrelation
        nextCorrelation = nextCorrelation == Int32.max ? 1 : nextCorrelation + 1
        out.reset()
        encodeRequest(api, version: version, correlationId: cid, clientId: clientId, into: out, body: body)
        try writeAll(out.base, out.count)
        pending.append((cid, api, version))
        return cid
    }

    /// Sends a request that expects no response (Produce with acks=0 on a real Kafka broker).
    public func sendNoResponse(_ api: ApiKey, version: Int16, body: (ProtocolWriter) -> Void) throws(KafkaClientError) {
        try send(api, version: version, body: body)
        pending.removeLast()
    }

    /// Receives the response to the oldest request in flight (Kafka answers in order on a connection).
    public func receive(into buffer: ByteBuffer = ByteBuffer(capacity: 64 * 1024), timeoutMs: Int32? = nil) throws(KafkaClientError) -> Response {
        guard let (cid, api, version) = pending.first else { throw KafkaClientError(.protocolViolation, "no request in flight") }
        buffer.reset()
        var sizeBytes: UInt32 = 0
        try withUnsafeMutableBytes(of: &sizeBytes) { (b) throws(KafkaClientError) in try readAll(b.baseAddress!, 4, timeoutMs: timeoutMs) }
        let size = Int(Int32(bitPattern: UInt32(bigEndian: sizeBytes)))
        guard size >= 4 && size <= maxResponseBytes else {
            shutdown()
            throw KafkaClientError(.protocolViolation, "\(address) sent a response of \(size) bytes: not Kafka, or corrupt")
        }
        let p = buffer.reserve(size)
        try readAll(p, size, timeoutMs: timeoutMs)
        buffer.count = size
        pending.removeFirst()
        let got = Int32(bigEndian: p.loadUnaligned(as: Int32.self))
        guard got == cid else {
            shutdown()
            throw KafkaClientError(.protocolViolation, "\(address) answered correlation id \(got), expected \(cid)")
        }
        var offset = 4
        if api.responseHeaderHasTags(version) {
            var r = ProtocolReader(buffer.bytes, flexible: true)
            r.pos = 4
            do { try r.tags() } catch { throw KafkaClientError(.protocolViolation, "\(address): \(error)") }
            offset = r.pos
        }
        return Response(buffer: buffer, api: api, version: version, bodyOffset: offset)
    }

    public func roundTrip(_ api: ApiKey, version: Int16, body: (ProtocolWriter) -> Void) throws(KafkaClientError) -> Response {
        try send(api, version: version, body: body)
        return try receive()
    }

    private func writeAll(_ p: UnsafeRawPointer, _ n: Int) throws(KafkaClientError) {
        var off = 0
        while off < n {
            let w = Glibc.send(fd, p + off, n - off, Int32(MSG_NOSIGNAL))
            if w < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    var pf = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    if poll(&pf, 1, timeoutMs) == 0 { shutdown(); throw KafkaClientError(.timeout, "\(address): send timed out") }
                    continue
                }
                let e = errno
                shutdown()
                throw KafkaClientError(.io, "\(address): send failed: \(String(cString: strerror(e)))")
            }
            off += w
        }
    }

    private func readAll(_ p: UnsafeMutableRawPointer, _ n: Int, timeoutMs: Int32?) throws(KafkaClientError) {
        var off = 0
        let limit = timeoutMs ?? self.timeoutMs
        while off < n {
            var pf = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let pr = poll(&pf, 1, limit)
            if pr == 0 {
                shutdown()
                throw KafkaClientError(.timeout, "\(address): no response within \(limit) ms")
            }
            if pr < 0 {
                if errno == EINTR { continue }
                let e = errno
                shutdown()
                throw KafkaClientError(.io, "\(address): poll failed: \(String(cString: strerror(e)))")
            }
            let r = recv(fd, p + off, n - off, 0)
            if r == 0 {
                shutdown()
                throw KafkaClientError(.closed, "\(address) closed the connection mid-response")
            }
            if r < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                let e = errno
                shutdown()
                throw KafkaClientError(.io, "\(address): receive failed: \(String(cString: strerror(e)))")
            }
            off += r
        }
    }
}
