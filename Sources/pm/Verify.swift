import ArgumentParser
import Foundation
import MarginEngine

/// `pm verify derive-pm2 DIR`: runs Derive's published PM2 golden cases against our implementation.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check a margin model against its venue's own golden cases (derive-pm2: Derive's PM2 portfolio cases).",
        discussion: """
            DIR holds Derive's test_*.json cases (scripts/fetch_derive_pm2_cases fetches them; Derive's licence does \
            not let us ship them). Every case is computed and every quantity Derive's harness asserts is compared at \
            Derive's tolerance (1e-8 relative; 1e-8 absolute for collateral value and for figures below 1e-10). \
            Each failing case and quantity is listed, a case Derive's harness skips is reported as skipped, and the \
            output ends with one JSON line {"cases", "passed", "skipped", "failed", "worstRelErr"}. Exit status 1 \
            when a case fails or DIR holds no case.
            """)

    @Argument(help: ArgumentHelp("The model whose golden cases DIR holds (derive-pm2).", valueName: "MODEL"))
    var model: String

    @Argument(help: ArgumentHelp("Directory of the case files.", valueName: "DIR"))
    var directory: String

    @Flag(help: "List every case, not only failing and skipped ones.")
    var verbose = false

    func validate() throws {
        guard model == MarginModelID.derivePM2.rawValue else {
            throw ValidationError("only derive-pm2 has external golden cases; got \"\(model)\"")
        }
    }

    func run() throws {
        let files: [String]
        do {
            files = try DerivePM2CaseFiles.list(directory)
        } catch {
            FileHandle.standardError.write(Data("pm: error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let summary = DerivePM2CaseFiles.verify(files, verbose: verbose) { line in print(line) }
        print(summary.jsonLine)
        if summary.failed > 0 || summary.cases == 0 { throw ExitCode.failure }
    }
}

/// Reading and running a directory of Derive PM2 cases; each case is checked by the engine's
/// `DerivePM2GoldenCase.check()`, which `DerivePM2GoldenCaseTests` runs too.
enum DerivePM2CaseFiles {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The case files in `directory` (`test_*.json`), sorted by case number then name.
    static func list(_ directory: String) throws(Failure) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw Failure(description: "\(directory): no such directory (fetch Derive's cases with scripts/fetch_derive_pm2_cases)")
        }
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("test_") && $0.hasSuffix(".json") }
        guard !names.isEmpty else {
            throw Failure(description: "\(directory) holds no test_*.json case files (fetch them with scripts/fetch_derive_pm2_cases)")
        }
        return names.sorted { lhs, rhs in
            let left = caseNumber(lhs)
            let right = caseNumber(rhs)
            return left != right ? left < right : lhs < rhs
        }.map { URL(fileURLWithPath: directory).appendingPathComponent($0).path }
    }

    /// `test_42_…` → 42.
    static func caseNumber(_ name: String) -> Int {
        let parts = name.split(separator: "_")
        return parts.count > 1 ? Int(parts[1]) ?? Int.max : Int.max
    }

    struct Summary {
        var cases = 0
        var passed = 0
        var skipped = 0
        var failed = 0
        var worstRelativeError = 0.0

        var jsonLine: String {
            JSONWriter.serialize(
                .object([
                    ("cases", .number(String(cases))), ("passed", .number(String(passed))), ("skipped", .number(String(skipped))),
                    ("failed", .number(String(failed))), ("worstRelErr", .number(Self.number(worstRelativeError))),
                ]))
        }

        /// A JSON number in scientific notation when small (`2.7e-12`).
        static func number(_ value: Double) -> String {
            value == 0 ? "0" : String(format: "%.3g", value).replacingOccurrences(of: "e-0", with: "e-")
        }
    }

    /// Runs every file, reporting through `emit`; the worst relative error is over every compared quantity
    /// with |expected| ≥ 1e-10 in the cases run.
    static func verify(_ files: [String], verbose: Bool, emit: (String) -> Void) -> Summary {
        var summary = Summary()
        for path in files {
            summary.cases += 1
            let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            if let reason = DerivePM2GoldenCase.harnessSkips[name] {
                summary.skipped += 1
                emit("SKIP \(name): \(reason)")
                continue
            }
            do {
                guard let data = FileManager.default.contents(atPath: path) else { throw Failure(description: "cannot be read") }
                let goldenCase = try DerivePM2GoldenCase(name: name, bytes: [UInt8](data))
                let comparisons = try goldenCase.check().comparisons
                let failures = comparisons.filter { !$0.passed }
                for comparison in comparisons {
                    if let relative = comparison.relativeError { summary.worstRelativeError = max(summary.worstRelativeError, relative) }
                }
                if failures.isEmpty {
                    summary.passed += 1
                    if verbose {
                        let worst = comparisons.compactMap(\.relativeError).max() ?? 0
                        emit("ok   \(name): \(comparisons.count) quantities, worst relative error \(Summary.number(worst))")
                    }
                } else {
                    summary.failed += 1
                    emit("FAIL \(name): \(failures.count) of \(comparisons.count) quantities outside tolerance")
                    for failure in failures {
                        let error =
                            failure.relativeError.map { "relative error \(Summary.number($0))" }
                            ?? "absolute error \(Summary.number(failure.absoluteError))"
                        emit(
                            "     \(failure.quantity): ours \(DecimalText.format(failure.actual)), Derive \(DecimalText.format(failure.expected)), \(error) (tolerance 1e-8 \(failure.tolerance.rawValue))"
                        )
                    }
                }
            } catch {
                summary.failed += 1
                emit("FAIL \(name): \(error)")
            }
        }
        return summary
    }
}
