import Bytes
import CCurl
import CCurlShim

/// An HTTP request as the AWS layer hands it to curl: the body is owned here until the exchange completes.
public struct HTTPRequest {
    public var method: String
    public var url: String
    public var headers: [String]
    public var body: [UInt8]
    /// When set, the body is these bytes instead (a producer's reusable buffer, held until completion).
    public var bodyBuffer: ByteBuffer?
    public init(method: String, url: String, headers: [String], body: [UInt8], bodyBuffer: ByteBuffer? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.bodyBuffer = bodyBuffer
    }

    func withBody<R>(_ f: (UnsafeRawBufferPointer) -> R) -> R {
        if let b = bodyBuffer { return f(b.bytes) }
        return body.withUnsafeBytes(f)
    }
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// curl's error when the exchange failed below HTTP (status is 0 then).
    public var curlCode: Int
    public var curlMessage: String
    public var seconds: Double

    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.first { $0.0 == n }?.1
    }
}

let curlGlobal: Bool = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK }()

/// curl's multi interface driven by its owner's thread (no thread of its own, no locks): start exchanges,
/// then `poll` to move them and collect the finished ones. Easy handles are pooled, so connections are
/// reused whenever the server keeps them open.
public final class HTTPEngine {
    let multi: UnsafeMutableRawPointer
    var idle: [OpaquePointer] = []
    struct Flight { let handle: OpaquePointer; let tag: Int; var request: HTTPRequest }
    var flights: [UnsafeMutableRawPointer: Flight] = [:]
    public var connectTimeoutMs: Int
    public var verifyTLS: Bool

    /// A PEM file of CAs to trust instead of the system store (`AWS_CA_BUNDLE`, `--ca-bundle`).
    public let caBundle: String?

    public init(connectTimeoutMs: Int = 5_000, verifyTLS: Bool = true, maxConnections: Int = 32, caBundle: String? = nil) {
        self.caBundle = caBundle
        _ = curlGlobal
        multi = curl_multi_init()
        self.connectTimeoutMs = connectTimeoutMs
        self.verifyTLS = verifyTLS
        _ = pb_multi_setopt_long(multi, Int32(CURLMOPT_MAX_HOST_CONNECTIONS.rawValue), maxConnections)
        _ = pb_multi_setopt_long(multi, Int32(CURLMOPT_MAXCONNECTS.rawValue), maxConnections)
    }

    deinit {
        for (_, f) in flights {
            _ = pb_http_detach(f.handle, multi)
            pb_http_free(f.handle)
        }
        for h in idle { pb_http_free(h) }
        curl_multi_cleanup(multi)
    }

    public var inFlight: Int { flights.count }

    /// Starts one exchange; `tag` comes back with its completion.
    public func start(_ request: HTTPRequest, timeoutMs: Int, tag: Int) throws(AWSError) {
        let h: OpaquePointer
        if let r = idle.popLast() { h = r; pb_http_reset(h) } else {
            guard let n = pb_http_new() else { throw AWSError(.transport(0), "curl: cannot create a handle") }
            h = n
        }
        let f = Flight(handle: h, tag: tag, request: request)
        let ok: Bool = f.request.withBody { b in
            pb_http_prepare(h, request.method, request.url, b.baseAddress, b.count, connectTimeoutMs, timeoutMs, verifyTLS ? 1 : 0, caBundle) == 0
        }
        guard ok else { idle.append(h); throw AWSError(.config, "curl refused the request options for \(request.method) \(redactURL(request.url))") }
        for line in request.headers { _ = pb_http_add_header(h, line) }
        guard pb_http_attach(h, multi) == 0 else { idle.append(h); throw AWSError(.transport(0), "curl: cannot start the request") }
        // The body array's storage stays put while it is held in `flights` (no mutation until completion).
        flights[pb_http_easy(h)] = f
    }

    /// Sleeps until a transfer's socket is ready, `wakeUp` is called, or `timeoutMs` passes (curl's own timers
    /// may end it sooner); also with nothing in flight. Moves no transfer: `poll` does that.
    public func waitForEvents(timeoutMs: Int) {
        var numfds: Int32 = 0
        curl_multi_poll(multi, nil, 0, Int32(clamping: max(1, timeoutMs)), &numfds)
    }

    /// Ends a `waitForEvents` (or the wait inside `poll`) early; callable from any thread (`curl_multi_wakeup`).
    /// The closure keeps this engine, so the multi handle it wakes outlives every caller.
    public var wakeUp: @Sendable () -> Void {
        nonisolated(unsafe) let engine = self
        return { _ = curl_multi_wakeup(engine.multi) }
    }

    /// Runs transfers for up to `timeoutMs` (returns early when one finishes) and returns the finished ones.
    public func poll(timeoutMs: Int) -> [(tag: Int, response: HTTPResponse)] {
        var running: Int32 = 0
        curl_multi_perform(multi, &running)
        var done = collect()
        if done.isEmpty && !flights.isEmpty && timeoutMs > 0 {
            var numfds: Int32 = 0
            curl_multi_poll(multi, nil, 0, Int32(timeoutMs), &numfds)
            curl_multi_perform(multi, &running)
            done = collect()
        }
        return done
    }

    private func collect() -> [(tag: Int, response: HTTPResponse)] {
        var out: [(tag: Int, response: HTTPResponse)] = []
        var left: Int32 = 0
        while let msg = curl_multi_info_read(multi, &left) {
            guard msg.pointee.msg == CURLMSG_DONE, let easy = msg.pointee.easy_handle else { continue }
            let code = msg.pointee.data.result
            guard let f = flights.removeValue(forKey: easy) else { continue }
            var resp = HTTPResponse(status: 0, headers: [], body: [], curlCode: Int(code.rawValue), curlMessage: "", seconds: pb_http_total_seconds(f.handle))
            if code == CURLE_OK {
                resp.status = pb_http_status(f.handle)
                var n = 0
                if let p = pb_http_body(f.handle, &n), n > 0 { resp.body = Array(UnsafeBufferPointer(start: p, count: n)) }
                if let p = pb_http_headers(f.handle, &n), n > 0 { resp.headers = parseHeaders(UnsafeBufferPointer(start: p, count: n)) }
            } else {
                resp.curlMessage = String(cString: curl_easy_strerror(code))
            }
            _ = pb_http_detach(f.handle, multi)
            idle.append(f.handle)
            out.append((f.tag, resp))
        }
        return out
    }

    /// One exchange, start to end (for control-plane calls).
    public func perform(_ request: HTTPRequest, timeoutMs: Int) throws(AWSError) -> HTTPResponse {
        let tag = -1 - flights.count
        try start(request, timeoutMs: timeoutMs, tag: tag)
        var pending: [(tag: Int, response: HTTPResponse)] = []
        while true {
            for d in poll(timeoutMs: 100) {
                if d.tag == tag {
                    stash.append(contentsOf: pending)
                    return d.response
                }
                pending.append(d)
            }
        }
    }

    /// Completions of other exchanges seen while `perform` waited; `poll` callers drain them first.
    public var stash: [(tag: Int, response: HTTPResponse)] = []
}

func parseHeaders(_ raw: UnsafeBufferPointer<UInt8>) -> [(String, String)] {
    // Bytes, not Strings, until the end: String's Unicode-aware lowercasing and trimming cost more than the
    // rest of an answer's handling.
    var out: [(String, String)] = []
    let n = raw.count
    var i = 0
    var name: [UInt8] = []
    while i < n {
        var e = i
        while e < n && raw[e] != 0x0A { e += 1 }
        var le = e
        if le > i && raw[le - 1] == 0x0D { le -= 1 }
        var c = i
        while c < le && raw[c] != UInt8(ascii: ":") { c += 1 }
        if c < le {
            name.removeAll(keepingCapacity: true)
            for k in i..<c { let b = raw[k]; name.append(b >= 0x41 && b <= 0x5A ? b | 0x20 : b) }
            var vs = c + 1, ve = le
            while vs < ve && (raw[vs] == 0x20 || raw[vs] == 0x09) { vs += 1 }
            while ve > vs && (raw[ve - 1] == 0x20 || raw[ve - 1] == 0x09) { ve -= 1 }
            out.append((String(decoding: name, as: UTF8.self), String(decoding: UnsafeBufferPointer(rebasing: raw[vs..<ve]), as: UTF8.self)))
        }
        i = e + 1
    }
    return out
}

/// A URL with any query string cut off (pre-signed URLs carry credentials there).
func redactURL(_ url: String) -> String {
    if let q = url.firstIndex(of: "?") { return String(url[..<q]) + "?…" }
    return url
}
