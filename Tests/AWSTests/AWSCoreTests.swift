import AWSAuth
@testable import AWSClient
import Bytes
import Foundation
import Testing

@Test func base64MatchesFoundation() {
    var rng = SystemRandomNumberGenerator()
    // Every length up to 130 and some long ones: the AVX2 blocks (24 bytes, from 28 up) and every tail.
    for n in Array(0...130) + [1000, 1001, 1002, 4099] {
        let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let ours = Base64.encode(bytes)
        #expect(ours == Data(bytes).base64EncodedString())
        #expect(Base64.decode(ours) == bytes)
        // From an unaligned start inside a larger buffer, appended after existing bytes.
        if n >= 3 {
            let out = ByteBuffer(capacity: 8)
            out.append(contentsOf: [UInt8(ascii: "x")])
            bytes.withUnsafeBytes { Base64.encode(UnsafeRawBufferPointer(rebasing: $0[1...]), into: out) }
            #expect(String(decoding: out.bytes, as: UTF8.self) == "x" + Data(bytes[1...]).base64EncodedString())
        }
    }
    #expect(Base64.decode("abc") == nil)
    #expect(Base64.decode("ab!d") == nil)
}

@Test func credentialsResolveInTheCLIsOrder() throws {
    let dir = NSTemporaryDirectory() + "pinbench-aws-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    try "[default]\naws_access_key_id = FILEKEY\naws_secret_access_key = filesecret\n\n[other]\naws_access_key_id=OTHERKEY\naws_secret_access_key=othersecret\naws_session_token = othertoken\n"
        .write(toFile: "\(dir)/credentials", atomically: true, encoding: .utf8)
    try "[profile other]\nregion = eu-west-2\n".write(toFile: "\(dir)/config", atomically: true, encoding: .utf8)
    let files = ["AWS_SHARED_CREDENTIALS_FILE": "\(dir)/credentials", "AWS_CONFIG_FILE": "\(dir)/config", "HOME": dir]

    let explicit = try AWSConfig.resolve(accessKeyId: "OPT", secretAccessKey: "optsecret", environment: files.merging(["AWS_ACCESS_KEY_ID": "ENV", "AWS_SECRET_ACCESS_KEY": "e"]) { a, _ in a })
    #expect(explicit.credentials.accessKeyId == "OPT")
    let env = try AWSConfig.resolve(environment: files.merging(["AWS_ACCESS_KEY_ID": "ENV", "AWS_SECRET_ACCESS_KEY": "e", "AWS_REGION": "ap-south-1"]) { a, _ in a })
    #expect(env.credentials.accessKeyId == "ENV")
    #expect(env.region == "ap-south-1")
    let file = try AWSConfig.resolve(environment: files)
    #expect(file.credentials.accessKeyId == "FILEKEY")
    #expect(file.region == "us-east-1")
    let other = try AWSConfig.resolve(environment: files.merging(["AWS_PROFILE": "other"]) { a, _ in a })
    #expect(other.credentials.accessKeyId == "OTHERKEY")
    #expect(other.credentials.sessionToken == "othertoken")
    #expect(other.region == "eu-west-2")
    #expect(throws: AWSError.self) { try AWSConfig.resolve(environment: ["HOME": "/nonexistent"]) }
    do {
        _ = try AWSConfig.resolve(environment: ["HOME": "/nonexistent"])
    } catch {
        #expect(error.message.contains("no AWS credentials"))
    }
}

@Test func kplAggregatesAndDeaggregates() {
    var agg = KPLAggregator()
    let records: [(String, String)] = (0..<50).map { ("key-\($0 % 7)", "{\"index\": \($0), \"text\": \"\(String(repeating: "x", count: $0))\"}") }
    for (i, r) in records.enumerated() {
        Array(r.0.utf8).withUnsafeBytes { k in Array(r.1.utf8).withUnsafeBytes { d in agg.add(key: k, data: d, token: UInt64(i), nowMs: 0) } }
    }
    let predicted = agg.sizeAfterAdding(key: 0, data: 0)
    let sealed = agg.seal()
    #expect(Array(sealed.prefix(4)) == KPLAggregator.magic)
    #expect(sealed.count <= predicted)
    let back = KPLAggregator.deaggregate(sealed)
    #expect(back?.count == records.count)
    for (a, b) in zip(back ?? [], records) {
        #expect(a.key == b.0)
        #expect(String(decoding: a.data, as: UTF8.self) == b.1)
    }
    var corrupt = sealed
    corrupt[10] ^= 1
    #expect(KPLAggregator.deaggregate(corrupt) == nil, "a bad MD5 means an ordinary record")
    #expect(KPLAggregator.deaggregate(Array("{\"plain\":1}".utf8)) == nil)
}

@Test func xmlFieldsAreUnescaped() {
    let t = "<R><Key>a&amp;b</Key><Key>c&lt;d</Key><IsTruncated>false</IsTruncated></R>"
    #expect(XML.all("Key", in: t) == ["a&b", "c<d"])
    #expect(XML.first("IsTruncated", in: t) == "false")
}

@Test func putRecordsAnswersAreReadInPlace() {
    let body = #"""
    { "FailedRecordCount" : 1, "Records" : [
      {"SequenceNumber": "49590338271490256608559692538361571095921575989136588898", "ShardId": "shardId-000000000001"},
      {"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard \"x\" in stream"},
      {"ShardId":"shardId-000000000000","SequenceNumber":"9","Extra":{"a":[1,2,{"b":null}]}}
    ], "EncryptionType": "NONE" }
    """#
    var seen: [(String?, String?, String?)] = []
    let ok = Array(body.utf8).withUnsafeBytes { p in
        var s = PutRecordsScanner(p)
        return s.scan { e in
            func text(_ r: Range<Int>?) -> String? { r.map { String(decoding: p[$0], as: UTF8.self) } }
            seen.append((text(e.shard), text(e.sequence), text(e.errorCode)))
        }
    }
    #expect(ok)
    #expect(seen.count == 3)
    #expect(seen[0].0 == "shardId-000000000001" && seen[0].1 == "49590338271490256608559692538361571095921575989136588898")
    #expect(seen[1].2 == "ProvisionedThroughputExceededException" && seen[1].1 == nil)
    #expect(seen[2].0 == "shardId-000000000000" && seen[2].1 == "9")
    for bad in ["", "{}", "{\"Records\":[{\"SequenceNumber\":\"1\"}", "[1,2]", "{\"Records\":[{\"SequenceNumber\":1}]"] {
        let r = Array(bad.utf8).withUnsafeBytes { p in var s = PutRecordsScanner(p); return s.scan { _ in } }
        #expect(!r, "\(bad)")
    }
    #expect(sequenceLess("9", "10"))
    #expect(sequenceLess("49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588899"))
}

@Test func cleanAnswersTakeTheFastPathOnlyWhenEveryEntryIsAccepted() {
    func check(_ s: String, _ n: Int) -> Bool { Array(s.utf8).withUnsafeBytes { PutRecordsScanner.allAccepted($0, entries: n) } }
    let two = #"{"FailedRecordCount": 0, "Records": [{"SequenceNumber": "1", "ShardId": "s"}, {"SequenceNumber": "2", "ShardId": "s"}]}"#
    #expect(check(two, 2))
    #expect(!check(two, 3), "fewer results than entries sent")
    #expect(!check(two, 1), "more results than entries sent")
    #expect(!check(#"{"FailedRecordCount": 0, "Records": [{"SequenceNumber": "1"}, {"ErrorCode": "X"}]}"#, 2), "an error entry despite a zero count")
    #expect(!check(#"{"FailedRecordCount": 0, "FailedRecordCount": 0, "Records": [{"SequenceNumber": "1"}]}"#, 1), "a repeated count")
    #expect(!check(#"{"FailedRecordCount":10,"Records":[]}"#, 0))
    #expect(!check(#"{"FailedRecordCount":1,"Records":[{"SequenceNumber":"1"},{"ErrorCode":"X","ErrorMessage":"m"}]}"#, 2))
    #expect(!check(#"{"Records":[{"SequenceNumber":"1"}]}"#, 1), "no FailedRecordCount: full scan")
}

@Test func responseHeadersAreSplitLowercasedAndTrimmed() {
    let raw = "HTTP/1.1 200 OK\r\nContent-Type:  application/x-amz-json-1.1 \r\nETag: \"abc\"\r\nX-Amzn-RequestId:\tR1\r\nRetry-After:2\r\n\r\n"
    let h = Array(raw.utf8).withUnsafeBufferPointer { parseHeaders($0) }
    #expect(h.map(\.0) == ["content-type", "etag", "x-amzn-requestid", "retry-after"])
    #expect(h.map(\.1) == ["application/x-amz-json-1.1", "\"abc\"", "R1", "2"])
}
