#if canImport(Glibc)
import Glibc
#endif
import Platform
/// A PutRecords answer read in place, without building a JSON tree: for each entry, in order, either its
/// ShardId and SequenceNumber or its ErrorCode and ErrorMessage, as byte ranges of the body. Strings keep
/// their escapes (sequence numbers and shard ids have none; messages are only shown).
struct PutRecordsScanner {
    let p: UnsafeRawBufferPointer
    var i = 0

    struct Entry {
        var shard: Range<Int>?
        var sequence: Range<Int>?
        var errorCode: Range<Int>?
        var errorMessage: Range<Int>?
    }

    init(_ p: UnsafeRawBufferPointer) { self.p = p }

    mutating func ws() { while i < p.count, p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i += 1 } }

    mutating func expect(_ c: UInt8) -> Bool {
        ws()
        guard i < p.count, p[i] == c else { return false }
        i += 1
        return true
    }

    /// The range inside the quotes.
    mutating func string() -> Range<Int>? {
        guard expect(UInt8(ascii: "\"")) else { return nil }
        let start = i
        while i < p.count {
            let c = p[i]
            if c == UInt8(ascii: "\\") { i += 2; continue }
            if c == UInt8(ascii: "\"") { i += 1; return start..<(i - 1) }
            i += 1
        }
        return nil
    }

    mutating func skipValue(depth: Int = 0) -> Bool {
        ws()
        guard i < p.count, depth < 64 else { return false }
        switch p[i] {
        case UInt8(ascii: "\""): return string() != nil
        case UInt8(ascii: "{"):
            i += 1
            if expect(UInt8(ascii: "}")) { return true }
            repeat {
                guard string() != nil, expect(UInt8(ascii: ":")), skipValue(depth: depth + 1) else { return false }
            } while expect(UInt8(ascii: ","))
            return expect(UInt8(ascii: "}"))
        case UInt8(ascii: "["):
            i += 1
            if expect(UInt8(ascii: "]")) { return true }
            repeat { guard skipValue(depth: depth + 1) else { return false } } while expect(UInt8(ascii: ","))
            return expect(UInt8(ascii: "]"))
        default:
            while i < p.count, p[i] != UInt8(ascii: ","), p[i] != UInt8(ascii: "}"), p[i] != UInt8(ascii: "]") { i += 1 }
            return true
        }
    }

    func equals(_ r: Range<Int>, _ s: StaticString) -> Bool {
        guard r.count == s.utf8CodeUnitCount else { return false }
        let a = s.utf8Start
        for k in 0..<r.count where p[r.lowerBound + k] != a[k] { return false }
        return true
    }

    /// Calls `visit` for each entry of `Records`; false when the body is not a PutRecords answer.
    mutating func scan(_ visit: (Entry) -> Void) -> Bool {
        guard expect(UInt8(ascii: "{")) else { return false }
        if expect(UInt8(ascii: "}")) { return false }
        var sawRecords = false
        repeat {
            guard let key = string(), expect(UInt8(ascii: ":")) else { return false }
            if equals(key, "Records") {
                sawRecords = true
                guard expect(UInt8(ascii: "[")) else { return false }
                if expect(UInt8(ascii: "]")) { continue }
                repeat {
                    guard expect(UInt8(ascii: "{")) else { return false }
                    var e = Entry()
                    if !expect(UInt8(ascii: "}")) {
                        repeat {
                            guard let k = string(), expect(UInt8(ascii: ":")) else { return false }
                            ws()
                            if i < p.count, p[i] == UInt8(ascii: "\"") {
                                guard let v = string() else { return false }
                                if equals(k, "SequenceNumber") { e.sequence = v }
                                else if equals(k, "ShardId") { e.shard = v }
                                else if equals(k, "ErrorCode") { e.errorCode = v }
                                else if equals(k, "ErrorMessage") { e.errorMessage = v }
                            } else if !skipValue() { return false }
                        } while expect(UInt8(ascii: ","))
                        guard expect(UInt8(ascii: "}")) else { return false }
                    }
                    visit(e)
                } while expect(UInt8(ascii: ","))
                guard expect(UInt8(ascii: "]")) else { return false }
            } else if !skipValue() {
                return false
            }
        } while expect(UInt8(ascii: ","))
        return sawRecords && expect(UInt8(ascii: "}"))
    }
}

extension PutRecordsScanner {
    /// FNV-1a of a byte range.
    static func hash(_ p: UnsafeRawBufferPointer, _ r: Range<Int>) -> UInt64 { fnv1a64(UnsafeRawBufferPointer(rebasing: p[r])) }

    static func same(_ p: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        a.count == b.count && memcmp(p.baseAddress! + a.lowerBound, p.baseAddress! + b.lowerBound, a.count) == 0
    }

    /// Decimal sequence numbers: shorter is smaller, then byte order.
    static func less(_ p: UnsafeRawBufferPointer, _ a: Range<Int>, _ b: Range<Int>) -> Bool {
        if a.count != b.count { return a.count < b.count }
        return memcmp(p.baseAddress! + a.lowerBound, p.baseAddress! + b.lowerBound, a.count) < 0
    }
}

extension PutRecordsScanner {
    /// The fast path for a clean answer: `"FailedRecordCount"` is 0 and `"SequenceNumber"` appears once per
    /// entry sent (and no `"ErrorCode"`). Anything else goes through the full scan. Each key is found with
    /// `memchr` on a byte that is rare in an answer (`q`, `F`, `E`), so one pass costs about a memchr.
    static func allAccepted(_ p: UnsafeRawBufferPointer, entries: Int) -> Bool {
        guard let base = p.baseAddress else { return false }
        /// Every place where `key` starts, found by its byte at `pivot` (a byte the rest of an answer rarely has).
        func count(_ key: StaticString, pivot: Int, limit: Int, first: inout Int) -> Int {
            let k = key.utf8CodeUnitCount, kp = key.utf8Start
            var n = 0, at = pivot
            while at < p.count, let hit = memchr(base + at, Int32(kp[pivot]), p.count - at) {
                let off = UnsafeRawPointer(hit) - base
                at = off + 1
                let s = off - pivot
                if s + k <= p.count, memcmp(base + s, kp, k) == 0 {
                    if n == 0 { first = s }
                    n += 1
                    if n > limit { return n }
                }
            }
            return n
        }
        var f = -1
        guard count("\"FailedRecordCount\"", pivot: 1, limit: 1, first: &f) == 1 else { return false }
        var i = f + 19
        while i < p.count, p[i] == 0x20 || p[i] == UInt8(ascii: ":") || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i += 1 }
        guard i + 1 < p.count, p[i] == UInt8(ascii: "0"), !(48...57).contains(p[i + 1]) else { return false }
        var unused = 0
        if count("\"ErrorCode\"", pivot: 1, limit: 0, first: &unused) != 0 { return false }
        return count("\"SequenceNumber\"", pivot: 3, limit: entries, first: &unused) == entries
    }
}
