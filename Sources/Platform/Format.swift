// Numbers for people: fixed decimals without Foundation, byte counts in kB/MB/GB.

/// `v` with exactly `decimals` digits after the point.
public func fmt(_ v: Double, _ decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let r = (v * scale).rounded() / scale
    if decimals == 0 { return String(Int(r)) }
    let neg = r < 0
    let a = abs(r)
    let whole = Int(a)
    var frac = String(Int(((a - Double(whole)) * scale).rounded()))
    while frac.count < decimals { frac = "0" + frac }
    return (neg ? "-" : "") + "\(whole).\(frac)"
}

public func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return fmt(d / 1e9, 2) + " GB" }
    if d >= 1e6 { return fmt(d / 1e6, 1) + " MB" }
    if d >= 1e3 { return fmt(d / 1e3, 1) + " kB" }
    return "\(n) B"
}

/// `30s`, `2m`, `500ms`, `1h` or plain seconds; nil when it is none of them.
public func parseSeconds(_ text: String) -> Double? {
    let s = text.lowercased()
    for (u, f) in [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)] where s.hasSuffix(u) {
        return Double(s.dropLast(u.count)).map { $0 * f }
    }
    return Double(s)
}

/// `16384`, `16k`, `256k`, `1m`, `1g`, `2mib` (binary multiples); nil when negative, too large or not a size.
public func parseByteSize(_ text: String) -> Int? {
    let s = text.lowercased()
    for (u, f) in [("kib", 1024), ("mib", 1 << 20), ("gib", 1 << 30), ("k", 1024), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)] where s.hasSuffix(u) {
        guard let v = Double(s.dropLast(u.count)), v >= 0, v * Double(f) < 1e15 else { return nil }
        return Int(v * Double(f))
    }
    guard let v = Int(s), v >= 0 else { return nil }
    return v
}

/// A count for people: `950`, `12.3 k`, `1.32 M`, `4.10 G` (three significant digits from a thousand up).
public func formatCount(_ v: Double) -> String {
    let a = abs(v)
    func three(_ x: Double) -> String { fmt(x, x >= 100 ? 0 : x >= 10 ? 1 : 2) }
    if a >= 1e9 { return three(v / 1e9) + " G" }
    if a >= 1e6 { return three(v / 1e6) + " M" }
    if a >= 1e4 { return three(v / 1e3) + " k" }
    return fmt(v, a >= 100 || v == v.rounded() ? 0 : 1)
}

/// `1.5s`, `2m05s`, `1h02m`: a duration for a progress line's ETA.
public func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0 else { return "?" }
    let s = Int(seconds.rounded())
    if seconds < 10 { return fmt(seconds, 1) + "s" }
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m" + (s % 60 < 10 ? "0" : "") + "\(s % 60)s" }
    return "\(s / 3600)h" + ((s % 3600) / 60 < 10 ? "0" : "") + "\((s % 3600) / 60)m"
}

/// A byte size as the options read it back: `1g`, `256k`, `10m`, or plain bytes when it is no multiple.
public func formatByteSize(_ n: Int) -> String {
    for (u, f) in [("g", 1 << 30), ("m", 1 << 20), ("k", 1024)] where n >= f && n % f == 0 { return "\(n / f)\(u)" }
    return "\(n)"
}

/// Levenshtein distance between two strings.
public func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var row = Array(0...y.count)
    for i in 1...x.count {
        var prev = row[0]
        row[0] = i
        for j in 1...y.count {
            let cur = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, prev + (x[i - 1] == y[j - 1] ? 0 : 1))
            prev = cur
        }
    }
    return row[y.count]
}

/// Rounded to 3 decimals (report figures).
public func round3(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }
