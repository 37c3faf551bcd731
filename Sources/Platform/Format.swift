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
