#if canImport(Glibc)
import Glibc
#endif

// SwiftPM makes this file the process's main (libFuzzer's own main is linked too, and overridden): it hands
// the usual libFuzzer arguments to libFuzzer's driver with the callback in Driver.swift.

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

_ = target  // PINBENCH_FUZZ_TARGET checked before anything runs
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in runOne(data, size) })
