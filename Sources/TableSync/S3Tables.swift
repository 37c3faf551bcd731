#if canImport(Glibc)
import Glibc
#endif
import AWSClient
import TableStore
import JSON
import PinModel
import Platform

/// Delta tables kept in S3 (`--tables s3://bucket/prefix`): the writers (clean, stream) work on a local
/// staging copy of each table's log, then `push` uploads the new data files and publishes each new commit
/// with a conditional PutObject (`If-None-Match: *`), so two writers never both win a version: the loser
/// gets a clear error and its uploaded files stay unreferenced (Delta readers ignore them).
public final class S3Tables {
    public let s3: S3Client
    public let prefix: String
    public let staging: String
    /// Highest version present in S3 per table when pulled.
    var remoteVersion: [String: Int] = [:]

    public init(url: String, aws: AWSConfig, staging: String) throws {
        guard let (bucket, prefix) = S3Client.parseURL(url) else { throw StorageError("\(url): expected s3://bucket/prefix") }
        s3 = try S3Client(config: aws, bucket: bucket)
        self.prefix = prefix
        self.staging = staging
    }

    func key(_ rel: String) -> String { prefix.isEmpty ? rel : "\(prefix)/\(rel)" }

    /// Downloads the tables' commit files (and with `data`, every object of the tables) into staging.
    public func pull(tables: [String], data: Bool = false) throws {
        for t in tables {
            let base = key(t) + "/"
            var maxV = -1
            for o in try s3.list(prefix: data ? base : base + "_delta_log/") {
                let rel = String(o.key.dropFirst(base.count))
                // A listed key is input: one that would land outside the staging folder is refused.
                guard isSafeRelativePath(rel) else { throw StorageError("S3 key \(o.key) is not a plain path under \(base): refused (\"..\", \".\" or empty parts)") }
                if rel.hasPrefix("_delta_log/") {
                    let name = String(rel.dropFirst("_delta_log/".count))
                    guard name.count == 25, name.hasSuffix(".json"), let v = Int(name.prefix(20)) else { continue }
                    maxV = max(maxV, v)
                }
                let local = "\(staging)/\(t)/\(rel)"
                try createDirectories(String(local[..<local.lastIndex(of: "/")!]))
                let bytes = try s3.getObject(o.key)
                try bytes.withUnsafeBytes { try writeFileDurably(local, $0) }
            }
            remoteVersion[t] = maxV
        }
    }

    /// Uploads what the local commits after the pulled version add, then the commits themselves
    /// (conditionally). Returns the versions published per table.
    @discardableResult
    public func push(tables: [String]) throws -> [String: [Int]] {
        var out: [String: [Int]] = [:]
        for t in tables {
            let log = DeltaLog(table: "\(staging)/\(t)")
            let from = (remoteVersion[t] ?? -1) + 1
            for v in log.versions() where v >= from {
                let name = DeltaLog.versionFileName(v)
                let commitPath = "\(staging)/\(t)/_delta_log/\(name)"
                let commit = try readBytes(commitPath)
                for line in String(decoding: commit, as: UTF8.self).split(separator: "\n") {
                    guard let action = try? JSONValue.parse(String(line)), let p = action["add"]?["path"]?.stringValue else { continue }
                    let rel = DeltaLog.percentDecode(p)
                    guard isSafeRelativePath(rel) else { throw StorageError("\(commitPath): add path \(rel) is not a plain path under the table: refused") }
                    try s3.putObject(key("\(t)/\(rel)"), try readBytes("\(staging)/\(t)/\(rel)"), contentType: "application/octet-stream")
                }
                guard try s3.putObjectIfAbsent(key("\(t)/_delta_log/\(name)"), commit) else {
                    throw StorageError("s3://\(s3.bucket)/\(key(t)): another writer committed version \(v) first; nothing of this run is in the table (re-run to append it)")
                }
                out[t, default: []].append(v)
                remoteVersion[t] = v
            }
        }
        // Dead-letter files go up as they are.
        let dl = "\(staging)/_dead_letter"
        if let d = opendir(dl) {
            defer { closedir(d) }
            while let e = readdir(d) {
                let n = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                guard !n.hasPrefix(".") else { continue }
                try s3.putObject(key("_dead_letter/\(n)"), try readBytes("\(dl)/\(n)"), contentType: "application/json")
            }
        }
        return out
    }

    func readBytes(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw StorageError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        var out = [UInt8](repeating: 0, count: Int(st.st_size))
        var got = 0
        while got < out.count {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 { if errno == EINTR { continue }; throw StorageError("read \(path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            got += n
        }
        return out
    }

    /// A fresh staging folder under TMPDIR.
    public static func makeStaging() throws -> String { try makeTemporaryDirectory("pinbench-s3tables") }
}

/// Where Delta tables live: a local folder, or `s3://bucket/prefix`.
public enum TableLocation {
    /// Runs `body` on the tables folder; for `s3://bucket/prefix` on a local staging copy: the tables' logs
    /// (and with `pullData` their files) are downloaded first and, with `push`, new files and commits
    /// uploaded after (commits conditionally: a version another writer took first is an error, never an
    /// overwrite). `aws` is asked only for s3:// locations.
    public static func with<R>(_ tables: String, aws: () throws -> AWSConfig, pullData: Bool, push: Bool,
                               _ body: (String) throws -> R) throws -> R {
        guard tables.hasPrefix("s3://") else { return try body(tables) }
        let staging = try S3Tables.makeStaging()
        defer { removeTree(staging) }
        let remote = try S3Tables(url: tables, aws: try aws(), staging: staging)
        let names = RecordKind.allCases.map(\.name)
        try remote.pull(tables: names, data: pullData)
        let r = try body(staging)
        if push { try remote.push(tables: names) }
        return r
    }
}
