import CPinShims

/// CRC-32C (Castagnoli), as Kafka's RecordBatch v2 uses. Hardware instruction when present.
public enum CRC32C {
    @inlinable
    public static func checksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        pb_crc32c(seed, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }

    /// The table-driven path alone (for tests and benchmarks).
    public static func softwareChecksum(_ bytes: UnsafeRawBufferPointer, seed: UInt32 = 0) -> UInt32 {
        pb_crc32c_sw(seed, bytes.baseAddress, bytes.count)
    }

    public static var usesHardware: Bool { pb_crc32c_hw_available() != 0 }
}
