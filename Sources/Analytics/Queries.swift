#if canImport(Glibc)
import Glibc
#endif
import Platform
import TableStore

/// One cell of a result.
public enum Cell: Sendable, Equatable, CustomStringConvertible {
    case int(Int64)
    case double(Double)
    case string(String)

    public var description: String {
        switch self {
        case .int(let v): String(v)
        case .double(let v): v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) + ".0" : String(v)
        case .string(let s): s
        }
    }
}

public struct QueryResult: Sendable {
    public var name: String
    public var question: String
    public var columns: [String]
    public var rows: [[Cell]]

    /// RFC 4180 CSV with a header row.
    public func csv() -> String {
        func field(_ s: String) -> String {
            if s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
                return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return s
        }
        var out = columns.map(field).joined(separator: ",") + "\n"
        for r in rows { out += r.map { field($0.description) }.joined(separator: ",") + "\n" }
        return out
    }

    /// A plain-text table for the terminal.
    public func table() -> String {
        var widths = columns.map(\.count)
        let text = rows.map { $0.map(\.description) }
        for r in text { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $1 + String(repeating: " ", count: max(0, widths[$0] - $1.count)) }.joined(separator: "  ")
        }
        var out = "\(name): \(question)\n" + line(columns) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for r in text { out += line(r) + "\n" }
        return out
    }
}

extension String {
    fileprivate func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: Character(a), omittingEmptySubsequences: false).joined(separator: b)
    }
}

/// The nine questions of spec §4 over the cleaned tables. Joins are inner joins on `ind` (many-to-many
/// when an `ind` repeats, as SQL does); "most …" keeps every tie; medians are Spark's interpolated
/// `percentile(x, 0.5)` over non-null values; a row whose key or measure is null is left out.
public struct Analysis {
    // pin
    let pInd: Int64Column, category: StringColumn, follower: Int64Column, poster: StringColumn
    // geo
    let gInd: Int64Column, country: StringColumn, geoTime: Int64Column
    // user
    let uInd: Int64Column, age: Int64Column, joined: Int64Column

    public init(tables: String) throws {
        let pin = try TableReader.read(table: "\(tables)/pin", columns: [
            ColumnSpec("ind", .int64), ColumnSpec("category", .string), ColumnSpec("follower_count", .int64), ColumnSpec("poster_name", .string),
        ])
        let geo = try TableReader.read(table: "\(tables)/geo", columns: [
            ColumnSpec("ind", .int64), ColumnSpec("country", .string), ColumnSpec("timestamp", .timestamp),
        ])
        let user = try TableReader.read(table: "\(tables)/user", columns: [
            ColumnSpec("ind", .int64), ColumnSpec("age", .int64), ColumnSpec("date_joined", .timestamp),
        ])
        func i(_ b: ColumnBatch, _ k: Int) -> Int64Column {
            switch b.columns[k] {
            case .int64(let c), .timestamp(let c): return c
            default: preconditionFailure()
            }
        }
        func s(_ b: ColumnBatch, _ k: Int) -> StringColumn {
            guard case .string(let c) = b.columns[k] else { preconditionFailure() }
            return c
        }
        pInd = i(pin, 0); category = s(pin, 1); follower = i(pin, 2); poster = s(pin, 3)
        gInd = i(geo, 0); country = s(geo, 1); geoTime = i(geo, 2)
        uInd = i(user, 0); age = i(user, 1); joined = i(user, 2)
    }

    public var rowCounts: (pin: Int, geo: Int, user: Int) { (pInd.count, gInd.count, uInd.count) }

    /// All (left row, right row) pairs with equal non-null keys: sort both sides, merge.
    static func join(_ l: Int64Column, _ r: Int64Column) -> [(Int, Int)] {
        let lo = (0..<l.count).filter { l.valid[$0] != 0 }.sorted { l.values[$0] < l.values[$1] }
        let ro = (0..<r.count).filter { r.valid[$0] != 0 }.sorted { r.values[$0] < r.values[$1] }
        var out: [(Int, Int)] = []
        out.reserveCapacity(min(lo.count, ro.count))
        var i = 0, j = 0
        while i < lo.count && j < ro.count {
            let a = l.values[lo[i]], b = r.values[ro[j]]
            if a < b { i += 1; continue }
            if a > b { j += 1; continue }
            var i2 = i
            while i2 < lo.count && l.values[lo[i2]] == a { i2 += 1 }
            var j2 = j
            while j2 < ro.count && r.values[ro[j2]] == a { j2 += 1 }
            for x in i..<i2 { for y in j..<j2 { out.append((lo[x], ro[y])) } }
            i = i2
            j = j2
        }
        return out
    }

    public static func ageGroup(_ age: Int64) -> String? {
        switch age {
        case 18...24: "18-24"
        case 25...35: "25-35"
        case 36...50: "36-50"
        case 51...: "50+"
        default: nil
        }
    }

    /// Spark SQL `percentile(x, 0.5)`: linear interpolation between the two middle values.
    public static func median(_ v: [Int64]) -> Double {
        let s = v.sorted()
        let pos = 0.5 * Double(s.count - 1)
        let lo = Int(pos.rounded(.down)), hi = Int(pos.rounded(.up))
        return Double(s[lo]) + (Double(s[hi]) - Double(s[lo])) * (pos - Double(lo))
    }

    /// Per group key, the entries whose count equals the group's maximum (ties kept), sorted.
    static func topByCount<G: Hashable & Comparable>(_ counts: [G: [String: Int64]]) -> [(G, String, Int64)] {
        var out: [(G, String, Int64)] = []
        for g in counts.keys.sorted() {
            let m = counts[g]!.values.max()!
            for (c, n) in counts[g]!.sorted(by: { $0.key < $1.key }) where n == m { out.append((g, c, n)) }
        }
        return out
    }

    public func run() -> [QueryResult] {
        let pg = Analysis.join(pInd, gInd)
        let pu = Analysis.join(pInd, uInd)
        return [q1(pg), q2(pg), q3(pg), q4(pg), q5(pu), q6(pu), q7(), q8(pu), q9(pu)]
    }

    /// Q1: the most popular category per country.
    func q1(_ pg: [(Int, Int)]) -> QueryResult {
        var counts: [String: [String: Int64]] = [:]
        for (p, g) in pg {
            guard let c = country.string(g), let cat = category.string(p) else { continue }
            counts[c, default: [:]][cat, default: 0] += 1
        }
        return QueryResult(name: "q1", question: "most popular category per country", columns: ["country", "category", "category_count"],
                           rows: Analysis.topByCount(counts).map { [.string($0.0), .string($0.1), .int($0.2)] })
    }

    /// Q2: the most popular category each year, 2018–2022 (by the geo record's timestamp).
    func q2(_ pg: [(Int, Int)]) -> QueryResult {
        var counts: [Int: [String: Int64]] = [:]
        for (p, g) in pg {
            guard let t = geoTime.value(g), let cat = category.string(p) else { continue }
            let y = UTCTime.year(micros: t)
            guard (2018...2022).contains(y) else { continue }
            counts[y, default: [:]][cat, default: 0] += 1
        }
        return QueryResult(name: "q2", question: "most popular category each year 2018-2022", columns: ["post_year", "category", "category_count"],
                           rows: Analysis.topByCount(counts).map { [.int(Int64($0.0)), .string($0.1), .int($0.2)] })
    }

    /// Q3: the user with the most followers per country (ties kept).
    func q3(_ pg: [(Int, Int)]) -> QueryResult {
        var best: [String: Int64] = [:]
        for (p, g) in pg {
            guard let c = country.string(g), poster.valid[p] != 0, let f = follower.value(p) else { continue }
            best[c] = max(best[c] ?? Int64.min, f)
        }
        var seen = Set<[String]>()
        var rows: [(String, String, Int64)] = []
        for (p, g) in pg {
            guard let c = country.string(g), let n = poster.string(p), let f = follower.value(p), f == best[c] else { continue }
            if seen.insert([c, n]).inserted { rows.append((c, n, f)) }
        }
        rows.sort { ($0.0, $0.1) < ($1.0, $1.1) }
        return QueryResult(name: "q3", question: "user with most followers per country", columns: ["country", "poster_name", "follower_count"],
                           rows: rows.map { [.string($0.0), .string($0.1), .int($0.2)] })
    }

    /// Q4: the country of the user with the most followers.
    func q4(_ pg: [(Int, Int)]) -> QueryResult {
        var top: Int64?
        for (p, g) in pg where country.valid[g] != 0 {
            if let f = follower.value(p) { top = max(top ?? f, f) }
        }
        var countries = Set<String>()
        for (p, g) in pg {
            guard let c = country.string(g), let f = follower.value(p), f == top else { continue }
            countries.insert(c)
        }
        return QueryResult(name: "q4", question: "country of the user with most followers", columns: ["country", "follower_count"],
                           rows: countries.sorted().map { [.string($0), .int(top ?? 0)] })
    }

    /// Q5: the most popular category per age group.
    func q5(_ pu: [(Int, Int)]) -> QueryResult {
        var counts: [String: [String: Int64]] = [:]
        for (p, u) in pu {
            guard let a = age.value(u), let grp = Analysis.ageGroup(a), let cat = category.string(p) else { continue }
            counts[grp, default: [:]][cat, default: 0] += 1
        }
        return QueryResult(name: "q5", question: "most popular category per age group", columns: ["age_group", "category", "category_count"],
                           rows: Analysis.topByCount(counts).map { [.string($0.0), .string($0.1), .int($0.2)] })
    }

    /// Q6: the median follower count per age group.
    func q6(_ pu: [(Int, Int)]) -> QueryResult {
        var values: [String: [Int64]] = [:]
        for (p, u) in pu {
            guard let a = age.value(u), let grp = Analysis.ageGroup(a), let f = follower.value(p) else { continue }
            values[grp, default: []].append(f)
        }
        return QueryResult(name: "q6", question: "median follower count per age group", columns: ["age_group", "median_follower_count"],
                           rows: values.sorted { $0.key < $1.key }.map { [.string($0.key), .double(Analysis.median($0.value))] })
    }

    /// Q7: users who joined each year, 2015–2020.
    func q7() -> QueryResult {
        var counts: [Int: Int64] = [:]
        for u in 0..<uInd.count {
            guard let t = joined.value(u) else { continue }
            let y = UTCTime.year(micros: t)
            if (2015...2020).contains(y) { counts[y, default: 0] += 1 }
        }
        return QueryResult(name: "q7", question: "users joined per year 2015-2020", columns: ["post_year", "number_users_joined"],
                           rows: counts.sorted { $0.key < $1.key }.map { [.int(Int64($0.key)), .int($0.value)] })
    }

    /// Followers of posts by their user's joining year (2015–2020), with the user's age group when known.
    func followersByJoiningYear(_ pu: [(Int, Int)]) -> [(year: Int, group: String?, followers: Int64)] {
        var out: [(Int, String?, Int64)] = []
        for (p, u) in pu {
            guard let t = joined.value(u), let f = follower.value(p) else { continue }
            let y = UTCTime.year(micros: t)
            guard (2015...2020).contains(y) else { continue }
            out.append((y, age.value(u).flatMap(Analysis.ageGroup), f))
        }
        return out
    }

    /// Q8: the median follower count by joining year, 2015–2020.
    func q8(_ pu: [(Int, Int)]) -> QueryResult {
        var values: [Int: [Int64]] = [:]
        for r in followersByJoiningYear(pu) { values[r.year, default: []].append(r.followers) }
        return QueryResult(name: "q8", question: "median follower count by joining year 2015-2020", columns: ["post_year", "median_follower_count"],
                           rows: values.sorted { $0.key < $1.key }.map { [.int(Int64($0.key)), .double(Analysis.median($0.value))] })
    }

    /// Q9: the median follower count by joining year and age group.
    func q9(_ pu: [(Int, Int)]) -> QueryResult {
        var values: [String: [Int: [Int64]]] = [:]
        for r in followersByJoiningYear(pu) {
            if let g = r.group { values[g, default: [:]][r.year, default: []].append(r.followers) }
        }
        var rows: [[Cell]] = []
        for (g, years) in values.sorted(by: { $0.key < $1.key }) {
            for (y, v) in years.sorted(by: { $0.key < $1.key }) { rows.append([.string(g), .int(Int64(y)), .double(Analysis.median(v))]) }
        }
        return QueryResult(name: "q9", question: "median follower count by joining year and age group", columns: ["age_group", "post_year", "median_follower_count"],
                           rows: rows)
    }
}

extension Analysis {
    /// Answers every question over the tables under `tables` and writes `out/q1.csv … q9.csv`; returns the
    /// results (for printing) and the rows read per table.
    public static func writeAll(tables: String, out: String, progress: ProgressCounter? = nil) throws -> (results: [QueryResult], rows: (pin: Int, geo: Int, user: Int)) {
        let a = try Analysis(tables: tables)
        progress?.add(a.rowCounts.pin + a.rowCounts.geo + a.rowCounts.user)
        let results = a.run()
        do { try makeDirectories(out) } catch { throw StorageError(error) }
        for r in results {
            do { try replaceFileAtomically("\(out)/\(r.name).csv", text: r.csv()) } catch { throw StorageError(error) }
        }
        return (results, a.rowCounts)
    }
}
