// swift-tools-version:6.1
// libFuzzer drivers for pinbench's input-facing code (issue 16). Built apart from the main package, every
// Swift module with `-Xswiftc -sanitize=fuzzer,address` (coverage-instrumented, address-checked): `make fuzz` (each target for FUZZ_SECONDS) and `make fuzz-ci` (a fixed number of
// runs from a fixed seed: what CI runs on every submission). One binary; PINBENCH_FUZZ_TARGET picks the target.
import PackageDescription

let package = Package(
    name: "PinbenchFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "pinbench", path: "../..")],
    targets: [
        .executableTarget(
            name: "PinbenchFuzz",
            dependencies: [.product(name: "FuzzTargets", package: "pinbench")],
            path: "Sources/PinbenchFuzz"
        )
    ]
)
