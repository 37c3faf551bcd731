import Bytes
import PinEmulator
import JSON
import PinModel
import Testing

@Suite struct EmulatorTests {
    let emu = Emulator(seed: 42, users: 500)

    @Test func deterministicPerSeedAndIndexInAnyOrder() {
        let a = (0..<200).map { emu.post($0) }
        let b = (0..<200).reversed().map { Emulator(seed: 42, users: 500).post($0) }.reversed()
        #expect(a == Array(b))
        #expect(Emulator(seed: 43, users: 500).post(5) != a[5])
    }

    @Test func recordsAlignByIndex() {
        for i in [0, 1, 77, 123_456] {
            let p = emu.post(i)
            #expect(p.pin.index == i && p.geo.ind == i && p.user.ind == i)
        }
    }

    @Test func distributionsHaveTheSpecShape() {
        let n = 5000
        let posts = (0..<n).map { emu.post($0) }
        let cats = Set(posts.map(\.pin.category))
        #expect(cats.count == 13)
        #expect(posts.allSatisfy { $0.pin.saveLocation == "Local save in /data/\($0.pin.category)" })
        // Follower counts: plain, k and M forms, plus the placeholder.
        let fc = posts.map(\.pin.followerCount)
        #expect(fc.contains { $0.hasSuffix("k") } && fc.contains { $0.hasSuffix("M") } && fc.contains { $0.allSatisfy(\.isNumber) })
        let rate = { (p: (Post) -> Bool) in Double(posts.filter(p).count) / Double(n) }
        #expect((0.01...0.1).contains(rate { $0.pin.followerCount == Placeholder.userInfoError }))
        #expect((0.03...0.1).contains(rate { $0.pin.title == Placeholder.title }))
        #expect((0.02...0.08).contains(rate { $0.pin.description == Placeholder.descriptionStory }))
        #expect((0.02...0.08).contains(rate { $0.pin.tagList == Placeholder.tagList }))
        #expect(rate { $0.pin.description.contains("…") } > 0.05)
        #expect(rate { $0.pin.description.contains("…\u{00A0}") } > 0.01)
        #expect(rate { $0.pin.title.unicodeScalars.contains { $0.properties.isEmojiPresentation } } > 0.01)
        #expect(Set(posts.map(\.pin.isImageOrVideo)) == ["image", "video", "multi-video(story page format)"])
        // UUID v4 text.
        for p in posts.prefix(100) {
            let u = Array(p.pin.uniqueId.utf8)
            #expect(u.count == 36 && u[14] == UInt8(ascii: "4") && "89ab".utf8.contains(u[19]))
        }
        #expect(Set(posts.map(\.pin.uniqueId)).count == n)
        // Dates and ages in range.
        #expect(posts.allSatisfy { $0.geo.timestamp >= "2017-10-20" && $0.geo.timestamp <= "2022-10-18 23:59:59" })
        #expect(posts.allSatisfy { $0.user.dateJoined >= "2015-10-21" && $0.user.dateJoined <= "2017-10-18 23:59:59" })
        #expect(posts.allSatisfy { (20...60).contains($0.user.age) })
        #expect(posts.allSatisfy { (-90...90).contains($0.geo.latitude) && (-180...180).contains($0.geo.longitude) })
        // Images follow the pinimg layout.
        let img = posts.map(\.pin.imageSrc).first { $0.hasPrefix("https://i.pinimg.com/originals/") }!
        let parts = img.split(separator: "/")
        #expect(parts[3].count == 2 && (img.hasSuffix(".jpg") || img.hasSuffix(".png") || img.hasSuffix(".webp")))
        #expect(parts.last!.hasPrefix(parts[3] + parts[4] + parts[5]))
    }

    @Test func usersAreDistinctAndRepeat() {
        let ids = (0..<20_000).map { emu.userId(of: $0) }
        #expect(Set(ids).count == 500)
        // The same user id always gives the same user, under different indexes.
        let i = ids.firstIndex(of: 7)!
        let j = ids.lastIndex(of: 7)!
        #expect(i != j)
        var a = emu.post(i).user, b = emu.post(j).user
        a.ind = 0
        b.ind = 0
        #expect(a == b)
    }

    @Test func pythonStyleParsesToTheSamePost() throws {
        for i in 0..<300 {
            let p = ByteBuffer(), g = ByteBuffer(), u = ByteBuffer()
            emu.writePost(i, pin: p, geo: g, user: u, style: .python)
            #expect(!p.bytes.contains { $0 >= 0x80 }, "python style is ASCII only")
            #expect(try PinRecord.decode(p.bytes) == emu.post(i).pin)
            #expect(try GeoRecord.decode(g.bytes) == emu.post(i).geo)
        }
    }
}
