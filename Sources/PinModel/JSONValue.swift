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
