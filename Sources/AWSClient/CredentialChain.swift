import AWSAuth
import JSON
import Platform

#if canImport(Glibc)
import Glibc
#endif

/// The AWS SDKs' default credential chain, in botocore's order:
/// 1. environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), unless a profile was named;
/// 2. a profile's `role_arn` (with `source_profile` or `credential_source`), assumed through STS;
/// 3. web identity (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, or the profile's `web_identity_token_file`),
///    as on EKS: STS AssumeRoleWithWebIdentity;
/// 4. the profile's keys in the shared credentials file, then in the config file;
/// 5. the profile's `credential_process`;
/// 6. the ECS container endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`, with
///    `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`);
/// 7. EC2 instance metadata, IMDSv2 (a token PUT, then the role's credentials), at
///    `AWS_EC2_METADATA_SERVICE_ENDPOINT` or 169.254.169.254, unless `AWS_EC2_METADATA_DISABLED=true`.
/// Temporary credentials come with a `RefreshingCredentials` that fetches them again before they expire.
public struct CredentialChain: Sendable {
    public let environment: [String: String]
    public let profileName: String
    let profileNamed: Bool
    public let endpoint: String?
    public let caBundle: String?
    public let region: String
    let profile: [String: String]

    public init(environment: [String: String], profile: String?, endpoint: String?, caBundle: String?, region: String?) {
        self.environment = environment
        profileNamed = profile != nil
        profileName = profile ?? CredentialChain.variable("AWS_PROFILE", environment) ?? CredentialChain.variable("AWS_DEFAULT_PROFILE", environment) ?? "default"
        self.endpoint = endpoint
        self.caBundle = caBundle
        let p = CredentialChain.profile(profileName, environment)
        self.profile = p
        self.region = region ?? CredentialChain.variable("AWS_REGION", environment) ?? CredentialChain.variable("AWS_DEFAULT_REGION", environment)
            ?? p["region"] ?? "us-east-1"
    }

    /// An environment variable, an empty value counting as unset (as botocore reads most of them).
    static func variable(_ k: String, _ environment: [String: String]) -> String? { environment[k].flatMap { $0.isEmpty ? nil : $0 } }
    func env(_ k: String) -> String? { CredentialChain.variable(k, environment) }

    /// The shared files, where the environment says or under HOME.
    static func credentialsFile(_ e: [String: String]) -> String { variable("AWS_SHARED_CREDENTIALS_FILE", e) ?? "\(variable("HOME", e) ?? "")/.aws/credentials" }
    static func configFile(_ e: [String: String]) -> String { variable("AWS_CONFIG_FILE", e) ?? "\(variable("HOME", e) ?? "")/.aws/config" }
    var credentialsFile: String { CredentialChain.credentialsFile(environment) }

    /// A profile's settings: the config file's `[profile NAME]` (`[default]`), then the credentials file's
    /// `[NAME]` over it (as botocore merges them).
    static func profile(_ name: String, _ environment: [String: String]) -> [String: String] {
        let cfgFile = configFile(environment), credFile = credentialsFile(environment)
        var out = (try? AWSConfig.readINI(cfgFile))?[name == "default" ? "default" : "profile \(name)"] ?? [:]
        if name == "default", out.isEmpty { out = (try? AWSConfig.readINI(cfgFile))?["profile default"] ?? [:] }
        for (k, v) in (try? AWSConfig.readINI(credFile))?[name] ?? [:] { out[k] = v }
        return out
    }

    /// A config for STS and the metadata endpoints (same endpoint and CA as the caller's).
    func stsConfig(_ creds: Credentials, region r: String? = nil) -> AWSConfig {
        var c = AWSConfig(region: r ?? region, credentials: creds, endpoint: endpoint)
        c.caBundle = caBundle
        return c
    }

    /// The first source of the chain that has credentials.
    public func resolve() throws(AWSError) -> (credentials: Credentials, refresher: RefreshingCredentials?) {
        func refreshing(_ label: String, _ fetch: @escaping @Sendable () throws -> Credentials) throws(AWSError) -> (Credentials, RefreshingCredentials?) {
            let r = RefreshingCredentials(label, fetch: fetch)
            do {
                let c = try r.get()
                return (c, c.expiration == nil ? nil : r)
            } catch let e as AWSError { throw e } catch { throw AWSError(.config, "\(label): \(error)") }
        }
        // 1. environment
        if !profileNamed, let a = env("AWS_ACCESS_KEY_ID"), let s = env("AWS_SECRET_ACCESS_KEY"), !a.isEmpty {
            let token = env("AWS_SESSION_TOKEN")  // set but empty: none (as botocore)
            return (Credentials(accessKeyId: a, secretAccessKey: s, sessionToken: token, source: "environment"), nil)
        }
        // 2. a profile's role
        if let role = profile["role_arn"], profile["web_identity_token_file"] == nil {
            let source = try sourceCredentials(depth: 0, of: profileName)
            let session = profile["role_session_name"] ?? "pinbench-\(getpid())"
            let duration = Int(profile["duration_seconds"] ?? "") ?? 3600
            let external = profile["external_id"]
            let sts = stsConfig(source, region: profile["region"])
            return try refreshing("role \(role) of profile \(profileName)") {
                try STS.assumeRole(sts, roleArn: role, sessionName: session, durationSeconds: duration, externalId: external)
            }
        }
        // 3. web identity
        if let tokenFile = env("AWS_WEB_IDENTITY_TOKEN_FILE") ?? profile["web_identity_token_file"],
           let role = env("AWS_ROLE_ARN") ?? profile["role_arn"] {
            let session = env("AWS_ROLE_SESSION_NAME") ?? profile["role_session_name"] ?? "pinbench-\(getpid())"
            let sts = stsConfig(Credentials(accessKeyId: "", secretAccessKey: ""))
            return try refreshing("web identity (\(tokenFile)) for \(role)") {
                guard let token = readSmallTextFile(tokenFile, limit: 64 << 10)?.trimmingCharactersInSet(), !token.isEmpty else {
                    throw AWSError(.config, "AWS_WEB_IDENTITY_TOKEN_FILE \(tokenFile): missing or empty")
                }
                return try STS.assumeRoleWithWebIdentity(sts, roleArn: role, sessionName: session, token: token)
            }
        }
        // 4. the profile's keys
        if let c = staticKeys(profile, source: "profile \(profileName)") { return (c, nil) }
        // 5. credential_process
        if let cmd = profile["credential_process"] {
            return try refreshing("credential_process of profile \(profileName)") { try CredentialChain.process(cmd) }
        }
        // 6. the container endpoint
        if let url = containerURL {
            let auth = containerAuthorization
            let cfg = stsConfig(Credentials(accessKeyId: "", secretAccessKey: ""))
            return try refreshing("container endpoint \(url)") { try CredentialChain.container(url, authorization: auth, cfg) }
        }
        // 7. instance metadata
        if env("AWS_EC2_METADATA_DISABLED")?.lowercased() != "true" {
            let ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? "http://169.254.169.254"
            let cfg = stsConfig(Credentials(accessKeyId: "", secretAccessKey: ""))
            if let got = try? refreshing("EC2 instance metadata \(ep)", { try CredentialChain.instanceMetadata(ep, cfg) }) { return got }
        }
        throw AWSError(.config, "no AWS credentials: give --aws-access-key-id/--aws-secret-access-key, set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, add profile [\(profileName)] to \(credentialsFile), or run where a role is (EKS web identity, ECS, EC2 instance metadata)")
    }

    func staticKeys(_ p: [String: String], source: String) -> Credentials? {
        guard let a = p["aws_access_key_id"], let s = p["aws_secret_access_key"], !a.isEmpty else { return nil }
        return Credentials(accessKeyId: a, secretAccessKey: s, sessionToken: p["aws_session_token"], source: source)
    }

    /// The credentials a role profile assumes the role with: its `source_profile` (keys, process, or that
    /// profile's own role, a few levels deep) or its `credential_source`.
    func sourceCredentials(depth: Int, of name: String) throws(AWSError) -> Credentials {
        let p = CredentialChain.profile(name, environment)
        if let src = p["source_profile"] {
            guard depth < 4 else { throw AWSError(.config, "profile \(name): source_profile chain is too deep (a loop?)") }
            let sp = CredentialChain.profile(src, environment)
            if src != name, let role = sp["role_arn"] {
                let base = try sourceCredentials(depth: depth + 1, of: src)
                return try STS.assumeRole(stsConfig(base, region: sp["region"]), roleArn: role, sessionName: sp["role_session_name"] ?? "pinbench-\(getpid())")
            }
            if let c = staticKeys(sp, source: "profile \(src)") { return c }
            if let cmd = sp["credential_process"] {
                return try CredentialChain.process(cmd)
            }
            throw AWSError(.config, "profile \(name): source_profile \(src) has no credentials")
        }
        switch p["credential_source"] {
        case "Environment":
            guard let a = env("AWS_ACCESS_KEY_ID"), let s = env("AWS_SECRET_ACCESS_KEY") else {
                throw AWSError(.config, "profile \(name): credential_source Environment, but AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set")
            }
            return Credentials(accessKeyId: a, secretAccessKey: s, sessionToken: env("AWS_SESSION_TOKEN"), source: "environment")
        case "EcsContainer":
            guard let url = containerURL else { throw AWSError(.config, "profile \(name): credential_source EcsContainer, but no container endpoint is set") }
            return try CredentialChain.container(url, authorization: containerAuthorization, stsConfig(Credentials(accessKeyId: "", secretAccessKey: "")))
        case "Ec2InstanceMetadata":
            let ep = env("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? "http://169.254.169.254"
            return try CredentialChain.instanceMetadata(ep, stsConfig(Credentials(accessKeyId: "", secretAccessKey: "")))
        case let other?:
            throw AWSError(.config, "profile \(name): credential_source \(other) is not Environment, EcsContainer or Ec2InstanceMetadata")
        case nil:
            throw AWSError(.config, "profile \(name) has role_arn but neither source_profile nor credential_source")
        }
    }

    var containerURL: String? {
        if let rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), !rel.isEmpty { return "http://169.254.170.2" + rel }
        if let full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI"), !full.isEmpty { return full }
        return nil
    }

    var containerAuthorization: String? {
        if let f = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") { return readSmallTextFile(f, limit: 16 << 10)?.trimmingCharactersInSet() }
        return env("AWS_CONTAINER_AUTHORIZATION_TOKEN")
    }

    /// Credentials from a JSON document with AccessKeyId, SecretAccessKey, Token/SessionToken, Expiration
    /// (the container endpoint's, instance metadata's and credential_process's shape).
    static func fromJSON(_ text: String, source: String) throws(AWSError) -> Credentials {
        guard let v = try? JSONValue.parse(text), let a = v["AccessKeyId"]?.stringValue, let s = v["SecretAccessKey"]?.stringValue else {
            throw AWSError(.protocolError, "\(source): the answer holds no AccessKeyId/SecretAccessKey")
        }
        let token = v["Token"]?.stringValue ?? v["SessionToken"]?.stringValue
        let exp = v["Expiration"]?.stringValue.flatMap { UTCTime.unixSeconds(iso8601: $0) }
        return Credentials(accessKeyId: a, secretAccessKey: s, sessionToken: token, source: source, expiration: exp)
    }

    static func process(_ cmd: String) throws(AWSError) -> Credentials {
        guard let out = runShell(cmd) else { throw AWSError(.config, "credential_process failed (non-zero exit or could not start)") }
        let c = try fromJSON(out, source: "credential_process")
        if let v = try? JSONValue.parse(out), let version = v["Version"]?.intValue, version != 1 {
            throw AWSError(.config, "credential_process printed Version \(version); only 1 is defined")
        }
        return c
    }

    static func container(_ url: String, authorization: String?, _ cfg: AWSConfig) throws(AWSError) -> Credentials {
        let http = HTTPEngine(connectTimeoutMs: 1_000, caBundle: cfg.caBundle)
        let r = try http.perform(HTTPRequest(method: "GET", url: url, headers: authorization.map { ["Authorization: \($0)"] } ?? [], body: []), timeoutMs: 5_000)
        guard r.status == 200 else { throw AWSError(.service(status: r.status, code: "ContainerCredentials"), "container credentials endpoint answered HTTP \(r.status)") }
        return try fromJSON(String(decoding: r.body.prefix(64 << 10), as: UTF8.self), source: "container endpoint")
    }

    /// IMDSv2: a session token first (PUT), then the role's name and its credentials.
    static func instanceMetadata(_ endpoint: String, _ cfg: AWSConfig) throws(AWSError) -> Credentials {
        var ep = endpoint
        while ep.hasSuffix("/") { ep.removeLast() }
        let http = HTTPEngine(connectTimeoutMs: 1_000, caBundle: cfg.caBundle)
        let t = try http.perform(HTTPRequest(method: "PUT", url: ep + "/latest/api/token", headers: ["X-aws-ec2-metadata-token-ttl-seconds: 21600"], body: []), timeoutMs: 2_000)
        guard t.status == 200 else { throw AWSError(.service(status: t.status, code: "IMDS"), "instance metadata refused a session token (HTTP \(t.status))") }
        let token = String(decoding: t.body.prefix(4096), as: UTF8.self).trimmingCharactersInSet()
        let h = ["X-aws-ec2-metadata-token: \(token)"]
        let base = ep + "/latest/meta-data/iam/security-credentials/"
        let n = try http.perform(HTTPRequest(method: "GET", url: base, headers: h, body: []), timeoutMs: 2_000)
        guard n.status == 200, let role = String(decoding: n.body.prefix(4096), as: UTF8.self).split(separator: "\n").first.map({ String($0).trimmingCharactersInSet() }),
              !role.isEmpty, SigV4Signer.uriEncode(role, keepSlash: false) == role
        else { throw AWSError(.config, "instance metadata has no IAM role for this instance") }
        let c = try http.perform(HTTPRequest(method: "GET", url: base + role, headers: h, body: []), timeoutMs: 2_000)
        guard c.status == 200 else { throw AWSError(.service(status: c.status, code: "IMDS"), "instance metadata answered HTTP \(c.status) for role \(role)") }
        return try fromJSON(String(decoding: c.body.prefix(64 << 10), as: UTF8.self), source: "EC2 instance metadata (role \(role))")
    }
}
