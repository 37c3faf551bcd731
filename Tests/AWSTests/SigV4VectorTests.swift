import AWSClient
import Bytes
import Testing
import AWSAuth
import Platform

/// Requests and their expected `Authorization` from the AWS SigV4 test suite (awslabs/aws-c-auth,
/// tests/aws-signing-test-suite/v4/<name>/header-signed-request.txt; Apache-2.0). Every case signs with
/// AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, us-east-1, service "service", 2015-08-30T12:36:00Z.
/// The signed request is the input with its Authorization line removed.
let signingSuite: [(name: String, text: String)] = [
    ("get-vanilla-query-order-key-case", """
    GET /?Param2=value2&Param1=value1 HTTP/1.1
    Host:example.amazonaws.com
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500
    X-Amz-Date:20150830T123600Z

    """),
    ("post-vanilla", """
    POST / HTTP/1.1
    Host:example.amazonaws.com
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b
    X-Amz-Date:20150830T123600Z

    """),
    ("get-unreserved", """
    GET /-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz HTTP/1.1
    Host:example.amazonaws.com
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f
    X-Amz-Date:20150830T123600Z

    """),
    ("get-header-value-trim", """
    GET / HTTP/1.1
    Host:example.amazonaws.com
    My-Header1: value1
    My-Header2: "a   b   c"
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736
    X-Amz-Date:20150830T123600Z

    """),
    ("get-header-key-duplicate", """
    GET / HTTP/1.1
    Host:example.amazonaws.com
    My-Header1:value2
    My-Header1:value2
    My-Header1:value1
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea
    X-Amz-Date:20150830T123600Z

    """),
    ("get-header-value-order", """
    GET / HTTP/1.1
    Host:example.amazonaws.com
    My-Header1:value4
    My-Header1:value1
    My-Header1:value3
    My-Header1:value2
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;my-header1;x-amz-date, Signature=08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01
    X-Amz-Date:20150830T123600Z

    """),
    ("get-vanilla-utf8-query", """
    GET /?ሴ=bar HTTP/1.1
    Host:example.amazonaws.com
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04
    X-Amz-Date:20150830T123600Z

    """),
    ("get-space-normalized", """
    GET /example space/ HTTP/1.1
    Host:example.amazonaws.com
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741
    X-Amz-Date:20150830T123600Z

    """),
    ("get-slashes-normalized", """
    GET //example// HTTP/1.1
    Host:example.amazonaws.com
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84
    X-Amz-Date:20150830T123600Z

    """),
    ("get-utf8", """
    GET /ሴ HTTP/1.1
    Host:example.amazonaws.com
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85
    X-Amz-Date:20150830T123600Z

    """),
    ("post-x-www-form-urlencoded", """
    POST / HTTP/1.1
    Content-Type:application/x-www-form-urlencoded
    Host:example.amazonaws.com
    Content-Length:13
    x-amz-content-sha256:9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b
    X-Amz-Date:20150830T123600Z

    Param1=value1
    """),
    ("get-vanilla-with-session-token", """
    GET / HTTP/1.1
    Host:example.amazonaws.com
    Authorization:AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8
    X-Amz-Date:20150830T123600Z
    X-Amz-Security-Token:6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267

    """),
]

struct ParsedVector {
    var method: String
    var path: String
    var query: [(String, String)]
    var headers: [(String, String)]
    var body: [UInt8]
    var expected: String
}

func parseVector(_ text: String) -> ParsedVector {
    let parts = text.split(separator: "\n", omittingEmptySubsequences: false)
    let requestLine = String(parts[0])
    let method = String(requestLine.prefix { $0 != " " })
    var target = String(requestLine.dropFirst(method.count + 1))
    target.removeLast(" HTTP/1.1".count)
    var path = target
    var query: [(String, String)] = []
    if let q = target.firstIndex(of: "?") {
        path = String(target[..<q])
        for pair in target[target.index(after: q)...].split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            query.append((SigV4Signer.percentDecode(String(kv[0])), kv.count > 1 ? SigV4Signer.percentDecode(String(kv[1])) : ""))
        }
    }
    var headers: [(String, String)] = []
    var expected = ""
    var i = 1
    while i < parts.count, !parts[i].isEmpty {
        let line = parts[i]
        let c = line.firstIndex(of: ":")!
        let name = String(line[..<c]), value = String(line[line.index(after: c)...])
        if name == "Authorization" { expected = value } else { headers.append((name, value)) }
        i += 1
    }
    let body = i + 1 < parts.count ? Array(parts[(i + 1)...].joined(separator: "\n").utf8) : []
    return ParsedVector(method: method, path: path, query: query, headers: headers, body: body, expected: expected)
}

@Test(arguments: signingSuite.map(\.name))
func signingSuiteCase(_ name: String) {
    let v = parseVector(signingSuite.first { $0.name == name }!.text)
    let token = v.headers.first { $0.0 == "X-Amz-Security-Token" }?.1
    let creds = Credentials(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: token)
    let signer = SigV4Signer(credentials: creds, region: "us-east-1", service: "service")
    let hash = Digest.hex(Digest.sha256(v.body))
    let auth = signer.authorization(.init(method: v.method, path: v.path, query: v.query, headers: v.headers, payloadHash: hash), amzDate: "20150830T123600Z")
    #expect(auth == v.expected, "\(name)")
}

@Test func signingKeyMatchesTheDocumentedExample() {
    // docs.aws.amazon.com "Examples of how to derive a signing key": secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY,
    // 20120215, us-east-1, iam.
    let s = SigV4Signer(credentials: Credentials(accessKeyId: "x", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), region: "us-east-1", service: "iam")
    #expect(Digest.hex(s.signingKey(date: "20120215")) == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d")
}

@Test func s3PathsAreSignedAsSent() {
    let s = SigV4Signer(credentials: Credentials(accessKeyId: "a", secretAccessKey: "b"), region: "us-east-1", service: "s3")
    #expect(s.canonicalURI("/bucket/a%20b//c") == "/bucket/a%20b//c")
    let k = SigV4Signer(credentials: Credentials(accessKeyId: "a", secretAccessKey: "b"), region: "us-east-1", service: "kinesis")
    #expect(k.canonicalURI("/a/./b/../c//") == "/a/c/")
}

/// Expirations as STS and instance metadata write them, and as credential processes may (a fraction, an offset):
/// one instant, floored to seconds; impossible dates are refused, not rolled over.
@Test func expiryTimesAreReadWithTheirOffsets() {
    #expect(UTCTime.unixSeconds(iso8601: "2015-08-30T12:36:00Z") == 1_440_938_160)
    #expect(UTCTime.unixSeconds(iso8601: "2015-08-30T12:36:00.999Z") == 1_440_938_160)
    #expect(UTCTime.unixSeconds(iso8601: "2015-08-30T14:36:00+02:00") == 1_440_938_160)
    #expect(UTCTime.unixSeconds(iso8601: "2015-08-30T07:36:00-05:00") == 1_440_938_160)
    #expect(UTCTime.unixSeconds(iso8601: "1969-12-31T23:59:59.5Z") == -1)
    #expect(UTCTime.unixSeconds(iso8601: "2015-02-30T00:00:00Z") == nil)
    #expect(UTCTime.unixSeconds(iso8601: "2015-08-30T12:36:00+2") == nil)
    #expect(UTCTime.unixSeconds(iso8601: "tomorrow") == nil)
}

@Test func amzDateIsUTC() {
    #expect(SigV4Signer.amzDate(unixSeconds: 1_440_938_160) == "20150830T123600Z")
    #expect(SigV4Signer.amzDate(unixSeconds: 951_782_400) == "20000229T000000Z")
}

@Test func credentialsNeverShowTheSecret() {
    let c = Credentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", sessionToken: "tok")
    #expect(!"\(c)".contains("wJalr"))
    #expect(!"\(c)".contains("tok"))
    #expect(!"\(c)".contains("AKIAIOSFODNN7EXAMPLE"))
}
