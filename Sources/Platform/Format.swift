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
