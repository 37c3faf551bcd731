#if canImport(Glibc)
import Glibc
#endif
import Bytes
import Platform
import TableStore

/// The cleaning rules of `shared/spec/pinterest-data.md` §3 as kernels over whole columns: straight loops
/// over contiguous arrays (validity bytes, offsets, lengths, values) that the optimiser unrolls and
/// vectorises where the rule allows, with no per-row allocation.
public enum Kernels {
    /// Sets `valid[i] = 0` where the value equals one of `placeholders` exactly, or is empty.
    /// Returns how many values it nulled.
    @discardableResult
    public static func nullPlaceholders(_ c: StringColumn, _ placeholders: [[UInt8]]) -> Int {
        let n = c.count
        var nulled = 0
        let base = UnsafeRawPointer(c.data.base)
        c.valid.withUnsafeMutableBufferPointer { valid in
            c.length.withUnsafeBufferPointer { len in
                c.start.withUnsafeBufferPointer { start in
                    // Empty strings first: a pure compare-and-select loop.
                    for i in 0..<n {
                        let keep: UInt8 = len[i] == 0 ? 0 : 1
                        nulled &+= Int(valid[i] & ~keep & 1)
                        valid[i] &= keep
                    }
                    for p in placeholders {
                        let pl = Int32(p.count)
                        p.withUnsafeBytes { pb in
                            for i in 0..<n where len[i] == pl && valid[i] != 0 {
                                if memcmp(base + Int(start[i]), pb.baseAddress!, p.count) == 0 {
                                    valid[i] = 0
                                    nulled += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        return nulled
    }

    /// Drops `prefix` from every value that starts with it (moves the start; no bytes move).
    public static func stripPrefix(_ c: StringColumn, _ prefix: [UInt8]) {
        let n = c.count
        let pl = Int32(prefix.count)
        let base = UnsafeRawPointer(c.data.base)
        prefix.withUnsafeBytes { pb in
            c.start.withUnsafeMutableBufferPointer { start in
                c.length.withUnsafeMutableBufferPointer { len in
                    c.valid.withUnsafeBufferPointer { valid in
                        for i in 0..<n where valid[i] != 0 && len[i] >= pl {
                            if memcmp(base + Int(start[i]), pb.baseAddress!, prefix.count) == 0 {
                                start[i] += pl
                                len[i] -= pl
                            }
                        }
                    }
                }
            }
        }
    }

    /// follower_count text → Int64: digits, optionally one fraction, then an optional `k` (×1,000) or `M`
    /// (×1,000,000): `"437"`, `"124k"`, `"1.2k"` → 1200, `"6M"`. The result must be a whole number;
    /// anything else becomes null. Appends one value per row of `text` to `out`.
    public static func parseFollowerCounts(_ text: StringColumn, into out: Int64Column) -> Int {
        let n = text.count
        var failed = 0
        for i in 0..<n {
            if text.valid[i] != 0, let v = parseFollowerCount(text.bytes(i)) {
                out.append(v)
            } else {
                if text.valid[i] != 0 { failed += 1 }
                out.appendNull()
            }
        }
        return failed
    }

    @inlinable
    public static func parseFollowerCount(_ b: UnsafeRawBufferPointer) -> Int64? {
        var n = b.count
        guard n > 0 else { return nil }
        var mult: Int64 = 1
        let last = b[n - 1]
        if last == UInt8(ascii: "k") { mult = 1000; n -= 1 } else if last == UInt8(ascii: "M") { mult = 1_000_000; n -= 1 }
        guard n > 0 else { return nil }
        var i = 0
        var neg = false
        if b[0] == UInt8(ascii: "-") { neg = true; i = 1 }
        var whole: Int64 = 0
        var digits = 0
        while i < n, b[i] >= 0x30, b[i] <= 0x39 {
            let (m, o1) = whole.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(b[i] - 0x30))
            if o1 || o2 { return nil }
            whole = a
            digits += 1
            i += 1
        }
        guard digits > 0 else { return nil }
        var frac: Int64 = 0
        var fracScale: Int64 = 1
        if i < n && b[i] == UInt8(ascii: ".") {
            i += 1
            var fd = 0
            while i < n, b[i] >= 0x30, b[i] <= 0x39 {
                guard fd < 6 else { return nil }
                frac = frac * 10 + Int64(b[i] - 0x30)
                fracScale *= 10
                fd += 1
                i += 1
            }
            guard fd > 0 else { return nil }
        }
        guard i == n else { return nil }
        let (w, o) = whole.multipliedReportingOverflow(by: mult)
        if o { return nil }
        // The fraction must give a whole number of followers (1.2k = 1200; 1.2 alone is not a count).
        let scaled = frac * mult
        guard scaled % fracScale == 0 else { return nil }
        let (v, o2) = w.addingReportingOverflow(scaled / fracScale)
        if o2 { return nil }
        return neg ? -v : v
    }

    /// Date-time text → microseconds since the epoch, UTC (space or `T`, optional fraction and offset);
    /// unparseable text becomes null. Appends one value per row to `out`; returns how many failed.
    public static func parseTimestamps(_ text: StringColumn, into out: Int64Column) -> Int {
        var failed = 0
        for i in 0..<text.count {
            if text.valid[i] != 0, let v = UTCTime.parseMicros(text.bytes(i)) {
                out.append(v)
            } else {
                if text.valid[i] != 0 { failed += 1 }
                out.appendNull()
            }
        }
        return failed
    }

    /// user_name = first + " " + last; a null part gives the other alone; both null gives null.
    public static func joinNames(_ first: StringColumn, _ last: StringColumn, into out: StringColumn) {
        let space: [UInt8] = [0x20]
        for i in 0..<first.count {
            let f = first.valid[i] != 0, l = last.valid[i] != 0
            switch (f, l) {
            case (true, true):
                let a = first.bytes(i), b = last.bytes(i)
                out.start.append(Int32(out.data.count))
                out.length.append(Int32(a.count + 1 + b.count))
                out.valid.append(1)
                out.data.append(a)
                space.withUnsafeBytes { out.data.append($0) }
                out.data.append(b)
            case (true, false): out.append(first.bytes(i))
            case (false, true): out.append(last.bytes(i))
            case (false, false): out.appendNull()
            }
        }
    }

    // MARK: row hashing (duplicate removal)

    @inline(__always) @usableFromInline
    static func mix(_ h: UInt64, _ v: UInt64) -> UInt64 {
        let m = (h ^ v).multipliedFullWidth(by: 0x9E37_79B9_7F4A_7C15)
        return m.high ^ m.low
    }

    @inline(__always) @usableFromInline
    static func hashBytes(_ b: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        var h = seed ^ UInt64(b.count)
        var i = 0
        let n = b.count
        while i + 8 <= n {
            h = mix(h, b.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(b[i]) << shift
            shift += 8
            i += 1
        }
        return mix(h, tail ^ 0xA5A5_A5A5)
    }

    /// Folds every column of `batch` into two independent 64-bit hashes per row (a 128-bit row fingerprint).
    public static func rowHashes(_ batch: ColumnBatch, _ h1v: ColumnVector<UInt64>, _ h2v: ColumnVector<UInt64>) {
        let n = batch.rowCount
        h1v.removeAll()
        h2v.removeAll()
        h1v.append(repeating: 0x243F_6A88_85A3_08D3, count: n)
        h2v.append(repeating: 0x1319_8A2E_0370_7344, count: n)
        let h1 = h1v.base, h2 = h2v.base
        @inline(__always) func fold(_ i: Int, _ v: UInt64, _ w: UInt64) {
            h1[i] = mix(h1[i], v)
            h2[i] = mix(h2[i] ^ 0x5bd1_e995, w)
        }
        for c in batch.columns {
            switch c {
            case .string(let s):
                for i in 0..<n {
                    if s.valid[i] == 0 { fold(i, 0xDEAD, 0xBEEF); continue }
                    let b = s.bytes(i)
                    fold(i, hashBytes(b, seed: 1), hashBytes(b, seed: 0x7F4A_7C15))
                }
            case .int64(let s), .timestamp(let s):
                for i in 0..<n { fold(i, s.valid[i] == 0 ? 0xDEAD : UInt64(bitPattern: s.values[i]) &+ 1, s.valid[i] == 0 ? 0xBEEF : ~UInt64(bitPattern: s.values[i])) }
            case .double(let s):
                for i in 0..<n { fold(i, s.valid[i] == 0 ? 0xDEAD : s.values[i].bitPattern &+ 1, s.valid[i] == 0 ? 0xBEEF : ~s.values[i].bitPattern) }
            case .doublePair(let a, let b):
                for i in 0..<n {
                    fold(i, a.valid[i] == 0 ? 0xDEAD : a.values[i].bitPattern &+ 1, a.valid[i] == 0 ? 0xBEEF : ~a.values[i].bitPattern)
                    fold(i, b.valid[i] == 0 ? 0xDEAD : b.values[i].bitPattern &+ 1, b.valid[i] == 0 ? 0xBEEF : ~b.values[i].bitPattern)
                }
            }
        }
    }
}

/// A set of 128-bit row fingerprints: open addressing over two parallel arrays, grown at half full.
/// A class over raw memory (not Swift arrays) so inserts pay no exclusivity or uniqueness checks.
public final class FingerprintSet {
    var lo: UnsafeMutablePointer<UInt64>
    var hi: UnsafeMutablePointer<UInt64>
    var mask: Int
    public private(set) var count = 0
    // (0, 0) marks an empty slot; a real (0, 0) fingerprint is kept aside.
    var hasZero = false

    public init(capacity: Int = 1 << 16) {
        var size = 1024
        while size < capacity * 2 { size *= 2 }
        lo = .allocate(capacity: size)
        lo.initialize(repeating: 0, count: size)
        hi = .allocate(capacity: size)
        hi.initialize(repeating: 0, count: size)
        mask = size - 1
    }

    deinit {
        lo.deallocate()
        hi.deallocate()
    }

    /// Inserts; false when it was already there.
    public func insert(_ a: UInt64, _ b: UInt64) -> Bool {
        if a == 0 && b == 0 {
            defer { hasZero = true }
            return !hasZero
        }
        if (count + 1) * 2 > mask { grow() }
        var s = Int(truncatingIfNeeded: a ^ (a >> 29)) & mask
        while lo[s] != 0 || hi[s] != 0 {
            if lo[s] == a && hi[s] == b { return false }
            s = (s + 1) & mask
        }
        lo[s] = a
        hi[s] = b
        count += 1
        return true
    }

    private func grow() {
        let oldLo = lo, oldHi = hi, oldSize = mask + 1
        let size = oldSize * 2
        lo = .allocate(capacity: size)
        lo.initialize(repeating: 0, count: size)
        hi = .allocate(capacity: size)
        hi.initialize(repeating: 0, count: size)
        mask = size - 1
        count = 0
        for i in 0..<oldSize where oldLo[i] != 0 || oldHi[i] != 0 { _ = insert(oldLo[i], oldHi[i]) }
        oldLo.deallocate()
        oldHi.deallocate()
    }
}
