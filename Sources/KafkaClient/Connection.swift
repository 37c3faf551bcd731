import AWSAuth
import Bytes
import KafkaWire
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// Why talking to a broker failed. Network failures are retriable; protocol failures are not.
public struct KafkaClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case connect, io, timeout, protocolViolation, unsupported, broker(KafkaErrorCode), config, closed
        /// TLS verification or SASL authentication failed: trying again cannot mend it.
        case auth
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
        case .auth: "authentication"
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

/// One TCP connection to one broker: blocking I/O with timeouts (poll), TLS when the security protocol
/// says so, API version negotiation, SASL authentication, pipelined requests with responses matched in
/// order. Used by one thread at a time.
public final class BrokerConnection {
    public let address: BrokerAddress
    public let clientId: String
    public let security: ConnectionSecurity
    private var tls: TLSSession?
    /// When the SASL session must be renewed (monotonic ns; KIP-368): nil when the broker set no lifetime.
    public private(set) var reauthenticateAtNs: UInt64?
    /// Authentications done on this connection (the first one and every renewal).
    public private(set) var authentications = 0
    public private(set) var versions: [Int16: ClosedRange<Int16>] = [:]
    public private(set) var fd: Int32 = -1
    private var nextCorrelation: Int32 = 1
    private var pending: [(Int32, ApiKey, Int16)] = []
    private let out = ByteBuffer(capacity: 64 * 1024)
    /// Plaintext bytes read ahead of the response being decoded: `inbuf[inPos..<inbuf.count]`. One `recv` takes
    /// a whole small answer (its size field and its body, often the next answers too) instead of a `poll` and a
    /// `recv` for each of the two; a socket read takes the socket's lock, which the broker's side of loopback
    /// contends for. TLS keeps its own buffer.
    private let inbuf = ByteBuffer(capacity: 64 * 1024)
    private var inPos = 0
    /// Whether the kernel stamps each arrival on this socket (plaintext connections): a response then says when
    /// it came (`Response.arrivedNs`) however late it is read, so an owner need not wake up for it.
    public private(set) var stampsArrivals = false
    /// When the bytes of the last `recv` reached the socket (monotonic ns; 0 without a stamp).
    private var lastArrivalNs: UInt64 = 0
    /// Responses larger than this are refused as garbage.
    public var maxResponseBytes = 256 << 20
    public let timeoutMs: Int32

    public init(_ address: BrokerAddress, clientId: String = "pinbench", timeoutMs: Int32 = 30_000,
                security: ConnectionSecurity = .plaintext) throws(KafkaClientError) {
        self.address = address
        self.clientId = clientId
        self.timeoutMs = timeoutMs
        self.security = security
        try connect()
        // TLS reads the socket itself (no stamps reach us through it).
        if security.tls == nil { stampsArrivals = stampArrivals(fd) }
        if let ctx = security.tls {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            do { tls = try TLSSession(context: ctx, fd: fd, host: address.host, timeoutMs: min(timeoutMs, 10_000)) } catch {
                shutdown()
                throw error
            }
        }
        try negotiate()
        if security.sasl != nil {
            do { try authenticate() } catch { shutdown(); throw error }
        }
    }

    deinit { if fd >= 0 { close(fd) } }

    /// True when the SASL session is due for renewal: call `reauthenticate()` once nothing is in flight.
    public func needsReauthentication(now: UInt64) -> Bool {
        guard let at = reauthenticateAtNs else { return false }
        return now >= at
    }

    /// Renews the SASL session on this connection (KIP-368): the caller waits until no request is in
    /// flight, so no batch is reordered or lost across it.
    public func reauthenticate() throws(KafkaClientError) {
        guard pending.isEmpty else { throw KafkaClientError(.protocolViolation, "re-authentication with requests in flight") }
        do { try authenticate() } catch { shutdown(); throw error }
    }

    /// SaslHandshake v1, then SaslAuthenticate rounds of the configured mechanism. A refusal is `.auth`
    /// with the broker's message; secrets never appear in it.
    private func authenticate() throws(KafkaClientError) {
        guard let mech = security.sasl else { return }
        guard version(for: .saslHandshake) != nil, let av = version(for: .saslAuthenticate) else {
            throw KafkaClientError(.auth, "\(address) does not offer SASL (SaslHandshake v1 and SaslAuthenticate); is this a SASL listener?")
        }
        let hs = try roundTrip(.saslHandshake, version: 1) { SaslHandshakeMessage.encodeRequest($0, mechanism: mech.name) }
        var hr = hs.reader
        let (herr, offered): (KafkaErrorCode, [String])
        do { (herr, offered) = try SaslHandshakeMessage.decodeResponse(&hr) } catch {
            throw KafkaClientError(.protocolViolation, "\(address): bad SaslHandshake response: \(error)")
        }
        if herr.isError {
            throw KafkaClientError(.auth, "\(address) does not enable SASL mechanism \(mech.name) (it offers \(offered.isEmpty ? "none" : offered.joined(separator: ", ")))")
        }
        var lifetimeMs: Int64 = 0
        var tokenExpiresAt: Int64? = nil
        func step(_ bytes: [UInt8]) throws(KafkaClientError) -> [UInt8] {
            let resp = try roundTrip(.saslAuthenticate, version: av) { SaslAuthenticateMessage.encodeRequest($0, authBytes: bytes) }
            var r = resp.reader
            let d: SaslAuthenticateMessage.Response
            do { d = try SaslAuthenticateMessage.decodeResponse(&r, version: av) } catch {
                throw KafkaClientError(.protocolViolation, "\(address): bad SaslAuthenticate response: \(error)")
            }
            if d.errorCode.isError {
                throw KafkaClientError(.auth, "\(address): SASL \(mech.name) authentication failed: \(d.errorMessage ?? d.errorCode.name)")
            }
            lifetimeMs = d.sessionLifetimeMs
            return d.authBytes
        }
        func scram<T>(_ body: () throws(SASLError) -> T) throws(KafkaClientError) -> T {
            do { return try body() } catch { throw KafkaClientError(.auth, "\(address): \(error.message)") }
        }
        do {
            switch mech {
            case .plain(let u, let p):
                _ = try step([0] + Array(u.utf8) + [0] + Array(p.utf8))
            case .scram(let h, let u, let p):
                var c = ScramClient(h, username: u, password: p)
                let first = try step(c.clientFirst())
                let final = try step(try scram { () throws(SASLError) in try c.clientFinal(serverFirst: first) })
                try scram { () throws(SASLError) in try c.verify(serverFinal: final) }
            case .awsMskIam(let region, let source):
                let creds: Credentials
                do { creds = try source.resolve() } catch { throw KafkaClientError(.auth, "AWS_MSK_IAM: no AWS credentials: \(error)") }
                guard let r = region ?? MSKAuth.region(ofBrokerHost: address.host) else {
                    throw KafkaClientError(.config, "AWS_MSK_IAM: cannot tell the region from \(address.host); set awsStsRegion or --aws-region")
                }
                let payload = MSKAuth.iamPayload(credentials: creds, region: r, host: address.host, unixSeconds: wallSeconds())
                tokenExpiresAt = creds.expiration  // temporary credentials: renew before they run out
                let answer = try step(Array(payload.utf8))
                guard !answer.isEmpty else { throw KafkaClientError(.auth, "\(address): AWS_MSK_IAM authentication failed (empty answer)") }
            case .oauthBearer(let source):
                let token: String
                do { (token, tokenExpiresAt) = try source.make() } catch { throw KafkaClientError(.auth, "OAUTHBEARER: no token: \(error)") }
                let answer = try step(MSKAuth.oauthBearerMessage(token: token))
                if !answer.isEmpty {
                    // RFC 7628: the server's error JSON, answered with a lone %x01 before it fails the exchange.
                    let why = String(decoding: answer.prefix(300), as: UTF8.self)
                    _ = try? step([1])
                    throw KafkaClientError(.auth, "\(address): OAUTHBEARER token refused: \(why)")
                }
            }
        }
        authentications += 1
        // Renew at 85% of the lifetime the broker set (librdkafka and the Java client renew at 85-95%), and
        // before a token we know the expiry of runs out, whichever comes first.
        var lifeMs = lifetimeMs > 0 ? lifetimeMs : Int64.max
        if let exp = tokenExpiresAt { lifeMs = min(lifeMs, max(1, (exp - wallSeconds()) * 1000)) }
        // (The lifetime is the broker's input: at most a year, so the arithmetic cannot overflow.)
        reauthenticateAtNs = lifeMs < Int64.max ? monotonicNanos() &+ UInt64(min(lifeMs, 31_536_000_000)) * 850_000 : nil
    }

    public var isOpen: Bool { fd >= 0 }
    public var inFlight: Int { pending.count }

    public func shutdown() {
        tls = nil
        dropReadAhead()
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
        /// When the response's last bytes reached the socket (monotonic ns), or 0 when the connection has no
        /// arrival stamps (TLS).
        public var arrivedNs: UInt64 = 0

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
        // A SASL session due for renewal is renewed before the next request once nothing is in flight
        // (round-trip users get it for free; the producer's sender holds requests back until then).
        if pending.isEmpty, api != .saslHandshake, api != .saslAuthenticate, needsReauthentication(now: monotonicNanos()) {
            try reauthenticate()
        }
        let cid = nextCorrelation
        nextCorrelation = nextCorrelation == Int32.max ? 1 : nextCorrelation + 1
        out.reset()
        encodeRequest(api, version: version, correlationId: cid, clientId: clientId, into: out, body: body)
        try writeAll(out.base, out.count)
        pending.append((cid, api, version))
        return cid
    }

    /// True when a response's bytes were already read from the socket (read ahead, or waiting in the TLS
    /// layer): poll on the socket would not see them.
    public var hasBufferedInput: Bool { inPos < inbuf.count || (tls?.pending ?? false) }

    private func dropReadAhead() {
        inbuf.reset()
        inPos = 0
    }

    /// Reads and drops whatever has arrived (acks=0 answers some brokers send anyway), without blocking.
    public func discardAvailable() {
        guard fd >= 0 else { return }
        dropReadAhead()
        var scratch = [UInt8](repeating: 0, count: 65536)
        while true {
            let n: Int = scratch.withUnsafeMutableBytes { b in
                if let t = tls {
                    // Non-blocking socket: WANT_READ means nothing more has arrived.
                    if case .done(let r) = t.read(b.baseAddress!, b.count) { return r }
                    return 0
                }
                return recv(fd, b.baseAddress, b.count, Int32(MSG_DONTWAIT))
            }
            if n <= 0 { return }
        }
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
        return Response(buffer: buffer, api: api, version: version, bodyOffset: offset, arrivedNs: stampsArrivals ? lastArrivalNs : 0)
    }

    public func roundTrip(_ api: ApiKey, version: Int16, body: (ProtocolWriter) -> Void) throws(KafkaClientError) -> Response {
        try send(api, version: version, body: body)
        return try receive()
    }

    private func writeAll(_ p: UnsafeRawPointer, _ n: Int) throws(KafkaClientError) {
        if let t = tls { return try tlsWriteAll(t, p, n) }
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

    /// Waits for `events` on the socket up to `limit` ms; a timeout or poll failure closes the connection.
    private func waitFor(_ events: Int32, limit: Int32, what: String) throws(KafkaClientError) {
        while true {
            var pf = pollfd(fd: fd, events: Int16(events), revents: 0)
            let pr = poll(&pf, 1, limit)
            if pr > 0 { return }
            if pr < 0 && errno == EINTR { continue }
            let e = errno
            shutdown()
            throw pr == 0 ? KafkaClientError(.timeout, "\(address): \(what) within \(limit) ms")
                : KafkaClientError(.io, "\(address): poll failed: \(String(cString: strerror(e)))")
        }
    }

    private func tlsWriteAll(_ t: TLSSession, _ p: UnsafeRawPointer, _ n: Int) throws(KafkaClientError) {
        var off = 0
        while off < n {
            switch t.write(p + off, n - off) {
            case .done(let w): off += w
            case .wantWrite: try waitFor(POLLOUT, limit: timeoutMs, what: "send timed out")
            case .wantRead: try waitFor(POLLIN, limit: timeoutMs, what: "send timed out")
            case .closed: shutdown(); throw KafkaClientError(.closed, "\(address) closed the TLS connection")
            case .failed(let why): shutdown(); throw KafkaClientError(.io, "\(address): TLS send failed: \(why)")
            }
        }
    }

    private func tlsReadAll(_ t: TLSSession, _ p: UnsafeMutableRawPointer, _ n: Int, limit: Int32) throws(KafkaClientError) {
        var off = 0
        while off < n {
            switch t.read(p + off, n - off) {
            case .done(let r): off += r
            case .wantRead: try waitFor(POLLIN, limit: limit, what: "no response")
            case .wantWrite: try waitFor(POLLOUT, limit: limit, what: "no response")
            case .closed: shutdown(); throw KafkaClientError(.closed, "\(address) closed the connection mid-response")
            case .failed(let why): shutdown(); throw KafkaClientError(.io, "\(address): TLS receive failed: \(why)")
            }
        }
    }

    private func readAll(_ p: UnsafeMutableRawPointer, _ n: Int, timeoutMs: Int32?) throws(KafkaClientError) {
        if let t = tls { return try tlsReadAll(t, p, n, limit: timeoutMs ?? self.timeoutMs) }
        var off = takeReadAhead(p, n)
        let limit = timeoutMs ?? self.timeoutMs
        // Here the read-ahead is empty or `off == n`. Reads never block: a socket with nothing yet is waited on
        // with poll, up to `limit` each time.
        while off < n {
            let need = n - off
            // Most of a large response goes straight to its place; a small rest fills the read-ahead.
            let direct = need >= inbuf.capacity / 2
            let (r, at) = direct ? receiveStamped(fd, p + off, need, flags: Int32(MSG_DONTWAIT))
                : receiveStamped(fd, inbuf.base, inbuf.capacity, flags: Int32(MSG_DONTWAIT))
            if r > 0 {
                // The bytes that end a response came with the last read; read-ahead bytes came with the read
                // that filled `inbuf` (it is refilled only once empty).
                lastArrivalNs = at
                // A read that came without a stamp: the kernel does not stamp this socket after all, and its
                // answers must be read when they come (the owner's sleep watches it again).
                if at == 0 { stampsArrivals = false }
                if direct {
                    off += r
                } else {
                    inbuf.count = r
                    off += takeReadAhead(p + off, need)
                }
                continue
            }
            if r == 0 {
                shutdown()
                throw KafkaClientError(.closed, "\(address) closed the connection mid-response")
            }
            let e = errno
            if e == EINTR { continue }
            if e == EAGAIN || e == EWOULDBLOCK {
                try waitFor(POLLIN, limit: limit, what: "no response")
                continue
            }
            shutdown()
            throw KafkaClientError(.io, "\(address): receive failed: \(String(cString: strerror(e)))")
        }
    }

    /// Copies up to `n` read-ahead bytes to `p`; returns how many.
    private func takeReadAhead(_ p: UnsafeMutableRawPointer, _ n: Int) -> Int {
        let k = min(n, inbuf.count - inPos)
        guard k > 0 else { return 0 }
        p.copyMemory(from: inbuf.base + inPos, byteCount: k)
        inPos += k
        if inPos == inbuf.count { dropReadAhead() }
        return k
    }
}
