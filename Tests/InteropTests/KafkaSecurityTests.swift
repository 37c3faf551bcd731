import AWSAuth
import Bytes
import Codecs
import Foundation
import KafkaClient
import Testing
import TestSupport

// Issue 14: TLS, SASL and MSK IAM against independent peers. Tansu speaks neither TLS nor SASL, so a
// front of ours (Peers/kafka_front.py: Python's ssl, scramp, botocore) stands before a Tansu of its own;
// librdkafka and kafka-python go through it first, so the front is proven by clients that are not ours.

private func peer(_ name: String) -> String { Bundle.module.path(forResource: name, ofType: "py", inDirectory: "Peers")! }

/// The test CA and certificates (openssl CLI), made once per test process.
private let certDir: String = {
    let d = tempDir("certs")
    let script = Bundle.module.path(forResource: "make_certs", ofType: "sh", inDirectory: "Peers")!
    let r = try? runProcess("/bin/bash", [script, d])
    precondition(r?.status == 0, "make_certs.sh failed: \(r?.stderr ?? "")")
    return d
}()

/// A front (with its own Tansu) on a free port; stopped by PID.
private final class Front {
    private(set) var port = 0
    let process: Process
    let stats: String

    init(_ args: [String]) throws {
        stats = tempDir("front") + "/stats.json"
        // The front binds a port the kernel picks (--listen 0) before it starts its Tansu, and names it in the
        // stats file it writes once Tansu answers: no other process can take the port in between.
        process = try startProcess("/usr/bin/env", ["python3", peer("kafka_front"), "--listen", "0", "--tansu", "--stats", stats] + args)
        let deadline = Date().addingTimeInterval(30)
        while port == 0 && Date() < deadline {
            port = (counts()["port"] as? Int) ?? 0
            if port == 0 { usleep(50_000) }
        }
        #expect(port != 0, "the front did not come up within 30 s")
    }

    var bootstrap: String { "127.0.0.1:\(port)" }

    func counts() -> [String: Any] {
        guard let d = FileManager.default.contents(atPath: stats), let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return [:] }
        return j
    }

    deinit { stopProcess(process) }
}

/// Runs a Python snippet with argv[1...] = args; its stdout.
private func py(_ code: String, _ args: [String] = [], env: [String: String] = [:]) throws -> ProcessResult {
    try runProcess("/usr/bin/env", ["python3", "-c", code] + args, environment: env)
}

/// librdkafka reads every record of `topics` (assigned partitions 0..<partitions, from the start) through
/// the front with `conf` (a Python dict literal); prints "count dups".
private func librdkafkaCount(_ f: Front, topics: [String], partitions: Int = 3, conf: String) throws -> (Int, Int) {
    let code = """
    import sys, time, confluent_kafka as ck
    conf = \(conf)
    conf.update({"bootstrap.servers": sys.argv[1], "group.id": "t", "enable.auto.commit": False})
    c = ck.Consumer(conf)
    c.assign([ck.TopicPartition(t, p, ck.OFFSET_BEGINNING) for t in sys.argv[2].split(",") for p in range(int(sys.argv[3]))])
    seen, n, dups, idle = set(), 0, 0, time.time()
    while time.time() - idle < 4:
        m = c.poll(0.3)
        if m is None or m.error(): continue
        idle = time.time(); n += 1
        k = (m.topic(), m.partition(), m.value())
        dups += k in seen
        seen.add(k)
    print(n, dups)
    """
    let r = try py(code, [f.bootstrap, topics.joined(separator: ","), String(partitions)])
    let parts = r.stdout.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    #expect(parts.count == 2, "consumer: \(r.stderr.suffix(400))")
    return parts.count == 2 ? (parts[0], parts[1]) : (-1, -1)
}

private func reportCounts(_ path: String) -> (recordsIn: Int, recordsOut: Int, dead: Int) {
    guard let d = FileManager.default.contents(atPath: path), let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return (-1, -1, -1) }
    return (j["records_in"] as? Int ?? -1, j["records_out"] as? Int ?? -1, j["dead_lettered"] as? Int ?? -1)
}

@Suite struct MSKAuthKnownAnswerTests {
    static let facts = (key: "AKIDEXAMPLE", secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token: "SESSIONTOKEN", unix: Int64(1_704_164_645))

    @Test func theFactsFilePayloadAndTokenAreMatchedExactly() throws {
        let c = Credentials(accessKeyId: Self.facts.key, secretAccessKey: Self.facts.secret, sessionToken: Self.facts.token)
        let p = MSKAuth.iamPayload(credentials: c, region: "us-east-1", host: "b-1.demo.abc123.c2.kafka.us-east-1.amazonaws.com", unixSeconds: Self.facts.unix)
        #expect(p.contains("\"x-amz-signature\":\"7b9a372332a83be9f74a43f157126110116f23dd80a41bdd6cb1ae8a61369122\""))
        let t = MSKAuth.oauthToken(credentials: c, region: "us-east-1", unixSeconds: Self.facts.unix, userAgent: "aws-msk-iam-sasl-signer-python/1.0.2")
        #expect(t.token.count == 562)
        #expect(String(decoding: Base64.decodeURL(t.token) ?? [], as: UTF8.self).contains("X-Amz-Signature=fb82bb453ab830259e6297facf805711e08e2ce8abf52eae317bd07ca46fa78c"))
        #expect(t.expiresAt == Self.facts.unix + 900)
    }

    /// Other regions, hosts, times and a credential without a session token, each computed by kafka-python
    /// (AWS_MSK_IAM) and aws-msk-iam-sasl-signer-python (OAUTHBEARER) in the test: equal field by field.
    @Test(arguments: [
        ("AKIAIOSFODNN7EXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "-", "eu-west-1", "b-3.prod.x9y8z7.c4.kafka.eu-west-1.amazonaws.com", Int64(1_767_225_599)),
        ("ASIAQEXAMPLE", "secret/with+chars", "IQoJb3JpZ2luX2VjEPr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ==", "ap-southeast-2", "b-1.cluster.abc.c1.kafka.ap-southeast-2.amazonaws.com", Int64(951_782_400)),
        ("AKID2", "s2", "tok2", "us-gov-west-1", "boot-x.kafka-serverless.us-gov-west-1.amazonaws.com", Int64(2_000_000_000)),
    ])
    func payloadAndTokenEqualTheIndependentLibraries(_ key: String, _ secret: String, _ token: String, _ region: String, _ host: String, _ unix: Int64) throws {
        let c = Credentials(accessKeyId: key, secretAccessKey: secret, sessionToken: token == "-" ? nil : token)
        let theirs = try python3([peer("msk_auth_peer"), "iam", key, secret, token, region, host, String(unix)])
        #expect(theirs.status == 0, "\(theirs.stderr)")
        let ours = MSKAuth.iamPayload(credentials: c, region: region, host: host, unixSeconds: unix)
        let a = try JSONSerialization.jsonObject(with: Data(ours.utf8)) as? [String: String] ?? [:]
        var b = try JSONSerialization.jsonObject(with: Data(theirs.stdout.utf8)) as? [String: String] ?? [:]
        #expect(b["user-agent"] == "kafka-python")
        b["user-agent"] = MSKAuth.userAgent  // free text; every other field must be equal
        #expect(a == b)
        #expect(!(a["x-amz-signature"] ?? "").isEmpty)

        let signer = try python3([peer("msk_auth_peer"), "oauth", key, secret, token, region, String(unix)])
        #expect(signer.status == 0, "\(signer.stderr)")
        func params(_ tok: String) -> [String: String] {
            let url = URLComponents(string: String(decoding: Base64.decodeURL(tok) ?? [], as: UTF8.self))
            var d = [String: String]()
            for q in url?.queryItems ?? [] where q.name != "User-Agent" { d[q.name] = q.value }
            d["host"] = url?.host
            return d
        }
        let mine = MSKAuth.oauthToken(credentials: c, region: region, unixSeconds: unix)
        #expect(params(mine.token) == params(signer.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(params(mine.token)["X-Amz-Signature"]?.count == 64)
    }

    /// `pinbench auth msk-token --at` reproduces a token; secrets are not printed.
    @Test func theCommandPrintsTheSameTokenAtAPinnedTime() throws {
        let env = ["AWS_ACCESS_KEY_ID": Self.facts.key, "AWS_SECRET_ACCESS_KEY": Self.facts.secret, "AWS_SESSION_TOKEN": Self.facts.token]
        let r = try runProcess(pinbenchBinary(), ["auth", "msk-token", "--region", "us-east-1", "--at", "2024-01-02T03:04:05Z",
                                                  "--user-agent", "aws-msk-iam-sasl-signer-python/1.0.2"], environment: env)
        #expect(r.status == 0, "\(r.stderr)")
        let signer = try python3([peer("msk_auth_peer"), "oauth", Self.facts.key, Self.facts.secret, Self.facts.token, "us-east-1", String(Self.facts.unix)])
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == signer.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        let iam = try runProcess(pinbenchBinary(), ["auth", "msk-token", "--mechanism", "AWS_MSK_IAM", "--broker-host",
                                                    "b-1.demo.abc123.c2.kafka.us-east-1.amazonaws.com", "--at", "2024-01-02T03:04:05Z"], environment: env)
        #expect(iam.stdout.contains("7b9a372332a83be9f74a43f157126110116f23dd80a41bdd6cb1ae8a61369122"))
        #expect(!iam.stdout.contains(Self.facts.secret) && !r.stdout.contains(Self.facts.secret))
    }
}

@Suite(.serialized) struct KafkaTLSTests {
    @Test func aFloodThroughTLSArrivesWholeAndLibrdkafkaReadsItBack() throws {
        let f = try Front(["--tls-cert", "\(certDir)/server.pem", "--tls-key", "\(certDir)/server.key"])
        let report = tempDir("tls") + "/r.json"
        let r = try pinbench("run", "--kafka", f.bootstrap, "--security-protocol", "SSL", "--ssl-ca-location", "\(certDir)/ca.pem",
                             "--count", "5000", "--topic-prefix", "tls", "--create-topics", "--report-json", report)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("SSL, TLS, CA \(certDir)/ca.pem"), "the start line says how it connects: \(r.stderr)")
        let c = reportCounts(report)
        #expect(c.recordsIn == 15_000 && c.recordsOut == 15_000 && c.dead == 0)
        let (n, dups) = try librdkafkaCount(f, topics: ["tls.pin", "tls.geo", "tls.user"],
                                            conf: "{'security.protocol': 'SSL', 'ssl.ca.location': '\(certDir)/ca.pem'}")
        #expect(n == 15_000 && dups == 0)
        // The batch path reads a secured cluster too: land consumes the three topics over TLS.
        let landing = tempDir("tls-land")
        let land = try pinbench("land", "--kafka", f.bootstrap, "--security-protocol", "SSL", "--ssl-ca-location", "\(certDir)/ca.pem",
                                "--topic-prefix", "tls", "--to", landing, "--quiet")
        #expect(land.status == 0, "\(land.stderr)")
        let lines = try runProcess("/bin/sh", ["-c", "cat $(find \(landing) -name '*.json') | wc -l"])
        #expect(Int(lines.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) == 15_000, "\(lines.stdout)")
    }

    /// A wrong CA, a certificate for another name and an expired certificate: one clear line each, quickly,
    /// non-zero exit, no retry storm.
    @Test(arguments: [
        ("server", "other-ca.pem", "unable to get local issuer certificate"),
        ("wrongname", "ca.pem", "IP address mismatch"),
        ("expired", "ca.pem", "certificate has expired"),
    ])
    func aCertificateThatDoesNotHoldIsOneClearLine(_ cert: String, _ ca: String, _ says: String) throws {
        let f = try Front(["--tls-cert", "\(certDir)/\(cert).pem", "--tls-key", "\(certDir)/\(cert).key"])
        let t0 = Date()
        let r = try pinbench("run", "--kafka", f.bootstrap, "--security-protocol", "SSL", "--ssl-ca-location", "\(certDir)/\(ca)", "--count", "10")
        #expect(r.status == 1)
        #expect(r.stderr.contains(says), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        #expect(Date().timeIntervalSince(t0) < 10)
        // pinbench's one failed handshake: no retry storm.
        #expect(((f.counts()["tls_failed"] as? Int) ?? 0) == 1, "one handshake, no retry storm: \(f.counts())")
    }

    /// Mutual TLS: a front that requires a client certificate takes pinbench's (ssl.certificate.location and
    /// ssl.key.location, a CA directory for the server) and refuses a client without one.
    @Test func mutualTLSPresentsTheClientCertificate() throws {
        let f = try Front(["--tls-cert", "\(certDir)/server.pem", "--tls-key", "\(certDir)/server.key", "--tls-client-ca", "\(certDir)/ca.pem"])
        // ssl.ca.location as a directory of hashed certificates (openssl rehash).
        let caDir = tempDir("cadir")
        try FileManager.default.copyItem(atPath: "\(certDir)/ca.pem", toPath: "\(caDir)/ca.pem")
        #expect(try runProcess("/usr/bin/openssl", ["rehash", caDir]).status == 0)
        let ok = try pinbench("run", "--kafka", f.bootstrap, "--security-protocol", "SSL", "--ssl-ca-location", caDir,
                              "-X", "ssl.certificate.location=\(certDir)/client.pem", "-X", "ssl.key.location=\(certDir)/client.key",
                              "--count", "200", "--create-topics", "--topic-prefix", "mtls", "--quiet")
        #expect(ok.status == 0, "\(ok.stderr)")
        let without = try pinbench("run", "--kafka", f.bootstrap, "--security-protocol", "SSL", "--ssl-ca-location", caDir, "--count", "10")
        #expect(without.status == 1 && without.stderr.split(separator: "\n").count == 1, "\(without.stderr)")
        let mismatched = try pinbench("run", "--kafka", f.bootstrap, "--security-protocol", "SSL", "--ssl-ca-location", caDir,
                                      "-X", "ssl.certificate.location=\(certDir)/client.pem", "-X", "ssl.key.location=\(certDir)/server.key", "--count", "10")
        #expect(mismatched.status != 0 && mismatched.stderr.contains("does not match"), "\(mismatched.stderr)")
    }

    @Test func hostnameChecksCanBeTurnedOffWithAWarning() throws {
        let f = try Front(["--tls-cert", "\(certDir)/wrongname.pem", "--tls-key", "\(certDir)/wrongname.key"])
        let r = try pinbench("run", "--kafka", f.bootstrap, "--security-protocol", "SSL", "--ssl-ca-location", "\(certDir)/ca.pem",
                             "-X", "ssl.endpoint.identification.algorithm=none", "--count", "100", "--create-topics", "--quiet")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("warning: ssl.endpoint.identification.algorithm=none"))
    }
}

@Suite(.serialized) struct KafkaSASLTests {
    static let mechanisms = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]

    /// The front is first proven by librdkafka and kafka-python; then pinbench floods through it with each
    /// mechanism while the session lives 2 s, so the producer re-authenticates several times mid-flood:
    /// every record arrives exactly once (idempotence), and the front never saw a request on a dead session.
    @Test func everyMechanismFloodsThroughReauthenticationExactlyOnce() throws {
        let f = try Front(["--sasl", Self.mechanisms.joined(separator: ","), "--user", "alice:s3cr=t,pw", "--lifetime-ms", "2000"])
        let proof = try py("""
        import sys, confluent_kafka as ck, kafka
        for m in sys.argv[2].split(","):
            p = ck.Producer({"bootstrap.servers": sys.argv[1], "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": m,
                             "sasl.username": "alice", "sasl.password": "s3cr=t,pw"})
            p.produce("proof", b"x"); assert p.flush(10) == 0, m
            k = kafka.KafkaProducer(bootstrap_servers=sys.argv[1], security_protocol="SASL_PLAINTEXT", sasl_mechanism=m,
                                    sasl_plain_username="alice", sasl_plain_password="s3cr=t,pw", api_version=(2, 8))
            k.send("proof", b"y").get(10); k.close()
        print("ok")
        """, [f.bootstrap, Self.mechanisms.joined(separator: ",")])
        #expect(proof.stdout.contains("ok"), "the front, proven by librdkafka and kafka-python: \(proof.stderr.suffix(600))")
        for (i, m) in Self.mechanisms.enumerated() {
            let report = tempDir("sasl") + "/r.json"
            let prefix = "sasl\(i)"
            let r = try runProcess(pinbenchBinary(), ["run", "--kafka", f.bootstrap, "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", m,
                                                      "--sasl-username", "alice", "--rate", "1500", "--duration", i == 0 ? "6s" : "3s",
                                                      "--io-threads", i % 2 == 0 ? "true" : "false",  // both: I/O threads renew too
                                                      "--topic-prefix", prefix, "--create-topics", "--quiet", "--report-json", report],
                                   environment: ["PINBENCH_SASL_PASSWORD": "s3cr=t,pw"])
            #expect(r.status == 0, "\(m): \(r.stderr)")
            #expect(!r.stderr.contains("s3cr=t,pw"))
            let c = reportCounts(report)
            #expect(c.recordsIn > 0 && c.recordsOut == c.recordsIn && c.dead == 0, "\(m): \(c)")
            let (n, dups) = try librdkafkaCount(f, topics: ["\(prefix).pin", "\(prefix).geo", "\(prefix).user"],
                                                conf: "{'security.protocol': 'SASL_PLAINTEXT', 'sasl.mechanism': 'PLAIN', 'sasl.username': 'alice', 'sasl.password': 's3cr=t,pw'}")
            #expect(n == c.recordsOut && dups == 0, "\(m): consumed \(n), \(dups) duplicates, produced \(c.recordsOut)")
        }
        let counts = f.counts()
        #expect((counts["reauth"] as? Int ?? 0) >= 2, "re-authenticated mid-flood: \(counts)")
        #expect((counts["expired_use"] as? Int ?? -1) == 0, "no request on an expired session: \(counts)")
    }

    @Test func aWrongPasswordAndAnUnknownMechanismAreOneClearLineWithoutTheSecret() throws {
        let f = try Front(["--sasl", "SCRAM-SHA-512", "--user", "alice:right"])
        let bad = try pinbench("run", "--kafka", f.bootstrap, "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "SCRAM-SHA-512",
                               "--sasl-username", "alice", "-X", "sasl.password=wrongpassword", "--count", "10")
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("SASL SCRAM-SHA-512 authentication failed"), "\(bad.stderr)")
        #expect(!bad.stderr.contains("wrongpassword"))
        #expect(bad.stderr.split(separator: "\n").filter { !$0.contains("warning:") }.count == 1, "\(bad.stderr)")
        let other = try pinbench("run", "--kafka", f.bootstrap, "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN",
                                 "--sasl-username", "alice", "-X", "sasl.password=right", "--count", "10")
        #expect(other.status == 1)
        #expect(other.stderr.contains("does not enable SASL mechanism PLAIN (it offers SCRAM-SHA-512)"), "\(other.stderr)")
        let nonsense = try pinbench("run", "--kafka", f.bootstrap, "--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "GSSAPI", "--count", "10")
        #expect(nonsense.status == 64)
        #expect(nonsense.stderr.contains("pinbench speaks PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, AWS_MSK_IAM, OAUTHBEARER"), "\(nonsense.stderr)")
    }
}

@Suite(.serialized) struct KafkaMSKIAMTests {
    static let key = "AKIDFRONTTEST", secret = "front/secret+key"

    var env: [String: String] { ["AWS_ACCESS_KEY_ID": Self.key, "AWS_SECRET_ACCESS_KEY": Self.secret, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_SESSION_TOKEN": ""] }

    /// kafka-python (AWS_MSK_IAM) and librdkafka (OAUTHBEARER with the AWS signer's token) prove the front;
    /// then pinbench floods with each mechanism over SASL_SSL, re-authenticating with fresh signatures.
    @Test func bothIAMMechanismsFloodThroughASignatureCheckingFront() throws {
        let f = try Front(["--tls-cert", "\(certDir)/server.pem", "--tls-key", "\(certDir)/server.key", "--sasl", "AWS_MSK_IAM,OAUTHBEARER",
                           "--aws", "\(Self.key):\(Self.secret)", "--lifetime-ms", "2000"])
        let proof = try py("""
        import sys, kafka, confluent_kafka as ck
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
        k = kafka.KafkaProducer(bootstrap_servers=sys.argv[1], security_protocol="SASL_SSL", sasl_mechanism="AWS_MSK_IAM",
                                ssl_cafile=sys.argv[2], api_version=(2, 8))
        k.send("proof", b"x").get(10); k.close()
        def cb(_):
            t, exp = MSKAuthTokenProvider.generate_auth_token("us-east-1")
            return t, exp / 1000
        p = ck.Producer({"bootstrap.servers": sys.argv[1], "security.protocol": "SASL_SSL", "sasl.mechanism": "OAUTHBEARER",
                         "oauth_cb": cb, "ssl.ca.location": sys.argv[2]})
        p.produce("proof", b"y"); assert p.flush(10) == 0
        print("ok")
        """, [f.bootstrap, "\(certDir)/ca.pem"], env: env)
        #expect(proof.stdout.contains("ok"), "\(proof.stderr.suffix(600))")
        for (i, m) in ["AWS_MSK_IAM", "OAUTHBEARER"].enumerated() {
            let report = tempDir("iam") + "/r.json"
            let r = try runProcess(pinbenchBinary(), ["run", "--kafka", f.bootstrap, "--security-protocol", "SASL_SSL", "--sasl-mechanism", m,
                                                      "--ssl-ca-location", "\(certDir)/ca.pem", "--rate", "1500", "--duration", "5s",
                                                      "--topic-prefix", "iam\(i)", "--create-topics", "--quiet", "--report-json", report], environment: env)
            #expect(r.status == 0, "\(m): \(r.stderr)")
            let c = reportCounts(report)
            #expect(c.recordsIn > 0 && c.recordsOut == c.recordsIn && c.dead == 0, "\(m): \(c) \(r.stderr)")
        }
        let counts = f.counts()
        #expect((counts["reauth"] as? Int ?? 0) >= 2 && (counts["expired_use"] as? Int ?? -1) == 0, "\(counts)")
        #expect((counts["auth_failed"] as? Int ?? -1) == 0, "\(counts)")
    }

    @Test func aWrongSecretAndAnExpiredTokenAreRefusedWithOneLine() throws {
        let f = try Front(["--tls-cert", "\(certDir)/server.pem", "--tls-key", "\(certDir)/server.key", "--sasl", "AWS_MSK_IAM,OAUTHBEARER",
                           "--aws", "\(Self.key):\(Self.secret)"])
        var wrong = env
        wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let r = try runProcess(pinbenchBinary(), ["run", "--kafka", f.bootstrap, "--security-protocol", "SASL_SSL", "--sasl-mechanism", "AWS_MSK_IAM",
                                                  "--ssl-ca-location", "\(certDir)/ca.pem", "--count", "10"], environment: wrong)
        #expect(r.status == 1)
        #expect(r.stderr.contains("AWS_MSK_IAM authentication failed") && r.stderr.contains("signature mismatch"), "\(r.stderr)")
        #expect(!r.stderr.contains("not-the-secret"))
        // A token signed yesterday, handed over in a token file: the broker refuses it as expired.
        let dir = tempDir("tok")
        let tok = try runProcess(pinbenchBinary(), ["auth", "msk-token", "--region", "us-east-1", "--at", "2024-01-01T00:00:00Z"], environment: env)
        try tok.stdout.write(toFile: "\(dir)/token", atomically: true, encoding: .utf8)
        let old = try runProcess(pinbenchBinary(), ["run", "--kafka", f.bootstrap, "--security-protocol", "SASL_SSL", "--sasl-mechanism", "OAUTHBEARER",
                                                    "-X", "sasl.oauthbearer.token.file=\(dir)/token", "--ssl-ca-location", "\(certDir)/ca.pem", "--count", "10"],
                                 environment: env)
        #expect(old.status == 1)
        #expect(old.stderr.contains("OAUTHBEARER authentication failed") && old.stderr.contains("expired"), "\(old.stderr)")
        // A token command (here pinbench's own msk-token, signing now) is asked at every authentication.
        let cmd = try runProcess(pinbenchBinary(), ["run", "--kafka", f.bootstrap, "--security-protocol", "SASL_SSL", "--sasl-mechanism", "OAUTHBEARER",
                                                    "-X", "sasl.oauthbearer.token.command=\(pinbenchBinary()) auth msk-token --region us-east-1",
                                                    "--ssl-ca-location", "\(certDir)/ca.pem", "--count", "100", "--create-topics", "--quiet"], environment: env)
        #expect(cmd.status == 0, "\(cmd.stderr)")
    }

    /// The seed's client.properties, as written (a fake role ARN): the role is assumed through STS (moto),
    /// and the producer signs with the role's credentials: the front, which knows only those, lets it in.
    /// moto's seeded randomness gives the same role credentials to boto3 (to configure the front) and to
    /// pinbench.
    @Test func theSeedsClientPropertiesWorkAsWritten() throws {
        let moto = try Moto()
        defer { moto.stop() }
        let role = "arn:aws:iam::584739742957:role/129076a9eaf9-ec2-access-role"
        let assume = """
        import sys, boto3, urllib.request
        urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/moto-api/seed?a=7", method="POST")).read()
        c = boto3.client("sts", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="base", aws_secret_access_key="base")
        r = c.assume_role(RoleArn=sys.argv[2], RoleSessionName="pinbench-test")["Credentials"]
        urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/moto-api/seed?a=7", method="POST")).read()
        print(r["AccessKeyId"] + ":" + r["SecretAccessKey"])
        """
        let creds = try py(assume, [moto.endpoint, role]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(creds.hasPrefix("ASIA"), "moto's AssumeRole: \(creds)")
        let f = try Front(["--tls-cert", "\(certDir)/server.pem", "--tls-key", "\(certDir)/server.key", "--sasl", "AWS_MSK_IAM", "--aws", creds])
        let dir = tempDir("seedprops")
        try """
        security.protocol = SASL_SSL
        sasl.mechanism = AWS_MSK_IAM
        sasl.jaas.config = software.amazon.msk.auth.iam.IAMLoginModule required awsRoleArn=\(role);
        sasl.client.callback.handler.class = software.amazon.msk.auth.iam.IAMClientCallbackHandler
        """.write(toFile: "\(dir)/client.properties", atomically: true, encoding: .utf8)
        let r = try runProcess(pinbenchBinary(), ["run", "--kafka", f.bootstrap, "--kafka-config", "\(dir)/client.properties",
                                                  "--ssl-ca-location", "\(certDir)/ca.pem", "--aws-endpoint", moto.endpoint,
                                                  "--count", "1000", "--create-topics", "--topic-prefix", "seed"],
                               environment: ["AWS_ACCESS_KEY_ID": "base", "AWS_SECRET_ACCESS_KEY": "base", "AWS_REGION": "us-east-1"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("SASL_SSL, AWS_MSK_IAM (role \(role) via STS"), "\(r.stderr)")
        #expect(((f.counts()["auth_ok"] as? [String: Int])?["AWS_MSK_IAM"] ?? 0) >= 1)
    }
}

@Suite struct KafkaClientPropertiesTests {
    @Test func javaPropertiesAndJAASAreReadAsTheJavaClientReadsThem() throws {
        var p = KafkaClientProperties()
        try p.load(text: """
        # comment
        ! also a comment
        security.protocol : SASL_SSL
        sasl.mechanism SCRAM-SHA-512
        sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \\
            username="svc" password="p w;d=";
        acks=1
        linger.ms = 25
        compression.type=zstd
        """, source: "t")
        let spec = try KafkaSecuritySpec(p)
        #expect(spec.securityProtocol == .saslSSL && spec.mechanism == "SCRAM-SHA-512")
        #expect(spec.username == "svc" && spec.password == "p w;d=")
        var pc = ProducerConfiguration(bootstrap: [BrokerAddress(host: "h", port: 1)])
        try p.apply(to: &pc)
        #expect(pc.acks == 1 && pc.lingerMs == 25 && pc.compression == .zstd)
        #expect(p.redacted.contains("sasl.jaas.config=***"))
        #expect(!p.redacted.joined().contains("p w;d="))
    }

    @Test func unknownAndJavaOnlyKeysAreOneClearLine() throws {
        var p = KafkaClientProperties()
        #expect(throws: KafkaClientError.self) { try p.set(assignment: "sasl.mechansim=PLAIN") }
        do { try p.set(assignment: "sasl.mechansim=PLAIN") } catch { #expect(error.message.contains("did you mean sasl.mechanism?")) }
        do { try p.set(assignment: "ssl.truststore.location=/x.jks") } catch { #expect(error.message.contains("give ssl.ca.location")) }
        let r = try pinbench("run", "--kafka", "127.0.0.1:1", "-X", "sasl.pasword=hunter2", "--count", "1")
        #expect(r.status == 64 && r.stderr.contains("unknown Kafka property sasl.pasword") && !r.stderr.contains("hunter2"), "\(r.stderr)")
    }
}
