import Foundation

/// One line (or set of points) on a chart.
public struct Series: Sendable {
    public var name: String
    public var points: [(x: Double, y: Double)]
    public init(name: String, points: [(x: Double, y: Double)]) {
        self.name = name
        self.points = points
    }
}

/// How the x axis is drawn.
public enum XScale: Sendable {
    case linear
    /// Percentiles on a "nines" scale: x is a percentile (0...100), drawn at -log10(1 - p/100).
    case nines
}

/// Small, dependency-free SVG charts: a line chart and a scatter chart, each series in its own <g> with
/// `class="series"` and a `data-name`, a legend, ticks at 1-2-5 steps. Readable without a network.
public enum SVGChart {
    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]

    public static func escape(_ s: String) -> String {
        var o = ""
        for c in s {
            switch c {
            case "&": o += "&amp;"
            case "<": o += "&lt;"
            case ">": o += "&gt;"
            case "\"": o += "&quot;"
            default: o.append(c)
            }
        }
        return o
    }

    static func niceStep(_ range: Double, ticks: Int = 5) -> Double {
        guard range > 0, range.isFinite else { return 1 }
        let raw = range / Double(ticks)
        let mag = pow(10, floor(log10(raw)))
        let f = raw / mag
        return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag
    }

    static func label(_ v: Double) -> String {
        let a = abs(v)
        if a >= 1e9 { return trim(v / 1e9) + "G" }
        if a >= 1e6 { return trim(v / 1e6) + "M" }
        if a >= 1e3 { return trim(v / 1e3) + "k" }
        return trim(v)
    }

    static func trim(_ v: Double) -> String {
        let r = (v * 100).rounded() / 100
        return r == r.rounded() ? String(Int(r)) : String(r)
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    /// A chart. `mode` "line" joins points; "scatter" draws dots, and `emphasised` (per series, point
    /// indexes) get a ring (the Pareto front).
    public static func chart(
        title: String, xLabel: String, yLabel: String, series: [Series], xScale: XScale = .linear,
        scatter: Bool = false, emphasised: [Int: Set<Int>] = [:], width: Double = 760, height: Double = 340,
        shade: (from: Double, to: Double, label: String)? = nil
    ) -> String {
        let left = 70.0, right = 20.0, top = 34.0, bottom = 48.0 + 18.0 * Double((series.count + 2) / 3)
        let plotW = width - left - right, plotH = height - top - bottom
        func tx(_ x: Double) -> Double {
            switch xScale {
            case .linear: return x
            case .nines: return -log10(max(1e-7, 1 - min(x, 99.99999) / 100))
            }
        }
        let all = series.flatMap(\.points)
        var xMin = all.map { tx($0.x) }.min() ?? 0, xMax = all.map { tx($0.x) }.max() ?? 1
        var yMin = min(0, all.map(\.y).min() ?? 0), yMax = all.map(\.y).max() ?? 1
        if let sh = shade, xScale == .linear { xMin = min(xMin, sh.from) }
        if xMax <= xMin { xMax = xMin + 1 }
        if yMax <= yMin { yMax = yMin + 1 }
        if scatter {
            let px = (xMax - xMin) * 0.05
            xMin -= px
            xMax += px
        }
        yMax += (yMax - yMin) * 0.08
        let sx = { (x: Double) in left + (tx(x) - xMin) / (xMax - xMin) * plotW }
        let sxRaw = { (t: Double) in left + (t - xMin) / (xMax - xMin) * plotW }
        let sy = { (y: Double) in top + plotH - (y - yMin) / (yMax - yMin) * plotH }
        var o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        o += "<title>\(escape(title))</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        o += "<text x=\"\(fmt(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(escape(title))</text>\n"
        // Grid and ticks.
        let ys = niceStep(yMax - yMin)
        var y = (yMin / ys).rounded(.up) * ys
        while y <= yMax + 1e-9 {
            o += "<line x1=\"\(fmt(left))\" x2=\"\(fmt(left + plotW))\" y1=\"\(fmt(sy(y)))\" y2=\"\(fmt(sy(y)))\" stroke=\"#e0e0e0\"/>"
            o += "<text x=\"\(fmt(left - 6))\" y=\"\(fmt(sy(y) + 4))\" text-anchor=\"end\">\(label(y))</text>\n"
            y += ys
        }
        switch xScale {
        case .linear:
            let xs = niceStep(xMax - xMin)
            var x = (xMin / xs).rounded(.up) * xs
            while x <= xMax + 1e-9 {
                o += "<line x1=\"\(fmt(sxRaw(x)))\" x2=\"\(fmt(sxRaw(x)))\" y1=\"\(fmt(top))\" y2=\"\(fmt(top + plotH))\" stroke=\"#f0f0f0\"/>"
                o += "<text x=\"\(fmt(sxRaw(x)))\" y=\"\(fmt(top + plotH + 16))\" text-anchor=\"middle\">\(label(x))</text>\n"
                x += xs
            }
        case .nines:
            for (p, name) in [(0.0, "0%"), (90.0, "90%"), (99.0, "99%"), (99.9, "99.9%"), (99.99, "99.99%"), (99.999, "99.999%")] where tx(p) <= xMax + 1e-9 {
                o += "<line x1=\"\(fmt(sx(p)))\" x2=\"\(fmt(sx(p)))\" y1=\"\(fmt(top))\" y2=\"\(fmt(top + plotH))\" stroke=\"#f0f0f0\"/>"
                o += "<text x=\"\(fmt(sx(p)))\" y=\"\(fmt(top + plotH + 16))\" text-anchor=\"middle\">\(name)</text>\n"
            }
        }
        if let sh = shade, sh.to > sh.from {
            // A shaded span of the x axis (the warm-up, whose figures are reported apart).
            let x0 = max(left, sx(sh.from)), x1 = min(left + plotW, sx(sh.to))
            if x1 > x0 {
                o += "<rect class=\"shade\" x=\"\(fmt(x0))\" y=\"\(fmt(top))\" width=\"\(fmt(x1 - x0))\" height=\"\(fmt(plotH))\" fill=\"#000\" fill-opacity=\"0.07\"/>"
                o += "<text x=\"\(fmt((x0 + x1) / 2))\" y=\"\(fmt(top + 14))\" text-anchor=\"middle\" fill=\"#555\">\(escape(sh.label))</text>\n"
            }
        }
        o += "<rect x=\"\(fmt(left))\" y=\"\(fmt(top))\" width=\"\(fmt(plotW))\" height=\"\(fmt(plotH))\" fill=\"none\" stroke=\"#444\"/>\n"
        o += "<text x=\"\(fmt(left + plotW / 2))\" y=\"\(fmt(top + plotH + 34))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        o += "<text transform=\"translate(16,\(fmt(top + plotH / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        for (i, s) in series.enumerated() {
            let color = palette[i % palette.count]
            o += "<g class=\"series\" data-name=\"\(escape(s.name))\">"
            if scatter {
                for (j, p) in s.points.enumerated() {
                    o += "<circle cx=\"\(fmt(sx(p.x)))\" cy=\"\(fmt(sy(p.y)))\" r=\"5\" fill=\"\(color)\"/>"
                    if emphasised[i]?.contains(j) == true {
                        o += "<circle class=\"pareto\" cx=\"\(fmt(sx(p.x)))\" cy=\"\(fmt(sy(p.y)))\" r=\"9\" fill=\"none\" stroke=\"#000\" stroke-width=\"2\"/>"
                    }
                }
            } else if !s.points.isEmpty {
                let d = s.points.enumerated().map { (j, p) in "\(j == 0 ? "M" : "L")\(fmt(sx(p.x))),\(fmt(sy(p.y)))" }.joined(separator: " ")
                o += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>"
            }
            o += "</g>\n"
            // Legend: three entries per row under the plot.
            let lx = left + Double(i % 3) * (plotW / 3), ly = top + plotH + 50 + Double(i / 3) * 18
            o += "<rect x=\"\(fmt(lx))\" y=\"\(fmt(ly - 9))\" width=\"12\" height=\"10\" fill=\"\(color)\"/>"
            o += "<text x=\"\(fmt(lx + 16))\" y=\"\(fmt(ly))\">\(escape(s.name))</text>\n"
        }
        o += "</svg>\n"
        return o
    }

    /// Horizontal bars, one per labelled category (a sweep's configurations): categories are names, not
    /// numbers, so they get a row each with the value written at the bar's end. `highlight` rows are dark.
    public static func bars(title: String, valueLabel: String, categories: [String], values: [Double],
                            highlight: Set<Int> = [], width: Double = 760) -> String {
        let n = max(categories.count, 1)
        let labelW = min(280.0, 12 + 7 * Double(categories.map(\.count).max() ?? 8)), right = 90.0, top = 34.0, rowH = 22.0
        let height = top + rowH * Double(n) + 40
        let plotW = width - labelW - right
        let vMax = max(values.max() ?? 1, 1e-9)
        var o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        o += "<title>\(escape(title))</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        o += "<text x=\"\(fmt(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(escape(title))</text>\n"
        for (i, c) in categories.enumerated() {
            let y = top + Double(i) * rowH, v = i < values.count ? values[i] : 0
            let w = max(0, v / vMax * plotW)
            o += "<g class=\"bar\" data-name=\"\(escape(c))\">"
            o += "<text x=\"\(fmt(labelW - 8))\" y=\"\(fmt(y + 15))\" text-anchor=\"end\">\(escape(c))</text>"
            o += "<rect x=\"\(fmt(labelW))\" y=\"\(fmt(y + 3))\" width=\"\(fmt(w))\" height=\"\(fmt(rowH - 6))\" fill=\"\(highlight.contains(i) ? "#1f4e99" : "#8fb3e8")\"/>"
            o += "<text x=\"\(fmt(labelW + w + 6))\" y=\"\(fmt(y + 15))\">\(label(v))</text></g>\n"
        }
        o += "<text x=\"\(fmt(labelW + plotW / 2))\" y=\"\(fmt(height - 12))\" text-anchor=\"middle\">\(escape(valueLabel))</text>\n"
        o += "</svg>\n"
        return o
    }

    /// A heatmap of a two-dimensional grid (a sweep over two settings): one cell per (x, y) with its value
    /// written in it; darker is larger. Missing cells stay empty.
    public static func heatmap(title: String, xLabel: String, yLabel: String, xs: [String], ys: [String],
                               values: [[Double?]], width: Double = 760) -> String {
        let left = 110.0, top = 34.0, bottom = 48.0
        let cellW = (width - left - 20) / Double(max(xs.count, 1)), cellH = 34.0
        let height = top + cellH * Double(ys.count) + bottom
        let all = values.flatMap { $0.compactMap { $0 } }
        let lo = all.min() ?? 0, hi = all.max() ?? 1
        var o = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        o += "<title>\(escape(title))</title>\n<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n"
        o += "<text x=\"\(fmt(width / 2))\" y=\"20\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">\(escape(title))</text>\n"
        for (j, yName) in ys.enumerated() {
            let y = top + Double(j) * cellH
            o += "<text x=\"\(fmt(left - 8))\" y=\"\(fmt(y + cellH / 2 + 4))\" text-anchor=\"end\">\(escape(yName))</text>\n"
            for (i, _) in xs.enumerated() {
                guard j < values.count, i < values[j].count, let v = values[j][i] else { continue }
                let t = hi > lo ? (v - lo) / (hi - lo) : 1
                let x = left + Double(i) * cellW
                o += "<g class=\"cell\"><rect x=\"\(fmt(x))\" y=\"\(fmt(y))\" width=\"\(fmt(cellW - 2))\" height=\"\(fmt(cellH - 2))\" fill=\"#1f4e99\" fill-opacity=\"\(fmt(0.12 + 0.8 * t))\"/>"
                o += "<text x=\"\(fmt(x + cellW / 2))\" y=\"\(fmt(y + cellH / 2 + 4))\" text-anchor=\"middle\" fill=\"\(t > 0.55 ? "#fff" : "#000")\">\(label(v))</text></g>\n"
            }
        }
        for (i, xName) in xs.enumerated() {
            o += "<text x=\"\(fmt(left + Double(i) * cellW + cellW / 2))\" y=\"\(fmt(top + cellH * Double(ys.count) + 16))\" text-anchor=\"middle\">\(escape(xName))</text>\n"
        }
        o += "<text x=\"\(fmt(left + (width - left) / 2))\" y=\"\(fmt(height - 10))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        o += "<text transform=\"translate(16,\(fmt(top + cellH * Double(ys.count) / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        o += "</svg>\n"
        return o
    }
}
