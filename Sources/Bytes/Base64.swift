import CPinShims
/// Standard base64 (RFC 4648, with padding), straight loops over bytes: Kinesis carries record data as
/// base64 inside its JSON bodies, so this sits on the producer's and consumer's hot paths.
public enum Base64 {
    @usableFromInline static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    @usableFromInline static let decodeTable: [UInt8] = {
        var t = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { t[Int(c)] = UInt8(i) }
        return t
    }()

    public static func encodedCount(_ n: Int) -> Int { (n + 2) / 3 * 4 }

    /// Two output characters for every 12-bit value (little-endian pairs): half the table lookups.
    @usableFromInline static let pairs: [UInt16] = (0..<4096).map { v in UInt16(alphabet[v >> 6]) | UInt16(alphabet[v & 63]) << 8 }

    /// Appends the encoding of `src` to `out`.
    public static func encode(_ src: UnsafeRawBufferPointer, into out: ByteBuffer) {
        let n = src.count
        let dst = out.reserve(encodedCount(n)).assumingMemoryBound(to: UInt8.self)
        alphabet.withUnsafeBufferPointer { a in pairs.withUnsafeBufferPointer { pt in
            let s = src.bindMemory(to: UInt8.self)
            let d = UnsafeMutableRawPointer(dst)
            // Whole 24-byte blocks with AVX2 (about 5x the scalar speed), the rest below.
            var i = n >= 28 ? pb_base64_encode_simd(s.baseAddress!, n, dst) : 0
            var o = i / 3 * 4
            while i + 3 <= n {
                let v = Int(s[i]) << 16 | Int(s[i + 1]) << 8 | Int(s[i + 2])
                let w = UInt32(pt[v >> 12]) | UInt32(pt[v & 0xFFF]) << 16
                d.storeBytes(of: w, toByteOffset: o, as: UInt32.self)
                i += 3; o += 4
            }
            let rest = n - i
            if rest == 1 {
                let v = UInt32(s[i]) << 16
                dst[o] = a[Int(v >> 18)]; dst[o + 1] = a[Int(v >> 12 & 63)]; dst[o + 2] = 61; dst[o + 3] = 61
            } else if rest == 2 {
                let v = UInt32(s[i]) << 16 | UInt32(s[i + 1]) << 8
                dst[o] = a[Int(v >> 18)]; dst[o + 1] = a[Int(v >> 12 & 63)]; dst[o + 2] = a[Int(v >> 6 & 63)]; dst[o + 3] = 61
            }
        } }
        out.count += encodedCount(n)
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        let b = ByteBuffer(capacity: encodedCount(bytes.count) + 1)
        bytes.withUnsafeBytes { encode($0, into: b) }
        return String(decoding: b.bytes, as: UTF8.self)
    }

    /// The URL-safe alphabet without padding (RFC 4648 §5), as OAUTHBEARER tokens carry a URL.
    public static func encodeURL(_ bytes: [UInt8]) -> String {
        var out = Array(encode(bytes).utf8)
        while out.last == UInt8(ascii: "=") { out.removeLast() }
        for i in out.indices {
            if out[i] == UInt8(ascii: "+") { out[i] = UInt8(ascii: "-") } else if out[i] == UInt8(ascii: "/") { out[i] = UInt8(ascii: "_") }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes the URL-safe alphabet, padded or not; nil when it is not base64url.
    public static func decodeURL(_ text: String) -> [UInt8]? {
        var u = Array(text.utf8)
        for i in u.indices {
            if u[i] == UInt8(ascii: "-") { u[i] = UInt8(ascii: "+") } else if u[i] == UInt8(ascii: "_") { u[i] = UInt8(ascii: "/") }
        }
        while u.count % 4 != 0 { u.append(UInt8(ascii: "=")) }
        return decode(String(decoding: u, as: UTF8.self))
    }

    /// Appends the decoded bytes of `src` to `out`; false (and `out` unchanged) when `src` is not base64.
    @discardableResult
    public static func decode(_ src: UnsafeRawBufferPointer, into out: ByteBuffer) -> Bool {
        var n = src.count
        guard n % 4 == 0 else { return false }
        if n == 0 { return true }
        let s = src.bindMemory(to: UInt8.self)
        var pad = 0
        if s[n - 1] == 61 { pad += 1; if s[n - 2] == 61 { pad += 1 } }
        let outCount = n / 4 * 3 - pad
        let start = out.count
        let dst = out.reserve(outCount + 3).assumingMemoryBound(to: UInt8.self)
        n -= pad > 0 ? 4 : 0
        let ok: Bool = decodeTable.withUnsafeBufferPointer { t in
            var i = 0, o = 0
            while i < n {
                let a = t[Int(s[i])], b = t[Int(s[i + 1])], c = t[Int(s[i + 2])], d = t[Int(s[i + 3])]
                if (a | b | c | d) & 0xC0 != 0 { return false }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                dst[o] = UInt8(v >> 16); dst[o + 1] = UInt8(v >> 8 & 0xFF); dst[o + 2] = UInt8(v & 0xFF)
                i += 4; o += 3
            }
            if pad > 0 {
                let a = t[Int(s[i])], b = t[Int(s[i + 1])]
                let c = pad == 1 ? t[Int(s[i + 2])] : 0
                if (a | b | c) & 0xC0 != 0 { return false }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                dst[o] = UInt8(v >> 16)
                if pad == 1 { dst[o + 1] = UInt8(v >> 8 & 0xFF) }
            }
            return true
        }
        guard ok else { return false }
        out.count = start + outCount
        return true
    }

    public static func decode(_ text: String) -> [UInt8]? {
        let b = ByteBuffer(capacity: text.utf8.count)
        var t = text
        let ok = t.withUTF8 { decode(UnsafeRawBufferPointer($0), into: b) }
        return ok ? b.toArray() : nil
    }
}
