/// Error codes of Kinesis (and the ones pinbench gives records it never sent), typed where pinbench branches
/// on them; any other code keeps its name.
public enum KinesisErrorCode: Hashable, Sendable, CustomStringConvertible {
    case provisionedThroughputExceeded
    case internalFailure
    case throttling(String)
    case resourceNotFound
    case unrecognizedClient
    case accessDenied
    case invalidSignature
    case expiredToken
    /// Refused before sending: a key outside 1–256 characters.
    case invalidPartitionKey
    /// Refused before sending: key plus data over the stream's record limit.
    case recordTooLarge
    /// Retried until `delivery.timeout` passed.
    case timeout
    /// An answer that does not match the entries sent.
    case badResponse
    /// The endpoint could not be reached (curl's code).
    case transport(String)
    case other(String)

    public init(_ code: String) {
        switch code {
        case "ProvisionedThroughputExceededException": self = .provisionedThroughputExceeded
        case "InternalFailure": self = .internalFailure
        case "ResourceNotFoundException": self = .resourceNotFound
        case "UnrecognizedClientException": self = .unrecognizedClient
        case "AccessDeniedException": self = .accessDenied
        case "InvalidSignatureException": self = .invalidSignature
        case "ExpiredTokenException": self = .expiredToken
        case "InvalidPartitionKey": self = .invalidPartitionKey
        case "RecordTooLarge": self = .recordTooLarge
        case "Timeout": self = .timeout
        case "BadResponse": self = .badResponse
        default:
            if AWSError.throttlingCodes.contains(code) { self = .throttling(code) } else if code.hasPrefix("Transport") { self = .transport(code) } else { self = .other(code) }
        }
    }

    /// The code as Kinesis (or pinbench) spells it: the key of reports' `retries_by_code` and `dead_letter_reasons`.
    public var name: String {
        switch self {
        case .provisionedThroughputExceeded: "ProvisionedThroughputExceededException"
        case .internalFailure: "InternalFailure"
        case .resourceNotFound: "ResourceNotFoundException"
        case .unrecognizedClient: "UnrecognizedClientException"
        case .accessDenied: "AccessDeniedException"
        case .invalidSignature: "InvalidSignatureException"
        case .expiredToken: "ExpiredTokenException"
        case .invalidPartitionKey: "InvalidPartitionKey"
        case .recordTooLarge: "RecordTooLarge"
        case .timeout: "Timeout"
        case .badResponse: "BadResponse"
        case .throttling(let c), .transport(let c), .other(let c): c
        }
    }

    public var description: String { name }

    /// A failed entry worth sending again (PutRecords entry-level errors: throughput exceeded, internal failure).
    public var isRetriable: Bool {
        switch self {
        case .provisionedThroughputExceeded, .internalFailure, .throttling: true
        default: false
        }
    }

    /// Throttling: the caller should slow down (the ingest API answers 503 with Retry-After).
    public var isThrottling: Bool {
        switch self {
        case .provisionedThroughputExceeded, .throttling: true
        default: false
        }
    }

    /// No later record will fare better (a wrong stream, credentials or endpoint): a flood stops.
    public var isFatal: Bool {
        switch self {
        case .resourceNotFound, .unrecognizedClient, .accessDenied, .invalidSignature, .expiredToken, .transport: true
        default: false
        }
    }
}

/// How one Kinesis record (or a run of them) ended.
public enum KinesisDelivery {
    /// Accepted; the shard id and sequence number are the answer's bytes (empty unless the producer reports
    /// entries).
    case accepted(shard: UnsafeRawBufferPointer, sequence: UnsafeRawBufferPointer)
    case failed(KinesisErrorCode, message: String)
}
