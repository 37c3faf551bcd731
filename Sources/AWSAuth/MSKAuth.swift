import Bytes
import JSON

/// A SigV4 presigned query (`X-Amz-*` parameters in the URL, only `host` signed): what MSK IAM
/// authentication sends, in either of its two forms below.
extension SigV4Signer {
    /// The query pairs of a presigned `GET https://host/?extra…`, in the order given (signature last).
    /// `payloadHash` is the empty body's SHA-256 as the MSK clients sign it.
    public func presignedQuery(host: String, extra: [(String, String)], amzDate: String, expiresSeconds: Int,
                               payloadHash: String = SigV4Signer.emptyPayloadHash) -> [(String, String)] {
        let date = String(amzDate.prefix(8))
        var q = extra
        q.append(("X-Amz-Algorithm", "AWS4-HMAC-SHA256"))
        q.append(("X-Amz-Credential", "\(credentials.accessKeyId)/\(scope(date: date))"))
        q.append(("X-Amz-Date", amzDate))
        q.append(("X-Amz-Expires", String(expiresSeconds)))
        // The order aws-msk-iam-sasl-signer writes (the signature does not depend on it: the canonical
        // query is sorted), so tokens are byte for byte the same.
        q.append(("X-Amz-SignedHeaders", "host"))
        if let t = credentials.sessionToken { q.append(("X-Amz-Security-Token", t)) }
        let r = Request(method: "GET", path: "/", query: q, headers: [("host", host)], payloadHash: payloadHash)
        q.append(("X-Amz-Signature", signature(canonical: canonicalRequest(r).text, amzDate: amzDate)))
        return q
    }

    /// SHA-256 of no bytes.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
}

/// MSK IAM authentication: the `AWS_MSK_IAM` SASL payload (aws-msk-iam-auth, per broker host) and the
/// `OAUTHBEARER` token (aws-msk-iam-sasl-signer, per region). Both are a SigV4 presign of
/// `GET /?Action=kafka-cluster:Connect`, service `kafka-cluster`, valid 900 s from the signing time.
public enum MSKAuth {
    public static let service = "kafka-cluster"
    public static let action = "kafka-cluster:Connect"
    public static let expiresSeconds = 900
    public static let userAgent = "pinbench"

    /// The region of an MSK broker from its DNS name (`b-1.x.y.c2.kafka.us-east-1.amazonaws.com`), or nil.
    public static func region(ofBrokerHost host: String) -> String? {
        let parts = host.split(separator: ".")
        guard let k = parts.lastIndex(of: "kafka"), k + 1 < parts.count else { return nil }
        let r = parts[k + 1]
        return r.contains("-") ? String(r) : nil
    }

    /// The JSON payload of the `AWS_MSK_IAM` mechanism's first (only) client message, for `host` (the broker
    /// this connection goes to) signed at `unixSeconds`.
    public static func iamPayload(credentials: Credentials, region: String, host: String, unixSeconds: Int64,
                                  userAgent: String = MSKAuth.userAgent) -> String {
        let signer = SigV4Signer(credentials: credentials, region: region, service: service)
        let amzDate = SigV4Signer.amzDate(unixSeconds: unixSeconds)
        let q = signer.presignedQuery(host: host, extra: [("Action", action)], amzDate: amzDate, expiresSeconds: expiresSeconds)
        let v = Dictionary(q, uniquingKeysWith: { a, _ in a })
        var fields: [(String, String)] = [
            ("version", "2020_10_22"), ("host", host), ("user-agent", userAgent), ("action", action),
            ("x-amz-algorithm", v["X-Amz-Algorithm"] ?? ""), ("x-amz-credential", v["X-Amz-Credential"] ?? ""),
            ("x-amz-date", amzDate), ("x-amz-signedheaders", "host"), ("x-amz-expires", String(expiresSeconds)),
            ("x-amz-signature", v["X-Amz-Signature"] ?? ""),
        ]
        if let t = credentials.sessionToken { fields.append(("x-amz-security-token", t)) }
        return "{" + fields.map { "\(JSONWriter.quoted($0.0)):\(JSONWriter.quoted($0.1))" }.joined(separator: ",") + "}"
    }

    /// An MSK IAM `OAUTHBEARER` token as aws-msk-iam-sasl-signer makes it: the base64url (unpadded) of the
    /// presigned URL `https://kafka.<region>.amazonaws.com/?Action=…&X-Amz-…&User-Agent=…` (the user agent
    /// appended after signing). Returns the token and its expiry (Unix seconds).
    public static func oauthToken(credentials: Credentials, region: String, unixSeconds: Int64,
                                  userAgent: String = MSKAuth.userAgent) -> (token: String, expiresAt: Int64) {
        let host = "kafka.\(region).amazonaws.com"
        let signer = SigV4Signer(credentials: credentials, region: region, service: service)
        let amzDate = SigV4Signer.amzDate(unixSeconds: unixSeconds)
        var q = signer.presignedQuery(host: host, extra: [("Action", action)], amzDate: amzDate, expiresSeconds: expiresSeconds)
        q.append(("User-Agent", userAgent))
        let url = "https://\(host)/?\(SigV4Signer.encodedQuery(q))"
        return (Base64.encodeURL(Array(url.utf8)), unixSeconds + Int64(expiresSeconds))
    }

    /// The OAUTHBEARER initial client response (RFC 7628) carrying `token`.
    public static func oauthBearerMessage(token: String) -> [UInt8] { Array("n,,\u{1}auth=Bearer \(token)\u{1}\u{1}".utf8) }
}
