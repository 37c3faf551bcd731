import AWSAuth
import Codecs
import Platform

/// Kafka client settings as users already write them: a Java `client.properties` (`--kafka-config`) and
/// librdkafka-named `-X key=value` pairs, merged in that order (a later value wins). Only keys pinbench acts
/// on are taken; any other is refused with one line. Secret values are kept here and never printed.
public struct KafkaClientProperties: Sendable {
    /// key → (value, where it was set).
    public private(set) var entries: [String: (value: String, source: String)] = [:]

    public init() {}

    /// Keys whose values are secrets: never shown.
    public static let secretKeys: Set<String> = ["sasl.password", "ssl.key.password", "sasl.jaas.config"]

    /// The keys pinbench acts on, with the librdkafka and Java spellings of the same setting.
    public static let known: Set<String> = [
        "bootstrap.servers", "metadata.broker.list", "client.id",
        "security.protocol", "sasl.mechanism", "sasl.mechanisms", "sasl.username", "sasl.password", "sasl.jaas.config",
        "sasl.client.callback.handler.class", "sasl.login.callback.handler.class",
        "sasl.oauthbearer.token.file", "sasl.oauthbearer.token.command",
        "ssl.ca.location", "ssl.certificate.location", "ssl.key.location", "ssl.key.password",
        "ssl.endpoint.identification.algorithm",
        "acks", "request.required.acks", "enable.idempotence", "compression.type", "compression.codec", "linger.ms",
        "batch.size", "request.timeout.ms", "delivery.timeout.ms", "message.timeout.ms",
        "max.in.flight.requests.per.connection", "max.in.flight", "retry.backoff.ms", "retry.backoff.max.ms",
    ]

    /// Java keystore settings: understood, refused with the PEM equivalent to use.
    static let javaKeystoreKeys: Set<String> = ["ssl.truststore.location", "ssl.truststore.password", "ssl.truststore.type",
                                                "ssl.keystore.location", "ssl.keystore.password", "ssl.keystore.type"]

    /// Sets `key` (one `-X key=value`, or a line of a file).
    public mutating func set(_ rawKey: String, _ value: String, source: String) throws(KafkaClientError) {
        let key = rawKey.trimmed()
        guard !key.isEmpty else { throw KafkaClientError(.config, "\(source): empty property name") }
        if KafkaClientProperties.javaKeystoreKeys.contains(key) {
            throw KafkaClientError(.config, "\(source): \(key) is a Java keystore setting; pinbench reads PEM files: give ssl.ca.location (and ssl.certificate.location / ssl.key.location)")
        }
        guard KafkaClientProperties.known.contains(key) else {
            let near = KafkaClientProperties.known.min { editDistance($0, key) < editDistance($1, key) }
            let hint = near.map { editDistance($0, key) <= 3 ? " (did you mean \($0)?)" : "" } ?? ""
            throw KafkaClientError(.config, "\(source): unknown Kafka property \(key)\(hint)")
        }
        entries[key] = (value.trimmed(), source)
    }

    /// One `key=value` as `-X` gives it.
    public mutating func set(assignment: String) throws(KafkaClientError) {
        guard let eq = assignment.firstIndex(of: "=") else {
            throw KafkaClientError(.config, "-X \(assignment.split(separator: " ").first ?? ""): expected key=value")
        }
        try set(String(assignment[..<eq]), String(assignment[assignment.index(after: eq)...]), source: "-X")
    }

    /// Reads a Java properties file: `key=value`, `key: value` or `key value`; `#` and `!` comments; a
    /// trailing backslash continues the line; `\t`, `\n`, `\\` and `\uXXXX` escapes.
    public mutating func load(file path: String) throws(KafkaClientError) {
        guard let text = readSmallTextFile(path, limit: 1 << 20) else {
            throw KafkaClientError(.config, "--kafka-config \(path): cannot read it (missing, unreadable or over 1 MiB)")
        }
        try load(text: text, source: path)
    }

    public mutating func load(text: String, source: String) throws(KafkaClientError) {
        var logical: [(Int, String)] = []
        var pending = "", startLine = 0
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            var line = String(raw)
            if line.hasSuffix("\r") { line.removeLast() }
            let t = pending.isEmpty ? line.trimmed() : String(line.drop { $0 == " " || $0 == "\t" })
            if pending.isEmpty && (t.isEmpty || t.hasPrefix("#") || t.hasPrefix("!")) { continue }
            if pending.isEmpty { startLine = i + 1 }
            // An odd number of trailing backslashes continues the line.
            let slashes = t.reversed().prefix { $0 == "\\" }.count
            if slashes % 2 == 1 {
                pending += t.dropLast()
                continue
            }
            logical.append((startLine, pending + t))
            pending = ""
        }
        if !pending.isEmpty { logical.append((startLine, pending)) }
        for (n, line) in logical {
            // The key ends at the first unescaped '=', ':' or whitespace.
            var key = "", i = line.startIndex, escaped = false
            while i < line.endIndex {
                let c = line[i]
                if escaped { key.append(c); escaped = false } else if c == "\\" { escaped = true } else if c == "=" || c == ":" || c == " " || c == "\t" { break } else { key.append(c) }
                i = line.index(after: i)
            }
            var rest = line[i...].drop { $0 == " " || $0 == "\t" }
            if let f = rest.first, f == "=" || f == ":" { rest = rest.dropFirst().drop { $0 == " " || $0 == "\t" } }
            try set(key, KafkaClientProperties.unescape(String(rest)), source: "\(source) line \(n)")
        }
    }

    static func unescape(_ s: String) -> String {
        guard s.contains("\\") else { return s }
        var out = "", it = Array(s), i = 0
        while i < it.count {
            let c = it[i]
            guard c == "\\", i + 1 < it.count else { out.append(c); i += 1; continue }
            let n = it[i + 1]
            switch n {
            case "t": out.append("\t"); i += 2
            case "n": out.append("\n"); i += 2
            case "r": out.append("\r"); i += 2
            case "f": out.append("\u{0C}"); i += 2
            case "u" where i + 5 < it.count:
                if let v = UInt32(String(it[(i + 2)...(i + 5)]), radix: 16), let u = Unicode.Scalar(v) { out.unicodeScalars.append(u); i += 6 } else { out.append(n); i += 2 }
            default: out.append(n); i += 2
            }
        }
        return out
    }

    public subscript(_ key: String) -> String? { entries[key]?.value }

    /// The first of `keys` that is set.
    func first(_ keys: String...) -> (key: String, value: String, source: String)? {
        for k in keys { if let e = entries[k] { return (k, e.value, e.source) } }
        return nil
    }

    /// Every setting as `key=value`, secrets as `***` (for `--verbose` and reports).
    public var redacted: [String] {
        entries.keys.sorted().map { "\($0)=\(KafkaClientProperties.secretKeys.contains($0) ? "***" : entries[$0]?.value ?? "")" }
    }
}

/// `sasl.jaas.config`: `<LoginModule class> required|optional|… key=value key="value" …;`.
public struct JAASConfig: Sendable, Equatable {
    public var loginModule: String
    public var options: [String: String]

    public static let iamLoginModule = "software.amazon.msk.auth.iam.IAMLoginModule"
    public static let plainLoginModule = "org.apache.kafka.common.security.plain.PlainLoginModule"
    public static let scramLoginModule = "org.apache.kafka.common.security.scram.ScramLoginModule"
    public static let oauthLoginModule = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule"

    public init(loginModule: String, options: [String: String]) {
        self.loginModule = loginModule
        self.options = options
    }

    /// Parses the value; errors never quote it (it may hold a password).
    public static func parse(_ text: String) throws(KafkaClientError) -> JAASConfig {
        var s = Substring(text.trimmed())
        if s.hasSuffix(";") { s = s.dropLast() }
        func skipSpace() { s = s.drop { $0 == " " || $0 == "\t" || $0 == "\n" } }
        func word() -> String { let w = s.prefix { !($0 == " " || $0 == "\t" || $0 == "\n" || $0 == "=") }; s = s.dropFirst(w.count); return String(w) }
        skipSpace()
        let module = word()
        skipSpace()
        let flag = word()
        guard !module.isEmpty, ["required", "requisite", "sufficient", "optional"].contains(flag) else {
            throw KafkaClientError(.config, "sasl.jaas.config: expected '<LoginModule> required key=value …;'")
        }
        var opts: [String: String] = [:]
        while true {
            skipSpace()
            if s.isEmpty { break }
            let k = word()
            guard !k.isEmpty, s.first == "=" else { throw KafkaClientError(.config, "sasl.jaas.config: option \(k.isEmpty ? "?" : k) has no value") }
            s = s.dropFirst()
            var v = ""
            if s.first == "\"" {
                s = s.dropFirst()
                var closed = false
                while let c = s.first {
                    s = s.dropFirst()
                    if c == "\\", let n = s.first { v.append(n); s = s.dropFirst(); continue }
                    if c == "\"" { closed = true; break }
                    v.append(c)
                }
                guard closed else { throw KafkaClientError(.config, "sasl.jaas.config: the value of \(k) has no closing quote") }
            } else {
                v = word()
            }
            opts[k] = v
        }
        return JAASConfig(loginModule: module, options: opts)
    }
}

/// What the properties say about security, before credentials are attached: the CLI turns this into a
/// `ConnectionSecurity` with AWS credentials from its chain.
public struct KafkaSecuritySpec: Sendable {
    public var securityProtocol: SecurityProtocol = .plaintext
    public var tls = TLSSettings()
    public var mechanism: String?
    public var username: String?
    public var password: String?
    /// IAMLoginModule options (awsRoleArn, awsRoleSessionName, awsStsRegion, awsProfileName, awsDebugCreds).
    public var iam: [String: String] = [:]
    public var tokenFile: String?
    public var tokenCommand: String?

    public static let mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "AWS_MSK_IAM", "OAUTHBEARER"]
    static let iamHandlers: Set<String> = ["software.amazon.msk.auth.iam.IAMClientCallbackHandler",
                                           "software.amazon.msk.auth.iam.IAMOAuthBearerLoginCallbackHandler"]

    public init() {}

    public init(_ p: KafkaClientProperties) throws(KafkaClientError) {
        if let v = p["security.protocol"] {
            guard let sp = SecurityProtocol(rawValue: v.uppercased()) else {
                throw KafkaClientError(.config, "security.protocol \(v): use PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
            }
            securityProtocol = sp
        }
        if let m = p.first("sasl.mechanism", "sasl.mechanisms") {
            let u = m.value.uppercased()
            guard KafkaSecuritySpec.mechanisms.contains(u) else {
                throw KafkaClientError(.config, "\(m.key) \(m.value): pinbench speaks \(KafkaSecuritySpec.mechanisms.joined(separator: ", "))")
            }
            mechanism = u
        }
        username = p["sasl.username"]
        password = p["sasl.password"]
        tokenFile = p["sasl.oauthbearer.token.file"]
        tokenCommand = p["sasl.oauthbearer.token.command"]
        tls.caLocation = p["ssl.ca.location"]
        tls.certificateLocation = p["ssl.certificate.location"]
        tls.keyLocation = p["ssl.key.location"]
        tls.keyPassword = p["ssl.key.password"]
        if let v = p["ssl.endpoint.identification.algorithm"] {
            switch v.lowercased() {
            case "https": tls.verifyHostname = true
            case "none", "": tls.verifyHostname = false
            default: throw KafkaClientError(.config, "ssl.endpoint.identification.algorithm \(v): use https or none")
            }
        }
        for key in ["sasl.client.callback.handler.class", "sasl.login.callback.handler.class"] {
            if let h = p[key], !KafkaSecuritySpec.iamHandlers.contains(h) {
                throw KafkaClientError(.config, "\(key) \(h): pinbench runs no Java classes; it has the MSK IAM handlers built in")
            }
        }
        if let j = p["sasl.jaas.config"] {
            let jaas = try JAASConfig.parse(j)
            switch jaas.loginModule {
            case JAASConfig.iamLoginModule:
                iam = jaas.options
                if mechanism == nil { mechanism = "AWS_MSK_IAM" }
            case JAASConfig.plainLoginModule, JAASConfig.scramLoginModule:
                username = username ?? jaas.options["username"]
                password = password ?? jaas.options["password"]
            case JAASConfig.oauthLoginModule:
                break
            default:
                throw KafkaClientError(.config, "sasl.jaas.config: login module \(jaas.loginModule) is not one pinbench knows (IAMLoginModule, PlainLoginModule, ScramLoginModule, OAuthBearerLoginModule)")
            }
        }
        if mechanism != nil && !securityProtocol.usesSASL {
            throw KafkaClientError(.config, "sasl.mechanism \(mechanism ?? "") needs security.protocol=SASL_SSL or SASL_PLAINTEXT")
        }
        if securityProtocol.usesSASL && mechanism == nil {
            throw KafkaClientError(.config, "security.protocol=\(securityProtocol.rawValue) needs sasl.mechanism")
        }
        if let m = mechanism, m == "PLAIN" || m.hasPrefix("SCRAM") {
            guard let u = username, !u.isEmpty, password != nil else {
                throw KafkaClientError(.config, "sasl.mechanism \(m) needs sasl.username and sasl.password (or username/password in sasl.jaas.config)")
            }
        }
    }

    /// The security these settings make. `iamCredentials` gives AWS credentials (asked again at every
    /// authentication); `region` is the cluster's region when the broker names do not tell it.
    public func make(iamCredentials: CredentialSource?, region: String?) throws(KafkaClientError) -> ConnectionSecurity {
        var sasl: SASLMechanism?
        switch mechanism {
        case nil: sasl = nil
        case "PLAIN": sasl = .plain(username: username ?? "", password: password ?? "")
        case "SCRAM-SHA-256": sasl = .scram(.sha256, username: username ?? "", password: password ?? "")
        case "SCRAM-SHA-512": sasl = .scram(.sha512, username: username ?? "", password: password ?? "")
        case "AWS_MSK_IAM":
            guard let c = iamCredentials else { throw KafkaClientError(.config, "AWS_MSK_IAM needs AWS credentials") }
            sasl = .awsMskIam(region: region, credentials: c)
        case "OAUTHBEARER":
            if let f = tokenFile {
                sasl = .oauthBearer(TokenSource("token file \(f)") {
                    guard let t = readSmallTextFile(f, limit: 64 << 10)?.trimmed(), !t.isEmpty else {
                        throw KafkaClientError(.config, "sasl.oauthbearer.token.file \(f): missing or empty")
                    }
                    return (t, nil)
                })
            } else if let cmd = tokenCommand {
                sasl = .oauthBearer(TokenSource("token command") {
                    guard let t = runShellFirstLine(cmd), !t.isEmpty else {
                        throw KafkaClientError(.config, "sasl.oauthbearer.token.command failed or printed nothing")
                    }
                    return (t, nil)
                })
            } else {
                guard let c = iamCredentials else { throw KafkaClientError(.config, "OAUTHBEARER needs a token file, a token command or AWS credentials (MSK IAM)") }
                guard let r = region else { throw KafkaClientError(.config, "OAUTHBEARER with MSK IAM needs the cluster's region (--region or AWS_REGION)") }
                sasl = .oauthBearer(TokenSource("MSK IAM token, \(c.description), region \(r)") {
                    let t = MSKAuth.oauthToken(credentials: try c.resolve(), region: r, unixSeconds: wallSeconds())
                    return (t.token, t.expiresAt)
                })
            }
        default: throw KafkaClientError(.config, "unknown sasl.mechanism \(mechanism ?? "")")
        }
        return try ConnectionSecurity(protocol: securityProtocol, tls: tls, sasl: sasl)
    }
}

extension KafkaClientProperties {
    /// Applies the producer settings among these properties to `pc`.
    public func apply(to pc: inout ProducerConfiguration) throws(KafkaClientError) {
        func int(_ e: (key: String, value: String, source: String)) throws(KafkaClientError) -> Int {
            guard let v = Int(e.value), v >= 0 else { throw KafkaClientError(.config, "\(e.source): \(e.key) \(e.value) is not a whole number ≥ 0") }
            return v
        }
        if let e = first("client.id") { pc.clientId = e.value }
        if let e = first("acks", "request.required.acks") {
            switch e.value.lowercased() {
            case "all", "-1": pc.acks = -1
            case "1": pc.acks = 1
            case "0": pc.acks = 0
            default: throw KafkaClientError(.config, "\(e.source): \(e.key) \(e.value): use all, 1 or 0")
            }
        }
        if let e = first("enable.idempotence") {
            switch e.value.lowercased() {
            case "true": pc.idempotence = true
            case "false": pc.idempotence = false
            default: throw KafkaClientError(.config, "\(e.source): enable.idempotence \(e.value): use true or false")
            }
        }
        if let e = first("compression.type", "compression.codec") {
            guard let c = CompressionCodec(name: e.value.lowercased()) else {
                throw KafkaClientError(.config, "\(e.source): \(e.key) \(e.value): use none, gzip, snappy, lz4 or zstd")
            }
            pc.compression = c
        }
        if let e = first("linger.ms") {
            guard let v = Double(e.value), v >= 0 else { throw KafkaClientError(.config, "\(e.source): linger.ms \(e.value) is not a number ≥ 0") }
            pc.lingerMs = v
        }
        if let e = first("batch.size") { pc.batchBytes = try int(e) }
        if let e = first("request.timeout.ms") { pc.requestTimeoutMs = Int32(clamping: try int(e)) }
        if let e = first("delivery.timeout.ms", "message.timeout.ms") { pc.deliveryTimeoutMs = try int(e) }
        if let e = first("max.in.flight.requests.per.connection", "max.in.flight") { pc.maxInFlight = try int(e) }
        if let e = first("retry.backoff.ms") { pc.retryBackoffMs = try int(e) }
        if let e = first("retry.backoff.max.ms") { pc.retryBackoffMaxMs = try int(e) }
    }

    /// `bootstrap.servers` (or `metadata.broker.list`), when set.
    public func bootstrap() throws(KafkaClientError) -> [BrokerAddress]? {
        guard let e = first("bootstrap.servers", "metadata.broker.list") else { return nil }
        guard let b = BrokerAddress.parseList(e.value) else { throw KafkaClientError(.config, "\(e.source): \(e.key) needs host:port[,host:port…]") }
        return b
    }
}

extension String {
    func trimmed() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" || f == "\n" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" || l == "\n" { s = s.dropLast() }
        return String(s)
    }
}
