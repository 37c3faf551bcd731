import AWSAuth
/// An S3 object listing entry.
public struct S3Object: Sendable, Equatable {
    public var key: String
    public var size: Int
    public init(key: String, size: Int) {
        self.key = key
        self.size = size
    }
}

/// S3 objects in one bucket: PutObject (multipart above a threshold), GetObject, ListObjectsV2,
/// DeleteObject, CreateBucket. Path-style addressing for custom endpoints (`--aws-endpoint`), virtual-hosted
/// for real AWS. Every request carries `x-amz-content-sha256`, so the body is signed too.
public final class S3Client: @unchecked Sendable {
    public let bucket: String
    public let service: AWSService
    let pathPrefix: String
    /// Objects larger than this go up in parts of `partBytes` (S3's minimum part is 5 MiB).
    public var multipartThreshold = 16 << 20
    public var partBytes = 8 << 20

    public init(config: AWSConfig, bucket: String, http: HTTPEngine? = nil) throws(AWSError) {
        guard !bucket.isEmpty, !bucket.contains("/") else { throw AWSError(.config, "bad S3 bucket name \"\(bucket)\"") }
        self.bucket = bucket
        var c = config
        if c.endpoint == nil {
            c.endpoint = "https://\(bucket).s3.\(config.region).amazonaws.com"
            pathPrefix = ""
        } else {
            pathPrefix = "/" + SigV4Signer.uriEncode(bucket, keepSlash: false)
        }
        service = try AWSService(config: c, service: "s3", http: http)
    }

    /// Parses `s3://bucket/prefix` into (bucket, prefix without a trailing slash).
    public static func parseURL(_ url: String) -> (bucket: String, prefix: String)? {
        guard url.hasPrefix("s3://") else { return nil }
        let rest = url.dropFirst(5)
        let parts = rest.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let b = parts.first, !b.isEmpty else { return nil }
        var prefix = parts.count > 1 ? String(parts[1]) : ""
        while prefix.hasSuffix("/") { prefix.removeLast() }
        return (String(b), prefix)
    }

    func path(_ key: String) -> String { pathPrefix + "/" + SigV4Signer.uriEncode(key, keepSlash: true) }

    public func createBucket() throws(AWSError) {
        var body: [UInt8] = []
        if service.config.region != "us-east-1" {
            body = Array("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>\(service.config.region)</LocationConstraint></CreateBucketConfiguration>".utf8)
        }
        do {
            _ = try service.call("CreateBucket", method: "PUT", path: pathPrefix.isEmpty ? "/" : pathPrefix, headers: [("Content-Type", "application/xml")], body: body)
        } catch {
            if case .service(_, let code) = error.kind, code == "BucketAlreadyOwnedByYou" || code == "BucketAlreadyExists" { return }
            throw error
        }
    }

    /// Writes one object (multipart when larger than `multipartThreshold`).
    public func putObject(_ key: String, _ bytes: [UInt8], contentType: String = "application/octet-stream") throws(AWSError) {
        if bytes.count > multipartThreshold {
            try multipartUpload(key, bytes, contentType: contentType)
            return
        }
        _ = try service.call("PutObject", method: "PUT", path: path(key), headers: [("Content-Type", contentType)], body: bytes)
    }

    func multipartUpload(_ key: String, _ bytes: [UInt8], contentType: String) throws(AWSError) {
        let created = try service.call("CreateMultipartUpload", method: "POST", path: path(key), query: [("uploads", "")],
                                       headers: [("Content-Type", contentType)], body: [])
        guard let uploadId = XML.first("UploadId", in: String(decoding: created.body, as: UTF8.self)) else {
            throw AWSError(.protocolError, "s3 CreateMultipartUpload: no UploadId in the answer")
        }
        do throws(AWSError) {
            var etags: [String] = []
            var offset = 0
            var part = 1
            while offset < bytes.count {
                let end = min(bytes.count, offset + partBytes)
                let r = try service.call("UploadPart", method: "PUT", path: path(key),
                                         query: [("partNumber", String(part)), ("uploadId", uploadId)],
                                         headers: [("Content-Type", "application/octet-stream")], body: Array(bytes[offset..<end]))
                guard let etag = r.header("etag") else { throw AWSError(.protocolError, "s3 UploadPart: no ETag for part \(part)") }
                etags.append(etag)
                offset = end
                part += 1
            }
            var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
            for (i, e) in etags.enumerated() { xml += "<Part><PartNumber>\(i + 1)</PartNumber><ETag>\(XML.escape(e))</ETag></Part>" }
            xml += "</CompleteMultipartUpload>"
            let done = try service.call("CompleteMultipartUpload", method: "POST", path: path(key), query: [("uploadId", uploadId)],
                                        headers: [("Content-Type", "application/xml")], body: Array(xml.utf8))
            // S3 can answer 200 with an error document.
            let text = String(decoding: done.body, as: UTF8.self)
            if text.contains("<Error>") {
                throw AWSError(.service(status: 200, code: XML.first("Code", in: text) ?? "Error"), "s3 CompleteMultipartUpload: \(XML.first("Message", in: text) ?? text)")
            }
        } catch {
            _ = try? service.call("AbortMultipartUpload", method: "DELETE", path: path(key), query: [("uploadId", uploadId)], headers: [], body: [])
            throw error
        }
    }

    /// Writes the object only when no object has that key (`If-None-Match: *`): false when one exists.
    /// Two writers racing for a Delta commit version both call this; exactly one gets true.
    public func putObjectIfAbsent(_ key: String, _ bytes: [UInt8], contentType: String = "application/json") throws(AWSError) -> Bool {
        do {
            _ = try service.call("PutObject", method: "PUT", path: path(key), headers: [("Content-Type", contentType), ("If-None-Match", "*")], body: bytes)
            return true
        } catch {
            if case .service(412, _) = error.kind { return false }
            throw error
        }
    }

    public func getObject(_ key: String) throws(AWSError) -> [UInt8] {
        try service.call("GetObject", method: "GET", path: path(key), headers: [], body: []).body
    }

    /// Nil when the object does not exist.
    public func getObjectIfPresent(_ key: String) throws(AWSError) -> [UInt8]? {
        do { return try getObject(key) } catch {
            if case .service(404, _) = error.kind { return nil }
            throw error
        }
    }

    public func deleteObject(_ key: String) throws(AWSError) {
        _ = try service.call("DeleteObject", method: "DELETE", path: path(key), headers: [], body: [])
    }

    /// Every object under `prefix` (ListObjectsV2, following continuation tokens).
    public func list(prefix: String) throws(AWSError) -> [S3Object] {
        var out: [S3Object] = []
        var token: String?
        repeat {
            var q: [(String, String)] = [("list-type", "2"), ("prefix", prefix)]
            if let t = token { q.append(("continuation-token", t)) }
            let r = try service.call("ListObjectsV2", method: "GET", path: pathPrefix.isEmpty ? "/" : pathPrefix, query: q, headers: [], body: [])
            let text = String(decoding: r.body, as: UTF8.self)
            for block in XML.blocks("Contents", in: text) {
                if let k = XML.first("Key", in: block) { out.append(S3Object(key: k, size: Int(XML.first("Size", in: block) ?? "") ?? 0)) }
            }
            token = XML.first("IsTruncated", in: text) == "true" ? XML.first("NextContinuationToken", in: text) : nil
        } while token != nil
        return out
    }
}
