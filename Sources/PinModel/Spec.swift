// The one place that knows the data set's names (see `shared/spec/pinterest-data.md`): topic and stream
// names of each record kind, field tables in wire order, the placeholders the original data uses for
// missing values, and the tables' default partition columns. The emulator, the cleaner, the server, the
// landing path and the analyses read them from here.

extension RecordKind {
    /// The Kafka topic (and embedded-log topic) of this kind: `<prefix>.pin|geo|user`, as the original
    /// pipeline named them (`<user id>.pin`).
    public func topic(prefix: String) -> String { "\(prefix).\(name)" }

    /// The Kinesis stream of this kind: `streaming-<prefix>-pin|geo|user`.
    public func stream(prefix: String) -> String { "streaming-\(prefix)-\(name)" }

    /// The kind whose topic under `prefix` is `topic`.
    public init?(topic: some StringProtocol, prefix: String) {
        guard let k = RecordKind.allCases.first(where: { $0.topic(prefix: prefix) == topic }) else { return nil }
        self = k
    }

    /// The kind whose stream under `prefix` is `stream`.
    public init?(stream: some StringProtocol, prefix: String) {
        guard let k = RecordKind.allCases.first(where: { $0.stream(prefix: prefix) == stream }) else { return nil }
        self = k
    }

    /// The three topics under `prefix`, in kind order.
    public static func topics(prefix: String) -> [String] { allCases.map { $0.topic(prefix: prefix) } }

    /// The three streams under `prefix`, in kind order.
    public static func streams(prefix: String) -> [String] { allCases.map { $0.stream(prefix: prefix) } }

    /// The record's fields in wire order.
    public var fieldNames: [String] {
        switch self {
        case .pin: PinRecord.fieldNames
        case .geo: GeoRecord.fieldNames
        case .user: UserRecord.fieldNames
        }
    }

    /// The field that joins the three kinds of one post (`index` for pins, `ind` for the others).
    public var keyField: String { self == .pin ? "index" : "ind" }

    /// The cleaned table's default partition column: pins by category, the others unpartitioned.
    public var defaultPartitionColumn: String? { self == .pin ? "category" : nil }

    /// The default partition column of every table.
    public static var defaultPartitionColumns: [RecordKind: String?] {
        Dictionary(uniqueKeysWithValues: allCases.map { ($0, $0.defaultPartitionColumn) })
    }
}

/// Positions of a pin's fields in `PinRecord.fieldNames` (wire order).
public enum PinField: Int, CaseIterable, Sendable {
    case index, uniqueId, title, description, posterName, followerCount, tagList, isImageOrVideo, imageSrc, downloaded, saveLocation, category
    public var name: String { PinRecord.fieldNames[rawValue] }
}

/// Positions of a geo record's fields in `GeoRecord.fieldNames`.
public enum GeoField: Int, CaseIterable, Sendable {
    case ind, timestamp, latitude, longitude, country
    public var name: String { GeoRecord.fieldNames[rawValue] }
}

/// Positions of a user record's fields in `UserRecord.fieldNames`.
public enum UserField: Int, CaseIterable, Sendable {
    case ind, firstName, lastName, age, dateJoined
    public var name: String { UserRecord.fieldNames[rawValue] }
}

/// Placeholders of the original data set (spec §1): written by the emulator, turned into nulls by the cleaner.
public enum Placeholder {
    public static let title = "No Title Data Available"
    public static let descriptionStory = "No description available Story format"
    public static let description = "No description available"
    public static let untitled = "Untitled"
    public static let userInfoError = "User Info Error"
    public static let tagList = "N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"
    public static let imageSrc = "Image src error."
    /// `save_location` values start with this; the cleaner keeps the path after it.
    public static let saveLocationPrefix = "Local save in "

    /// The values the cleaner turns into null, per pin field.
    public static let descriptions = [descriptionStory, description, untitled]
}
