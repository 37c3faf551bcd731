import Bytes
import PinModel
import CPinShims
import Foundation
import Testing
import JSON
import Platform

/// The example rows of `shared/spec/pinterest-data.md` §1, byte for byte.
let specRows: [String] = [
    #"{"index":7528,"unique_id":"fbe53c66-3442-4773-b19e-d3ec6f54dddf","title":"No Title Data Available","description":"No description available Story format","poster_name":"User Info Error","follower_count":"User Info Error","tag_list":"N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e","is_image_or_video":"multi-video(story page format)","image_src":"Image src error.","downloaded":0,"save_location":"Local save in /data/mens-fashion","category":"mens-fashion"}"#,
    #"{"ind":7528,"timestamp":"2020-08-28 03:52:47","latitude":-89.9787,"longitude":-173.293,"country":"Albania"}"#,
    #"{"ind":7528,"first_name":"Abigail","last_name":"Ali","age":20,"date_joined":"2015-10-24 11:23:51"}"#,
    #"{"index":2863,"unique_id":"9bf39437-42a6-4f02-99a0-9a0383d8cd70","title":"25 Super Fun Summer Crafts for Kids - Of Life and Lisa","description":"Keep the kids busy this summer with these easy diy crafts and projects. Creative and…","poster_name":"Of Life & Lisa | Lifestyle Blog","follower_count":"124k","tag_list":"Summer Crafts For Kids,Fun Crafts For Kids,Summer Kids,Toddler Crafts,Crafts To Do,Diy For Kids,Summer Snow,Diys For Summer,Craft Ideas For Girls","is_image_or_video":"image","image_src":"https://i.pinimg.com/originals/b3/bc/e2/b3bce2964e8c8975387b39660eed5f16.jpg","downloaded":1,"save_location":"Local save in /data/diy-and-crafts","category":"diy-and-crafts"}"#,
    #"{"ind":2863,"timestamp":"2020-04-27 13:34:16","latitude":-5.34445,"longitude":-177.924,"country":"Armenia"}"#,
    #"{"ind":2863,"first_name":"Dylan","last_name":"Holmes","age":32,"date_joined":"2016-10-23 14:06:51"}"#,
    #"{"index":10794,"unique_id":"c4bd2577-a7bb-4409-bb7a-17d5ed7e1cf1","title":"TireBuyer","description":"Nissan GT-R. Sick.","poster_name":"Ray Uyemura","follower_count":"437","tag_list":"Lowrider,Old Vintage Cars,Antique Cars,Austin Martin,Nissan Gtr Black,Jaguar,1959 Cadillac,Cadillac Ct6,Old School Cars","is_image_or_video":"image","image_src":"https://i.pinimg.com/originals/0d/29/9f/0d299f3df020395aa7ce8387f40fbeed.jpg","downloaded":1,"save_location":"Local save in /data/vehicles","category":"vehicles"}"#,
]

func roundTrip(_ row: String, style: JSONStyle = .compact) throws -> String {
    if row.hasPrefix(#"{"index""#) {
        let r = try PinRecord.decode(row)
        return ByteBuffer.json { r.writeJSON(to: $0, style: style) }
    } else if row.contains(#""timestamp""#) {
        let r = try GeoRecord.decode(row)
        return ByteBuffer.json { r.writeJSON(to: $0, style: style) }
    } else {
        let r = try UserRecord.decode(row)
        return ByteBuffer.json { r.writeJSON(to: $0, style: style) }
    }
}

func expectJSONError(_ text: String, _ reason: JSONErrorReason, at offset: Int? = nil, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try PinRecord.decode(text)
        Issue.record("accepted invalid input \(text)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.reason == reason, sourceLocation: sourceLocation)
        if let offset { #expect(error.offset == offset, "offset", sourceLocation: sourceLocation) }
    }
}

@Suite struct JSONTests {
    @Test func specRowsRoundTripExactly() throws {
        for row in specRows {
            #expect(try roundTrip(row) == row)
        }
    }

    @Test func specRowFieldsDecode() throws {
        let p = try PinRecord.decode(specRows[3])
        #expect(p.index == 2863)
        #expect(p.followerCount == "124k")
        #expect(p.description.hasSuffix("Creative and…"))
        #expect(p.downloaded == 1)
        let g = try GeoRecord.decode(specRows[1])
        #expect(g.latitude == -89.9787 && g.longitude == -173.293)
        let u = try UserRecord.decode(specRows[2])
        #expect(u.age == 20 && u.firstName == "Abigail")
    }

    /// What Python's `json.dumps(row)` sends: `", "`/`": "` separators and `\uXXXX` for non-ASCII.
    @Test func pythonStyleInputAndOutput() throws {
        let python = #"{"index": 2863, "unique_id": "9bf39437-42a6-4f02-99a0-9a0383d8cd70", "title": "25 Super Fun Summer Crafts for Kids - Of Life and Lisa", "description": "Keep the kids busy this summer with these easy diy crafts and projects. Creative and\u2026", "poster_name": "Of Life & Lisa | Lifestyle Blog", "follower_count": "124k", "tag_list": "Summer Crafts For Kids,Fun Crafts For Kids,Summer Kids,Toddler Crafts,Crafts To Do,Diy For Kids,Summer Snow,Diys For Summer,Craft Ideas For Girls", "is_image_or_video": "image", "image_src": "https://i.pinimg.com/originals/b3/bc/e2/b3bce2964e8c8975387b39660eed5f16.jpg", "downloaded": 1, "save_location": "Local save in /data/diy-and-crafts", "category": "diy-and-crafts"}"#
        let p = try PinRecord.decode(python)
        #expect(p == (try PinRecord.decode(specRows[3])))
        #expect(ByteBuffer.json { p.writeJSON(to: $0, style: .python) } == python)
        #expect(try roundTrip(python) == specRows[3])
    }

    @Test func anyKeyOrderExtraKeysAndWhitespace() throws {
        let text = "\n\t{ \"country\" : \"Albania\",\r\n \"extra\": {\"nested\": [1, 2.5e3, true, false, null, \"x\"]},"
            + " \"longitude\":-173.293, \"ind\":7528, \"latitude\" : -89.9787 , \"timestamp\":\"2020-08-28 03:52:47\" } \n"
        let g = try GeoRecord.decode(text)
        #expect(ByteBuffer.json { g.writeJSON(to: $0) } == specRows[1])
    }

    @Test func everyEscapeIncludingSurrogatePairs() throws {
        let text = #"{"ind":1,"first_name":"a\"b\\c\/d\be\ff\ng\rh\ti\u00e9\u2026\ud83d\ude00","last_name":"\u0041li","age":3,"date_joined":"x"}"#
        let u = try UserRecord.decode(text)
        #expect(u.firstName == "a\"b\\c/d\u{08}e\u{0C}f\ng\rh\tié…😀")
        #expect(u.lastName == "Ali")
        // Compact output escapes only what JSON requires; Python style escapes every non-ASCII scalar.
        #expect(ByteBuffer.json { u.writeJSON(to: $0) }.contains(#""a\"b\\c/d\be\ff\ng\rh\tié…😀""#))
        #expect(ByteBuffer.json { u.writeJSON(to: $0, style: .python) }.contains(#""a\"b\\c/d\be\ff\ng\rh\ti\u00e9\u2026\ud83d\ude00""#))
        // An escaped key still names its field.
        let k = try UserRecord.decode(#"{"\u0069nd":5,"first_name":"","last_name":"","age":1,"date_joined":""}"#)
        #expect(k.ind == 5)
    }

    @Test func integralFloatAcceptedForIntField() throws {
        let u = try UserRecord.decode(#"{"ind":7.0,"first_name":"a","last_name":"b","age":2e1,"date_joined":"x"}"#)
        #expect(u.ind == 7 && u.age == 20)
    }

    @Test func doublesAreExact() throws {
        for v in ["-89.9787", "0.1", "1e-05", "179.99999999999997", "-0.0", "123456789.123456789", "4.9e-324", "1.7976931348623157e308"] {
            let g = try GeoRecord.decode(#"{"ind":1,"timestamp":"t","latitude":\#(v),"longitude":0,"country":"c"}"#)
            #expect(g.latitude == Double(v)!, "\(v)")
        }
    }

    @Test func truncatedInputs() {
        let row = specRows[0]
        for cut in [0, 1, 10, 25, 100, row.utf8.count - 1] {
            let text = String(decoding: Array(row.utf8.prefix(cut)), as: UTF8.self)
            expectJSONError(text, .truncated, at: cut)
        }
    }

    @Test func badEscapes() {
        expectJSONError(#"{"title":"a\x"}"#, .badEscape, at: 11)
        expectJSONError(#"{"title":"a\u12G4"}"#, .badUnicodeEscape, at: 11)
        expectJSONError(#"{"title":"a\ud83d"}"#, .loneSurrogate, at: 11)
        expectJSONError(#"{"title":"a\ude00"}"#, .loneSurrogate, at: 11)
    }

    @Test func wrongTypesAndMissingFields() {
        var r = specRows[0].replacingOccurrences(of: #""index":7528"#, with: #""index":"7528""#)
        expectJSONError(r, .wrongType(field: "index", expected: "an integer"), at: 10)
        r = specRows[0].replacingOccurrences(of: #""title":"No Title Data Available""#, with: #""title":null"#)
        expectJSONError(r, .wrongType(field: "title", expected: "a string"))
        r = specRows[0].replacingOccurrences(of: #""index":7528,"#, with: "")
        expectJSONError(r, .missingField("index"))
        expectJSONError(#"{"index":1.5}"#, .wrongType(field: "index", expected: "an integer"))
        expectJSONError(#"{"index":99999999999999999999}"#, .numberOutOfRange)
    }

    @Test func notAnObjectAndGarbage() {
        expectJSONError(#"[1,2,3]"#, .notAnObject, at: 0)
        expectJSONError(#"  "text""#, .notAnObject, at: 2)
        expectJSONError("42", .notAnObject, at: 0)
        expectJSONError("", .truncated, at: 0)
        expectJSONError("{\"a\":1} x", .trailingData, at: 8)
        expectJSONError("{\"a\":1,}", .unexpectedByte(UInt8(ascii: "}")), at: 7)
        expectJSONError("{\"a\" 1}", .unexpectedByte(UInt8(ascii: "1")), at: 5)
        expectJSONError("{\"a\":01}", .unexpectedByte(UInt8(ascii: "1")), at: 6)
        expectJSONError("{\"a\":-}", .badNumber, at: 5)
        expectJSONError("{\"a\":tru}", .unexpectedByte(UInt8(ascii: "}")), at: 8)
        expectJSONError("{\"a\":\"x\ty\"}", .controlCharacterInString, at: 7)
        expectJSONError(String(repeating: "[", count: 600), .tooDeep)
    }

    @Test func invalidUTF8IsRefused() {
        for bad: [UInt8] in [[0xFF], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC3]] {
            var bytes = Array(#"{"title":"ab"#.utf8)
            bytes += bad
            bytes += Array(#"cd"}"#.utf8)
            let result = bytes.withUnsafeBytes { b in Result { () throws(JSONError) in try validateJSONObject(b) } }
            switch result {
            case .success: Issue.record("accepted invalid UTF-8 \(bad)")
            case .failure(let e):
                #expect(e.reason == .invalidUTF8 || e.reason == .truncated, "\(bad): \(e)")
                #expect(e.offset == 12 || e.offset == 13)
            }
        }
    }

    @Test func errorsDescribeThemselves() {
        let e = JSONError(offset: 17, reason: .missingField("ind"))
        #expect(e.description == #"invalid JSON at byte 17: missing field "ind""#)
    }
}

@Test func compactValueDropsOnlyInsignificantWhitespace() throws {
    let cases: [(String, String)] = [
        (#"{ "a" : [1, 2 ,3], "b" : "x  y\t\"q\" \\ ", "c": {"d" : null , "e": true}}"#,
         #"{"a":[1,2,3],"b":"x  y\t\"q\" \\ ","c":{"d":null,"e":true}}"#),
        ("\n{\r\n \"emoji\" : \"Zoë 🎉 , : \\u00e9\",\t\"n\" : -1.5e3 }\n", #"{"emoji":"Zoë 🎉 , : \u00e9","n":-1.5e3}"#),
        (#"{"s": "a long string with no escapes at all, longer than sixteen bytes", "t":"\\\\\""}"#,
         #"{"s":"a long string with no escapes at all, longer than sixteen bytes","t":"\\\\\""}"#),
    ]
    let keys = JSONKeyTable([])
    for (input, want) in cases {
        let bytes = Array(input.utf8)
        let out = ByteBuffer()
        try bytes.withUnsafeBytes { raw in
            var s = JSONScanner(raw)
            var f = JSONField()
            try withUnsafeMutablePointer(to: &f) { p in try s.scanObject(keys: keys, into: UnsafeMutableBufferPointer(start: p, count: 0)) }
            var whole = JSONField()
            let trimmed = input.utf8.firstIndex(of: UInt8(ascii: "{"))!
            whole.start = Int32(input.utf8.distance(from: input.utf8.startIndex, to: trimmed))
            whole.end = Int32(input.utf8.distance(from: input.utf8.startIndex, to: input.utf8.lastIndex(of: UInt8(ascii: "}"))!) + 1)
            whole.kind = .object
            s.compactValue(whole, into: out)
        }
        #expect(String(decoding: out.bytes, as: UTF8.self) == want)
    }
}

/// Request bodies in one pass: `{"records": [{"value": ...}, ...]}` with each value compacted while it is
/// validated, as the ingest server reads them.
@Test func arrayOfObjectsIsValidatedAndCompactedInOnePass() throws {
    let arrayKeys = JSONKeyTable(["records"])
    let elementKeys = JSONKeyTable(["value", "key"])
    func run(_ text: String) throws -> (count: Int?, values: [String], keys: [Bool]) {
        let bytes = Array(text.utf8)
        let out = ByteBuffer()
        var values: [String] = [], keys: [Bool] = []
        var mark = 0
        let n: Int? = try bytes.withUnsafeBytes { (raw) throws -> Int? in
            var s = JSONScanner(raw)
            return try withUnsafeTemporaryAllocation(of: JSONField.self, capacity: 2) { (f) throws(JSONError) -> Int? in
                try s.scanArrayOfObjects(arrayKeys: arrayKeys, elementKeys: elementKeys, fields: f, compactSlot: 0, compact: out) { (i, f, _) throws(JSONError) in
                    if i == 0 { values = []; keys = [] }
                    values.append(String(decoding: UnsafeRawBufferPointer(start: out.base + mark, count: out.count - mark), as: UTF8.self))
                    keys.append(f[1].kind == .string)
                    mark = out.count
                }
            }
        }
        return (n, values, keys)
    }
    let r = try run(#" { "other" : [1, {"x": 2}], "records" : [ {"value" : {"a" : [1, 2], "b" : "x  y"}} , {"key": "k", "value": " s "}, {"value": 3, "value" : [ true ]} ] } "#)
    #expect(r.count == 3)
    #expect(r.values == [#"{"a":[1,2],"b":"x  y"}"#, #"" s ""#, "[true]"])
    #expect(r.keys == [false, true, false])
    // A repeated array key: the later array wins, as in Python.
    let twice = try run(#"{"records": [{"value": 1}], "records": [{"value": {"q" : 2}}]}"#)
    #expect(twice.count == 1 && twice.values.last == #"{"q":2}"#)
    #expect(try run(#"{"records": []}"#).count == 0)
    #expect(try run(#"{"recs": []}"#).count == nil)
    for bad in [#"{"records": [1]}"#, #"{"records": [{"value": }]}"#, #"{"records": [{"value": 1}"#, #"{"records": [{"value": 1}]} x"#, "[]"] {
        #expect(throws: JSONError.self, "\(bad)") { _ = try run(bad) }
    }
}

/// The SIMD scan for the end of a plain string run (AVX2, then SSE2, then bytes): every special byte at
/// every position of every length up to 100 is found where it is.
@Test func plainRunStopsAtTheFirstSpecialByte() {
    for n in 0...100 {
        var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: n)
        #expect(bytes.withUnsafeBufferPointer { pb_json_plain_run($0.baseAddress ?? UnsafePointer(bitPattern: 0x10)!, n) } == n)
        for at in stride(from: 0, to: n, by: 1) {
            for special: UInt8 in [UInt8(ascii: "\""), UInt8(ascii: "\\"), 0x00, 0x1F, 0x80, 0xFF] {
                bytes[at] = special
                if at + 1 < n { bytes[at + 1] = UInt8(ascii: "\"") }  // a later special byte must not win
                let got = bytes.withUnsafeBufferPointer { pb_json_plain_run($0.baseAddress!, n) }
                #expect(got == at, "n \(n), at \(at), byte \(special)")
                bytes[at] = UInt8(ascii: "a")
                if at + 1 < n { bytes[at + 1] = UInt8(ascii: "a") }
            }
        }
    }
}

/// The emulator writes coordinates from integers (no String per value): the text must be exactly what the
/// shortest round-trip form of the same double is (Python's repr), for every magnitude it can take.
@Suite struct ScaledNumberTests {
    @Test func scaledIntegersWriteAsTheirDoubles() {
        var g = SplitMix64(seed: 42)
        for decimals in [3, 4, 5, 6] {
            var scale = 1.0
            for _ in 0..<decimals { scale *= 10 }
            var cases = Array(-2_000...2_000)
            for _ in 0..<50_000 { cases.append(Int(g.below(400_000_000)) - 200_000_000) }
            for m in cases {
                let a = ByteBuffer(), b = ByteBuffer()
                JSONWriter.appendScaled(m, decimals: decimals, to: a)
                JSONWriter.appendDouble(Double(m) / scale, to: b)
                if m == 0 { continue }  // -0.0 cannot come from an integer
                #expect(a.toArray() == b.toArray(), "\(m) / 10^\(decimals): \(String(decoding: a.bytes, as: UTF8.self)) vs \(String(decoding: b.bytes, as: UTF8.self))")
                if a.toArray() != b.toArray() { return }
            }
        }
    }
}

/// The byte writers under every JSON field, against Swift's own formatting: decimals at the edges of Int,
/// hex digits of every nibble, and small copies of every length around the widths they switch at.
@Suite struct ByteWriterTests {
    @Test func decimalsMatchSwiftsDescriptionAtTheEdges() {
        var values = [0, 1, 9, 10, 11, 99, 100, 101, 999_999, 1_000_000, Int.max, Int.max - 1, Int.min, Int.min + 1]
        var p = 1
        for _ in 0..<18 { values += [p - 1, p, p + 1, -p]; p *= 10 }
        for v in values {
            let b = ByteBuffer(capacity: 64)
            b.append(UInt8(ascii: "["))
            b.appendDecimal(v)
            b.append(UInt8(ascii: "]"))
            #expect(String(decoding: b.bytes, as: UTF8.self) == "[\(v)]")
        }
    }

    @Test func hexMatchesSwiftsRadix16() {
        var r = SplitMix64(seed: 11)
        for v in [0, UInt64.max, 0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210, 1 << 63, 0xA] + (0..<200).map({ _ in r.next() }) {
            let b = ByteBuffer(capacity: 64)
            b.appendHex(v)
            let want = String(v, radix: 16)
            #expect(String(decoding: b.bytes, as: UTF8.self) == String(repeating: "0", count: 16 - want.count) + want)
        }
    }

    @Test func smallCopiesOfEveryLengthCopyExactlyThoseBytes() {
        let src = (0..<80).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 1) }
        for n in 0...70 {
            for offset in [0, 1, 7] {
                let b = ByteBuffer(capacity: 8)
                b.append(UInt8(ascii: "<"))
                src.withUnsafeBytes { b.append($0.baseAddress! + offset, count: n) }
                b.append(UInt8(ascii: ">"))
                #expect(Array(b.bytes) == [UInt8(ascii: "<")] + Array(src[offset..<offset + n]) + [UInt8(ascii: ">")], "n \(n) offset \(offset)")
            }
        }
    }
}

/// `Lines`, the splitter of `produce`, `put-records` and `clean`: what a user's JSON Lines file holds is what is
/// sent, whatever its line endings, against Swift's own split of the same text.
@Suite struct LinesTests {
    func lines(_ text: String) -> (lines: [String], numbers: [Int], seen: Int, count: Int) {
        var got: [String] = [], numbers: [Int] = []
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { raw in
            let seen = Lines.forEach(in: raw) { (line, n) throws(Never) -> Bool in
                got.append(String(decoding: line, as: UTF8.self))
                numbers.append(n)
                return true
            }
            return (got, numbers, seen, Lines.count(in: raw))
        }
    }

    @Test func aLastLineWithoutNewlineCRLFAndBlankLinesGiveExactlyTheRecords() {
        let r = lines("{\"a\":1}\r\n\n{\"b\":2}\n\r\n{\"c\":3}")
        #expect(r.lines == ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"])
        #expect(r.numbers == [1, 3, 5])
        #expect(r.seen == 5 && r.count == 3)
        #expect(lines("").lines.isEmpty && lines("").count == 0)
        #expect(lines("\n\n").lines.isEmpty && lines("\n\n").seen == 2)
        #expect(lines("x").lines == ["x"] && lines("x\n").lines == ["x"])
        // A lone `\r` inside a line stays (only the one before `\n` is an ending).
        #expect(lines("a\rb\n").lines == ["a\rb"])
    }

    @Test func agreesWithSwiftsSplitOnRandomTexts() {
        var r = SplitMix64(seed: 12)
        let alphabet: [Character] = ["a", "{", "\"", "\n", "\r", " ", "é"]
        for _ in 0..<300 {
            let text = String((0..<Int(r.next() % 40)).map { _ in alphabet[Int(r.next() % UInt64(alphabet.count))] })
            let want = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
                .map { $0.last == UInt8(ascii: "\r") ? $0.dropLast() : $0[...] }
                .filter { !$0.isEmpty }.map { String(decoding: $0, as: UTF8.self) }
            #expect(lines(text).lines == want, "\(Array(text.utf8))")
        }
    }

    @Test func bodyCanStopEarly() {
        let bytes = Array("a\nb\nc\n".utf8)
        var got = 0
        let seen = bytes.withUnsafeBytes { raw in
            Lines.forEach(in: raw) { (_, _) throws(Never) -> Bool in got += 1; return got < 2 }
        }
        #expect(got == 2 && seen == 2)
    }
}

/// `FIFO`, the queue of a producer's batches and reports: a popped element is let go at once (a queue of
/// batches kept every sent batch's buffer alive until 64 more had passed, past `buffer.memory`).
@Suite struct FIFOTests {
    final class Item { let n: Int; init(_ n: Int) { self.n = n } }

    @Test func aPoppedElementIsReleasedAtOnceAndOrderHolds() {
        var q = FIFO<Item>()
        weak var first: Item?
        do {
            let a = Item(0)
            first = a
            q.append(a)
        }
        for i in 1..<10 { q.append(Item(i)) }
        #expect(q.popFirst()?.n == 0)
        #expect(first == nil, "the queue still held a popped element")
        q.insert(Item(-1)) { $0.n < 3 }
        #expect(q.elements.map(\.n) == [1, 2, -1, 3, 4, 5, 6, 7, 8, 9])
        var got: [Int] = []
        while let x = q.popFirst() { got.append(x.n) }
        #expect(got == [1, 2, -1, 3, 4, 5, 6, 7, 8, 9] && q.isEmpty && q.count == 0)
        // Many pushes and pops (compaction on the way) keep order and count.
        var next = 0, expected = 0
        for round in 0..<50 {
            for _ in 0..<(round % 7 + 1) * 20 { q.append(Item(next)); next += 1 }
            for _ in 0..<(round % 5 + 1) * 20 { if let x = q.popFirst() { #expect(x.n == expected); expected += 1 } }
            #expect(q.count == next - expected)
        }
    }
}
