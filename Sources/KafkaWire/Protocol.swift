import Bytes

/// The APIs pinbench speaks, described as data: key, the version range we implement, and the first
/// flexible version (compact strings/arrays, tagged fields, request header v2 / response header v1).
public enum ApiKey: Int16, CaseIterable, Sendable {
    case produce = 0
    case fetch = 1
    case listOffsets = 2
    case metadata = 3
    case saslHandshake = 17
    case apiVersions = 18
    case createTopics = 19
    case initProducerId = 22
    case saslAuthenticate = 36

    public var name: String {
        switch self {
        case .produce: "Produce"
        case .fetch: "Fetch"
        case .listOffsets: "ListOffsets"
        case .metadata: "Metadata"
        case .apiVersions: "ApiVersions"
        case .createTopics: "CreateTopics"
        case .initProducerId: "InitProducerId"
        case .saslHandshake: "SaslHandshake"
        case .saslAuthenticate: "SaslAuthenticate"
        }
    }

    /// Versions implemented here. Produce starts at 7 (zstd needs it); InitProducerId at 3 (Tansu needs it).
    public var supported: ClosedRange<Int16> {
        switch self {
        case .produce: 7...9
        case .fetch: 4...11
        case .listOffsets: 1...7
        case .metadata: 1...12
        case .apiVersions: 0...3
        case .createTopics: 2...7
        case .initProducerId: 3...4
        case .saslHandshake: 1...1
        case .saslAuthenticate: 0...2
        }
    }

    public var firstFlexible: Int16 {
        switch self {
        case .produce: 9
        case .fetch: 12
        case .listOffsets: 6
        case .metadata: 9
        case .apiVersions: 3
        case .createTopics: 5
        case .initProducerId: 2
        case .saslHandshake: 99
        case .saslAuthenticate: 2
        }
    }

    public func isFlexible(_ v: Int16) -> Bool { v >= firstFlexible }

    /// ApiVersions responses always use response header v0, whatever the version.
    public func responseHeaderHasTags(_ v: Int16) -> Bool { self != .apiVersions && isFlexible(v) }
}

/// A malformed or unexpected response.
public struct ProtocolError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Writes Kafka protocol primitives; `flexible` switches strings, arrays and bytes to their compact forms
/// and adds empty tagged-field sections where the message asks.
public struct ProtocolWriter {
    public let out: ByteBuffer
    public let flexible: Bool

    public init(_ out: ByteBuffer, flexible: Bool) {
        self.out = out
        self.flexible = flexible
    }

    public func int8(_ v: Int8) { out.append(UInt8(bitPattern: v)) }
    public func int16(_ v: Int16) { out.appendBigEndian(v) }
    public func int32(_ v: Int32) { out.appendBigEndian(v) }
    public func int64(_ v: Int64) { out.appendBigEndian(v) }
    public func bool(_ v: Bool) { out.append(v ? 1 : 0) }
    public func uuid(_ v: (UInt64, UInt64)) { out.appendBigEndian(v.0); out.appendBigEndian(v.1) }

    public func string(_ s: String) {
        let n = s.utf8.count
        if flexible { Varint.append(unsigned: UInt64(n + 1), to: out) } else { int16(Int16(n)) }
        out.append(utf8: s)
    }

    public func nullableString(_ s: String?) {
        guard let s else {
            if flexible { Varint.append(unsigned: 0, to: out) } else { int16(-1) }
            return
        }
        string(s)
    }

    public func bytes(_ b: UnsafeRawBufferPointer?) {
        guard let b else {
            if flexible { Varint.append(unsigned: 0, to: out) } else { int32(-1) }
            return
        }
        if flexible { Varint.append(unsigned: UInt64(b.count + 1), to: out) } else { int32(Int32(b.count)) }
        out.append(b)
    }

    public func arrayLength(_ n: Int?) {
        guard let n else {
            if flexible { Varint.append(unsigned: 0, to: out) } else { int32(-1) }
            return
        }
        if flexible { Varint.append(unsigned: UInt64(n + 1), to: out) } else { int32(Int32(n)) }
    }

    /// An empty tagged-field section (flexible versions only).
    public func tags() { if flexible { out.append(0) } }
}

/// Reads Kafka protocol primitives from a response, with bounds checks that throw instead of trapping.
public struct ProtocolReader {
    public let base: UnsafeRawPointer
    public let end: Int
    public var pos: Int
    public let flexible: Bool

    public init(_ buf: UnsafeRawBufferPointer, flexible: Bool) {
        base = buf.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!
        end = buf.count
        pos = 0
        self.flexible = flexible
    }

    mutating func need(_ n: Int) throws(ProtocolError) {
        if n < 0 || n > end - pos { throw ProtocolError("response truncated at byte \(pos) (needed \(n) more)") }
    }

    public mutating func int8() throws(ProtocolError) -> Int8 {
        try need(1); defer { pos += 1 }
        return Int8(bitPattern: base.load(fromByteOffset: pos, as: UInt8.self))
    }
    public mutating func int16() throws(ProtocolError) -> Int16 {
        try need(2); defer { pos += 2 }
        return Int16(bigEndian: base.loadUnaligned(fromByteOffset: pos, as: Int16.self))
    }
    public mutating func int32() throws(ProtocolError) -> Int32 {
        try need(4); defer { pos += 4 }
        return Int32(bigEndian: base.loadUnaligned(fromByteOffset: pos, as: Int32.self))
    }
    public mutating func int64() throws(ProtocolError) -> Int64 {
        try need(8); defer { pos += 8 }
        return Int64(bigEndian: base.loadUnaligned(fromByteOffset: pos, as: Int64.self))
    }
    public mutating func bool() throws(ProtocolError) -> Bool { try int8() != 0 }
    public mutating func uuid() throws(ProtocolError) -> (UInt64, UInt64) {
        let a = UInt64(bitPattern: try int64()), b = UInt64(bitPattern: try int64())
        return (a, b)
    }

    public mutating func uvarint() throws(ProtocolError) -> UInt64 {
        guard let v = Varint.read(unsigned: base, &pos, end) else { throw ProtocolError("bad varint at byte \(pos)") }
        return v
    }

    /// A varint that must fit in Kafka's Int32 lengths and sizes (a broker's answer is input: never trap on it).
    mutating func size() throws(ProtocolError) -> Int {
        let at = pos
        let v = try uvarint()
        guard v <= UInt64(Int32.max) + 1 else { throw ProtocolError("length \(v) at byte \(at) is past Kafka's limits") }
        return Int(v)
    }

    /// Length of a string/bytes/array: -1 for null.
    mutating func length(wide: Bool) throws(ProtocolError) -> Int {
        if flexible { return try size() - 1 }
        return wide ? Int(try int32()) : Int(try int16())
    }

    public mutating func nullableString() throws(ProtocolError) -> String? {
        let n = try length(wide: false)
        if n < 0 { return nil }
        try need(n)
        defer { pos += n }
        return String(decoding: UnsafeRawBufferPointer(start: base + pos, count: n), as: UTF8.self)
    }

    public mutating func string() throws(ProtocolError) -> String { try nullableString() ?? "" }

    /// A bytes field as a view into the response (valid while the response buffer is).
    public mutating func nullableBytes() throws(ProtocolError) -> UnsafeRawBufferPointer? {
        let n = try length(wide: true)
        if n < 0 { return nil }
        try need(n)
        defer { pos += n }
        return UnsafeRawBufferPointer(start: base + pos, count: n)
    }

    /// An array count (0 for null); refuses counts that cannot fit in what is left.
    public mutating func arrayCount() throws(ProtocolError) -> Int {
        let n = try length(wide: true)
        if n < 0 { return 0 }
        if n > end - pos { throw ProtocolError("array of \(n) elements cannot fit in \(end - pos) bytes") }
        return n
    }

    /// Skips a tagged-field section (flexible versions only).
    public mutating func tags() throws(ProtocolError) {
        guard flexible else { return }
        let n = try size()
        for _ in 0..<n {
            _ = try uvarint()
            let size = try size()
            try need(size)
            pos += size
        }
    }

    public mutating func skip(_ n: Int) throws(ProtocolError) {
        try need(n)
        pos += n
    }
}

/// Frames one request: size, header (v1, or v2 for flexible versions), then the body the closure writes.
public func encodeRequest(
    _ api: ApiKey, version: Int16, correlationId: Int32, clientId: String, into out: ByteBuffer,
    body: (ProtocolWriter) -> Void
) {
    let start = out.count
    out.appendBigEndian(Int32(0))  // size, filled below
    let header = ProtocolWriter(out, flexible: false)
    header.int16(api.rawValue)
    header.int16(version)
    header.int32(correlationId)
    header.nullableString(clientId)  // the client id is never compact, even in header v2
    let flexible = api.isFlexible(version)
    if flexible { out.append(0) }  // header v2 tagged fields
    body(ProtocolWriter(out, flexible: flexible))
    out.storeBigEndian(Int32(out.count - start - 4), at: start)
}
