import Foundation
import Testing
import TestSupport

// Issue 14 item 4: for each source of the SDKs' credential chain, pinbench and botocore (the independent
// resolver) find the same access key. moto serves STS and instance metadata (IMDSv2); its seeded randomness
// gives both resolvers the same assumed-role keys.

private func peer(_ name: String, _ ext: String = "py") -> String { Bundle.module.path(forResource: name, ofType: ext, inDirectory: "Peers")! }

/// An environment with nothing of the caller's AWS settings: HOME is an empty folder.
private func cleanEnv(_ extra: [String: String]) -> [String: String] {
    var e = ["HOME": tempDir("awshome"), "AWS_EC2_METADATA_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"]
    for (k, v) in extra { e[k] = v }
    return e
}

private let awsVariables = ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
                            "AWS_SHARED_CREDENTIALS_FILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_ENDPOINT_URL", "AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_REGION",
                            "AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_ROLE_SESSION_NAME", "AWS_CA_BUNDLE"]

/// Runs `exe args` with exactly `env` of the AWS variables: the others (the test machine's) unset.
private func runClean(_ exe: String, _ args: [String], _ env: [String: String]) throws -> ProcessResult {
    let unset = awsVariables.filter { env[$0] == nil }.flatMap { ["-u", $0] }
    return try runProcess("/usr/bin/env", unset + [exe] + args, environment: env)
}

private func botocoreKey(_ env: [String: String], seed: String? = nil) throws -> String {
    let r = try runClean("/usr/bin/env", ["python3", "-c", """
    import sys, urllib.request, boto3
    if len(sys.argv) > 1: urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/moto-api/seed?a=11", method="POST")).read()
    c = boto3.Session().get_credentials()
    print(c.get_frozen_credentials().access_key if c else "none")
    """] + (seed.map { [$0] } ?? []), env)
    #expect(r.status == 0, "botocore: \(r.stderr.suffix(500))")
    return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
}

private func pinbenchKey(_ env: [String: String], seed: String? = nil) throws -> (key: String, source: String) {
    if let s = seed { _ = try runProcess("/usr/bin/curl", ["-s", "-X", "POST", s + "/moto-api/seed?a=11"]) }
    let r = try runClean(pinbenchBinary(), ["auth", "credentials"], env)
    #expect(r.status == 0, "pinbench: \(r.stderr)")
    let j = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    return (j["access_key_id"] as? String ?? "none", j["source"] as? String ?? "")
}

@Suite(.serialized) struct CredentialChainTests {
    @Test func environmentProfilesAndProcessesResolveAsBotocoreDoes() throws {
        let dir = tempDir("chain")
        try "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = s\n[other]\naws_access_key_id = OTHERKEY\naws_secret_access_key = s2\n"
            .write(toFile: "\(dir)/credentials", atomically: true, encoding: .utf8)
        let proc = "\(dir)/creds.sh"
        try "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"PROCKEY\", \"SecretAccessKey\": \"p\", \"SessionToken\": \"t\", \"Expiration\": \"2099-01-01T00:00:00Z\"}'\n"
            .write(toFile: proc, atomically: true, encoding: .utf8)
        chmod(proc, 0o755)
        try "[profile proc]\ncredential_process = \(proc)\n".write(toFile: "\(dir)/config", atomically: true, encoding: .utf8)
        let files = ["AWS_SHARED_CREDENTIALS_FILE": "\(dir)/credentials", "AWS_CONFIG_FILE": "\(dir)/config"]
        let cases: [([String: String], String, String)] = [
            (["AWS_ACCESS_KEY_ID": "ENVKEY", "AWS_SECRET_ACCESS_KEY": "e"], "ENVKEY", "environment"),
            (files, "FILEKEY", "profile default"),
            (files.merging(["AWS_PROFILE": "other"]) { a, _ in a }, "OTHERKEY", "profile other"),
            (files.merging(["AWS_PROFILE": "proc"]) { a, _ in a }, "PROCKEY", "credential_process"),
        ]
        for (extra, want, source) in cases {
            let env = cleanEnv(extra)
            #expect(try botocoreKey(env) == want)
            let ours = try pinbenchKey(env)
            #expect(ours.key == want && ours.source.contains(source), "\(ours)")
        }
    }

    /// A credential process may write its expiry with a UTC offset and a fraction (botocore reads any ISO 8601
    /// time). pinbench read only `Z` and `+00:00` before, so such credentials looked as if they never expired
    /// and were never refreshed; now both resolvers give the same instant.
    @Test func aCredentialProcessExpiryWithAnOffsetIsTheInstantBotocoreReads() throws {
        let dir = tempDir("chain-offset")
        let proc = "\(dir)/creds.sh"
        try "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"PROCKEY\", \"SecretAccessKey\": \"p\", \"SessionToken\": \"t\", \"Expiration\": \"2099-01-01T02:00:00.250+02:00\"}'\n"
            .write(toFile: proc, atomically: true, encoding: .utf8)
        chmod(proc, 0o755)
        try "[profile proc]\ncredential_process = \(proc)\n".write(toFile: "\(dir)/config", atomically: true, encoding: .utf8)
        let env = cleanEnv(["AWS_CONFIG_FILE": "\(dir)/config", "AWS_SHARED_CREDENTIALS_FILE": "\(dir)/none", "AWS_PROFILE": "proc"])
        let b = try runClean("/usr/bin/env", ["python3", "-c", """
        import boto3, math
        c = boto3.Session().get_credentials()
        print(math.floor(c._expiry_time.timestamp()))
        """], env)
        #expect(b.status == 0, "botocore: \(b.stderr.suffix(500))")
        let r = try runClean(pinbenchBinary(), ["auth", "credentials"], env)
        #expect(r.status == 0, "pinbench: \(r.stderr)")
        let j = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        #expect(j["access_key_id"] as? String == "PROCKEY")
        #expect(j["expires_unix"] as? Int == 4_070_908_800, "\(r.stdout)")
        #expect(Int(b.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == j["expires_unix"] as? Int, "botocore: \(b.stdout)")
    }

    @Test func rolesWebIdentityContainerAndInstanceMetadataResolveAsBotocoreDoes() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("chain-roles")
        try "[src]\naws_access_key_id = SRCKEY\naws_secret_access_key = s\n".write(toFile: "\(dir)/credentials", atomically: true, encoding: .utf8)
        try "[profile loader]\nrole_arn = arn:aws:iam::123456789012:role/loader\nsource_profile = src\n".write(toFile: "\(dir)/config", atomically: true, encoding: .utf8)
        try "eyJhbGciOi.test.token".write(toFile: "\(dir)/web-token", atomically: true, encoding: .utf8)
        // Role from a profile (STS AssumeRole), web identity (AssumeRoleWithWebIdentity): moto, seeded alike.
        let role = cleanEnv(["AWS_SHARED_CREDENTIALS_FILE": "\(dir)/credentials", "AWS_CONFIG_FILE": "\(dir)/config", "AWS_PROFILE": "loader",
                             "AWS_ENDPOINT_URL": moto.endpoint])
        let web = cleanEnv(["AWS_WEB_IDENTITY_TOKEN_FILE": "\(dir)/web-token", "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/eks-pod",
                            "AWS_ROLE_SESSION_NAME": "pod", "AWS_ENDPOINT_URL": moto.endpoint])
        for (env, source) in [(role, "role arn:aws:iam::123456789012:role/loader"), (web, "web identity")] {
            let theirs = try botocoreKey(env, seed: moto.endpoint)
            let ours = try pinbenchKey(env, seed: moto.endpoint)
            #expect(theirs.hasPrefix("ASIA") && ours.key == theirs, "botocore \(theirs), pinbench \(ours)")
            #expect(ours.source.contains(source), "\(ours.source)")
        }
        // The ECS container endpoint, with its authorization token.
        let port = freePort()
        let server = try startProcess("/usr/bin/env", ["python3", peer("creds_server"), String(port), "CONTAINERKEY", "c", "3600", "\(dir)/n", "Bearer xyz"])
        defer { stopProcess(server) }
        #expect(waitForPort(port, seconds: 10))
        let ecs = cleanEnv(["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:\(port)/v2/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "Bearer xyz"])
        #expect(try botocoreKey(ecs) == "CONTAINERKEY")
        #expect(try pinbenchKey(ecs).key == "CONTAINERKEY")
        // EC2 instance metadata, IMDSv2, served by moto.
        var imds = cleanEnv(["AWS_EC2_METADATA_SERVICE_ENDPOINT": moto.endpoint])
        imds["AWS_EC2_METADATA_DISABLED"] = "false"
        let theirs = try botocoreKey(imds)
        let ours = try pinbenchKey(imds)
        #expect(theirs != "none" && ours.key == theirs && ours.source.contains("EC2 instance metadata"), "botocore \(theirs), pinbench \(ours)")
    }

    /// Credentials that expire every 6 s, from a container endpoint, during a 12 s flood into moto's Kinesis:
    /// fetched again before they expire, every record accepted.
    @Test func expiringCredentialsAreRefreshedMidFloodWithNothingLost() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let dir = tempDir("refresh")
        let port = freePort()
        let server = try startProcess("/usr/bin/env", ["python3", peer("creds_server"), String(port), "ROTATING-", "r", "6", "\(dir)/n"])
        defer { stopProcess(server) }
        #expect(waitForPort(port, seconds: 10))
        let env = cleanEnv(["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:\(port)/creds"])
        let r = try runClean(pinbenchBinary(), ["run", "--kinesis", "--aws-endpoint", moto.endpoint, "--create-streams", "--shards", "2",
                                                  "--stream-prefix", "refresh", "--ordered", "--rate", "300", "--duration", "12s", "--quiet",
                                                  "--report-json", "\(dir)/r.json"], env)
        #expect(r.status == 0, "\(r.stderr)")
        let j = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/r.json"))) as? [String: Any]) ?? [:]
        let inn = j["records_in"] as? Int ?? -1, out = j["records_out"] as? Int ?? -2
        #expect(inn > 0 && out == inn, "in \(inn), out \(out)")
        let fetches = Int((try? String(contentsOfFile: "\(dir)/n", encoding: .utf8)) ?? "0") ?? 0
        #expect(fetches >= 3, "credentials fetched \(fetches) times in 12 s with a 6 s lifetime")
    }
}

/// Issue 14 item 7: an https:// endpoint signed by a private CA (a TLS terminator before moto) verifies
/// against --ca-bundle or AWS_CA_BUNDLE; without it, one line, at once (not retried).
@Suite struct PrivateCATests {
    @Test func httpsEndpointsVerifyAgainstTheGivenBundle() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let certs = tempDir("ca-certs")
        let made = try runProcess("/bin/bash", [peer("make_certs", "sh"), certs])
        #expect(made.status == 0, "\(made.stderr)")
        let port = freePort()
        let proxy = try startProcess("/usr/bin/env", ["python3", peer("tls_proxy"), String(port), "127.0.0.1:\(moto.port)",
                                                      "\(certs)/server.pem", "\(certs)/server.key"])
        defer { stopProcess(proxy) }
        #expect(waitForPort(port, seconds: 10))
        let base = ["run", "--kinesis", "--aws-endpoint", "https://127.0.0.1:\(port)", "--create-streams", "--shards", "1", "--ordered", "--count", "200", "--quiet"]
        let env = cleanEnv(["AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"])
        let flag = try runClean(pinbenchBinary(), base + ["--stream-prefix", "caflag", "--ca-bundle", "\(certs)/ca.pem"], env)
        #expect(flag.status == 0, "\(flag.stderr)")
        let viaEnv = try runClean(pinbenchBinary(), base + ["--stream-prefix", "caenv"], env.merging(["AWS_CA_BUNDLE": "\(certs)/ca.pem"]) { _, b in b })
        #expect(viaEnv.status == 0, "\(viaEnv.stderr)")
        let t0 = Date()
        let none = try runClean(pinbenchBinary(), base + ["--stream-prefix", "canone"], env)
        #expect(none.status != 0)
        #expect(none.stderr.contains("certificate") || none.stderr.contains("SSL"), "\(none.stderr)")
        #expect(none.stderr.split(separator: "\n").count == 1, "\(none.stderr)")
        #expect(Date().timeIntervalSince(t0) < 10, "not retried for 30 s")
    }
}
