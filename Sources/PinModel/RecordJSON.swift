import Bytes
import JSON

// The three record kinds in JSON: decoding from any valid object, encoding in the spec's key order.

// MARK: record decoding

extension PinRecord {
    public static let keyTable = JSONKeyTable(PinRecord.fieldNames)

    /// Decodes one pin from any valid JSON object holding its twelve fields (extra keys ignored).
    public static func decode(_ json: UnsafeRawBufferPointer) throws(JSONError) -> PinRecord {
        try withUnsafeTemporaryAllocation(of: JSONField.self, capacity: 12) { (f: UnsafeMutableBufferPointer<JSONField>) throws(JSONError) -> PinRecord in
            var s = JSONScanner(json)
            try s.scanObject(keys: keyTable, into: f)
            let n = fieldNames
            return PinRecord(
                index: try s.int(f[0], name: n[0]), uniqueId: try s.string(f[1], name: n[1]),
                title: try s.string(f[2], name: n[2]), description: try s.string(f[3], name: n[3]),
                posterName: try s.string(f[4], name: n[4]), followerCount: try s.string(f[5], name: n[5]),
                tagList: try s.string(f[6], name: n[6]), isImageOrVideo: try s.string(f[7], name: n[7]),
                imageSrc: try s.string(f[8], name: n[8]), downloaded: try s.int(f[9], name: n[9]),
                saveLocation: try s.string(f[10], name: n[10]), category: try s.string(f[11], name: n[11]))
        }
    }

    public static func decode(_ json: some StringProtocol) throws(JSONError) -> PinRecord {
        try withUTF8Bytes(of: json) { (b) throws(JSONError) in try decode(b) }
    }
}

extension GeoRecord {
    public static let keyTable = JSONKeyTable(GeoRecord.fieldNames)

    public static func decode(_ json: UnsafeRawBufferPointer) throws(JSONError) -> GeoRecord {
        try withUnsafeTemporaryAllocation(of: JSONField.self, capacity: 5) { (f: UnsafeMutableBufferPointer<JSONField>) throws(JSONError) -> GeoRecord in
            var s = JSONScanner(json)
            try s.scanObject(keys: keyTable, into: f)
            let n = fieldNames
            return GeoRecord(
                ind: try s.int(f[0], name: n[0]), timestamp: try s.string(f[1], name: n[1]),
                latitude: try s.double(f[2], name: n[2]), longitude: try s.double(f[3], name: n[3]),
                country: try s.string(f[4], name: n[4]))
        }
    }

    public static func decode(_ json: some StringProtocol) throws(JSONError) -> GeoRecord {
        try withUTF8Bytes(of: json) { (b) throws(JSONError) in try decode(b) }
    }
}

extension UserRecord {
    public static let keyTable = JSONKeyTable(UserRecord.fieldNames)

    public static func decode(_ json: UnsafeRawBufferPointer) throws(JSONError) -> UserRecord {
        try withUnsafeTemporaryAllocation(of: JSONField.self, capacity: 5) { (f: UnsafeMutableBufferPointer<JSONField>) throws(JSONError) -> UserRecord in
            var s = JSONScanner(json)
            try s.scanObject(keys: keyTable, into: f)
            let n = fieldNames
            return UserRecord(
                ind: try s.int(f[0], name: n[0]), firstName: try s.string(f[1], name: n[1]),
                lastName: try s.string(f[2], name: n[2]), age: try s.int(f[3], name: n[3]),
                dateJoined: try s.string(f[4], name: n[4]))
        }
    }

    public static func decode(_ json: some StringProtocol) throws(JSONError) -> UserRecord {
        try withUTF8Bytes(of: json) { (b) throws(JSONError) in try decode(b) }
    }
}


extension PinRecord {
    /// Appends this record as one JSON object (no newline).
    @inlinable
    public func writeJSON(to out: ByteBuffer, style: JSONStyle = .compact) {
        var w = JSONWriter(into: out, style: style)
        w.beginObject()
        w.field("index", index)
        w.field("unique_id", uniqueId)
        w.field("title", title)
        w.field("description", description)
        w.field("poster_name", posterName)
        w.field("follower_count", followerCount)
        w.field("tag_list", tagList)
        w.field("is_image_or_video", isImageOrVideo)
        w.field("image_src", imageSrc)
        w.field("downloaded", downloaded)
        w.field("save_location", saveLocation)
        w.field("category", category)
        w.endObject()
    }
}

extension GeoRecord {
    @inlinable
    public func writeJSON(to out: ByteBuffer, style: JSONStyle = .compact) {
        var w = JSONWriter(into: out, style: style)
        w.beginObject()
        w.field("ind", ind)
        w.field("timestamp", timestamp)
        w.field("latitude", latitude)
        w.field("longitude", longitude)
        w.field("country", country)
        w.endObject()
    }
}

extension UserRecord {
    @inlinable
    public func writeJSON(to out: ByteBuffer, style: JSONStyle = .compact) {
        var w = JSONWriter(into: out, style: style)
        w.beginObject()
        w.field("ind", ind)
        w.field("first_name", firstName)
        w.field("last_name", lastName)
        w.field("age", age)
        w.field("date_joined", dateJoined)
        w.endObject()
    }
}

