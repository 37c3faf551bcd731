import Bytes

/// A small JSON tree for reports and tools (never on a per-record path). Objects keep key order.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.double(let x), .double(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array(let x), .array(let y)): x == y
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let kv) = self { return kv.last { $0.0 == key }?.1 }
        return nil
    }

    /// Serialises with two-space indentation (`pretty`) or compactly.
    public func serialized(pretty: Bool = true) -> String {
        let out = ByteBuffer(capacity: 4096)
        write(to: out, pretty: pretty, indent: 0)
        if pretty { out.append(UInt8(ascii: "\n")) }
        return String(decoding: out.bytes, as: UTF8.self)
    }

    func write(to out: ByteBuffer, pretty: Bool, indent: Int) {
        func newline(_ level: Int) {
            guard pretty else { return }
            out.append(UInt8(ascii: "\n"))
            for _ in 0..<(level * 2) { out.append(UInt8(ascii: " ")) }
        }
        switch self {
        case .null: out.append("null")
        case .bool(let b): out.append(b ? "true" : "false")
        case .int(let i): out.appendDecimal(i)
        case .double(let d):
            if d.isFinite { JSONWriter.appendDouble(d, to: out) } else { out.append("null") }
        case .string(let s):
            var s = s
            s.withUTF8 { JSONWriter.appendString(UnsafeRawBufferPointer($0), to: out, style: .compact) }
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                v.write(to: out, pretty: pretty, indent: indent + 1)
            }
            if !a.isEmpty { newline(indent) }
            out.append(UInt8(ascii: "]"))
        case .object(let kv):
            out.append(UInt8(ascii: "{"))
            for (i, (k, v)) in kv.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(indent + 1)
                var k = k
                k.withUTF8 { JSONWriter.appendString(UnsafeRawBufferPointer($0), to: out, style: .compact) }
                out.append(pretty ? ": " : ":")
                v.write(to: out, pretty: pretty, indent: indent + 1)
            }
            if !kv.isEmpty { newline(indent) }
            out.append(UInt8(ascii: "}"))
        }
    }
}

// MARK: parsing (metadata files: Delta logs, reports; never per record)

extension JSONValue {
    /// Parses one JSON document (any value at the top) into a tree. Validates as `JSONScanner` does.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        var s = JSONScanner(bytes)
        s.skipWhitespace()
        let v = try s.parseValue(depth: 0)
        s.skipWhitespace()
        if s.pos != s.count { throw JSONError(offset: s.pos, reason: .trailingData) }
        return v
    }

    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        try withUTF8Bytes(of: text) { (b) throws(JSONError) in try parse(b) }
    }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var intValue: Int? {
        switch self {
        case .int(let i): i
        case .double(let d) where d == d.rounded() && abs(d) < 9e18: Int(d)
        default: nil
        }
    }
    public var doubleValue: Double? {
        switch self {
        case .int(let i): Double(i)
        case .double(let d): d
        default: nil
        }
    }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var objectValue: [(String, JSONValue)]? { if case .object(let o) = self { o } else { nil } }
    public var isNull: Bool { if case .null = self { true } else { false } }
}

extension JSONScanner {
    mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        guard depth < 128 else { throw JSONError(offset: pos, reason: .tooDeep) }
        guard pos < count else { throw JSONError(offset: pos, reason: .truncated) }
        let b = byte(pos)
        switch b {
        case UInt8(ascii: "\""):
            let (s, e, esc) = try scanString()
            if !esc { return .string(String(decoding: UnsafeRawBufferPointer(start: base + s, count: e - s), as: UTF8.self)) }
            return .string(try withDecodedString(start: s, end: e) { String(decoding: $0, as: UTF8.self) })
        case UInt8(ascii: "{"):
            pos += 1
            var kv: [(String, JSONValue)] = []
            skipWhitespace()
            if pos < count && byte(pos) == UInt8(ascii: "}") { pos += 1; return .object(kv) }
            while true {
                skipWhitespace()
                guard pos < count else { throw JSONError(offset: pos, reason: .truncated) }
                guard byte(pos) == UInt8(ascii: "\"") else { throw JSONError(offset: pos, reason: .unexpectedByte(byte(pos))) }
                guard case .string(let k) = try parseValue(depth: depth + 1) else { throw JSONError(offset: pos, reason: .badEscape) }
                skipWhitespace()
                guard pos < count else { throw JSONError(offset: pos, reason: .truncated) }
                guard byte(pos) == UInt8(ascii: ":") else { throw JSONError(offset: pos, reason: .unexpectedByte(byte(pos))) }
                pos += 1
                skipWhitespace()
                kv.append((k, try parseValue(depth: depth + 1)))
                skipWhitespace()
                guard pos < count else { throw JSONError(offset: pos, reason: .truncated) }
                let c = byte(pos)
                pos += 1
                if c == UInt8(ascii: "}") { return .object(kv) }
                if c != UInt8(ascii: ",") { throw JSONError(offset: pos - 1, reason: .unexpectedByte(c)) }
            }
        case UInt8(ascii: "["):
            pos += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if pos < count && byte(pos) == UInt8(ascii: "]") { pos += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard pos < count else { throw JSONError(offset: pos, reason: .truncated) }
                let c = byte(pos)
                pos += 1
                if c == UInt8(ascii: "]") { return .array(items) }
                if c != UInt8(ascii: ",") { throw JSONError(offset: pos - 1, reason: .unexpectedByte(c)) }
            }
        default:
            let start = pos
            try skipValue(depth: depth)
            switch b {
            case UInt8(ascii: "t"): return .bool(true)
            case UInt8(ascii: "f"): return .bool(false)
            case UInt8(ascii: "n"): return .null
            default:
                var f = JSONField()
                f.start = Int32(start)
                f.end = Int32(pos)
                f.kind = .number
                let isInt = !UnsafeRawBufferPointer(start: base + start, count: pos - start).contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
                if isInt, let i = try? int(f, name: "") { return .int(i) }
                return .double(try double(f, name: ""))
            }
        }
    }
}
