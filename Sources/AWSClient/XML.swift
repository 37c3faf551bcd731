/// Just enough XML for S3's answers: the text of elements by name (S3 bodies are flat and small).
public enum XML {
    public static func first(_ tag: String, in text: String) -> String? { all(tag, in: text).first }

    public static func all(_ tag: String, in text: String) -> [String] {
        var out: [String] = []
        let open = "<\(tag)>", close = "</\(tag)>"
        var rest = text[...]
        while let a = rest.firstRange(of: open) {
            guard let b = rest[a.upperBound...].firstRange(of: close) else { break }
            out.append(unescape(String(rest[a.upperBound..<b.lowerBound])))
            rest = rest[b.upperBound...]
        }
        return out
    }

    /// The inner texts of each `<tag>…</tag>` block (for lists such as `<Contents>`).
    public static func blocks(_ tag: String, in text: String) -> [String] { all(tag, in: text) }

    public static func unescape(_ s: String) -> String {
        guard s.contains("&") else { return s }
        return s.replacingAll("&lt;", "<").replacingAll("&gt;", ">").replacingAll("&quot;", "\"").replacingAll("&apos;", "'").replacingAll("&amp;", "&")
    }

    public static func escape(_ s: String) -> String {
        s.replacingAll("&", "&amp;").replacingAll("<", "&lt;").replacingAll(">", "&gt;")
    }
}

extension String {
    func replacingAll(_ a: String, _ b: String) -> String {
        guard contains(a) else { return self }
        var out = ""
        var rest = self[...]
        while let r = rest.firstRange(of: a) {
            out += rest[..<r.lowerBound]
            out += b
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
