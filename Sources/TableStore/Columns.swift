import Bytes

/// Column buffers for one batch of rows: struct of arrays, one heap block per column (plus its
/// validity bytes), grown by doubling and reused between batches.
///
/// Validity is one byte per row (1 = present) rather than a bitmap: kernels then write it with plain
/// stores that the compiler vectorises, and the Parquet writer turns it into definition levels.

/// Strings: bytes back to back in `data`; row `i` is `data[start[i] ..< start[i] + length[i]]`.
/// Kernels narrow a value in place (a prefix strip moves `start`) without touching the bytes.
/// Offsets are 32-bit: whoever fills a column bounds its bytes well under 2 GiB (the cleaner cuts a batch at
/// `CleanOptions.batchBytes` of input, the table writer a row group at `rowGroupBytes`).
public final class StringColumn {
    public let data: ByteBuffer
    public let start: ColumnVector<Int32>
    public let length: ColumnVector<Int32>
    public let valid: ColumnVector<UInt8>

    public init(capacity: Int = 0) {
        data = ByteBuffer(capacity: Swift.max(capacity * 16, 4096))
        start = ColumnVector(capacity: capacity)
        length = ColumnVector(capacity: capacity)
        valid = ColumnVector(capacity: capacity)
    }

    public var count: Int { valid.count }

    public func reset() {
        data.reset()
        start.removeAll(keepingCapacity: true)
        length.removeAll(keepingCapacity: true)
        valid.removeAll(keepingCapacity: true)
    }

    @inlinable
    public func append(_ bytes: UnsafeRawBufferPointer) {
        start.append(Int32(data.count))
        length.append(Int32(bytes.count))
        valid.append(1)
        data.append(bytes)
    }

    public func append(_ s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    @inlinable
    public func appendNull() {
        start.append(Int32(data.count))
        length.append(0)
        valid.append(0)
    }

    /// The bytes of row `i` (meaningful when `valid[i] != 0`).
    @inlinable
    public func bytes(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: data.base + Int(start[i]), count: Int(length[i]))
    }

    public func string(_ i: Int) -> String? {
        valid[i] == 0 ? nil : String(decoding: bytes(i), as: UTF8.self)
    }

    /// Appends row `i` of `other`.
    @inlinable
    public func append(from other: StringColumn, row i: Int) {
        if other.valid[i] != 0 { append(other.bytes(i)) } else { appendNull() }
    }
}

/// Fixed-width values with validity: `Int64Column` (also timestamps in microseconds since the epoch, UTC)
/// and `DoubleColumn`.
public final class ValueColumn<T: BitwiseCopyable & AdditiveArithmetic> {
    public let values: ColumnVector<T>
    public let valid: ColumnVector<UInt8>

    public init(capacity: Int = 0) {
        values = ColumnVector(capacity: capacity)
        valid = ColumnVector(capacity: capacity)
    }

    public var count: Int { valid.count }

    public func reset() {
        values.removeAll(keepingCapacity: true)
        valid.removeAll(keepingCapacity: true)
    }

    @inlinable public func append(_ v: T) { values.append(v); valid.append(1) }
    @inlinable public func appendNull() { values.append(.zero); valid.append(0) }
    public func value(_ i: Int) -> T? { valid[i] == 0 ? nil : values[i] }

    @inlinable
    public func append(from other: ValueColumn<T>, row i: Int) {
        values.append(other.values[i])
        valid.append(other.valid[i])
    }
}

public typealias Int64Column = ValueColumn<Int64>
public typealias DoubleColumn = ValueColumn<Double>

/// The logical type of a table column.
public enum ColumnType: Sendable, Equatable {
    case string
    case int64
    case double
    /// Microseconds since the epoch, UTC (Parquet TIMESTAMP(MICROS, isAdjustedToUTC), Spark `timestamp`).
    case timestamp
    /// A list of two doubles, written as a Parquet 3-level LIST (Spark `array<double>`); the list itself is never null.
    case doublePair
}

public struct ColumnSpec: Sendable, Equatable {
    public var name: String
    public var type: ColumnType
    /// Try dictionary encoding (strings with few distinct values); falls back to PLAIN when the dictionary grows too big.
    public var dictionary: Bool

    public init(_ name: String, _ type: ColumnType, dictionary: Bool = false) {
        self.name = name
        self.type = type
        self.dictionary = dictionary
    }
}

public struct TableSchema: Sendable, Equatable {
    public var name: String
    public var columns: [ColumnSpec]

    public init(name: String, columns: [ColumnSpec]) {
        self.name = name
        self.columns = columns
    }

    public func index(of column: String) -> Int? { columns.firstIndex { $0.name == column } }
}

/// One column's buffers.
public enum ColumnData {
    case string(StringColumn)
    case int64(Int64Column)
    case double(DoubleColumn)
    case timestamp(Int64Column)
    case doublePair(DoubleColumn, DoubleColumn)

    public static func make(_ type: ColumnType, capacity: Int) -> ColumnData {
        switch type {
        case .string: .string(StringColumn(capacity: capacity))
        case .int64: .int64(Int64Column(capacity: capacity))
        case .double: .double(DoubleColumn(capacity: capacity))
        case .timestamp: .timestamp(Int64Column(capacity: capacity))
        case .doublePair: .doublePair(DoubleColumn(capacity: capacity), DoubleColumn(capacity: capacity))
        }
    }

    public var count: Int {
        switch self {
        case .string(let c): c.count
        case .int64(let c), .timestamp(let c): c.count
        case .double(let c): c.count
        case .doublePair(let a, _): a.count
        }
    }

    func reset() {
        switch self {
        case .string(let c): c.reset()
        case .int64(let c), .timestamp(let c): c.reset()
        case .double(let c): c.reset()
        case .doublePair(let a, let b): a.reset(); b.reset()
        }
    }

    /// Appends rows `rows` of `other` (same type), one tight loop per column.
    func append(from other: ColumnData, rows: UnsafeBufferPointer<Int32>) {
        switch (self, other) {
        case (.string(let d), .string(let s)):
            for r in rows { d.append(from: s, row: Int(r)) }
        case (.int64(let d), .int64(let s)), (.timestamp(let d), .timestamp(let s)):
            for r in rows { d.values.append(s.values[Int(r)]); d.valid.append(s.valid[Int(r)]) }
        case (.double(let d), .double(let s)):
            for r in rows { d.values.append(s.values[Int(r)]); d.valid.append(s.valid[Int(r)]) }
        case (.doublePair(let d1, let d2), .doublePair(let s1, let s2)):
            for r in rows {
                d1.values.append(s1.values[Int(r)]); d1.valid.append(s1.valid[Int(r)])
                d2.values.append(s2.values[Int(r)]); d2.valid.append(s2.valid[Int(r)])
            }
        default: preconditionFailure("column type mismatch")
        }
    }

    func append(from other: ColumnData, row: Int) {
        switch (self, other) {
        case (.string(let d), .string(let s)): d.append(from: s, row: row)
        case (.int64(let d), .int64(let s)), (.timestamp(let d), .timestamp(let s)): d.append(from: s, row: row)
        case (.double(let d), .double(let s)): d.append(from: s, row: row)
        case (.doublePair(let d1, let d2), .doublePair(let s1, let s2)):
            d1.append(from: s1, row: row)
            d2.append(from: s2, row: row)
        default: preconditionFailure("column type mismatch")
        }
    }
}

/// A batch of rows of one table: one `ColumnData` per schema column.
public final class ColumnBatch {
    public let schema: TableSchema
    public let columns: [ColumnData]

    public init(schema: TableSchema, capacity: Int) {
        self.schema = schema
        columns = schema.columns.map { ColumnData.make($0.type, capacity: capacity) }
    }

    public init(schema: TableSchema, columns: [ColumnData]) {
        precondition(schema.columns.count == columns.count)
        self.schema = schema
        self.columns = columns
    }

    public var rowCount: Int { columns.first?.count ?? 0 }

    /// Bytes held by the string columns (what 32-bit string offsets must address).
    public var stringBytes: Int {
        var n = 0
        for case .string(let c) in columns { n += c.data.count }
        return n
    }

    public func reset() { for c in columns { c.reset() } }

    /// Appends row `row` of `other` (same schema).
    public func append(from other: ColumnBatch, row: Int) {
        for (d, s) in zip(columns, other.columns) { d.append(from: s, row: row) }
    }

    /// Appends rows `rows` of `other` (same schema).
    public func append(from other: ColumnBatch, rows: UnsafeBufferPointer<Int32>) {
        for (d, s) in zip(columns, other.columns) { d.append(from: s, rows: rows) }
    }

    public func column(_ name: String) -> ColumnData? { schema.index(of: name).map { columns[$0] } }
}
