import Foundation
import JSON
import Platform

/// Two reports side by side: every numeric figure with the ratio B/A.
public enum Compare {
    /// Numeric leaves as (path, value), skipping per-second series and distributions.
    public static func flatten(_ value: Any, _ path: String = "", into out: inout [(String, Double)]) {
        if let d = value as? [String: Any] {
            for k in d.keys.sorted() where !["per_second", "latency_distribution", "timeline", "repeats", "machine", "config", "settings"].contains(k) {
                flatten(d[k]!, path.isEmpty ? k : "\(path).\(k)", into: &out)
            }
        } else if let a = value as? [Any] {
            for (i, v) in a.enumerated() {
                var key = "\(i)"
                if let o = v as? [String: Any] {
                    if let n = o["name"] as? String { key = n } else if let l = o["label"] as? String { key = l } else if let t = o["topic"] as? String, let p = o["partition"] {
                        key = "\(t)-\(p)"
                    }
                }
                flatten(v, "\(path)[\(key)]", into: &out)
            }
        } else if let n = value as? NSNumber, "\(value)" != "true", "\(value)" != "false" {
            out.append((path, n.doubleValue))
        }
    }

    public static func load(_ pathOrDir: String) throws -> Any {
        var isDir: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: pathOrDir, isDirectory: &isDir) && isDir.boolValue ? "\(pathOrDir)/report.json" : pathOrDir
        guard let data = FileManager.default.contents(atPath: file) else { throw CompareError("cannot read \(file)") }
        do { return try JSONSerialization.jsonObject(with: data) } catch { throw CompareError("\(file) is not a JSON report") }
    }

    /// Reports of two kinds (a bench and a sweep, a run's report) share no figure: refused with one line.
    public static func checkKinds(_ a: Any, _ b: Any, labelA: String, labelB: String) throws {
        func kind(_ r: Any) -> String {
            guard let d = r as? [String: Any] else { return "unknown" }
            return d["kind"] as? String ?? (d["records_per_s"] != nil ? "run" : "unknown")
        }
        let (ka, kb) = (kind(a), kind(b))
        if ka != kb { throw CompareError("\(labelA) is a \(ka) report and \(labelB) a \(kb) report: compare two reports of one kind") }
    }

    public struct Row: Sendable {
        public var path: String
        public var a: Double?
        public var b: Double?
        public var ratio: Double? { guard let a, let b, a != 0 else { return nil }; return b / a }
    }

    public static func rows(_ a: Any, _ b: Any) -> [Row] {
        var fa: [(String, Double)] = [], fb: [(String, Double)] = []
        flatten(a, into: &fa)
        flatten(b, into: &fb)
        let mb = Dictionary(fb, uniquingKeysWith: { x, _ in x })
        let ma = Dictionary(fa, uniquingKeysWith: { x, _ in x })
        var out = fa.map { Row(path: $0.0, a: $0.1, b: mb[$0.0]) }
        for (k, v) in fb where ma[k] == nil { out.append(Row(path: k, a: nil, b: v)) }
        return out
    }

    /// The rows as a JSON array of {figure, a, b, ratio}.
    public static func json(_ rows: [Row]) -> JSONValue {
        .array(rows.map { r in
            .object([("figure", .string(r.path)), ("a", r.a.map { .double($0) } ?? .null), ("b", r.b.map { .double($0) } ?? .null),
                     ("ratio", r.ratio.map { .double(($0 * 1e6).rounded() / 1e6) } ?? .null)])
        })
    }

    public static func table(_ rows: [Row], labelA: String, labelB: String) -> String {
        func n(_ v: Double?) -> String {
            guard let v else { return "-" }
            return v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(format: "%.3f", v)
        }
        let w = max(6, rows.map(\.path.count).max() ?? 6)
        var s = "figure".padding(toLength: w, withPad: " ", startingAt: 0) + "  " + labelA.suffix(18).padding(toLength: 18, withPad: " ", startingAt: 0)
            + "  " + labelB.suffix(18).padding(toLength: 18, withPad: " ", startingAt: 0) + "  B/A\n"
        for r in rows {
            s += r.path.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + n(r.a).padding(toLength: 18, withPad: " ", startingAt: 0) + "  "
                + n(r.b).padding(toLength: 18, withPad: " ", startingAt: 0) + "  " + (r.ratio.map { String(format: "%.3f", $0) } ?? "-") + "\n"
        }
        return s
    }
}

public struct CompareError: Error, CustomStringConvertible {
    public var message: String
    public init(_ m: String) { message = m }
    public var description: String { message }
}
