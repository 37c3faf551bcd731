import AWSAuth
import CSSL
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// `security.protocol`.
public enum SecurityProtocol: String, Sendable, CaseIterable {
    case plaintext = "PLAINTEXT", ssl = "SSL", saslPlaintext = "SASL_PLAINTEXT", saslSSL = "SASL_SSL"
    public var usesTLS: Bool { self == .ssl || self == .saslSSL }
    public var usesSASL: Bool { self == .saslPlaintext || self == .saslSSL }
}

/// `security.protocol` and what goes with it: TLS settings and a SASL mechanism. Made once per client and
/// shared by its connections (the TLS context is built once).
public final class ConnectionSecurity: Sendable, CustomStringConvertible {
    public let securityProtocol: SecurityProtocol
    public let tls: TLSContext?
    public let sasl: SASLMechanism?

    /// Checks that the protocol and the mechanism agree, and builds the TLS context (CA, client
    /// certificate): any mistake there is one clear line now, not a failed handshake later.
    public init(protocol p: SecurityProtocol, tls settings: TLSSettings = TLSSettings(), sasl: SASLMechanism? = nil) throws(KafkaClientError) {
        if p.usesSASL && sasl == nil { throw KafkaClientError(.config, "security.protocol=\(p.rawValue) needs sasl.mechanism (and its credentials)") }
        if !p.usesSASL, let m = sasl {
            throw KafkaClientError(.config, "sasl.mechanism=\(m.name) needs security.protocol=SASL_SSL or SASL_PLAINTEXT (it is \(p.rawValue))")
        }
        securityProtocol = p
        tls = p.usesTLS ? try TLSContext(settings) : nil
        self.sasl = sasl
    }

    private init() {
        securityProtocol = .plaintext
        tls = nil
        sasl = nil
    }

    public static let plaintext = ConnectionSecurity()

    public var description: String {
        var s = securityProtocol.rawValue
        if let m = sasl { s += ", \(m.description)" }
        if let t = tls { s += ", \(t.settings.description)" }
        return s
    }
}

/// TLS settings as librdkafka names them (`ssl.*`).
public struct TLSSettings: Sendable, CustomStringConvertible {
    /// `ssl.ca.location`: a PEM file or a directory of hashed certificates; nil: the system store.
    public var caLocation: String?
    /// `ssl.certificate.location` and `ssl.key.location` (PEM): a client certificate for mutual TLS.
    public var certificateLocation: String?
    public var keyLocation: String?
    /// `ssl.key.password`, for an encrypted key.
    public var keyPassword: String?
    /// `ssl.endpoint.identification.algorithm`: https (check the broker's name, the default) or none.
    public var verifyHostname: Bool = true

    public init() {}

    public var description: String {
        var s = "TLS, CA \(caLocation ?? "system store")"
        if certificateLocation != nil { s += ", client certificate" }
        if !verifyHostname { s += ", hostname NOT checked" }
        return s
    }
}

/// An OpenSSL client context: TLS 1.2 or later, the peer's certificate verified against the CA.
public final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer
    public let settings: TLSSettings

    init(_ s: TLSSettings) throws(KafkaClientError) {
        guard let c = SSL_CTX_new(TLS_client_method()) else { throw KafkaClientError(.config, "TLS: cannot make a context: \(TLSContext.lastError())") }
        ctx = c
        settings = s
        _ = SSL_CTX_ctrl(c, SSL_CTRL_SET_MIN_PROTO_VERSION, Int(TLS1_2_VERSION), nil)
        _ = SSL_CTX_ctrl(c, SSL_CTRL_MODE, Int(SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER), nil)
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, nil)
        if let ca = s.caLocation {
            guard access(ca, F_OK) == 0 else { throw KafkaClientError(.config, "ssl.ca.location \(ca): no such file or directory") }
            let ok = isDirectory(ca) ? SSL_CTX_load_verify_locations(c, nil, ca) : SSL_CTX_load_verify_locations(c, ca, nil)
            guard ok == 1 else { throw KafkaClientError(.config, "ssl.ca.location \(ca): not a PEM certificate (or directory of them): \(TLSContext.lastError())") }
        } else if SSL_CTX_set_default_verify_paths(c) != 1 {
            throw KafkaClientError(.config, "TLS: cannot load the system's CA store: \(TLSContext.lastError())")
        }
        switch (s.certificateLocation, s.keyLocation) {
        case (nil, nil): break
        case (let cert?, let key?):
            guard SSL_CTX_use_certificate_chain_file(c, cert) == 1 else {
                throw KafkaClientError(.config, "ssl.certificate.location \(cert): cannot read a PEM certificate: \(TLSContext.lastError())")
            }
            if let pw = s.keyPassword {
                // The callback reads the password from the userdata pointer for as long as the load takes.
                let copy = strdup(pw)
                defer { if let copy { memset(copy, 0, strlen(copy)); free(copy) } }
                SSL_CTX_set_default_passwd_cb_userdata(c, copy)
                SSL_CTX_set_default_passwd_cb(c) { buf, size, _, user in
                    guard let buf, let user else { return 0 }
                    let p = user.assumingMemoryBound(to: CChar.self)
                    let n = min(Int(size) - 1, strlen(p))
                    guard n >= 0 else { return 0 }
                    memcpy(buf, p, n)
                    return Int32(n)
                }
            }
            let ok = SSL_CTX_use_PrivateKey_file(c, key, SSL_FILETYPE_PEM)
            SSL_CTX_set_default_passwd_cb(c, nil)
            SSL_CTX_set_default_passwd_cb_userdata(c, nil)
            guard ok == 1 else {
                let why = TLSContext.lastError()
                throw KafkaClientError(.config, why.contains("mismatch")
                    ? "ssl.key.location \(key) does not match ssl.certificate.location \(cert)"
                    : "ssl.key.location \(key): cannot read the key (\(why); wrong ssl.key.password?)")
            }
            guard SSL_CTX_check_private_key(c) == 1 else { throw KafkaClientError(.config, "ssl.key.location \(key) does not match ssl.certificate.location \(cert)") }
        default:
            throw KafkaClientError(.config, "mutual TLS needs both ssl.certificate.location and ssl.key.location")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// OpenSSL's most recent error as text (the queue is cleared).
    static func lastError() -> String {
        var last: UInt = 0
        while case let e = ERR_get_error(), e != 0 { last = e }
        guard last != 0 else { return "unknown error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(last, &buf, buf.count)
        let s = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // "error:0A000086:SSL routines::certificate verify failed" → the reason after the last colon.
        return s.split(separator: ":").last.map(String.init) ?? s
    }
}

/// One TLS session over a connected socket (non-blocking; waits with poll).
final class TLSSession {
    let ssl: OpaquePointer
    let fd: Int32

    /// Runs the handshake, checking the certificate against `host` (a DNS name, or an IP address against
    /// the certificate's IP entries). Failures are `.auth` (not retried): a wrong CA, a name mismatch or an
    /// expired certificate will not mend by trying again.
    init(context: TLSContext, fd: Int32, host: String, timeoutMs: Int32) throws(KafkaClientError) {
        guard let s = SSL_new(context.ctx) else { throw KafkaClientError(.config, "TLS: \(TLSContext.lastError())") }
        ssl = s
        self.fd = fd
        SSL_set_fd(s, fd)
        let isIP = TLSSession.isIPAddress(host)
        if !isIP { _ = host.withCString { SSL_ctrl(s, SSL_CTRL_SET_TLSEXT_HOSTNAME, Int(TLSEXT_NAMETYPE_host_name), UnsafeMutableRawPointer(mutating: $0)) } }
        if context.settings.verifyHostname {
            if isIP { X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), host) } else { SSL_set1_host(s, host) }
        }
        let deadline = monotonicNanos() + UInt64(max(timeoutMs, 1)) * 1_000_000
        while true {
            ERR_clear_error()
            let r = SSL_connect(s)
            if r == 1 { return }
            let e = SSL_get_error(s, r)
            if e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE {
                let now = monotonicNanos()
                guard now < deadline else { throw KafkaClientError(.auth, "TLS handshake with \(host) timed out (is it a TLS listener?)") }
                var p = pollfd(fd: fd, events: Int16(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT), revents: 0)
                _ = poll(&p, 1, Int32(min(UInt64(Int32.max), (deadline - now) / 1_000_000 + 1)))
                continue
            }
            let verify = SSL_get_verify_result(s)
            let why: String
            if verify != X509_V_OK {
                why = "certificate verify failed: \(String(cString: X509_verify_cert_error_string(verify)))"
                    + (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH
                        ? " (the certificate is not for \(host); ssl.endpoint.identification.algorithm=none skips this check)" : "")
            } else if e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN {
                why = "the broker closed the connection during the handshake (not a TLS listener, or it refused our certificate)"
            } else {
                why = TLSContext.lastError()
            }
            // (deinit frees `ssl`: every stored property is set, so a throwing init still runs it.)
            throw KafkaClientError(.auth, "TLS handshake with \(host) failed: \(why)")
        }
    }

    deinit { SSL_free(ssl) }

    static func isIPAddress(_ h: String) -> Bool {
        var a4 = in_addr(), a6 = in6_addr()
        return inet_pton(AF_INET, h, &a4) == 1 || inet_pton(AF_INET6, h, &a6) == 1
    }

    /// What one `SSL_read`/`SSL_write` came to.
    enum IO { case done(Int), wantRead, wantWrite, closed, failed(String) }

    func write(_ p: UnsafeRawPointer, _ n: Int) -> IO { classify(SSL_write(ssl, p, Int32(min(n, Int(Int32.max))))) }
    func read(_ p: UnsafeMutableRawPointer, _ n: Int) -> IO { classify(SSL_read(ssl, p, Int32(min(n, Int(Int32.max))))) }
    var pending: Bool { SSL_pending(ssl) > 0 }

    private func classify(_ r: Int32) -> IO {
        if r > 0 { return .done(Int(r)) }
        switch SSL_get_error(ssl, r) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL: return errno == 0 ? .closed : .failed(String(cString: strerror(errno)))
        default: return .failed(TLSContext.lastError())
        }
    }
}
