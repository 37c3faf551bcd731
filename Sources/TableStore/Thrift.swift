import Bytes

/// Thrift compact protocol, the encoding of Parquet's page headers and footer
/// (https://github.com/apache/thrift/blob/master/doc/specs/thrift-compact-protocol.md).
enum ThriftType: UInt8 {
    case stop = 0, boolTrue = 1, boolFalse = 2, byte = 3, i16 = 4, i32 = 5, i64 = 6, double = 7, binary = 8
    case list = 9, set = 10, map = 11, structure = 12
}

/// Appends compact-protocol structs to a buffer. Field ids must rise within a struct.
struct ThriftWriter {
    let out: ByteBuffer
    private var lastField: [Int16] = [0]

    init(_ out: ByteBuffer) { self.out = out }

    mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }

    mutating func zigzag(_ v: Int64) { varint(UInt64(bitPattern: (v << 1) ^ (v >> 63))) }

    private mutating func fieldHeader(_ id: Int16, _ type: ThriftType) {
        let delta = id - lastField[lastField.count - 1]
        if delta > 0 && delta <= 15 {
            out.append(UInt8(delta) << 4 | type.rawValue)
        } else {
            out.append(type.rawValue)
            zigzag(Int64(id))
        }
        lastField[lastField.count - 1] = id
    }

    mutating func i32(_ id: Int16, _ v: Int32) { fieldHeader(id, .i32); zigzag(Int64(v)) }
    mutating func i64(_ id: Int16, _ v: Int64) { fieldHeader(id, .i64); zigzag(v) }
    mutating func i16(_ id: Int16, _ v: Int16) { fieldHeader(id, .i16); zigzag(Int64(v)) }
    mutating func bool(_ id: Int16, _ v: Bool) { fieldHeader(id, v ? .boolTrue : .boolFalse) }

    mutating func binary(_ id: Int16, _ bytes: UnsafeRawBufferPointer) {
        fieldHeader(id, .binary)
        varint(UInt64(bytes.count))
        out.append(bytes)
    }

    mutating func binary(_ id: Int16, _ bytes: [UInt8]) { bytes.withUnsafeBytes { binary(id, $0) } }
    mutating func string(_ id: Int16, _ s: String) { binary(id, Array(s.utf8)) }

    /// A struct field: `body` writes its fields.
    mutating func structField(_ id: Int16, _ body: (inout ThriftWriter) -> Void) {
        fieldHeader(id, .structure)
        structBody(body)
    }

    /// A struct's fields and its stop byte (for top-level structs and list elements).
    mutating func structBody(_ body: (inout ThriftWriter) -> Void) {
        lastField.append(0)
        body(&self)
        out.append(ThriftType.stop.rawValue)
        lastField.removeLast()
    }

    mutating func listHeader(_ id: Int16, _ elem: ThriftType, count: Int) {
        fieldHeader(id, .list)
        if count < 15 {
            out.append(UInt8(count) << 4 | elem.rawValue)
        } else {
            out.append(0xF0 | elem.rawValue)
            varint(UInt64(count))
        }
    }

    mutating func structList<T>(_ id: Int16, _ items: [T], _ body: (inout ThriftWriter, T) -> Void) {
        listHeader(id, .structure, count: items.count)
        for item in items { structBody { body(&$0, item) } }
    }

    mutating func i32List(_ id: Int16, _ items: [Int32]) {
        listHeader(id, .i32, count: items.count)
        for v in items { zigzag(Int64(v)) }
    }

    mutating func stringList(_ id: Int16, _ items: [String]) {
        listHeader(id, .binary, count: items.count)
        for s in items {
            let u = Array(s.utf8)
            varint(UInt64(u.count))
            out.append(contentsOf: u)
        }
    }
}

public struct ThriftError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = "thrift: \(d)" }
}

/// A generic compact-protocol value: enough to read Parquet footers and page headers without generated code.
indirect enum ThriftValue {
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case binary([UInt8])
    case list([ThriftValue])
    case structure([Int16: ThriftValue])
    case map

    var int: Int64? { if case .int(let v) = self { v } else { nil } }
    var binary: [UInt8]? { if case .binary(let v) = self { v } else { nil } }
    var string: String? { binary.map { String(decoding: $0, as: UTF8.self) } }
    var list: [ThriftValue]? { if case .list(let v) = self { v } else { nil } }
    var fields: [Int16: ThriftValue]? { if case .structure(let v) = self { v } else { nil } }
    var bool: Bool? { if case .bool(let v) = self { v } else { nil } }
    subscript(_ id: Int16) -> ThriftValue? { fields?[id] }
}

/// Reads compact-protocol structs from bytes; bounds-checked, depth-limited.
struct ThriftReader {
    let bytes: UnsafeRawBufferPointer
    var pos: Int

    init(_ bytes: UnsafeRawBufferPointer, at pos: Int = 0) {
        self.bytes = bytes
        self.pos = pos
    }

    mutating func byte() throws(ThriftError) -> UInt8 {
        guard pos >= 0, pos < bytes.count else { throw ThriftError("truncated at byte \(pos)") }
        defer { pos += 1 }
        return bytes[pos]
    }

    mutating func varint() throws(ThriftError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            v |= UInt64(b & 0x7F) << shift
            if b & 0x80 == 0 { return v }
            shift += 7
            if shift > 63 { throw ThriftError("varint too long at byte \(pos)") }
        }
    }

    /// A varint used as a length or count: it must fit an Int (input never traps a conversion).
    mutating func length() throws(ThriftError) -> Int {
        let v = try varint()
        guard let n = Int(exactly: v) else { throw ThriftError("length \(v) at byte \(pos) is not plausible") }
        return n
    }

    mutating func zigzag() throws(ThriftError) -> Int64 {
        let u = try varint()
        return Int64(bitPattern: u >> 1) ^ -Int64(bitPattern: u & 1)
    }

    mutating func readStruct(depth: Int = 0) throws(ThriftError) -> [Int16: ThriftValue] {
        guard depth < 32 else { throw ThriftError("nesting too deep") }
        var fields: [Int16: ThriftValue] = [:]
        var last: Int16 = 0
        while true {
            let h = try byte()
            if h == 0 { return fields }
            let delta = Int16(h >> 4)
            let id: Int16
            if delta != 0 { id = last &+ delta } else { id = Int16(truncatingIfNeeded: try zigzag()) }
            last = id
            guard let t = ThriftType(rawValue: h & 0x0F) else { throw ThriftError("bad type \(h & 0x0F)") }
            fields[id] = try value(t, depth: depth)
        }
    }

    mutating func value(_ t: ThriftType, depth: Int) throws(ThriftError) -> ThriftValue {
        switch t {
        case .boolTrue: return .bool(true)
        case .boolFalse: return .bool(false)
        case .byte: return .int(Int64(Int8(bitPattern: try byte())))
        case .i16, .i32, .i64: return .int(try zigzag())
        case .double:
            guard pos + 8 <= bytes.count else { throw ThriftError("truncated double") }
            let d = Double(bitPattern: UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: pos, as: UInt64.self)))
            pos += 8
            return .double(d)
        case .binary:
            let n = try length()
            guard n <= bytes.count - pos else { throw ThriftError("binary of \(n) bytes past the end") }
            defer { pos += n }
            return .binary(Array(bytes[pos..<(pos + n)]))
        case .list, .set:
            let h = try byte()
            var n = Int(h >> 4)
            if n == 15 { n = try length() }
            guard let et = ThriftType(rawValue: h & 0x0F), n <= bytes.count - pos + 1 else { throw ThriftError("bad list header") }
            var items: [ThriftValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n {
                if et == .boolTrue || et == .boolFalse {
                    items.append(.bool(try byte() == 1))
                } else {
                    items.append(try value(et, depth: depth + 1))
                }
            }
            return .list(items)
        case .structure:
            return .structure(try readStruct(depth: depth + 1))
        case .map:
            let n = try length()
            if n > 0 {
                let kv = try byte()
                guard let kt = ThriftType(rawValue: kv >> 4), let vt = ThriftType(rawValue: kv & 0x0F), n <= bytes.count - pos else { throw ThriftError("bad map") }
                for _ in 0..<n {
                    // A bool inside a map is a byte of its own: every entry reads at least one byte.
                    if kt == .boolTrue || kt == .boolFalse { _ = try byte() } else { _ = try value(kt, depth: depth + 1) }
                    if vt == .boolTrue || vt == .boolFalse { _ = try byte() } else { _ = try value(vt, depth: depth + 1) }
                }
            }
            return .map
        case .stop:
            throw ThriftError("unexpected stop")
        }
    }
}
