import CLibFuzzer

#if canImport(Glibc)
    import Glibc
#endif

/// The entry point of every fuzz target: hands the command line and the target's one-input function to libFuzzer's
/// driver and exits with its status. (SwiftPM links executables with their `main` renamed, so libFuzzer's own
/// `main` cannot be used; targets pass their set-up as `initialize` instead of defining `LLVMFuzzerInitialize`.)
public enum FuzzDriver {
    /// `initialize` runs once before fuzzing (loading shipped data, opening a sandbox); `testOneInput` is the
    /// target's one-input function.
    public static func run(initialize: () -> Void, _ testOneInput: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
        initialize()
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv, testOneInput)
        exit(status)
    }
}
