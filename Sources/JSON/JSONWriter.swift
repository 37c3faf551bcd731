import Bytes

/// How JSON is laid out.
public enum JSONStyle: String, Sendable, CaseIterable {
    /// `{"a":1,"b":"é"}`: no spaces, UTF-8 kept as is (what our pipeline sends).
    case compact
    /// `{"a": 1, "b": "\u00e9"}`: Python's `json.dumps` defaults (`ensure_ascii=True`, `", "` and `": "`).
    case python
}

/// A byte-level JSON writer appending into a `ByteBuffer`. No Foundation, no allocation per call
/// beyond the buffer's own growth.
public struct JSONWriter {
    public let out: ByteBuffer
    public let style: JSONStyle
    @usableFromInline var first = true

    @inlinable
    public init(into out: ByteBuffer, style: JSONStyle = .compact) {
        self.out = out
        self.style = style
    }

    @inlinable
    public mutating func beginObject() {
        out.append(UInt8(ascii: "{"))
        first = true
    }

    @inlinable
    public mutating func endObject() { out.append(UInt8(ascii: "}")) }

    @inlinable @inline(__always)
    mutating func key(_ k: StaticString) {
        guard style == .compact else { return pythonKey(k) }
        // One reservation for `,"key":` instead of four appends, each checking the capacity.
        let n = k.utf8CodeUnitCount
        let p = out.reserve(n &+ 4)
        var i = 0
        if !first {
            p.storeBytes(of: UInt8(ascii: ","), as: UInt8.self)
            i = 1
        }
        first = false
        (p + i).storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
        copyBytes(p + i + 1, k.utf8Start, n)
        (p + i + 1 + n).storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
        (p + i + 2 + n).storeBytes(of: UInt8(ascii: ":"), as: UInt8.self)
        out.count &+= i &+ n &+ 3
    }

    /// `, "key": ` as Python's json.dumps writes it.
    @usableFromInline
    mutating func pythonKey(_ k: StaticString) {
        if !first { out.append(", ") }
        first = false
        out.append(UInt8(ascii: "\""))
        out.append(k)
        out.append("\": ")
    }

    @inlinable
    public mutating func field(_ k: StaticString, _ v: Int) {
        key(k)
        out.appendDecimal(v)
    }

    @inlinable
    public mutating func field(_ k: StaticString, _ v: Double) {
        key(k)
        JSONWriter.appendDouble(v, to: out)
    }

    /// `m / 10^decimals` as `appendDouble` writes that double (Python's repr): for a value with at most
    /// `decimals` (≤ 9) fractional digits the shortest round-trip form is that decimal, trailing zeros dropped,
    /// written here from the integer with no String made. Below 1e-4 (repr's exponent form) it falls back.
    @inlinable
    public mutating func field(_ k: StaticString, scaled m: Int, decimals: Int) {
        key(k)
        JSONWriter.appendScaled(m, decimals: decimals, to: out)
    }

    @inlinable
    public static func appendScaled(_ m: Int, decimals: Int, to out: ByteBuffer) {
        var scale = 1
        for _ in 0..<decimals { scale *= 10 }
        let a = m.magnitude
        guard decimals >= 0, decimals <= 9, a < 1 << 52, a * 10_000 >= UInt(scale) || m == 0 else {
            appendDouble(Double(m) / Double(scale), to: out)
            return
        }
        if m < 0 { out.append(UInt8(ascii: "-")) }
        out.appendDecimal(Int(a / UInt(scale)))
        out.append(UInt8(ascii: "."))
        var frac = Int(a % UInt(scale)), digits = decimals
        if frac == 0 {
            out.append(UInt8(ascii: "0"))
            return
        }
        while frac % 10 == 0 { frac /= 10; digits -= 1 }
        var div = 1
        for _ in 1..<max(digits, 1) { div *= 10 }
        while div > 0 {
            out.append(UInt8(ascii: "0") + UInt8(frac / div % 10))
            div /= 10
        }
    }

    @inlinable
    public mutating func field(_ k: StaticString, _ v: String) {
        key(k)
        var v = v
        v.withUTF8 { JSONWriter.appendString(UnsafeRawBufferPointer($0), to: out, style: style) }
    }

    /// A string field whose text needs no escaping in any style (printable ASCII without quote or backslash),
    /// as `safePiece`: a literal's bytes copied as they are.
    @inlinable
    public mutating func field(_ k: StaticString, safe v: StaticString) {
        beginString(k)
        out.append(v)
        endString()
    }

    /// A string field from raw UTF-8 bytes (escaped as the style needs).
    @inlinable
    public mutating func field(_ k: StaticString, bytes: UnsafeRawBufferPointer) {
        key(k)
        JSONWriter.appendString(bytes, to: out, style: style)
    }

    /// Opens a string field whose text is appended in pieces with `piece` and closed with `endString`.
    @inlinable
    public mutating func beginString(_ k: StaticString) {
        key(k)
        out.append(UInt8(ascii: "\""))
    }

    @inlinable
    public func piece(_ bytes: UnsafeRawBufferPointer) {
        if style == .compact { JSONWriter.appendCompactBody(bytes, to: out) } else { JSONWriter.appendASCIIBody(bytes, to: out) }
    }

    /// Appends bytes known to need no escaping in any style (printable ASCII without quote or backslash).
    @inlinable
    public func safePiece(_ p: UnsafeRawPointer, _ n: Int) { out.append(p, count: n) }

    @inlinable
    public func safePiece(_ s: StaticString) { out.append(s) }

    @inlinable
    public func endString() { out.append(UInt8(ascii: "\"")) }

    /// Shortest round-trip decimal, as Python's `repr(float)` writes it for the values we emit.
    @inlinable
    public static func appendDouble(_ v: Double, to out: ByteBuffer) {
        precondition(v.isFinite, "JSON has no NaN or infinity")
        out.append(utf8: v.description)
    }

    /// Appends `s` (valid UTF-8) as a JSON string with quotes.
    @inlinable
    public static func appendString(_ s: UnsafeRawBufferPointer, to out: ByteBuffer, style: JSONStyle) {
        out.append(UInt8(ascii: "\""))
        if style == .compact { appendCompactBody(s, to: out) } else { appendASCIIBody(s, to: out) }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends `s` as a quoted compact JSON string: the one escaper of pinbench (quotes, backslashes and
    /// every control character escaped, `\n`-style where JSON has a short form, else `\u00XX`).
    @inlinable
    public static func appendQuoted(_ s: String, to out: ByteBuffer) {
        var s = s
        s.withUTF8 { appendString(UnsafeRawBufferPointer($0), to: out, style: .compact) }
    }

    /// Appends `s` (valid UTF-8 bytes) as a quoted compact JSON string.
    @inlinable
    public static func appendQuoted(_ s: UnsafeRawBufferPointer, to out: ByteBuffer) {
        appendString(s, to: out, style: .compact)
    }

    /// `s` as a quoted compact JSON string.
    public static func quoted(_ s: String) -> String {
        let b = ByteBuffer(capacity: s.utf8.count + 8)
        appendQuoted(s, to: b)
        return String(decoding: b.bytes, as: UTF8.self)
    }

    @usableFromInline
    static func appendCompactBody(_ s: UnsafeRawBufferPointer, to out: ByteBuffer) {
        guard let base = s.baseAddress else { return }
        let n = s.count
        // Worst case every byte becomes \u00XX: reserve once, write through a raw pointer.
        var dst = out.reserve(n * 6)
        var i = 0
        while true {
            // 8 bytes at a time while none is a quote, a backslash or a control character.
            while i + 8 <= n {
                let w = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                let ones: UInt64 = 0x0101_0101_0101_0101
                let highs: UInt64 = 0x8080_8080_8080_8080
                let lt20 = (w &- ones &* 0x20) & ~w & highs
                let q = w ^ (ones &* 0x22)
                let bs = w ^ (ones &* 0x5C)
                if (lt20 | ((q &- ones) & ~q & highs) | ((bs &- ones) & ~bs & highs)) != 0 { break }
                dst.storeBytes(of: w, as: UInt64.self)
                dst += 8
                i += 8
            }
            if i >= n { break }
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            i += 1
            if _fastPath(b >= 0x20 && b != 0x22 && b != 0x5C) {
                dst.storeBytes(of: b, as: UInt8.self)
                dst += 1
                continue
            }
            // Room for the escape was reserved above, so the buffer does not move.
            out.count = dst - out.base
            appendEscape(b, to: out)
            dst = out.base + out.count
        }
        out.count = dst - out.base
    }

    @usableFromInline
    static func appendASCIIBody(_ s: UnsafeRawBufferPointer, to out: ByteBuffer) {
        guard let base = s.baseAddress else { return }
        let n = s.count
        var runStart = 0
        var i = 0
        while i < n {
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            if b >= 0x20 && b < 0x7F && b != 0x22 && b != 0x5C { i += 1; continue }
            out.append(base + runStart, count: i - runStart)
            if b < 0x80 {
                appendEscape(b, to: out)
                i += 1
            } else {
                // Decode one scalar (input is valid UTF-8) and write \uXXXX, with a surrogate pair above U+FFFF.
                var scalar: UInt32
                var len: Int
                if b < 0xE0 { scalar = UInt32(b & 0x1F); len = 2 } else if b < 0xF0 { scalar = UInt32(b & 0x0F); len = 3 } else {
                    scalar = UInt32(b & 0x07); len = 4
                }
                for k in 1..<len { scalar = scalar << 6 | UInt32(base.load(fromByteOffset: i + k, as: UInt8.self) & 0x3F) }
                if scalar >= 0x10000 {
                    let v = scalar - 0x10000
                    appendU16(UInt16(0xD800 + (v >> 10)), to: out)
                    appendU16(UInt16(0xDC00 + (v & 0x3FF)), to: out)
                } else {
                    appendU16(UInt16(scalar), to: out)
                }
                i += len
            }
            runStart = i
        }
        out.append(base + runStart, count: n - runStart)
    }

    @usableFromInline
    static func appendEscape(_ b: UInt8, to out: ByteBuffer) {
        switch b {
        case 0x22: out.append("\\\"")
        case 0x5C: out.append("\\\\")
        case 0x0A: out.append("\\n")
        case 0x0D: out.append("\\r")
        case 0x09: out.append("\\t")
        case 0x08: out.append("\\b")
        case 0x0C: out.append("\\f")
        default: appendU16(UInt16(b), to: out)
        }
    }

    @usableFromInline
    static func appendU16(_ v: UInt16, to out: ByteBuffer) {
        let hex: StaticString = "0123456789abcdef"
        let h = hex.utf8Start
        let p = out.reserve(6)
        p.storeBytes(of: UInt8(ascii: "\\"), toByteOffset: 0, as: UInt8.self)
        p.storeBytes(of: UInt8(ascii: "u"), toByteOffset: 1, as: UInt8.self)
        p.storeBytes(of: h[Int(v >> 12)], toByteOffset: 2, as: UInt8.self)
        p.storeBytes(of: h[Int((v >> 8) & 0xF)], toByteOffset: 3, as: UInt8.self)
        p.storeBytes(of: h[Int((v >> 4) & 0xF)], toByteOffset: 4, as: UInt8.self)
        p.storeBytes(of: h[Int(v & 0xF)], toByteOffset: 5, as: UInt8.self)
        out.count += 6
    }
}

extension ByteBuffer {
    /// Convenience for tests and tools: the JSON text of one record.
    public static func json(_ body: (ByteBuffer) -> Void) -> String {
        let b = ByteBuffer(capacity: 1024)
        body(b)
        return String(decoding: b.bytes, as: UTF8.self)
    }
}
