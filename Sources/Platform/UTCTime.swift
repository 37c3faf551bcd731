/// Civil dates and UTC timestamps, without Foundation (Howard Hinnant's algorithms): the one calendar of the
/// package (the emulator's timestamps, SigV4's dates, credential expirations, `--start-at`, Parquet and Delta
/// statistics, the cleaning kernels).
public enum UTCTime {
    /// Days since 1970-01-01 of a proleptic Gregorian date.
    @inlinable
    public static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// (year, month, day) of a day count since 1970-01-01.
    @inlinable
    public static func civil(days z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    public static let microsPerDay: Int64 = 86_400_000_000

    /// The UTC year of a timestamp in microseconds.
    @inlinable
    public static func year(micros: Int64) -> Int {
        let d = micros >= 0 ? micros / microsPerDay : (micros - microsPerDay + 1) / microsPerDay
        return civil(days: Int(d)).year
    }

    @inline(__always) @usableFromInline
    static func digits(_ p: UnsafeRawBufferPointer, _ at: Int, _ n: Int) -> Int? {
        var v = 0
        for i in at..<(at + n) {
            let d = Int(p[i]) &- 0x30
            guard d >= 0 && d <= 9 else { return nil }
            v = v * 10 + d
        }
        return v
    }

    /// Parses `YYYY-MM-DD HH:MM:SS`, the `T` form, optional fraction (≤ 9 digits, kept to microseconds),
    /// and an optional `Z` or `±HH:MM` offset (no offset = UTC). Nil for anything else, including
    /// impossible dates such as February 30.
    @inlinable
    public static func parseMicros(_ p: UnsafeRawBufferPointer) -> Int64? {
        let n = p.count
        guard n >= 19, p[4] == UInt8(ascii: "-"), p[7] == UInt8(ascii: "-"),
              p[10] == UInt8(ascii: " ") || p[10] == UInt8(ascii: "T"), p[13] == UInt8(ascii: ":"), p[16] == UInt8(ascii: ":"),
              let y = digits(p, 0, 4), let mo = digits(p, 5, 2), let d = digits(p, 8, 2),
              let h = digits(p, 11, 2), let mi = digits(p, 14, 2), let s = digits(p, 17, 2)
        else { return nil }
        guard mo >= 1 && mo <= 12 && d >= 1 && h <= 23 && mi <= 59 && s <= 59 else { return nil }
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
        let monthDays: Int
        switch mo {
        case 2: monthDays = leap ? 29 : 28
        case 4, 6, 9, 11: monthDays = 30
        default: monthDays = 31
        }
        guard d <= monthDays else { return nil }
        var i = 19
        var frac: Int64 = 0
        if i < n && p[i] == UInt8(ascii: ".") {
            i += 1
            var k = 0
            while i < n, p[i] >= 0x30, p[i] <= 0x39 {
                if k < 6 { frac = frac * 10 + Int64(p[i] - 0x30) }
                k += 1
                i += 1
            }
            guard k >= 1 && k <= 9 else { return nil }
            for _ in min(k, 6)..<6 { frac *= 10 }
        }
        var offsetSeconds = 0
        if i < n {
            if p[i] == UInt8(ascii: "Z") && i + 1 == n {
                i += 1
            } else if (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) && i + 6 == n && p[i + 3] == UInt8(ascii: ":"),
                      let oh = digits(p, i + 1, 2), let om = digits(p, i + 4, 2), oh <= 23, om <= 59 {
                offsetSeconds = (oh * 3600 + om * 60) * (p[i] == UInt8(ascii: "-") ? -1 : 1)
                i = n
            } else {
                return nil
            }
        }
        let secs = Int64(days(year: y, month: mo, day: d)) * 86_400 + Int64(h * 3600 + mi * 60 + s) - Int64(offsetSeconds)
        return secs * 1_000_000 + frac
    }

    public static func parseMicros(_ s: String) -> Int64? {
        var s = s
        return s.withUTF8 { parseMicros(UnsafeRawBufferPointer($0)) }
    }

    /// Unix seconds (floored) of an ISO 8601 time as `parseMicros` reads it, or nil.
    public static func unixSeconds(iso8601 s: String) -> Int64? {
        guard let us = parseMicros(s) else { return nil }
        return us >= 0 ? us / 1_000_000 : (us - 999_999) / 1_000_000
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (milliseconds; `roundUp` rounds a sub-millisecond remainder up, for maxima).
    public static func iso(micros: Int64, roundUp: Bool = false) -> String {
        var ms = micros >= 0 ? micros / 1000 : (micros - 999) / 1000
        if roundUp && ms * 1000 < micros { ms += 1 }
        let dayMs: Int64 = 86_400_000
        let day = ms >= 0 ? ms / dayMs : (ms - dayMs + 1) / dayMs
        let rem = ms - day * dayMs
        let (y, m, d) = civil(days: Int(day))
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let msPart = rem % 1000
        let msText = msPart < 10 ? "00\(msPart)" : msPart < 100 ? "0\(msPart)" : "\(msPart)"
        let yText = y < 0 ? "\(y)" : String(repeating: "0", count: max(0, 4 - String(y).count)) + String(y)
        return "\(yText)-\(two(Int64(m)))-\(two(Int64(d)))T\(two(rem / 3_600_000)):\(two(rem / 60000 % 60)):\(two(rem / 1000 % 60)).\(msText)Z"
    }
}
