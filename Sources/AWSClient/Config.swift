#if canImport(Glibc)
import Glibc
#endif
import Platform
import AWSAuth

/// Where an AWS client points and who it signs as.
public struct AWSConfig: Sendable {
    public var region: String
    public var credentials: Credentials
    /// `--aws-endpoint URL`: one endpoint for every service (moto, LocalStack, a proxy); nil = real AWS.
    public var endpoint: String?
    public var connectTimeoutMs = 5_000
    public var requestTimeoutMs = 30_000
    /// Throttling, 5xx and dropped connections are retried with jittered exponential backoff until this
    /// deadline (per call) or `maxAttempts`.
    public var retryDeadlineMs = 30_000
    public var maxAttempts = 10
    public var backoffBaseMs = 25.0
    public var backoffCapMs = 2_000.0
    /// The backoff policy of every retried call (full jitter, as the AWS SDKs).
    public var retryPolicy: RetryPolicy { .aws(baseMs: backoffBaseMs, capMs: backoffCapMs) }
    public var verifyTLS = true
    /// A PEM file of CAs for https:// endpoints (`AWS_CA_BUNDLE`, `--ca-bundle`); nil: the system store.
    public var caBundle: String?
    /// Fetches temporary credentials again before they expire (nil for long-term keys): every signed
    /// request asks it, so a long flood keeps signing with valid ones.
    public var refresher: RefreshingCredentials?

    public init(region: String, credentials: Credentials, endpoint: String? = nil) {
        self.region = region
        self.credentials = credentials
        self.endpoint = endpoint
    }

    /// Builds a config the way the AWS SDKs do: explicit values first, then the credential chain
    /// (`CredentialChain`: environment, web identity, profiles with roles and processes, the ECS container
    /// endpoint, EC2 instance metadata); the region from the options, `AWS_REGION`, `AWS_DEFAULT_REGION` or
    /// the profile; `AWS_ENDPOINT_URL` and `AWS_CA_BUNDLE` honoured as botocore does.
    public static func resolve(
        region: String? = nil, accessKeyId: String? = nil, secretAccessKey: String? = nil, sessionToken: String? = nil,
        profile: String? = nil, endpoint: String? = nil, caBundle: String? = nil, environment: [String: String] = currentEnvironment()
    ) throws(AWSError) -> AWSConfig {
        if let e = endpoint, !(e.hasPrefix("http://") || e.hasPrefix("https://")) {
            throw AWSError(.config, "--aws-endpoint must start with http:// or https:// (got \(e))")
        }
        let chain = CredentialChain(environment: environment, profile: profile, endpoint: endpoint ?? environment["AWS_ENDPOINT_URL"],
                                    caBundle: caBundle ?? environment["AWS_CA_BUNDLE"], region: region)
        var cfg = AWSConfig(region: chain.region, credentials: Credentials(accessKeyId: "", secretAccessKey: ""), endpoint: chain.endpoint)
        cfg.caBundle = chain.caBundle
        if let a = accessKeyId, let s = secretAccessKey {
            cfg.credentials = Credentials(accessKeyId: a, secretAccessKey: s, sessionToken: sessionToken, source: "options")
            return cfg
        }
        if accessKeyId != nil || secretAccessKey != nil {
            throw AWSError(.config, "give both --aws-access-key-id and --aws-secret-access-key, or neither")
        }
        let found = try chain.resolve()
        cfg.credentials = found.credentials
        cfg.refresher = found.refresher
        return cfg
    }

    /// `[section]` → key → value; `#` and `;` start comments.
    static func readINI(_ path: String) throws -> [String: [String: String]] {
        guard let f = fopen(path, "r") else { throw AWSError(.config, "cannot open \(path)") }
        defer { fclose(f) }
        var out: [String: [String: String]] = [:]
        var section = ""
        var line: UnsafeMutablePointer<CChar>? = nil
        var cap = 0
        defer { free(line) }
        while getline(&line, &cap, f) > 0 {
            let raw = String(cString: line!)
            let t = raw.trimmingCharactersInSet()
            if t.isEmpty || t.hasPrefix("#") || t.hasPrefix(";") { continue }
            if t.hasPrefix("[") && t.hasSuffix("]") {
                section = String(t.dropFirst().dropLast()).trimmingCharactersInSet()
                continue
            }
            guard let eq = t.firstIndex(of: "=") else { continue }
            out[section, default: [:]][String(t[..<eq]).trimmingCharactersInSet()] = String(t[t.index(after: eq)...]).trimmingCharactersInSet()
        }
        return out
    }
}

public func currentEnvironment() -> [String: String] {
    var out: [String: String] = [:]
    var p = environ
    while let e = p.pointee {
        let s = String(cString: e)
        if let eq = s.firstIndex(of: "=") { out[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        p += 1
    }
    return out
}

extension String {
    func trimmingCharactersInSet() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}

/// One error type for every AWS call: what kind, the service's error code when it sent one, and a message
/// that never holds a secret.
public struct AWSError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case config
        /// Could not reach the endpoint (DNS, refused, TLS, timeout): curl's code.
        case transport(Int)
        /// The service answered with an error.
        case service(status: Int, code: String)
        /// The answer could not be read.
        case protocolError
    }
    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var code: String {
        switch kind {
        case .config: "Config"
        case .transport(let c): "Transport(\(c))"
        case .service(_, let c): c
        case .protocolError: "BadResponse"
        }
    }

    public var description: String { message }

    /// Throttling, 5xx, dropped connections and timeouts are worth another try.
    public var isRetriable: Bool {
        switch kind {
        case .config, .protocolError: return false
        case .transport(let c):
            // 1 unsupported protocol, 3 malformed URL, 6 could not resolve host: a wrong endpoint stays wrong.
            // 7 (could not connect) is retried: a server restarting or a proxy not up yet comes back.
            // 60, 77, 58, 83, 90: the certificate does not verify (wrong CA, name, expired): it will not mend.
            return ![1, 3, 6, 58, 60, 77, 83, 90].contains(c)
        case .service(let status, let code):
            return status >= 500 || status == 429 || AWSError.retriableCodes.contains(code)
        }
    }

    /// Codes that ask the caller to slow down.
    public static let throttlingCodes: Set<String> = [
        "ProvisionedThroughputExceededException", "LimitExceededException", "ThrottlingException", "Throttling",
        "RequestLimitExceeded", "SlowDown", "KMSThrottlingException",
    ]

    /// Codes of passing failures on the service's side.
    public static let transientCodes: Set<String> = [
        "InternalFailure", "ServiceUnavailable", "InternalError", "RequestTimeout", "RequestTimeoutException",
    ]

    /// Every code worth another try: throttling and passing failures.
    public static let retriableCodes = throttlingCodes.union(transientCodes)
}
