#if canImport(Glibc)
import Glibc
#endif
import FuzzTargets

/// The target this process fuzzes: PINBENCH_FUZZ_TARGET, read once.
let target: FuzzTarget = {
    let name = getenv("PINBENCH_FUZZ_TARGET").map { String(cString: $0) } ?? ""
    guard let t = FuzzTarget(rawValue: name) else {
        let text = "set PINBENCH_FUZZ_TARGET to one of: \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
        exit(2)
    }
    return t
}()

/// One input.
func runOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    target.run(UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size))
    return 0
}

/// libFuzzer's own main (linked, then overridden by ours) refers to this name.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt { runOne(data, size) }
