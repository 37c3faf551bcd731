import Bytes
import CPinShims

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a JSON text was refused. Every case comes with the byte offset where it was seen.
public enum JSONErrorReason: Equatable, Sendable, CustomStringConvertible {
    case truncated
    case unexpectedByte(UInt8)
    case notAnObject
    case badEscape
    case badUnicodeEscape
    case loneSurrogate
    case invalidUTF8
    case controlCharacterInString
    case badNumber
    case numberOutOfRange
    case wrongType(field: String, expected: String)
    case missingField(String)
    case trailingData
    case tooDeep

    public var description: String {
        switch self {
        case .truncated: "input ends before the JSON value does"
        case .unexpectedByte(let b):
            (b >= 0x20 && b < 0x7F) ? "unexpected character '\(Character(Unicode.Scalar(b)))'" : "unexpected byte 0x\(String(b, radix: 16))"
        case .notAnObject: "the value is not a JSON object"
        case .badEscape: "invalid escape sequence in string"
        case .badUnicodeEscape: "invalid \\u escape (needs four hex digits)"
        case .loneSurrogate: "\\u escape is an unpaired surrogate"
        case .invalidUTF8: "string is not valid UTF-8"
        case .controlCharacterInString: "unescaped control character in string"
        case .badNumber: "malformed number"
        case .numberOutOfRange: "number out of range"
        case .wrongType(let f, let e): "field \"\(f)\" must be \(e)"
        case .missingField(let f): "missing field \"\(f)\""
        case .trailingData: "data after the end of the JSON value"
        case .tooDeep: "nesting deeper than 512 levels"
        }
    }
}

/// A typed JSON error: the reason and the byte offset of the input where it was found.
public struct JSONError: Error, Equatable, Sendable, CustomStringConvertible {
    public var offset: Int
    public var reason: JSONErrorReason

    public init(offset: Int, reason: JSONErrorReason) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

/// The JSON type of a scanned value.
public enum JSONValueKind: UInt8, Sendable {
    case absent = 0, string, number, bool, null, object, array
}

/// Where a field's value sits in the input. For strings the range excludes the quotes, and `escaped`
/// says whether it holds escapes (then `JSONScanner.decodeString` gives the text).
@frozen
public struct JSONField: Sendable {
    public var start: Int32
    public var end: Int32
    public var kind: JSONValueKind
    public var escaped: Bool
    /// For `.bool`: the value.
    public var flag: Bool

    @inlinable
    public init() {
        start = 0
        end = 0
        kind = .absent
        escaped = false
        flag = false
    }
}

/// A table of the keys a record kind cares about; the scanner maps each key it meets to a slot index.
///
/// The key bytes live in one block that is never freed: tables are made once per record kind (as
/// `static let`s) and live for the program. Plain pointers, not arrays, so that looking a key up costs
/// no reference counting on the per-field path.
public struct JSONKeyTable: @unchecked Sendable {
    public let names: [String]
    @usableFromInline let bytes: UnsafeMutablePointer<UInt8>
    @usableFromInline let starts: UnsafeMutablePointer<Int>
    @usableFromInline let lengths: UnsafeMutablePointer<Int>
    @usableFromInline let count: Int

    public init(_ names: [String]) {
        self.names = names
        count = names.count
        let utf8 = names.map { Array($0.utf8) }
        let total = utf8.reduce(0) { $0 + $1.count }
        bytes = .allocate(capacity: max(total, 1))
        starts = .allocate(capacity: max(count, 1))
        lengths = .allocate(capacity: max(count, 1))
        var off = 0
        for (i, u) in utf8.enumerated() {
            for (j, b) in u.enumerated() { bytes[off + j] = b }
            starts[i] = off
            lengths[i] = u.count
            off += u.count
        }
    }

    @inline(__always)
    func matches(_ slot: Int, _ base: UnsafeRawPointer, _ len: Int) -> Bool {
        guard lengths[slot] == len else { return false }
        let k = bytes + starts[slot]
        var i = 0
        while i + 8 <= len {
            if base.loadUnaligned(fromByteOffset: i, as: UInt64.self) != UnsafeRawPointer(k).loadUnaligned(fromByteOffset: i, as: UInt64.self) {
                return false
            }
            i += 8
        }
        while i < len {
            if base.load(fromByteOffset: i, as: UInt8.self) != k[i] { return false }
            i += 1
        }
        return true
    }

    /// The slot of the key `base[0..<len]`, or -1. `hint` is the slot expected next (keys usually come in
    /// their canonical order), tried first.
    @inline(__always)
    func slot(_ base: UnsafeRawPointer, _ len: Int, hint: Int) -> Int {
        if hint < count && matches(hint, base, len) { return hint }
        for s in 0..<count where matches(s, base, len) { return s }
        return -1
    }
}

/// A validating, non-allocating scanner for one JSON object. It checks the whole text (strings are
/// checked for UTF-8, escapes and control characters; numbers for grammar; nesting), records where the
/// values of known keys sit, and skips the rest. Later duplicates of a key win, as in Python.
public struct JSONScanner {
    public let base: UnsafeRawPointer
    public let count: Int
    @usableFromInline var pos: Int = 0
    /// While a value is scanned in compacting mode: where its bytes go (whitespace outside strings left
    /// out), how many went, and where the run not yet copied starts. The copy happens in `skipWhitespace`,
    /// so validation and compaction are one pass.
    @usableFromInline var emit: UnsafeMutableRawPointer? = nil
    @usableFromInline var emitted = 0
    @usableFromInline var runStart = 0

    public init(_ buffer: UnsafeRawBufferPointer) {
        // An empty buffer has no base address; use a static non-null pointer so `count == 0` is the only check.
        self.base = buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 0x10)!
        self.count = buffer.count
    }

    @inline(__always)
    func byte(_ i: Int) -> UInt8 { base.load(fromByteOffset: i, as: UInt8.self) }

    @inline(__always)
    func fail(_ r: JSONErrorReason, at: Int? = nil) -> JSONError { JSONError(offset: at ?? pos, reason: r) }

    @inline(__always)
    mutating func skipWhitespace() {
        let start = pos
        while pos < count {
            let b = byte(pos)
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { pos += 1 } else { break }
        }
        if _slowPath(pos != start), let e = emit { flushRun(e, upTo: start) }
    }

    @inline(never)
    mutating func flushRun(_ e: UnsafeMutableRawPointer, upTo end: Int) {
        let n = end - runStart
        if n > 0 { (e + emitted).copyMemory(from: base + runStart, byteCount: n) }
        emitted += n
        runStart = pos
    }

    /// Scans one object that must fill the whole input (surrounding whitespace allowed).
    public mutating func scanObject(keys: JSONKeyTable, into fields: UnsafeMutableBufferPointer<JSONField>) throws(JSONError) {
        try scanNextObject(keys: keys, into: fields, depth: 0)
        skipWhitespace()
        if pos != count { throw fail(.trailingData) }
    }

    /// At an object's `{` (after whitespace): steps inside; true when the object is empty (then past `}`).
    /// Anything else is validated as JSON and reported as not an object.
    @inline(__always)
    mutating func openObject(depth: Int) throws(JSONError) -> Bool {
        skipWhitespace()
        guard pos < count else { throw fail(.truncated) }
        guard byte(pos) == UInt8(ascii: "{") else {
            // Validate it is JSON at all to tell "not an object" from garbage.
            let start = pos
            try skipValue(depth: depth)
            throw fail(.notAnObject, at: start)
        }
        pos += 1
        skipWhitespace()
        guard pos < count else { throw fail(.truncated) }
        if byte(pos) == UInt8(ascii: "}") { pos += 1; return true }
        return false
    }

    /// At a member's key: scans it and the `:`, leaving the position at the value; returns the key's slot
    /// in `keys` (-1 when it is not there).
    @inline(__always)
    mutating func scanKey(_ keys: JSONKeyTable, hint: Int) throws(JSONError) -> Int {
        guard pos < count else { throw fail(.truncated) }
        guard byte(pos) == UInt8(ascii: "\"") else { throw fail(.unexpectedByte(byte(pos))) }
        let (ks, ke, kesc) = try scanString()
        var slot = -1
        if kesc {
            try withDecodedString(start: ks, end: ke) { (p: UnsafeRawBufferPointer) in slot = keys.slot(p.baseAddress ?? base, p.count, hint: 0) }
        } else {
            slot = keys.slot(base + ks, ke - ks, hint: hint)
        }
        skipWhitespace()
        guard pos < count else { throw fail(.truncated) }
        guard byte(pos) == UInt8(ascii: ":") else { throw fail(.unexpectedByte(byte(pos))) }
        pos += 1
        skipWhitespace()
        guard pos < count else { throw fail(.truncated) }
        return slot
    }

    /// After a member's value: true when a `,` says another member follows (position at its key), false
    /// when the `}` closed the object (position past it).
    @inline(__always)
    mutating func nextMember() throws(JSONError) -> Bool {
        skipWhitespace()
        guard pos < count else { throw fail(.truncated) }
        let c = byte(pos)
        pos += 1
        if c == UInt8(ascii: ",") { skipWhitespace(); return true }
        if c == UInt8(ascii: "}") { return false }
        throw fail(.unexpectedByte(c), at: pos - 1)
    }

    /// Scans the object at the current position (after any whitespace), which need not fill the input;
    /// leaves the position just after its closing brace.
    /// With `compact`, the value of key slot `compactSlot` is also written compactly to `compact` (a later
    /// duplicate of the key replaces it), in the same pass that validates it.
    @usableFromInline
    mutating func scanNextObject(keys: JSONKeyTable, into fields: UnsafeMutableBufferPointer<JSONField>, depth: Int,
                                 compactSlot: Int = -1, compact: ByteBuffer? = nil) throws(JSONError) {
        for i in fields.indices { fields[i] = JSONField() }
        let compactBase = compact?.count ?? 0
        var hint = 0
        if try !openObject(depth: depth) {
            while true {
                let slot = try scanKey(keys, hint: hint)
                hint = slot + 1
                let vstart = pos
                var f = JSONField()
                let b = byte(pos)
                let compacting = slot == compactSlot && compact != nil
                if compacting, let out = compact {
                    out.count = compactBase
                    emit = out.reserve(count - pos)
                    emitted = 0
                    runStart = vstart
                }
                if b == UInt8(ascii: "\"") {
                    let (s, e, esc) = try scanString()
                    f.start = Int32(s)
                    f.end = Int32(e)
                    f.kind = .string
                    f.escaped = esc
                } else {
                    try skipValue(depth: depth + 1)
                    f.start = Int32(vstart)
                    f.end = Int32(pos)
                    switch b {
                    case UInt8(ascii: "{"): f.kind = .object
                    case UInt8(ascii: "["): f.kind = .array
                    case UInt8(ascii: "t"): f.kind = .bool; f.flag = true
                    case UInt8(ascii: "f"): f.kind = .bool
                    case UInt8(ascii: "n"): f.kind = .null
                    default: f.kind = .number
                    }
                }
                if compacting, let out = compact, let e = emit {
                    let n = pos - runStart
                    (e + emitted).copyMemory(from: base + runStart, byteCount: n)
                    out.count += emitted + n
                    emit = nil
                }
                if slot >= 0 && slot < fields.count { fields[slot] = f }
                if try !nextMember() { break }
            }
        }
    }

    /// Scans a string starting at the opening quote; returns the body range and whether it holds escapes.
    @inline(__always)
    mutating func scanString() throws(JSONError) -> (Int, Int, Bool) {
        pos += 1
        let start = pos
        var escaped = false
        while true {
            // Fast path: skip plain ASCII (no quote, backslash, control or high-bit byte), 16 bytes a step.
            pos += pb_json_plain_run((base + pos).assumingMemoryBound(to: UInt8.self), count - pos)
            guard pos < count else { throw fail(.truncated) }
            let b = byte(pos)
            if b == UInt8(ascii: "\"") {
                let end = pos
                pos += 1
                return (start, end, escaped)
            }
            if b == UInt8(ascii: "\\") {
                escaped = true
                guard pos + 1 < count else { throw fail(.truncated) }
                let e = byte(pos + 1)
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                    UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    pos += 2
                case UInt8(ascii: "u"):
                    let u = try hex4(at: pos + 2)
                    if u >= 0xD800 && u < 0xDC00 {
                        // A high surrogate must be followed by \u and a low surrogate.
                        guard pos + 12 <= count else { throw fail(pos + 6 >= count ? .truncated : .loneSurrogate) }
                        guard byte(pos + 6) == UInt8(ascii: "\\"), byte(pos + 7) == UInt8(ascii: "u") else { throw fail(.loneSurrogate) }
                        let lo = try hex4(at: pos + 8)
                        guard lo >= 0xDC00 && lo < 0xE000 else { throw fail(.loneSurrogate) }
                        pos += 12
                    } else if u >= 0xDC00 && u < 0xE000 {
                        throw fail(.loneSurrogate)
                    } else {
                        pos += 6
                    }
                default:
                    throw fail(.badEscape)
                }
                continue
            }
            if b < 0x20 { throw fail(.controlCharacterInString) }
            if b < 0x80 { pos += 1; continue }
            try validateUTF8Scalar()
        }
    }

    @inline(__always)
    func hex4(at i: Int) throws(JSONError) -> UInt32 {
        guard i + 4 <= count else { throw fail(.truncated, at: Swift.min(i, count)) }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = byte(i + k)
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail(.badUnicodeEscape, at: i - 2)
            }
            v = v << 4 | d
        }
        return v
    }

    /// Validates one multi-byte UTF-8 scalar at `pos` (RFC 3629: no overlongs, no surrogates, ≤ U+10FFFF).
    mutating func validateUTF8Scalar() throws(JSONError) {
        let b0 = byte(pos)
        var need: Int
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; hi = 0x9F
        case 0xF0: need = 3; lo = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; hi = 0x8F
        default: throw fail(.invalidUTF8)
        }
        guard pos + need < count else { throw fail(.truncated) }
        let b1 = byte(pos + 1)
        guard b1 >= lo && b1 <= hi else { throw fail(.invalidUTF8) }
        for k in stride(from: 2, through: need, by: 1) {
            let c = byte(pos + k)
            guard c & 0xC0 == 0x80 else { throw fail(.invalidUTF8) }
        }
        pos += need + 1
    }

    /// Skips any JSON value, validating it.
    mutating func skipValue(depth: Int) throws(JSONError) {
        guard depth < 512 else { throw fail(.tooDeep) }
        guard pos < count else { throw fail(.truncated) }
        let b = byte(pos)
        switch b {
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "{"):
            pos += 1
            skipWhitespace()
            guard pos < count else { throw fail(.truncated) }
            if byte(pos) == UInt8(ascii: "}") { pos += 1; return }
            while true {
                guard pos < count else { throw fail(.truncated) }
                guard byte(pos) == UInt8(ascii: "\"") else { throw fail(.unexpectedByte(byte(pos))) }
                _ = try scanString()
                skipWhitespace()
                guard pos < count else { throw fail(.truncated) }
                guard byte(pos) == UInt8(ascii: ":") else { throw fail(.unexpectedByte(byte(pos))) }
                pos += 1
                skipWhitespace()
                try skipValue(depth: depth + 1)
                if try !nextMember() { return }
            }
        case UInt8(ascii: "["):
            pos += 1
            skipWhitespace()
            guard pos < count else { throw fail(.truncated) }
            if byte(pos) == UInt8(ascii: "]") { pos += 1; return }
            while true {
                skipWhitespace()
                try skipValue(depth: depth + 1)
                skipWhitespace()
                guard pos < count else { throw fail(.truncated) }
                let c = byte(pos)
                pos += 1
                if c == UInt8(ascii: ",") { continue }
                if c == UInt8(ascii: "]") { return }
                throw fail(.unexpectedByte(c), at: pos - 1)
            }
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), 0x30...0x39: try skipNumber()
        default: throw fail(.unexpectedByte(b))
        }
    }

    mutating func literal(_ s: StaticString) throws(JSONError) {
        let n = s.utf8CodeUnitCount
        for k in 0..<n {
            guard pos + k < count else { throw fail(.truncated, at: pos + k) }
            guard byte(pos + k) == s.utf8Start[k] else { throw fail(.unexpectedByte(byte(pos + k)), at: pos + k) }
        }
        pos += n
    }

    /// JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    mutating func skipNumber() throws(JSONError) {
        let start = pos
        if byte(pos) == UInt8(ascii: "-") { pos += 1 }
        guard pos < count else { throw fail(.truncated) }
        var b = byte(pos)
        if b == UInt8(ascii: "0") {
            pos += 1
        } else if b >= 0x31 && b <= 0x39 {
            while pos < count, byte(pos) >= 0x30, byte(pos) <= 0x39 { pos += 1 }
        } else {
            throw fail(.badNumber, at: start)
        }
        if pos < count, byte(pos) == UInt8(ascii: ".") {
            pos += 1
            let d = pos
            while pos < count, byte(pos) >= 0x30, byte(pos) <= 0x39 { pos += 1 }
            if pos == d { throw fail(pos >= count ? .truncated : .badNumber, at: start) }
        }
        if pos < count {
            b = byte(pos)
            if b == UInt8(ascii: "e") || b == UInt8(ascii: "E") {
                pos += 1
                if pos < count, byte(pos) == UInt8(ascii: "+") || byte(pos) == UInt8(ascii: "-") { pos += 1 }
                let d = pos
                while pos < count, byte(pos) >= 0x30, byte(pos) <= 0x39 { pos += 1 }
                if pos == d { throw fail(pos >= count ? .truncated : .badNumber, at: start) }
            }
        }
    }

    /// Calls `body` with the decoded UTF-8 of a string body that holds escapes (already validated).
    public func withDecodedString<R>(
        start: Int, end: Int, _ body: (UnsafeRawBufferPointer) throws(JSONError) -> R
    ) throws(JSONError) -> R {
        let n = end - start
        return try withUnsafeTemporaryAllocation(byteCount: Swift.max(n, 1), alignment: 1) { (out: UnsafeMutableRawBufferPointer) throws(JSONError) -> R in
            var o = 0
            var i = start
            while i < end {
                let b = byte(i)
                if b != UInt8(ascii: "\\") {
                    out[o] = b
                    o += 1
                    i += 1
                    continue
                }
                let e = byte(i + 1)
                switch e {
                case UInt8(ascii: "b"): out[o] = 0x08; o += 1; i += 2
                case UInt8(ascii: "f"): out[o] = 0x0C; o += 1; i += 2
                case UInt8(ascii: "n"): out[o] = 0x0A; o += 1; i += 2
                case UInt8(ascii: "r"): out[o] = 0x0D; o += 1; i += 2
                case UInt8(ascii: "t"): out[o] = 0x09; o += 1; i += 2
                case UInt8(ascii: "u"):
                    var scalar = try hex4(at: i + 2)
                    i += 6
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        let lo = try hex4(at: i + 2)
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (lo - 0xDC00)
                        i += 6
                    }
                    // Encode as UTF-8 (≤ 4 bytes, never longer than the 6 or 12 escape bytes it replaces).
                    if scalar < 0x80 {
                        out[o] = UInt8(scalar); o += 1
                    } else if scalar < 0x800 {
                        out[o] = UInt8(0xC0 | scalar >> 6); out[o + 1] = UInt8(0x80 | scalar & 0x3F); o += 2
                    } else if scalar < 0x10000 {
                        out[o] = UInt8(0xE0 | scalar >> 12); out[o + 1] = UInt8(0x80 | (scalar >> 6) & 0x3F)
                        out[o + 2] = UInt8(0x80 | scalar & 0x3F); o += 3
                    } else {
                        out[o] = UInt8(0xF0 | scalar >> 18); out[o + 1] = UInt8(0x80 | (scalar >> 12) & 0x3F)
                        out[o + 2] = UInt8(0x80 | (scalar >> 6) & 0x3F); out[o + 3] = UInt8(0x80 | scalar & 0x3F); o += 4
                    }
                default:  // \" \\ \/
                    out[o] = e; o += 1; i += 2
                }
            }
            return try body(UnsafeRawBufferPointer(rebasing: out[0..<o]))
        }
    }

    // MARK: typed accessors

    public func string(_ f: JSONField, name: String) throws(JSONError) -> String {
        guard f.kind == .string else {
            throw JSONError(offset: Int(f.start), reason: f.kind == .absent ? .missingField(name) : .wrongType(field: name, expected: "a string"))
        }
        if !f.escaped {
            return String(decoding: UnsafeRawBufferPointer(start: base + Int(f.start), count: Int(f.end - f.start)), as: UTF8.self)
        }
        return try withDecodedString(start: Int(f.start), end: Int(f.end)) { String(decoding: $0, as: UTF8.self) }
    }

    public func int(_ f: JSONField, name: String) throws(JSONError) -> Int {
        guard f.kind == .number else {
            throw JSONError(offset: Int(f.start), reason: f.kind == .absent ? .missingField(name) : .wrongType(field: name, expected: "an integer"))
        }
        var i = Int(f.start)
        let end = Int(f.end)
        var neg = false
        if byte(i) == UInt8(ascii: "-") { neg = true; i += 1 }
        var v: UInt64 = 0
        while i < end {
            let b = byte(i)
            guard b >= 0x30 && b <= 0x39 else {
                // A fraction or exponent: accept it when the value is integral (e.g. 7528.0 from pandas).
                let d = try double(f, name: name)
                guard d == d.rounded(), abs(d) < 9.0e18 else {
                    throw JSONError(offset: Int(f.start), reason: .wrongType(field: name, expected: "an integer"))
                }
                return Int(d)
            }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(b - 0x30))
            guard !o1, !o2 else { throw JSONError(offset: Int(f.start), reason: .numberOutOfRange) }
            v = a
            i += 1
        }
        if neg {
            guard v <= UInt64(Int.max) + 1 else { throw JSONError(offset: Int(f.start), reason: .numberOutOfRange) }
            return v == UInt64(Int.max) + 1 ? Int.min : -Int(v)
        }
        guard v <= UInt64(Int.max) else { throw JSONError(offset: Int(f.start), reason: .numberOutOfRange) }
        return Int(v)
    }

    public func double(_ f: JSONField, name: String) throws(JSONError) -> Double {
        guard f.kind == .number else {
            throw JSONError(offset: Int(f.start), reason: f.kind == .absent ? .missingField(name) : .wrongType(field: name, expected: "a number"))
        }
        let d = JSONScanner.parseDouble(base + Int(f.start), Int(f.end - f.start))
        guard d.isFinite else { throw JSONError(offset: Int(f.start), reason: .numberOutOfRange) }
        return d
    }

    private static let exact10: [Double] = (0...22).map { e in var p = 1.0; for _ in 0..<e { p *= 10 }; return p }

    /// Parses a validated JSON number. Exact: Clinger's fast path when it applies, else strtod.
    static func parseDouble(_ p: UnsafeRawPointer, _ n: Int) -> Double {
        var i = 0
        var neg = false
        if p.load(as: UInt8.self) == UInt8(ascii: "-") { neg = true; i = 1 }
        var mant: UInt64 = 0
        var digits = 0
        var exp10 = 0
        var sawNonZero = false
        while i < n {
            let b = p.load(fromByteOffset: i, as: UInt8.self)
            if b >= 0x30 && b <= 0x39 {
                if b != 0x30 || sawNonZero { sawNonZero = true; digits += 1 }
                if digits <= 19 { mant = mant &* 10 &+ UInt64(b - 0x30) } else { exp10 += 1 }
                i += 1
            } else { break }
        }
        if i < n, p.load(fromByteOffset: i, as: UInt8.self) == UInt8(ascii: ".") {
            i += 1
            while i < n {
                let b = p.load(fromByteOffset: i, as: UInt8.self)
                guard b >= 0x30 && b <= 0x39 else { break }
                if b != 0x30 || sawNonZero { sawNonZero = true; digits += 1 }
                if digits <= 19 { mant = mant &* 10 &+ UInt64(b - 0x30); exp10 -= 1 }
                i += 1
            }
        }
        if i == n && digits <= 15 && mant < (1 << 53) && exp10 >= -22 && exp10 <= 22 {
            var d = Double(mant)
            if exp10 < 0 { d /= exact10[-exp10] } else { d *= exact10[exp10] }
            return neg ? -d : d
        }
        return withUnsafeTemporaryAllocation(byteCount: n + 1, alignment: 1) { tmp in
            tmp.baseAddress!.copyMemory(from: p, byteCount: n)
            tmp[n] = 0
            return strtod(tmp.baseAddress!.assumingMemoryBound(to: CChar.self), nil)
        }
    }
}

/// Validates that `json` is one JSON object (any content) without materialising anything.
public func validateJSONObject(_ json: UnsafeRawBufferPointer) throws(JSONError) {
    var s = JSONScanner(json)
    try withUnsafeTemporaryAllocation(of: JSONField.self, capacity: 1) { (f: UnsafeMutableBufferPointer<JSONField>) throws(JSONError) in
        try s.scanObject(keys: noKeys, into: f)
    }
}

let noKeys = JSONKeyTable([])

/// Runs a typed-throwing body over the UTF-8 of a string (String.withUTF8 is not typed-throws).
@inlinable
public func withUTF8Bytes<R>(of text: some StringProtocol, _ body: (UnsafeRawBufferPointer) throws(JSONError) -> R) throws(JSONError) -> R {
    var s = String(text)
    let r: Result<R, JSONError> = s.withUTF8 { b in Result { () throws(JSONError) in try body(UnsafeRawBufferPointer(b)) } }
    return try r.get()
}

// MARK: helpers for request bodies

extension JSONScanner {
    /// The byte ranges of the elements of the array that `field` (kind `.array`) locates; validates them.
    public func arrayElements(_ field: JSONField) throws(JSONError) -> [Range<Int>] {
        precondition(field.kind == .array)
        var s = JSONScanner(UnsafeRawBufferPointer(start: base, count: Int(field.end)))
        s.pos = Int(field.start) + 1
        var out: [Range<Int>] = []
        s.skipWhitespace()
        if s.pos < s.count && s.byte(s.pos) == UInt8(ascii: "]") { return out }
        while true {
            s.skipWhitespace()
            let start = s.pos
            try s.skipValue(depth: 1)
            out.append(start..<s.pos)
            s.skipWhitespace()
            guard s.pos < s.count else { throw JSONError(offset: s.pos, reason: .truncated) }
            let c = s.byte(s.pos)
            s.pos += 1
            if c == UInt8(ascii: "]") { return out }
            if c != UInt8(ascii: ",") { throw JSONError(offset: s.pos - 1, reason: .unexpectedByte(c)) }
        }
    }

    /// One pass over a request body shaped `{"records": [{...}, {...}], ...}`: validates the whole text once
    /// and calls `element` for each object of the array under one of `arrayKeys` (its index, the fields
    /// `elementKeys` located, its byte range). Elements that are not objects are errors. Other top-level
    /// keys are validated and skipped. A repeated array key starts again at index 0 (the later one wins,
    /// as in Python), so the caller drops what it gathered when it sees index 0. Returns the number of
    /// elements of the last array found, or nil when no array key was there.
    /// With `compact`, each element's value under key slot `compactSlot` is written compactly to `compact`
    /// during the same pass (the caller takes it from there in `element`).
    public mutating func scanArrayOfObjects(
        arrayKeys: JSONKeyTable, elementKeys: JSONKeyTable, fields: UnsafeMutableBufferPointer<JSONField>,
        compactSlot: Int = -1, compact: ByteBuffer? = nil,
        element: (Int, UnsafeMutableBufferPointer<JSONField>, Range<Int>) throws(JSONError) -> Void
    ) throws(JSONError) -> Int? {
        var found: Int? = nil
        if try !openObject(depth: 0) {
            while true {
                let slot = try scanKey(arrayKeys, hint: 0)
                if slot >= 0 && byte(pos) == UInt8(ascii: "[") {
                    pos += 1
                    var n = 0
                    skipWhitespace()
                    guard pos < count else { throw fail(.truncated) }
                    if byte(pos) == UInt8(ascii: "]") {
                        pos += 1
                    } else {
                        while true {
                            skipWhitespace()
                            let start = pos
                            try scanNextObject(keys: elementKeys, into: fields, depth: 2, compactSlot: compactSlot, compact: compact)
                            try element(n, fields, start..<pos)
                            n += 1
                            skipWhitespace()
                            guard pos < count else { throw fail(.truncated) }
                            let c = byte(pos)
                            pos += 1
                            if c == UInt8(ascii: "]") { break }
                            if c != UInt8(ascii: ",") { throw fail(.unexpectedByte(c), at: pos - 1) }
                        }
                    }
                    found = n
                } else {
                    try skipValue(depth: 1)
                }
                if try !nextMember() { break }
            }
        }
        skipWhitespace()
        if pos != count { throw fail(.trailingData) }
        return found
    }

    /// The value `field` locates, re-emitted compactly (whitespace outside strings removed; strings kept
    /// byte for byte). For a string field, its quotes are included.
    public func compactValue(_ field: JSONField, into out: ByteBuffer) {
        var i = Int(field.start), end = Int(field.end)
        if field.kind == .string { i -= 1; end += 1 }
        // Strings are copied whole (their plain runs found 16 bytes at a time); between them only the
        // insignificant whitespace is dropped. The output is never longer than the input.
        let dst = out.reserve(end - i).assumingMemoryBound(to: UInt8.self)
        let src = base.assumingMemoryBound(to: UInt8.self)
        var n = 0
        while i < end {
            let b = src[i]
            if b == UInt8(ascii: "\"") {
                var j = i + 1
                while j < end {
                    j += pb_json_plain_run(src + j, end - j)
                    if j >= end { break }
                    let c = src[j]
                    if c == UInt8(ascii: "\"") { j += 1; break }
                    j += c == UInt8(ascii: "\\") ? 2 : 1
                }
                j = Swift.min(j, end)
                (dst + n).update(from: src + i, count: j - i)
                n += j - i
                i = j
            } else {
                if b != 0x20 && b != 0x0A && b != 0x0D && b != 0x09 { dst[n] = b; n += 1 }
                i += 1
            }
        }
        out.count += n
    }
}
