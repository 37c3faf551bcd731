/// The three record kinds of one post (see `shared/spec/pinterest-data.md` §1). Field order is the wire order.
public enum RecordKind: Int, CaseIterable, Sendable {
    case pin = 0, geo = 1, user = 2

    public var name: String {
        switch self {
        case .pin: "pin"
        case .geo: "geo"
        case .user: "user"
        }
    }

    public init?(name: String) {
        switch name {
        case "pin": self = .pin
        case "geo": self = .geo
        case "user": self = .user
        default: return nil
        }
    }
}

public struct PinRecord: Equatable, Hashable, Sendable {
    public var index: Int
    public var uniqueId: String
    public var title: String
    public var description: String
    public var posterName: String
    /// A string on the wire: `"437"`, `"124k"`, `"6M"` or the placeholder `User Info Error`.
    public var followerCount: String
    public var tagList: String
    public var isImageOrVideo: String
    public var imageSrc: String
    public var downloaded: Int
    public var saveLocation: String
    public var category: String

    public init(
        index: Int, uniqueId: String, title: String, description: String, posterName: String,
        followerCount: String, tagList: String, isImageOrVideo: String, imageSrc: String,
        downloaded: Int, saveLocation: String, category: String
    ) {
        self.index = index
        self.uniqueId = uniqueId
        self.title = title
        self.description = description
        self.posterName = posterName
        self.followerCount = followerCount
        self.tagList = tagList
        self.isImageOrVideo = isImageOrVideo
        self.imageSrc = imageSrc
        self.downloaded = downloaded
        self.saveLocation = saveLocation
        self.category = category
    }

    public static let fieldNames: [String] = [
        "index", "unique_id", "title", "description", "poster_name", "follower_count", "tag_list",
        "is_image_or_video", "image_src", "downloaded", "save_location", "category",
    ]
}

public struct GeoRecord: Equatable, Hashable, Sendable {
    public var ind: Int
    /// `YYYY-MM-DD HH:MM:SS` as written; readers also accept the `T` form and fractions.
    public var timestamp: String
    public var latitude: Double
    public var longitude: Double
    public var country: String

    public init(ind: Int, timestamp: String, latitude: Double, longitude: Double, country: String) {
        self.ind = ind
        self.timestamp = timestamp
        self.latitude = latitude
        self.longitude = longitude
        self.country = country
    }

    public static let fieldNames: [String] = ["ind", "timestamp", "latitude", "longitude", "country"]
}

public struct UserRecord: Equatable, Hashable, Sendable {
    public var ind: Int
    public var firstName: String
    public var lastName: String
    public var age: Int
    public var dateJoined: String

    public init(ind: Int, firstName: String, lastName: String, age: Int, dateJoined: String) {
        self.ind = ind
        self.firstName = firstName
        self.lastName = lastName
        self.age = age
        self.dateJoined = dateJoined
    }

    public static let fieldNames: [String] = ["ind", "first_name", "last_name", "age", "date_joined"]
}

/// One post: a pin, its geo and its user, aligned by index.
public struct Post: Equatable, Hashable, Sendable {
    public var pin: PinRecord
    public var geo: GeoRecord
    public var user: UserRecord

    public init(pin: PinRecord, geo: GeoRecord, user: UserRecord) {
        self.pin = pin
        self.geo = geo
        self.user = user
    }
}
