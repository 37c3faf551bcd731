import ArgumentParser
import AWSAuth
import AWSClient
import Console
import JSON
import Platform

/// `pinbench auth …`: what pinbench would send to authenticate, for debugging access policies.
struct Auth: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what pinbench sends to authenticate (MSK IAM tokens).",
        subcommands: [MskToken.self, WhoAmI.self])
}

enum MSKMechanism: String, ExpressibleByArgument, CaseIterable {
    case OAUTHBEARER, AWS_MSK_IAM
}

struct MskToken: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "msk-token",
        abstract: "Print an MSK IAM OAUTHBEARER token, or the AWS_MSK_IAM payload for one broker, signed with the AWS credentials found.",
        discussion: examples(
            "pinbench auth msk-token --region us-east-1",
            "pinbench auth msk-token --mechanism AWS_MSK_IAM --broker-host b-1.demo.abc123.c2.kafka.us-east-1.amazonaws.com",
            "pinbench auth msk-token --region us-east-1 --at 2024-01-02T03:04:05Z"))

    @Option(help: "The broker the AWS_MSK_IAM payload is for (each broker's connection signs its own host).") var brokerHost: String?
    @Option(help: "OAUTHBEARER (a token, as aws-msk-iam-sasl-signer makes) or AWS_MSK_IAM (the JSON payload).") var mechanism: MSKMechanism = .OAUTHBEARER
    @Option(help: "Sign at this time (ISO 8601, e.g. 2024-01-02T03:04:05Z) so a token can be reproduced; default now.") var at: String?
    @Option(help: "The user agent the token names.") var userAgent: String = MSKAuth.userAgent
    @OptionGroup var aws: AWSOptions

    func validate() throws {
        if mechanism == .AWS_MSK_IAM && brokerHost == nil { throw ValidationError("--mechanism AWS_MSK_IAM needs --broker-host (the payload signs the broker's name)") }
        if let at, UTCTime.unixSeconds(iso8601: at) == nil { throw ValidationError("--at needs an ISO 8601 time such as 2024-01-02T03:04:05Z (or with an offset, +01:00), got '\(at)'") }
    }

    func run() throws {
        let when = at.flatMap { UTCTime.unixSeconds(iso8601: $0) } ?? wallSeconds()
        let resolved = try aws.resolve()
        // --region (the AWS options' own) names the cluster's region; else the broker's DNS name tells it.
        let r = aws.region ?? brokerHost.flatMap { MSKAuth.region(ofBrokerHost: $0) } ?? resolved.region
        switch mechanism {
        case .OAUTHBEARER:
            let t = MSKAuth.oauthToken(credentials: resolved.credentials, region: r, unixSeconds: when, userAgent: userAgent)
            print(t.token)
        case .AWS_MSK_IAM:
            print(MSKAuth.iamPayload(credentials: resolved.credentials, region: r, host: brokerHost ?? "", unixSeconds: when, userAgent: userAgent))
        }
    }
}

/// Which credentials the chain finds, without the secret: to compare with what the AWS CLI finds.
struct WhoAmI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "credentials",
        abstract: "Print which AWS credentials pinbench finds (key id, source, expiry; never the secret) as one JSON line.",
        discussion: examples("pinbench auth credentials", "AWS_PROFILE=prod pinbench auth credentials --aws-role-arn arn:aws:iam::123456789012:role/loader"))

    @OptionGroup var aws: AWSOptions

    func run() throws {
        let c = try aws.resolve()
        var fields: [(String, JSONValue)] = [("access_key_id", .string(c.credentials.accessKeyId)), ("source", .string(c.credentials.source)),
                                             ("region", .string(c.region)), ("temporary", .bool(c.credentials.sessionToken != nil))]
        if let e = c.credentials.expiration { fields.append(("expires_unix", .int(Int(e)))) }
        print(JSONValue.object(fields).serialized(pretty: false))
    }
}
