import CLibFuzzer
#if canImport(Glibc)
import Glibc
#endif

/// The entry point of every fuzz target: hands the command line and the target's one-input function to libFuzzer's
/// driver and exits with its status. (SwiftPM links executables with their `main` renamed, so libFuzzer's own
/// `main` cannot be used; `LLVMFuzzerInitialize`, when a target defines it, is still called by the driver.)
public enum FuzzDriver {
    public static func run(_ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
        exit(status)
    }
}
