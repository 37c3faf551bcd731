// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // A file sees only the members of modules it imports itself (as swift-nio builds): with
    // scripts/check-imports.sh this keeps every target's dependencies exactly what it imports.
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "pinbench",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "pinbench", targets: ["pinbench"]),
        .library(name: "Platform", targets: ["Platform"]),
        .library(name: "Bytes", targets: ["Bytes"]),
        .library(name: "JSON", targets: ["JSON"]),
        .library(name: "PinModel", targets: ["PinModel"]),
        .library(name: "PinEmulator", targets: ["PinEmulator"]),
        .library(name: "RingBuffers", targets: ["RingBuffers"]),
        .library(name: "Console", targets: ["Console"]),
        .library(name: "Codecs", targets: ["Codecs"]),
        .library(name: "KafkaWire", targets: ["KafkaWire"]),
        .library(name: "KafkaLog", targets: ["KafkaLog"]),
        .library(name: "KafkaClient", targets: ["KafkaClient"]),
        .library(name: "Sinks", targets: ["Sinks"]),
        .library(name: "Pipeline", targets: ["Pipeline"]),
        .library(name: "Reports", targets: ["Reports"]),
        .library(name: "FuzzTargets", targets: ["FuzzTargets"]),
        .library(name: "Workloads", targets: ["Workloads"]),
        .library(name: "TableStore", targets: ["TableStore"]),
        .library(name: "Cleaning", targets: ["Cleaning"]),
        .library(name: "Analytics", targets: ["Analytics"]),
        .library(name: "Landing", targets: ["Landing"]),
        .library(name: "AWSAuth", targets: ["AWSAuth"]),
        .library(name: "AWSClient", targets: ["AWSClient"]),
        .library(name: "Streaming", targets: ["Streaming"]),
        .library(name: "BatchJob", targets: ["BatchJob"]),
        .library(name: "TableSync", targets: ["TableSync"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
    ],
    targets: [
        // C libraries at the edge.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSnappy", providers: [.apt(["libsnappy-dev"])]),
        .systemLibrary(name: "CNuma", providers: [.apt(["libnuma-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CSSL", pkgConfig: "libssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "CPinShims"),
        .target(name: "CCurlShim", dependencies: ["CCurl"]),

        .target(name: "Platform", dependencies: ["CPinShims"], swiftSettings: strict),
        .target(name: "Bytes", dependencies: ["CPinShims"], swiftSettings: strict),
        .target(name: "JSON", dependencies: ["Bytes", "CPinShims"], swiftSettings: strict),
        .target(name: "PinModel", dependencies: ["Bytes", "JSON"], swiftSettings: strict),
        .target(name: "PinEmulator", dependencies: ["PinModel", "JSON", "Bytes", "Platform"], swiftSettings: strict),
        .target(name: "RingBuffers", dependencies: ["CPinShims", "Platform"], swiftSettings: strict),
        .target(name: "Codecs", dependencies: ["Bytes", "CZstd", "CLZ4", "CZlib", "CSnappy", "CPinShims"], swiftSettings: strict),
        .target(name: "KafkaWire", dependencies: ["Codecs", "Bytes"], swiftSettings: strict),
        .target(name: "KafkaClient", dependencies: ["KafkaWire", "Codecs", "Bytes", "RingBuffers", "Platform", "JSON", "AWSAuth", "CSSL"], swiftSettings: strict),
        .target(name: "KafkaLog", dependencies: ["KafkaWire", "Codecs", "Platform", "Bytes"], swiftSettings: strict),
        .target(name: "Console", dependencies: ["Platform"], swiftSettings: strict),
        .target(name: "Sinks", dependencies: ["PinModel", "JSON", "KafkaWire", "KafkaLog", "KafkaClient", "AWSClient", "AWSAuth", "Codecs", "Bytes", "Platform", "RingBuffers"], swiftSettings: strict),
        .target(
            name: "Pipeline",
            dependencies: [
                "PinModel", "PinEmulator", "RingBuffers", "Sinks", "KafkaLog", "KafkaClient", "KafkaWire", "Bytes", "CPinShims", "CNuma", "JSON", "Platform", "AWSClient", "AWSAuth", "Codecs",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "IngestServer",
            dependencies: [
                "PinModel", "Sinks", "AWSClient", "Bytes", "RingBuffers", "JSON", "Platform", "KafkaWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .target(name: "TableStore", dependencies: ["Bytes", "Codecs", "JSON", "Platform"], swiftSettings: strict),
        .target(name: "Cleaning", dependencies: ["Bytes", "JSON", "PinModel", "Platform", "TableStore", "KafkaLog", "KafkaWire", "Codecs"], swiftSettings: strict),
        .target(name: "Analytics", dependencies: ["TableStore", "Platform"], swiftSettings: strict),
        .target(name: "Landing", dependencies: ["AWSClient", "Bytes", "JSON", "Platform", "TableStore", "KafkaLog", "KafkaWire", "KafkaClient"], swiftSettings: strict),
        .target(name: "AWSAuth", dependencies: ["Bytes", "JSON", "CCrypto", "Platform"], swiftSettings: strict),
        .target(name: "AWSClient", dependencies: ["AWSAuth", "Bytes", "JSON", "Platform", "CCurl", "CCurlShim"], swiftSettings: strict),
        .target(name: "TableSync", dependencies: ["AWSClient", "TableStore", "JSON", "PinModel", "Platform"], swiftSettings: strict),
        .target(name: "BatchJob", dependencies: ["Analytics", "Cleaning", "Codecs", "JSON", "Landing", "PinModel", "Platform", "TableStore"], swiftSettings: strict),
        .target(name: "Streaming", dependencies: ["AWSClient", "Cleaning", "TableStore", "PinModel", "JSON", "Platform"], swiftSettings: strict),
        .target(
            name: "FuzzTargets",
            dependencies: [
                "AWSClient", "Bytes", "Codecs", "IngestServer", "JSON", "KafkaLog", "KafkaWire", "PinModel", "Platform", "TableStore",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict),
        .target(name: "Capacity", dependencies: ["JSON", "Platform"], swiftSettings: strict),
        .target(name: "ConsumerBench", dependencies: ["KafkaClient", "KafkaWire", "AWSClient", "Sinks", "Pipeline", "PinModel", "JSON", "Platform", .product(name: "Histogram", package: "hdrhistogram-swift")], swiftSettings: strict),
        .target(name: "Reports", dependencies: ["Pipeline", "Sinks", "JSON", "Platform", "Bytes", .product(name: "Histogram", package: "hdrhistogram-swift"), "Codecs"], swiftSettings: strict, plugins: ["BuildInfo"]),
        .target(name: "Workloads", dependencies: ["Pipeline", "Sinks", "Codecs", "Platform", .product(name: "Yams", package: "Yams")], swiftSettings: strict),
        .executableTarget(
            name: "pinbench",
            dependencies: [
                "Pipeline", "Sinks", "Reports", "Workloads", "ConsumerBench", "Capacity", "IngestServer", "BatchJob", "TableStore", "Cleaning", "Analytics", "Landing", "AWSClient", "Streaming", "TableSync", "AWSAuth", "PinModel", "PinEmulator", "KafkaWire", "KafkaLog", "KafkaClient", "Codecs", "Bytes", "JSON", "Platform", "Console",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),

        .plugin(name: "BuildInfo", capability: .buildTool()),

        .testTarget(name: "PinModelTests", dependencies: ["PinModel", "PinEmulator", "JSON", "Bytes", "CPinShims", "Platform"], swiftSettings: strict),
        .testTarget(name: "KafkaWireTests", dependencies: ["KafkaWire", "Codecs", "Bytes", "Platform"], swiftSettings: strict),
        .testTarget(name: "KafkaLogTests", dependencies: ["KafkaLog", "KafkaWire", "Codecs", "Bytes"], swiftSettings: strict),
        .testTarget(name: "AWSTests", dependencies: ["AWSClient", "AWSAuth", "Bytes", "Platform"], swiftSettings: strict),
        .testTarget(name: "RingBuffersTests", dependencies: ["RingBuffers", "Platform"], swiftSettings: strict),
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "Sinks", "KafkaClient", "RingBuffers", "PinEmulator", "PinModel", "KafkaLog", "KafkaWire", "Bytes", "TestSupport", "Codecs", "JSON", "Platform", .product(name: "Histogram", package: "hdrhistogram-swift")], swiftSettings: strict),
        .testTarget(name: "FuzzReplayTests", dependencies: ["FuzzTargets"], swiftSettings: strict),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Capacity", "JSON", "KafkaLog", "TestSupport", "Codecs", "Platform"], swiftSettings: strict),
        .testTarget(name: "TablesTests", dependencies: ["TableStore", "Cleaning", "Analytics", "Codecs", "PinModel", "TestSupport", "KafkaLog", "KafkaWire", "Bytes", "Platform"], swiftSettings: strict),
        .testTarget(
            name: "InteropTests",
            dependencies: ["AWSClient", "AWSAuth", "KafkaClient", "KafkaWire", "Bytes", "Codecs", "Workloads", "TableSync", "TableStore", "TestSupport", "Platform", "RingBuffers"],
            resources: [.copy("Peers")],
            swiftSettings: strict
        ),
    ]
)
