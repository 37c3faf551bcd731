// swift-tools-version:6.1
// Benchmarks live in their own package so that `swift test` in the root stays lean.
import PackageDescription

let package = Package(
    name: "PinbenchBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "pinbench", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "PinbenchBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PinModel", package: "pinbench"),
                .product(name: "PinEmulator", package: "pinbench"),
                .product(name: "Codecs", package: "pinbench"),
                .product(name: "KafkaWire", package: "pinbench"),
                .product(name: "RingBuffers", package: "pinbench"),
                .product(name: "Bytes", package: "pinbench"),
                .product(name: "JSON", package: "pinbench"),
            ],
            path: "Benchmarks/PinbenchBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
