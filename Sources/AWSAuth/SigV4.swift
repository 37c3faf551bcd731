import Platform
/// AWS Signature Version 4 (header signing), our own: canonical request, string to sign, derived key,
/// `Authorization` header. Checked in the tests against the aws-c-auth signing suite and against moto with
/// signature checks on.
public struct Credentials: Sendable, CustomStringConvertible {
    public var accessKeyId: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// Where they came from: "options", "environment", "profile NAME in FILE".
    public var source: String
    /// When temporary credentials stop working (Unix seconds); nil for long-term keys.
    public var expiration: Int64?

    public init(accessKeyId: String, secretAccessKey: String, sessionToken: String? = nil, source: String = "options", expiration: Int64? = nil) {
        self.accessKeyId = accessKeyId
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.source = source
        self.expiration = expiration
    }

    /// Never the secret: the key id's first four characters and where the pair came from.
    public var description: String { "credentials \(accessKeyId.prefix(4))… from \(source)" }
}

public struct SigV4Signer: Sendable {
    public var credentials: Credentials
    public var region: String
    public var service: String
    /// Non-S3 services normalise the path (drop `.`/`..` segments, collapse `//`) and encode it once more;
    /// S3 signs the path exactly as sent.
    public var normalizePath: Bool

    public init(credentials: Credentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
        self.normalizePath = service != "s3"
    }

    /// The request to sign. `path` is the path as it goes on the wire; `query` the raw (decoded) pairs.
    public struct Request {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]
        public var payloadHash: String
        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// `20150830T123600Z` for a Unix time in seconds.
    public static func amzDate(unixSeconds: Int64) -> String {
        let days = unixSeconds >= 0 ? unixSeconds / 86_400 : (unixSeconds - 86_399) / 86_400
        let secs = unixSeconds - days * 86_400
        let (y, m, d) = UTCTime.civil(days: Int(days))
        func p<T: BinaryInteger>(_ v: T, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
        return "\(p(y, 4))\(p(m, 2))\(p(d, 2))T\(p(secs / 3600, 2))\(p(secs / 60 % 60, 2))\(p(secs % 60, 2))Z"
    }

    static let unreserved: [Bool] = {
        var t = [Bool](repeating: false, count: 256)
        for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8 { t[Int(c)] = true }
        return t
    }()
    static let hexUpper: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// RFC 3986 encoding as SigV4 wants it: unreserved characters stay, every other byte is %XX (upper
    /// case); `/` stays when `keepSlash`.
    public static func uriEncode(_ s: String, keepSlash: Bool) -> String {
        var out = [UInt8]()
        out.reserveCapacity(s.utf8.count)
        for c in s.utf8 {
            if unreserved[Int(c)] || (keepSlash && c == UInt8(ascii: "/")) {
                out.append(c)
            } else {
                out.append(UInt8(ascii: "%")); out.append(hexUpper[Int(c >> 4)]); out.append(hexUpper[Int(c & 15)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes %XX escapes (leaves malformed ones as they are).
    public static func percentDecode(_ s: String) -> String {
        let u = Array(s.utf8)
        var out = [UInt8]()
        out.reserveCapacity(u.count)
        var i = 0
        func hv(_ c: UInt8) -> UInt8? {
            switch c {
            case 48...57: c - 48
            case 65...70: c - 55
            case 97...102: c - 87
            default: nil
            }
        }
        while i < u.count {
            if u[i] == UInt8(ascii: "%"), i + 2 < u.count, let a = hv(u[i + 1]), let b = hv(u[i + 2]) {
                out.append(a << 4 | b); i += 3
            } else {
                out.append(u[i]); i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Removes `.` and `..` segments and empty segments, keeping a leading and trailing slash.
    static func normalize(_ path: String) -> String {
        var segs: [Substring] = []
        for s in path.split(separator: "/", omittingEmptySubsequences: true) {
            if s == "." { continue }
            if s == ".." { _ = segs.popLast(); continue }
            segs.append(s)
        }
        var out = "/" + segs.joined(separator: "/")
        if path.hasSuffix("/") && !segs.isEmpty { out += "/" }
        return out
    }

    public func canonicalURI(_ path: String) -> String {
        if path.isEmpty { return "/" }
        return normalizePath ? SigV4Signer.uriEncode(SigV4Signer.normalize(path), keepSlash: true) : path
    }

    public static func canonicalQuery(_ q: [(String, String)]) -> String {
        q.map { (uriEncode($0.0, keepSlash: false), uriEncode($0.1, keepSlash: false)) }
            .sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            .map { "\($0.0)=\($0.1)" }
            .joined(separator: "&")
    }

    /// Trims and collapses runs of spaces (header values).
    static func trimValue(_ v: String) -> String {
        var out = ""
        var space = false
        for ch in v.trimmingSpaces() {
            if ch == " " || ch == "\t" {
                if !space { out.append(" ") }
                space = true
            } else {
                out.append(ch); space = false
            }
        }
        return out
    }

    /// (canonical headers block, signed header names).
    static func canonicalHeaders(_ headers: [(String, String)]) -> (String, String) {
        var byName: [String: [String]] = [:]
        var order: [String] = []
        for (n, v) in headers {
            let k = n.lowercased()
            if byName[k] == nil { order.append(k) }
            byName[k, default: []].append(trimValue(v))
        }
        let names = order.sorted()
        var block = ""
        for n in names { block += "\(n):\(byName[n]!.joined(separator: ","))\n" }
        return (block, names.joined(separator: ";"))
    }

    public func canonicalRequest(_ r: Request) -> (text: String, signedHeaders: String) {
        let (block, signed) = SigV4Signer.canonicalHeaders(r.headers)
        let text = "\(r.method)\n\(canonicalURI(r.path))\n\(SigV4Signer.canonicalQuery(r.query))\n\(block)\n\(signed)\n\(r.payloadHash)"
        return (text, signed)
    }

    public func scope(date: String) -> String { "\(date)/\(region)/\(service)/aws4_request" }

    public func signingKey(date: String) -> [UInt8] {
        let kDate = Digest.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), date)
        let kRegion = Digest.hmacSHA256(key: kDate, region)
        let kService = Digest.hmacSHA256(key: kRegion, service)
        return Digest.hmacSHA256(key: kService, "aws4_request")
    }

    /// The `Authorization` value for a request whose headers already hold `X-Amz-Date` (and the session
    /// token, when there is one). `key` lets callers reuse the day's derived key.
    public func authorization(_ r: Request, amzDate: String, key: [UInt8]? = nil) -> String {
        let (canonical, signed) = canonicalRequest(r)
        let sig = signature(canonical: canonical, amzDate: amzDate, key: key)
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope(date: String(amzDate.prefix(8)))), SignedHeaders=\(signed), Signature=\(sig)"
    }

    /// The hex signature of a canonical request: the string to sign (algorithm, time, scope, the canonical
    /// request's hash) under the day's derived key.
    public func signature(canonical: String, amzDate: String, key: [UInt8]? = nil) -> String {
        let date = String(amzDate.prefix(8))
        let sts = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope(date: date))\n\(Digest.hex(Digest.sha256(canonical)))"
        return Digest.hex(Digest.hmacSHA256(key: key ?? signingKey(date: date), sts))
    }

    /// `k=v&k=v` with both sides encoded as SigV4 wants (a URL's query, a form body), in the order given.
    public static func encodedQuery(_ pairs: [(String, String)]) -> String {
        pairs.map { "\(uriEncode($0.0, keepSlash: false))=\(uriEncode($0.1, keepSlash: false))" }.joined(separator: "&")
    }
}

extension String {
    func trimmingSpaces() -> Substring {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return s
    }
}
