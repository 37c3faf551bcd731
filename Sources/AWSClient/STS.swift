import AWSAuth
import Platform
import Synchronization

/// AWS STS, the one call pinbench needs: AssumeRole (the `awsRoleArn` of MSK IAM, `--aws-role-arn`).
public enum STS {
    /// Assumes `roleArn` as `base` (whose endpoint, when set, serves STS too) and returns the role's
    /// temporary credentials with their expiry.
    public static func assumeRole(_ base: AWSConfig, roleArn: String, sessionName: String, durationSeconds: Int = 3600) throws(AWSError) -> Credentials {
        let svc = try AWSService(config: base, service: "sts")
        let form = [("Action", "AssumeRole"), ("Version", "2011-06-15"), ("RoleArn", roleArn), ("RoleSessionName", sessionName),
                    ("DurationSeconds", String(durationSeconds))]
            .map { "\(SigV4Signer.uriEncode($0.0, keepSlash: false))=\(SigV4Signer.uriEncode($0.1, keepSlash: false))" }.joined(separator: "&")
        let r = try svc.call("AssumeRole", method: "POST", path: "/", headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")],
                             body: Array(form.utf8))
        let text = String(decoding: r.body.prefix(64 << 10), as: UTF8.self)
        guard let a = XML.first("AccessKeyId", in: text), let s = XML.first("SecretAccessKey", in: text), let t = XML.first("SessionToken", in: text)
        else { throw AWSError(.config, "sts AssumeRole: the answer holds no credentials") }
        let exp = XML.first("Expiration", in: text).flatMap { SigV4Signer.unixSeconds(iso8601: $0) }
        return Credentials(accessKeyId: a, secretAccessKey: s, sessionToken: t, source: "role \(roleArn) (STS AssumeRole)", expiration: exp)
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
