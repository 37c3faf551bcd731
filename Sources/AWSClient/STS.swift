import AWSAuth
import Platform
import Synchronization

/// AWS STS, the one call pinbench needs: AssumeRole (the `awsRoleArn` of MSK IAM, `--aws-role-arn`).
public enum STS {
    /// Assumes `roleArn` as `base` (whose endpoint, when set, serves STS too) and returns the role's
    /// temporary credentials with their expiry.
    public static func assumeRole(_ base: AWSConfig, roleArn: String, sessionName: String, durationSeconds: Int = 3600,
                                  externalId: String? = nil) throws(AWSError) -> Credentials {
        let svc = try AWSService(config: base, service: "sts")
        var form = [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", roleArn), ("RoleSessionName", sessionName),
                    ("DurationSeconds", String(durationSeconds))]
        if let x = externalId { form.append(("ExternalId", x)) }
        let r = try svc.call("AssumeRole", method: "POST", path: "/", headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
                             body: Array(SigV4Signer.encodedQuery(form).utf8))
        return try credentials(r, source: "role \(roleArn) (STS AssumeRole)")
    }

    /// AssumeRoleWithWebIdentity (EKS service accounts): an unsigned call; the token is the proof.
    public static func assumeRoleWithWebIdentity(_ base: AWSConfig, roleArn: String, sessionName: String, token: String) throws(AWSError) -> Credentials {
        let url = (base.endpoint ?? "https://sts.\(base.region).amazonaws.com").trimmingSlashes() + "/"
        let form = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", roleArn),
                    ("RoleSessionName", sessionName), ("WebIdentityToken", token)]
        let http = HTTPEngine(connectTimeoutMs: base.connectTimeoutMs, caBundle: base.caBundle)
        let r = try http.perform(HTTPRequest(method: "POST", url: url, headers: ["Content-Type: application/x-www-form-urlencoded; charset=utf-8"],
                                             body: Array(SigV4Signer.encodedQuery(form).utf8)), timeoutMs: base.requestTimeoutMs)
        if r.status == 0 { throw AWSError(.transport(r.curlCode), "sts AssumeRoleWithWebIdentity: cannot reach \(url): \(r.curlMessage)") }
        guard r.status == 200 else {
            let (code, message) = AWSService.errorFields(r)
            throw AWSError(.service(status: r.status, code: code), "sts AssumeRoleWithWebIdentity: \(code): \(message) (HTTP \(r.status))")
        }
        return try credentials(r, source: "web identity for \(roleArn) (STS AssumeRoleWithWebIdentity)")
    }

    static func credentials(_ r: HTTPResponse, source: String) throws(AWSError) -> Credentials {
        let text = String(decoding: r.body.prefix(64 << 10), as: UTF8.self)
        guard let a = XML.first("AccessKeyId", in: text), let s = XML.first("SecretAccessKey", in: text), let t = XML.first("SessionToken", in: text)
        else { throw AWSError(.protocolError, "sts: the answer holds no credentials") }
        let exp = XML.first("Expiration", in: text).flatMap { UTCTime.unixSeconds(iso8601: $0) }
        return Credentials(accessKeyId: a, secretAccessKey: s, sessionToken: t, source: source, expiration: exp)
    }
}

/// Credentials that expire, fetched again before they do (5 minutes early, or a quarter of their
/// lifetime when that is shorter), so a long flood keeps signing with valid ones. Thread-safe.
public final class RefreshingCredentials: Sendable {
    let fetch: @Sendable () throws -> Credentials
    let state = Mutex<(creds: Credentials, fetchedAt: Int64)?>(nil)
    public let label: String

    public init(_ label: String, fetch: @escaping @Sendable () throws -> Credentials) {
        self.label = label
        self.fetch = fetch
    }

    /// Fetches now (used at start so a bad role fails before the flood).
    public func get(now: Int64 = wallSeconds()) throws -> Credentials {
        if let (c, at) = state.withLock({ $0 }), !RefreshingCredentials.due(c, fetchedAt: at, now: now) { return c }
        let c = try fetch()
        state.withLock { $0 = (c, now) }
        return c
    }

    static func due(_ c: Credentials, fetchedAt: Int64, now: Int64) -> Bool {
        guard let exp = c.expiration else { return false }
        let margin = min(300, max(1, (exp - fetchedAt) / 4))
        return now >= exp - margin
    }
}

extension String {
    func trimmingSlashes() -> String {
        var s = self
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }
}
