#if canImport(Glibc)
import Glibc
#endif
import Bytes
import JSON
import Platform

/// One data file of a table as the log lists it.
public struct DeltaFile: Sendable, Equatable {
    /// Relative to the table root, decoded (as on disk).
    public var path: String
    public var partitionValues: [String: String?]
    public var size: Int
    public var numRecords: Int?
}

/// The table's state at one version: metadata and live files.
public struct DeltaSnapshot: Sendable {
    public var version: Int
    public var schemaString: String
    public var partitionColumns: [String]
    public var files: [DeltaFile]
    /// Application transaction ids (`txn` actions): appId → version.
    public var transactions: [String: Int]
    /// The newest `commitInfo.pinbench` object (streaming checkpoints live there, committed with the data).
    public var pinbenchInfo: JSONValue? = nil
    /// The newest `commitInfo.pinbench` per `key` (a batch day's `batch/<date>`), for commits that name one.
    public var pinbenchInfoByKey: [String: JSONValue] = [:]
    /// The live files added by commits whose `commitInfo.pinbench` names each key (what `--force` replaces).
    public var filesByKey: [String: [String]] = [:]
}

/// The Delta Lake transaction log of one table (`<table>/_delta_log/<20-digit version>.json`, PROTOCOL.md):
/// protocol (reader 1, writer 2), metaData with the Spark schema and partition columns, `add` actions with
/// statistics, `txn` for idempotent batch writes, `commitInfo`. A commit is written to a temporary file and
/// published with `link(2)`, which fails when the version exists: two writers never both win a version;
/// the loser re-reads the log and tries the next version.
public struct DeltaLog {
    public let table: String
    var logDir: String { "\(table)/_delta_log" }

    public init(table: String) { self.table = table }

    public static func versionFileName(_ v: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, 20 - s.count)) + s + ".json"
    }

    /// The versions present (sorted), from the `.json` commit files.
    public func versions() -> [Int] {
        guard let d = opendir(logDir) else { return [] }
        defer { closedir(d) }
        var out: [Int] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name.count == 25, name.hasSuffix(".json"), let v = Int(name.prefix(20)) else { continue }
            out.append(v)
        }
        return out.sorted()
    }

    public var exists: Bool { !versions().isEmpty }

    /// Replays the log (commit files 0…latest; checkpoints are not written by pinbench and not read).
    public func snapshot() throws(StorageError) -> DeltaSnapshot? {
        let vs = versions()
        guard let last = vs.last else { return nil }
        guard vs == Array(0...last) else { throw StorageError("\(logDir): missing commit files (have \(vs.count) of \(last + 1)); checkpointed tables are not read") }
        var schema = ""
        var parts: [String] = []
        var files: [String: DeltaFile] = [:]
        var txns: [String: Int] = [:]
        var info: JSONValue?
        var infoByKey: [String: JSONValue] = [:]
        var keyOfFile: [String: String] = [:]
        for v in vs {
            let path = "\(logDir)/\(DeltaLog.versionFileName(v))"
            let text = try readFile(path)
            var commitKey: String?
            var added: [String] = []
            defer { if let k = commitKey { for f in added { keyOfFile[f] = k } } }
            for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
                let action: JSONValue
                do { action = try JSONValue.parse(String(line)) } catch {
                    throw StorageError("\(path): \(error)")
                }
                if let md = action["metaData"] {
                    schema = md["schemaString"]?.stringValue ?? ""
                    parts = md["partitionColumns"]?.arrayValue?.compactMap(\.stringValue) ?? []
                } else if let add = action["add"], let p = add["path"]?.stringValue {
                    let decoded = DeltaLog.percentDecode(p)
                    var pv: [String: String?] = [:]
                    for (k, v) in add["partitionValues"]?.objectValue ?? [] { pv[k] = v.stringValue }
                    var n: Int?
                    if let st = add["stats"]?.stringValue, let sv = try? JSONValue.parse(st) { n = sv["numRecords"]?.intValue }
                    files[decoded] = DeltaFile(path: decoded, partitionValues: pv, size: add["size"]?.intValue ?? 0, numRecords: n)
                    added.append(decoded)
                } else if let rm = action["remove"], let p = rm["path"]?.stringValue {
                    files[DeltaLog.percentDecode(p)] = nil
                    keyOfFile[DeltaLog.percentDecode(p)] = nil
                } else if let t = action["txn"], let app = t["appId"]?.stringValue, let ver = t["version"]?.intValue {
                    txns[app] = ver
                } else if let ci = action["commitInfo"], let pb = ci["pinbench"] {
                    info = pb
                    if let k = pb["key"]?.stringValue {
                        infoByKey[k] = pb
                        commitKey = k
                    }
                }
            }
        }
        var byKey: [String: [String]] = [:]
        for (f, k) in keyOfFile where files[f] != nil { byKey[k, default: []].append(f) }
        return DeltaSnapshot(version: last, schemaString: schema, partitionColumns: parts,
                             files: files.values.sorted { $0.path < $1.path }, transactions: txns, pinbenchInfo: info,
                             pinbenchInfoByKey: infoByKey, filesByKey: byKey.mapValues { $0.sorted() })
    }

    /// Spark's JSON schema of a table.
    public static func sparkSchema(_ schema: TableSchema) -> String {
        var fields: [JSONValue] = []
        for c in schema.columns {
            let type: JSONValue
            switch c.type {
            case .string: type = .string("string")
            case .int64: type = .string("long")
            case .double: type = .string("double")
            case .timestamp: type = .string("timestamp")
            case .doublePair: type = .object([("type", .string("array")), ("elementType", .string("double")), ("containsNull", .bool(true))])
            }
            fields.append(.object([("name", .string(c.name)), ("type", type), ("nullable", .bool(true)), ("metadata", .object([]))]))
        }
        return JSONValue.object([("type", .string("struct")), ("fields", .array(fields))]).serialized(pretty: false)
    }

    /// Appends `files` in one commit. Creates the table (protocol + metaData) when it has no log yet; refuses
    /// a table whose schema or partitioning differs. With `txn`, the commit is skipped (returns nil) when the
    /// log already holds that application id at that version or later: a retried batch never lands twice.
    /// `removes` (table-relative paths) leave the table in the same commit (a batch day redone).
    @discardableResult
    public func commitAppend(
        schema: TableSchema, partitionColumns: [String], files: [AddAction], txn: (appId: String, version: Int)? = nil,
        operation: String = "WRITE", info: JSONValue? = nil, removes: [String] = [], nowMs: Int64
    ) throws(StorageError) -> Int? {
        try createDirectories(logDir)
        let schemaString = DeltaLog.sparkSchema(schema)
        for _ in 0..<1000 {
            let snap = try snapshot()
            if let snap {
                guard snap.partitionColumns == partitionColumns else {
                    throw StorageError("\(table) is partitioned by \(snap.partitionColumns), not \(partitionColumns)")
                }
                guard snap.schemaString == schemaString else { throw StorageError("\(table) has another schema: \(snap.schemaString)") }
                if let txn, let have = snap.transactions[txn.appId], have >= txn.version { return nil }
            }
            let version = (snap?.version ?? -1) + 1
            var lines: [String] = []
            lines.append(JSONValue.object([("commitInfo", .object([
                ("timestamp", .int(Int(nowMs))), ("operation", .string(operation)),
                ("operationParameters", .object([("mode", .string("Append")), ("partitionBy", .string(JSONValue.array(partitionColumns.map { .string($0) }).serialized(pretty: false)))])),
                ("isBlindAppend", .bool(removes.isEmpty)), ("engineInfo", .string("pinbench/0.1.0")),
            ] + (info.map { [("pinbench", $0)] } ?? [])))]).serialized(pretty: false))
            if snap == nil {
                lines.append(#"{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}"#)
                lines.append(JSONValue.object([("metaData", .object([
                    ("id", .string(uuid4())), ("format", .object([("provider", .string("parquet")), ("options", .object([]))])),
                    ("schemaString", .string(schemaString)),
                    ("partitionColumns", .array(partitionColumns.map { .string($0) })),
                    ("configuration", .object([])), ("createdTime", .int(Int(nowMs))),
                ]))]).serialized(pretty: false))
            }
            if let txn {
                lines.append(JSONValue.object([("txn", .object([("appId", .string(txn.appId)), ("version", .int(txn.version)), ("lastUpdated", .int(Int(nowMs)))]))]).serialized(pretty: false))
            }
            for r in removes {
                lines.append(JSONValue.object([("remove", .object([
                    ("path", .string(DeltaLog.percentEncode(r))), ("deletionTimestamp", .int(Int(nowMs))), ("dataChange", .bool(true)),
                ]))]).serialized(pretty: false))
            }
            for f in files { lines.append(f.json(nowMs: nowMs)) }
            let body = lines.joined(separator: "\n") + "\n"
            let tmp = "\(logDir)/.tmp-\(uuid4()).json"
            try writeFileDurably(tmp, body)
            let target = "\(logDir)/\(DeltaLog.versionFileName(version))"
            if link(tmp, target) == 0 {
                unlink(tmp)
                // The commit exists once its directory entry is on disk (and, for a new table, the log's own).
                syncDirectory(logDir)
                if version == 0 { syncDirectory(table) }
                return version
            }
            let e = errno
            unlink(tmp)
            if e != EEXIST { throw StorageError("commit \(target): \(String(cString: strerror(e)))") }
            // Another writer won this version: re-read and try the next one.
        }
        throw StorageError("\(table): gave up after 1000 conflicting commits")
    }

    // MARK: path encoding

    /// Hive-style folder name escaping (as Spark's `escapePathName`).
    public static func escapePartitionValue(_ v: String) -> String {
        var out = ""
        for u in v.unicodeScalars {
            let c = u.value
            if c < 0x20 || c == 0x7F || "\"#%'*/:=?\\{[]^".unicodeScalars.contains(u) {
                out += "%" + (c < 16 ? "0" : "") + String(c, radix: 16, uppercase: true)
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// RFC 3986 percent-encoding of a relative path for `add.path` ('/' kept).
    public static func percentEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            let ch = Character(Unicode.Scalar(b))
            if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "-._~/=".utf8.contains(b) {
                out.append(ch)
            } else {
                out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            }
        }
        return out
    }

    public static func percentDecode(_ s: String) -> String {
        let u = Array(s.utf8)
        var out: [UInt8] = []
        var i = 0
        while i < u.count {
            if u[i] == UInt8(ascii: "%"), i + 2 < u.count, let v = UInt8(String(decoding: u[(i + 1)...(i + 2)], as: UTF8.self), radix: 16) {
                out.append(v)
                i += 3
            } else {
                out.append(u[i])
                i += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// An `add` action for a file written by `PartitionedTableWriter`.
public struct AddAction: Sendable {
    /// Relative to the table root, not encoded.
    public var path: String
    public var partitionValues: [(String, String?)]
    public var size: Int
    public var rows: Int
    /// Column statistics for the non-partition columns, as (column spec, summary).
    public var stats: [(ColumnSpec, ColumnSummary)]

    public init(path: String, partitionValues: [(String, String?)], size: Int, rows: Int, stats: [(ColumnSpec, ColumnSummary)]) {
        self.path = path
        self.partitionValues = partitionValues
        self.size = size
        self.rows = rows
        self.stats = stats
    }

    func json(nowMs: Int64) -> String {
        var mins: [(String, JSONValue)] = [], maxs: [(String, JSONValue)] = [], nulls: [(String, JSONValue)] = []
        for (spec, s) in stats {
            switch spec.type {
            case .doublePair:
                nulls.append((spec.name, .int(0)))
                continue
            case .string:
                // Only short strings (Delta readers compare prefixes; a cut maximum would be wrong).
                if let mn = s.minBytes, let mx = s.maxBytes, mn.count <= 32, mx.count <= 32 {
                    mins.append((spec.name, .string(String(decoding: mn, as: UTF8.self))))
                    maxs.append((spec.name, .string(String(decoding: mx, as: UTF8.self))))
                }
            case .int64:
                if let mn = s.minInt, let mx = s.maxInt { mins.append((spec.name, .int(Int(mn)))); maxs.append((spec.name, .int(Int(mx)))) }
            case .timestamp:
                if let mn = s.minInt, let mx = s.maxInt {
                    mins.append((spec.name, .string(UTCTime.iso(micros: mn))))
                    maxs.append((spec.name, .string(UTCTime.iso(micros: mx, roundUp: true))))
                }
            case .double:
                if let mn = s.minDouble, let mx = s.maxDouble { mins.append((spec.name, .double(mn))); maxs.append((spec.name, .double(mx))) }
            }
            nulls.append((spec.name, .int(Int(s.nullCount))))
        }
        let stats = JSONValue.object([("numRecords", .int(rows)), ("minValues", .object(mins)), ("maxValues", .object(maxs)), ("nullCount", .object(nulls))])
        return JSONValue.object([("add", .object([
            ("path", .string(DeltaLog.percentEncode(path))),
            ("partitionValues", .object(partitionValues.map { ($0.0, $0.1.map { .string($0) } ?? .null) })),
            ("size", .int(size)), ("modificationTime", .int(Int(nowMs))), ("dataChange", .bool(true)),
            ("stats", .string(stats.serialized(pretty: false))),
        ]))]).serialized(pretty: false)
    }
}

// MARK: small file helpers

func readFile(_ path: String) throws(StorageError) -> String {
    guard let f = fopen(path, "rb") else { throw StorageError("cannot open \(path): \(String(cString: strerror(errno)))") }
    defer { fclose(f) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = fread(&buf, 1, buf.count, f)
        if n > 0 { out.append(contentsOf: buf[0..<n]) }
        if n < buf.count {
            if ferror(f) != 0 { throw StorageError("read \(path): \(String(cString: strerror(errno)))") }
            break
        }
    }
    return String(decoding: out, as: UTF8.self)
}

/// Writes `text` to `path` and fsyncs it.
func writeFileDurably(_ path: String, _ text: String) throws(StorageError) {
    var text = text
    let r: Result<Void, StorageError> = text.withUTF8 { u in Result { () throws(StorageError) in try writeFileDurably(path, UnsafeRawBufferPointer(u)) } }
    try r.get()
}

/// Writes `bytes` to `path` (created or truncated) and fsyncs it; on failure the file is removed.
public func writeFileDurably(_ path: String, _ bytes: UnsafeRawBufferPointer) throws(StorageError) {
    do { try Platform.writeFileDurably(path, bytes) } catch { throw StorageError(error) }
}

/// `mkdir -p`.
public func createDirectories(_ path: String) throws(StorageError) {
    do { try makeDirectories(path) } catch { throw StorageError(error) }
}

/// A random (version 4) UUID from the system generator.
public func uuid4() -> String {
    var g = SystemRandomNumberGenerator()
    var b = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
    b[6] = b[6] & 0x0F | 0x40
    b[8] = b[8] & 0x3F | 0x80
    let hex = b.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }
    return hex[0..<4].joined() + "-" + hex[4..<6].joined() + "-" + hex[6..<8].joined() + "-" + hex[8..<10].joined() + "-" + hex[10..<16].joined()
}
