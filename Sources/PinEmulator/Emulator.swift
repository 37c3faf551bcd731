import Bytes
import PinModel
import JSON
import Platform
#if canImport(Glibc)
import Glibc
#endif

/// Strings stored back to back in one block, so writing one is a bounds-free memcpy.
final class Lexicon: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let starts: [Int]
    let lengths: [Int]

    init(_ words: [String]) {
        var total = 0
        for w in words { total += w.utf8.count }
        let block = UnsafeMutableRawPointer.allocate(byteCount: max(total, 1), alignment: 8)
        base = block
        var s: [Int] = [], l: [Int] = []
        var off = 0
        for w in words {
            let u = Array(w.utf8)
            u.withUnsafeBytes { (block + off).copyMemory(from: $0.baseAddress!, byteCount: u.count) }
            s.append(off)
            l.append(u.count)
            off += u.count
        }
        starts = s
        lengths = l
        plain = words.map { $0.utf8.allSatisfy { $0 >= 0x20 && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") } }
    }

    /// Entry i holds no quote, backslash or control character: compact JSON copies it (or a prefix of it) as
    /// it is (checked once, here, so writing one skips the escaper's scan).
    let plain: [Bool]

    deinit { base.deallocate() }

    var count: Int { starts.count }

    @inline(__always)
    func bytes(_ i: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + starts[i], count: lengths[i]) }
}

extension JSONWriter {
    /// `b` inside a string: copied as it is in compact style when `plain` (nothing in it compact JSON
    /// escapes), else through the escaper (the python style escapes every non-ASCII character).
    @inline(__always)
    func piece(_ b: UnsafeRawBufferPointer, plain: Bool) {
        if plain && style == .compact, let p = b.baseAddress { safePiece(p, b.count) } else { piece(b) }
    }

    /// Entry `i` of `lex` inside a string.
    @inline(__always)
    func word(_ lex: Lexicon, _ i: Int) { piece(lex.bytes(i), plain: lex.plain[i]) }
}

/// The user-flood emulator: a deterministic function from (seed, post index) to one post (pin, geo and
/// user with the same index), shaped like the original data. Thread-safe: it holds only immutable tables.
public final class Emulator: @unchecked Sendable {
    public let seed: UInt64
    public let users: Int
    public let posters: Int

    let cats = Lexicon(categories)
    /// Every category's words in one lexicon, category c's at `catFirst[c] ..< catFirst[c] + catCount[c]`: one
    /// lexicon per category made each post retain the one it picked (twice).
    let catWords = Lexicon(categoryWords.flatMap { $0 })
    let catFirst: [Int] = categoryWords.indices.map { c in categoryWords[..<c].reduce(0) { $0 + $1.count } }
    let catCount: [Int] = categoryWords.map(\.count)
    let openers = Lexicon(titleOpeners)
    let closers = Lexicon(titleClosers)
    let sentenceLex = Lexicon(sentences)
    let posterNames = Lexicon(posterFirst)
    let posterSuffixes = Lexicon(posterSuffix)
    let firsts = Lexicon(firstNames)
    let lasts = Lexicon(lastNames)
    let countryLex = Lexicon(countries)
    let categoryCumulative: [Int]
    let categoryTotal: Int

    /// Geo timestamps fall in 2017-10-20 .. 2022-10-18; users joined 2015-10-21 .. 2017-10-18 (UTC seconds).
    public static let geoRange: ClosedRange<Int64> = 1_508_457_600...1_666_137_599
    public static let joinRange: ClosedRange<Int64> = 1_445_385_600...1_508_371_199

    /// `users`: how many distinct users the posts come from (they repeat under many indexes).
    public init(seed: UInt64, users: Int = 11_000, posters: Int = 5_000) {
        precondition(users > 0 && posters > 0)
        self.seed = seed
        self.users = users
        self.posters = posters
        var c: [Int] = []
        var t = 0
        for w in categoryWeights { t += w; c.append(t) }
        categoryCumulative = c
        categoryTotal = t
    }

    @inline(__always)
    func rng(_ stream: UInt64, _ n: UInt64) -> SplitMix64 {
        var r = SplitMix64(seed: seed ^ (stream &* 0xD6E8_FEB8_6659_FD93) ^ (n &* 0x9E37_79B9_7F4A_7C15))
        _ = r.next()
        return r
    }

    /// The user id behind post `index` (0..<users).
    public func userId(of index: Int) -> Int {
        var r = rng(3, UInt64(bitPattern: Int64(index)))
        return r.below(users)
    }

    /// Writes the three JSON records of post `index`, one object each (no newline), appending to the buffers.
    public func writePost(_ index: Int, pin: ByteBuffer, geo: ByteBuffer, user: ByteBuffer, style: JSONStyle = .compact) {
        writePin(index, to: pin, style: style)
        writeGeo(index, to: geo, style: style)
        writeUser(index, to: user, style: style)
    }

    /// The post as values (generated through the same writer and read back with the JSON reader).
    public func post(_ index: Int) -> Post {
        let p = ByteBuffer(capacity: 2048), g = ByteBuffer(capacity: 256), u = ByteBuffer(capacity: 256)
        writePost(index, pin: p, geo: g, user: u)
        // The writer produces valid JSON of the right shape; a failure here is a bug in this module.
        do {
            return Post(pin: try PinRecord.decode(p.bytes), geo: try GeoRecord.decode(g.bytes), user: try UserRecord.decode(u.bytes))
        } catch {
            fatalError("emulator wrote invalid JSON for post \(index): \(error)")
        }
    }

    // MARK: pin

    func writePin(_ index: Int, to out: ByteBuffer, style: JSONStyle) {
        var r = rng(1, UInt64(bitPattern: Int64(index)))
        let roll = r.unit()
        var cat = 0
        let pick = r.below(categoryTotal)
        while categoryCumulative[cat] <= pick { cat += 1 }
        let kind: Int = roll < 0.05 ? 2 : (roll < 0.15 ? 1 : 0)  // 0 image, 1 video, 2 story
        let story = kind == 2

        var w = JSONWriter(into: out, style: style)
        w.beginObject()
        w.field("index", index)

        // unique_id: UUID v4 text.
        w.beginString("unique_id")
        appendUUID(&r, out)
        w.endString()

        writeTitle(&r, &w, story: story, category: cat)
        writeDescriptionField(&r, &w, story: story)
        writePoster(&r, &w, story: story)
        writeTags(&r, &w, category: cat)

        let imageError = story || r.chance(0.01)
        switch kind {
        case 0: w.field("is_image_or_video", safe: "image")
        case 1: w.field("is_image_or_video", safe: "video")
        default: w.field("is_image_or_video", safe: "multi-video(story page format)")
        }
        if imageError {
            w.field("image_src", Placeholder.imageSrc)
        } else {
            w.beginString("image_src")
            writeImageSrc(&r, video: kind == 1, out)
            w.endString()
        }
        w.field("downloaded", imageError ? 0 : (r.chance(0.97) ? 1 : 0))
        w.beginString("save_location")
        w.safePiece("Local save in /data/")  // Placeholder.saveLocationPrefix + the folder
        w.word(cats, cat)
        w.endString()
        w.beginString("category")
        w.word(cats, cat)
        w.endString()
        w.endObject()
    }

    func writeTitle(_ r: inout SplitMix64, _ w: inout JSONWriter, story: Bool, category cat: Int) {
        if story || r.chance(0.015) {
            w.field("title", Placeholder.title)
        } else {
            w.beginString("title")
            w.word(openers, r.below(openers.count))
            w.safePiece(" ")
            w.word(catWords, catFirst[cat] + r.below(catCount[cat]))
            if r.chance(0.7) {
                w.safePiece(" ")
                w.word(closers, r.below(closers.count))
            }
            w.endString()
        }
    }

    func writeDescriptionField(_ r: inout SplitMix64, _ w: inout JSONWriter, story: Bool) {
        if story {
            w.field("description", Placeholder.descriptionStory)
        } else {
            let d = r.unit()
            if d < 0.02 {
                w.field("description", Placeholder.description)
            } else if d < 0.03 {
                w.field("description", Placeholder.untitled)
            } else if d < 0.035 {
                w.field("description", "")
            } else {
                w.beginString("description")
                writeDescription(&r, w)
                w.endString()
            }
        }
    }

    /// poster_name and follower_count come from the poster (stable per poster).
    func writePoster(_ r: inout SplitMix64, _ w: inout JSONWriter, story: Bool) {
        let out = w.out
        let posterId = r.below(posters)
        if (story && r.chance(0.5)) || r.chance(0.02) {
            w.field("poster_name", Placeholder.userInfoError)
            w.field("follower_count", Placeholder.userInfoError)
        } else {
            var pr = rng(2, UInt64(posterId))
            w.beginString("poster_name")
            w.word(posterNames, pr.below(posterNames.count))
            if pr.chance(0.3) {
                w.safePiece(" ")
                out.appendDecimal(posterId)
            }
            w.word(posterSuffixes, pr.below(posterSuffixes.count))
            w.endString()
            w.beginString("follower_count")
            writeFollowers(&pr, out)
            w.endString()
        }
    }

    func writeTags(_ r: inout SplitMix64, _ w: inout JSONWriter, category cat: Int) {
        if r.chance(0.04) {
            w.field("tag_list", Placeholder.tagList)
        } else {
            w.beginString("tag_list")
            let first = catFirst[cat], count = catCount[cat]
            let n = 3 + r.below(7)
            var start = r.below(count)
            for t in 0..<n {
                if t > 0 { w.safePiece(",") }
                w.word(catWords, first + start % count)
                start += 1 + r.below(2)
            }
            w.endString()
        }
    }

    func writeDescription(_ r: inout SplitMix64, _ w: JSONWriter) {
        let n = 1 + r.below(3)
        let cut = n > 1 && r.chance(0.5)
        for k in 0..<n {
            if k > 0 { w.safePiece(" ") }
            let si = r.below(sentenceLex.count)
            let s = sentenceLex.bytes(si)
            if cut && k == n - 1 {
                // Long texts are cut with "…", often followed by a no-break space (U+00A0).
                var len = max(1, s.count / 2 + r.below(max(1, s.count / 2)))
                while len > 1 && (s[len] & 0xC0) == 0x80 { len -= 1 }  // stay on a UTF-8 boundary
                while len > 1 && s[len - 1] == 0x20 { len -= 1 }
                w.piece(UnsafeRawBufferPointer(rebasing: s[0..<len]), plain: sentenceLex.plain[si])
                w.word(ellipsis, 0)
                if r.chance(0.4) { w.word(nbsp, 0) }
                return
            }
            w.piece(s, plain: sentenceLex.plain[si])
        }
        if r.chance(0.05) { w.word(emoji, r.below(emoji.count)) }
    }

    let ellipsis = Lexicon(["…"])
    let nbsp = Lexicon(["\u{00A0}"])
    let emoji = Lexicon([" 😍", " 🔥", " 👇", " ❤️", " 🎉", " 😂"])

    func writeFollowers(_ r: inout SplitMix64, _ out: ByteBuffer) {
        let u = r.unit()
        if u < 0.45 {
            out.appendDecimal(r.below(1000))
        } else if u < 0.9 {
            let k = 1 + r.below(999)
            if k < 10 && r.chance(0.3) {
                out.appendDecimal(k)
                out.append(UInt8(ascii: "."))
                out.appendDecimal(1 + r.below(9))
            } else {
                out.appendDecimal(k)
            }
            out.append(UInt8(ascii: "k"))
        } else {
            let m = 1 + r.below(9)
            out.appendDecimal(m)
            if r.chance(0.3) {
                out.append(UInt8(ascii: "."))
                out.appendDecimal(1 + r.below(9))
            }
            out.append(UInt8(ascii: "M"))
        }
    }

    func appendUUID(_ r: inout SplitMix64, _ out: ByteBuffer) {
        var hi = r.next()
        var lo = r.next()
        hi = (hi & ~0xF000) | 0x4000  // version 4
        lo = (lo & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // variant 10
        // 8-4-4-4-12 hex digits: hi's 16 then lo's 16, a dash after digits 8, 12, 16 and 20.
        let a = hexDigits8(UInt32(truncatingIfNeeded: hi >> 32)), b = hexDigits8(UInt32(truncatingIfNeeded: hi))
        let c = hexDigits8(UInt32(truncatingIfNeeded: lo >> 32)), d = hexDigits8(UInt32(truncatingIfNeeded: lo))
        let p = out.reserve(36)
        let dash = UInt8(ascii: "-")
        p.storeBytes(of: a, as: UInt64.self)
        p.storeBytes(of: dash, toByteOffset: 8, as: UInt8.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: UInt64(littleEndian: b)).littleEndian, toByteOffset: 9, as: UInt32.self)
        p.storeBytes(of: dash, toByteOffset: 13, as: UInt8.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: UInt64(littleEndian: b) >> 32).littleEndian, toByteOffset: 14, as: UInt32.self)
        p.storeBytes(of: dash, toByteOffset: 18, as: UInt8.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: UInt64(littleEndian: c)).littleEndian, toByteOffset: 19, as: UInt32.self)
        p.storeBytes(of: dash, toByteOffset: 23, as: UInt8.self)
        p.storeBytes(of: UInt32(truncatingIfNeeded: UInt64(littleEndian: c) >> 32).littleEndian, toByteOffset: 24, as: UInt32.self)
        p.storeBytes(of: d, toByteOffset: 28, as: UInt64.self)
        out.count += 36
    }

    func writeImageSrc(_ r: inout SplitMix64, video: Bool, _ out: ByteBuffer) {
        if video { out.append("https://i.pinimg.com/videos/thumbnails/originals/") } else { out.append("https://i.pinimg.com/originals/") }
        let a = r.next(), b = r.next()
        let p = out.reserve(41)
        // xx/yy/zz/ then the 32-hex md5 (whose first six digits name the folders)
        p.storeBytes(of: hexDigits8(UInt32(truncatingIfNeeded: a >> 32)), toByteOffset: 9, as: UInt64.self)
        p.storeBytes(of: hexDigits8(UInt32(truncatingIfNeeded: a)), toByteOffset: 17, as: UInt64.self)
        p.storeBytes(of: hexDigits8(UInt32(truncatingIfNeeded: b >> 32)), toByteOffset: 25, as: UInt64.self)
        p.storeBytes(of: hexDigits8(UInt32(truncatingIfNeeded: b)), toByteOffset: 33, as: UInt64.self)
        for k in 0..<3 {
            p.storeBytes(of: p.load(fromByteOffset: 9 + 2 * k, as: UInt8.self), toByteOffset: 3 * k, as: UInt8.self)
            p.storeBytes(of: p.load(fromByteOffset: 10 + 2 * k, as: UInt8.self), toByteOffset: 3 * k + 1, as: UInt8.self)
            p.storeBytes(of: UInt8(ascii: "/"), toByteOffset: 3 * k + 2, as: UInt8.self)
        }
        out.count += 41
        if video {
            out.append(".0000001.jpg")
        } else {
            let e = r.below(20)
            out.append(e < 17 ? ".jpg" : (e < 19 ? ".png" : ".webp"))
        }
    }

    // MARK: geo

    func writeGeo(_ index: Int, to out: ByteBuffer, style: JSONStyle) {
        var r = rng(4, UInt64(bitPattern: Int64(index)))
        var w = JSONWriter(into: out, style: style)
        w.beginObject()
        w.field("ind", index)
        w.beginString("timestamp")
        appendDateTime(Emulator.geoRange.lowerBound + Int64(r.below(Int(Emulator.geoRange.upperBound - Emulator.geoRange.lowerBound + 1))), out)
        w.endString()
        let lat = sixDigits(r.unit() * 180 - 90), lon = sixDigits(r.unit() * 360 - 180)
        w.field("latitude", scaled: lat.m, decimals: lat.decimals)
        w.field("longitude", scaled: lon.m, decimals: lon.decimals)
        w.beginString("country")
        w.word(countryLex, r.below(countryLex.count))
        w.endString()
        w.endObject()
    }

    /// Rounds to six significant digits, as the original coordinates are: the value is `m / 10^decimals`.
    func sixDigits(_ v: Double) -> (m: Int, decimals: Int) {
        let a = abs(v)
        let intDigits = a < 1 ? 1 : (a < 10 ? 1 : (a < 100 ? 2 : 3))
        let decimals = intDigits == 1 ? 5 : (intDigits == 2 ? 4 : 3)
        let scale = intDigits == 1 ? 100_000.0 : (intDigits == 2 ? 10_000.0 : 1_000.0)
        return (Int((v * scale).rounded()), decimals)
    }

    // MARK: user

    func writeUser(_ index: Int, to out: ByteBuffer, style: JSONStyle) {
        let uid = userId(of: index)
        var r = rng(5, UInt64(uid))
        var w = JSONWriter(into: out, style: style)
        w.beginObject()
        w.field("ind", index)
        w.beginString("first_name")
        w.word(firsts, r.below(firsts.count))
        w.endString()
        w.beginString("last_name")
        w.word(lasts, r.below(lasts.count))
        w.endString()
        w.field("age", 20 + r.below(41))
        w.beginString("date_joined")
        appendDateTime(Emulator.joinRange.lowerBound + Int64(r.below(Int(Emulator.joinRange.upperBound - Emulator.joinRange.lowerBound + 1))), out)
        w.endString()
        w.endObject()
    }
}

/// Writes `YYYY-MM-DD HH:MM:SS` for UTC seconds since the epoch (`UTCTime.civil`).
public func appendDateTime(_ seconds: Int64, _ out: ByteBuffer) {
    var days = seconds / 86_400
    var rem = seconds % 86_400
    if rem < 0 { rem += 86_400; days -= 1 }
    let (y, m, d) = UTCTime.civil(days: Int(days))
    let p = out.reserve(19)
    func put2(_ v: Int64, _ at: Int) {
        p.storeBytes(of: UInt8(48 + v / 10), toByteOffset: at, as: UInt8.self)
        p.storeBytes(of: UInt8(48 + v % 10), toByteOffset: at + 1, as: UInt8.self)
    }
    put2(Int64(y / 100), 0)
    put2(Int64(y % 100), 2)
    p.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 4, as: UInt8.self)
    put2(Int64(m), 5)
    p.storeBytes(of: UInt8(ascii: "-"), toByteOffset: 7, as: UInt8.self)
    put2(Int64(d), 8)
    p.storeBytes(of: UInt8(ascii: " "), toByteOffset: 10, as: UInt8.self)
    put2(rem / 3600, 11)
    p.storeBytes(of: UInt8(ascii: ":"), toByteOffset: 13, as: UInt8.self)
    put2((rem / 60) % 60, 14)
    p.storeBytes(of: UInt8(ascii: ":"), toByteOffset: 16, as: UInt8.self)
    put2(rem % 60, 17)
    out.count += 19
}

extension Emulator {
    /// Writes posts 0..<count to `dir/pin.jsonl`, `dir/geo.jsonl` and `dir/user.jsonl`, one record a line.
    public func writeFiles(count: Int, to dir: String, style: JSONStyle = .compact) throws(FileError) {
        try makeDirectories(dir)
        var handles: [UnsafeMutablePointer<FILE>] = []
        defer { for f in handles { fclose(f) } }
        let paths = RecordKind.allCases.map { "\(dir)/\($0.name).jsonl" }
        for p in paths {
            guard let f = fopen(p, "w") else { throw FileError("create", p) }
            handles.append(f)
        }
        let bufs = (0..<3).map { _ in ByteBuffer(capacity: 1 << 20) }
        func drain(_ k: Int) throws(FileError) {
            if bufs[k].count > 0, fwrite(bufs[k].base, 1, bufs[k].count, handles[k]) != bufs[k].count { throw FileError("write", paths[k]) }
            bufs[k].reset()
        }
        for i in 0..<max(count, 0) {
            writePost(i, pin: bufs[0], geo: bufs[1], user: bufs[2], style: style)
            for k in 0..<3 {
                bufs[k].append(UInt8(ascii: "\n"))
                if bufs[k].count > 900_000 { try drain(k) }
            }
        }
        for k in 0..<3 {
            try drain(k)
            if fflush(handles[k]) != 0 { throw FileError("write", paths[k]) }
        }
    }
}
