#if canImport(Glibc)
import Glibc
#endif
import Bytes
import Platform
import JSON
import AWSAuth

/// One AWS service endpoint: builds signed requests and runs control-plane calls with retries.
/// Used by one thread at a time (its HTTP engine is not thread-safe); it may be handed to another thread.
public final class AWSService: @unchecked Sendable {
    public let config: AWSConfig
    public let service: String
    public private(set) var signer: SigV4Signer
    /// scheme://host[:port]
    public let baseURL: String
    /// The Host header (with the port when it is not the scheme's default).
    public let host: String
    public let http: HTTPEngine
    var keyDate = ""
    var key: [UInt8] = []

    public init(config: AWSConfig, service: String, http: HTTPEngine? = nil) throws(AWSError) {
        self.config = config
        self.service = service
        signer = SigV4Signer(credentials: config.credentials, region: config.region, service: service)
        let base = config.endpoint ?? "https://\(service).\(config.region).amazonaws.com"
        var b = base
        while b.hasSuffix("/") { b.removeLast() }
        baseURL = b
        let afterScheme = b.split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        guard afterScheme.count >= 3, !afterScheme[2].isEmpty else { throw AWSError(.config, "bad endpoint URL \(base)") }
        var h = String(afterScheme[2])
        if b.hasPrefix("https://"), h.hasSuffix(":443") { h.removeLast(4) }
        if b.hasPrefix("http://"), h.hasSuffix(":80") { h.removeLast(3) }
        host = h
        self.http = http ?? HTTPEngine(connectTimeoutMs: config.connectTimeoutMs, verifyTLS: config.verifyTLS, caBundle: config.caBundle)
    }


    /// A signed request. `path` is the wire path (already percent-encoded where needed), `query` raw pairs.
    public func request(method: String, path: String, query: [(String, String)] = [], headers extra: [(String, String)],
                        body: [UInt8], bodyBuffer: ByteBuffer? = nil, signPayload: Bool = false) -> HTTPRequest {
        let now = wallSeconds()
        // Temporary credentials are fetched again before they expire; the day's key follows the new secret.
        if let r = config.refresher, let c = try? r.get(now: now), c.accessKeyId != signer.credentials.accessKeyId || c.sessionToken != signer.credentials.sessionToken {
            signer.credentials = c
            keyDate = ""
        }
        let amzDate = SigV4Signer.amzDate(unixSeconds: now)
        let day = String(amzDate.prefix(8))
        if day != keyDate { key = signer.signingKey(date: day); keyDate = day }
        let payloadHash = Digest.hex(bodyBuffer.map { Digest.sha256($0.bytes) } ?? Digest.sha256(body))
        var headers: [(String, String)] = [("Host", host), ("X-Amz-Date", amzDate)]
        headers.append(contentsOf: extra)
        if signPayload || service == "s3" { headers.append(("x-amz-content-sha256", payloadHash)) }
        if let t = signer.credentials.sessionToken { headers.append(("X-Amz-Security-Token", t)) }
        let auth = signer.authorization(.init(method: method, path: path, query: query, headers: headers, payloadHash: payloadHash), amzDate: amzDate, key: key)
        var lines = headers.map { "\($0.0): \($0.1)" }
        lines.append("Authorization: \(auth)")
        var url = baseURL + path
        if !query.isEmpty {
            url += "?" + SigV4Signer.encodedQuery(query)
        }
        return HTTPRequest(method: method, url: url, headers: lines, body: body, bodyBuffer: bodyBuffer)
    }

    /// Turns an HTTP outcome into success or an AWSError (JSON `__type`/`message` or S3 XML `Code`/`Message`).
    public func check(_ r: HTTPResponse, operation: String) -> AWSError? {
        if r.status == 0 {
            return AWSError(.transport(r.curlCode), "\(service) \(operation): cannot reach \(baseURL): \(r.curlMessage)")
        }
        if (200..<300).contains(r.status) { return nil }
        let (code, message) = AWSService.errorFields(r)
        return AWSError(.service(status: r.status, code: code), "\(service) \(operation): \(code): \(message) (HTTP \(r.status))")
    }

    static func errorFields(_ r: HTTPResponse) -> (String, String) {
        let text = String(decoding: r.body.prefix(4096), as: UTF8.self)
        var code = r.header("x-amzn-errortype").map { String($0.split(separator: ":").first ?? "") } ?? ""
        var message = ""
        if text.hasPrefix("{") {
            if let v = try? JSONValue.parse(text) {
                if let t = v["__type"]?.stringValue { code = String(t.split(separator: "#").last ?? "") }
                message = v["message"]?.stringValue ?? v["Message"]?.stringValue ?? ""
            }
        } else if text.contains("<Code>") {
            code = XML.first("Code", in: text) ?? code
            message = XML.first("Message", in: text) ?? ""
        }
        if code.isEmpty { code = "HTTP\(r.status)" }
        if message.isEmpty { message = String(text.prefix(200)) }
        return (code, message)
    }

    /// Sleeps for the backoff of attempt `n` (0-based) under the configured retry policy.
    public func backoff(attempt n: Int) { sleepMs(config.retryPolicy.delayMs(attempt: n)) }

    /// A control-plane call: signs, sends, retries what is retriable within the deadline.
    public func call(_ operation: String, method: String, path: String, query: [(String, String)] = [],
                     headers: [(String, String)], body: [UInt8]) throws(AWSError) -> HTTPResponse {
        let deadline = monotonicMs() + Double(config.retryDeadlineMs)
        var attempt = 0
        while true {
            let req = request(method: method, path: path, query: query, headers: headers, body: body)
            let r = try http.perform(req, timeoutMs: config.requestTimeoutMs)
            guard let e = check(r, operation: operation) else { return r }
            attempt += 1
            if !e.isRetriable || attempt >= config.maxAttempts || monotonicMs() >= deadline { throw e }
            backoff(attempt: attempt - 1)
        }
    }
}

