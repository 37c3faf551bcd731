import AWSAuth
import Bytes

/// A SASL mechanism's settings: what `sasl.mechanism` and its credentials say. Secrets are held here and
/// nowhere else; `description` never shows them.
public enum SASLMechanism: Sendable, CustomStringConvertible {
    case plain(username: String, password: String)
    case scram(Digest.SHA2, username: String, password: String)
    /// `AWS_MSK_IAM`: a presigned JSON payload per broker host. `region` nil: from the broker's DNS name.
    case awsMskIam(region: String?, credentials: CredentialSource)
    /// `OAUTHBEARER`: a token from `source`.
    case oauthBearer(TokenSource)

    public var name: String {
        switch self {
        case .plain: "PLAIN"
        case .scram(let h, _, _): h == .sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-512"
        case .awsMskIam: "AWS_MSK_IAM"
        case .oauthBearer: "OAUTHBEARER"
        }
    }

    public var description: String {
        switch self {
        case .plain(let u, _), .scram(_, let u, _): "\(name) as \(u)"
        case .awsMskIam(let r, let c): "\(name) (\(c.description)\(r.map { ", region \($0)" } ?? ""))"
        case .oauthBearer(let t): "\(name) (\(t.description))"
        }
    }
}

/// Where AWS credentials come from, asked again at every (re-)authentication so refreshed ones are used.
public struct CredentialSource: Sendable, CustomStringConvertible {
    public let description: String
    public let resolve: @Sendable () throws -> Credentials
    public init(_ description: String, _ resolve: @escaping @Sendable () throws -> Credentials) {
        self.description = description
        self.resolve = resolve
    }
}

/// Where an OAUTHBEARER token comes from: made now (with its expiry, Unix seconds), asked again at every
/// (re-)authentication.
public struct TokenSource: Sendable, CustomStringConvertible {
    public let description: String
    public let make: @Sendable () throws -> (token: String, expiresAt: Int64?)
    public init(_ description: String, _ make: @escaping @Sendable () throws -> (token: String, expiresAt: Int64?)) {
        self.description = description
        self.make = make
    }
}

/// A SASL exchange that failed: the broker refused the credentials, or the mechanism's own check failed.
public struct SASLError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The client side of SCRAM-SHA-256/512 (RFC 5802, RFC 7677): client-first, client-final with the proof,
/// and the server's signature checked. Usernames are escaped (`=` → `=3D`, `,` → `=2C`); passwords are used
/// as UTF-8 without SASLprep (ASCII passwords, which is what Kafka's SCRAM users have, are unaffected).
public struct ScramClient {
    public let hash: Digest.SHA2
    let username: String
    let password: String
    public let clientNonce: String
    var clientFirstBare = ""
    var serverSignature: [UInt8] = []

    public init(_ hash: Digest.SHA2, username: String, password: String, nonce: String? = nil) {
        self.hash = hash
        self.username = username
        self.password = password
        clientNonce = nonce ?? Base64.encode(Digest.randomBytes(24))
    }

    static func escape(_ s: String) -> String {
        s.replacingAll("=", with: "=3D").replacingAll(",", with: "=2C")
    }

    public mutating func clientFirst() -> [UInt8] {
        clientFirstBare = "n=\(ScramClient.escape(username)),r=\(clientNonce)"
        return Array(("n,," + clientFirstBare).utf8)
    }

    /// Attribute `k` of a SCRAM message (`k=value`).
    static func attribute(_ msg: String, _ k: Character) -> String? {
        for part in msg.split(separator: ",", omittingEmptySubsequences: false) where part.count >= 2 && part.first == k && part.dropFirst().first == "=" {
            return String(part.dropFirst(2))
        }
        return nil
    }

    public mutating func clientFinal(serverFirst: [UInt8]) throws(SASLError) -> [UInt8] {
        let sf = String(decoding: serverFirst, as: UTF8.self)
        if let e = ScramClient.attribute(sf, "e") { throw SASLError("the broker refused SCRAM: \(e)") }
        guard let nonce = ScramClient.attribute(sf, "r"), nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count,
              let saltText = ScramClient.attribute(sf, "s"), let salt = Base64.decode(saltText),
              let itText = ScramClient.attribute(sf, "i"), let iterations = Int(itText), iterations >= 1, iterations <= 10_000_000
        else { throw SASLError("the broker's SCRAM server-first message is malformed") }
        guard let salted = Digest.pbkdf2(hash, password: Array(password.utf8), salt: salt, iterations: iterations) else {
            throw SASLError("SCRAM: cannot derive the salted password (\(iterations) iterations)")
        }
        let clientKey = Digest.hmac(hash, key: salted, Array("Client Key".utf8))
        let storedKey = Digest.hash(hash, clientKey)
        let withoutProof = "c=biws,r=\(nonce)"
        let authMessage = Array("\(clientFirstBare),\(sf),\(withoutProof)".utf8)
        let clientSignature = Digest.hmac(hash, key: storedKey, authMessage)
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        let serverKey = Digest.hmac(hash, key: salted, Array("Server Key".utf8))
        serverSignature = Digest.hmac(hash, key: serverKey, authMessage)
        return Array("\(withoutProof),p=\(Base64.encode(proof))".utf8)
    }

    /// Checks the server-final message: the server proved it knows the password too.
    public func verify(serverFinal: [UInt8]) throws(SASLError) {
        let s = String(decoding: serverFinal, as: UTF8.self)
        if let e = ScramClient.attribute(s, "e") { throw SASLError("the broker refused SCRAM authentication: \(e)") }
        guard let v = ScramClient.attribute(s, "v"), let sig = Base64.decode(v) else {
            throw SASLError("the broker's SCRAM server-final message is malformed")
        }
        guard sig == serverSignature else { throw SASLError("the broker's SCRAM signature is wrong: it does not know this user's password") }
    }
}

extension String {
    func replacingAll(_ a: Character, with b: String) -> String {
        var out = ""
        for c in self { if c == a { out += b } else { out.append(c) } }
        return out
    }
}
