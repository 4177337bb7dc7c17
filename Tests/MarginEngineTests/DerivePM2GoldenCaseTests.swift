import Foundation
import MarginEngine
import Testing

/// Derive's own PM2 golden portfolio cases (derivexyz/v2-core at 7736900d), every quantity Derive's harness
/// asserts, at Derive's tolerance.
///
/// Derive's licence (BUSL-1.1) does not let the project ship the cases, so they are read from the directory
/// named by `PM_DERIVE_PM2_CASES` (`scripts/test` sets it to `../shared/data/derive-pm2`;
/// `scripts/fetch_derive_pm2_cases` fetches them). Without the variable these tests are disabled and say
/// why; with it, a directory without case files is a failure.
@Suite struct DerivePM2GoldenCaseTests {
    static let variable = "PM_DERIVE_PM2_CASES"
    static let directory: String? = ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
    static let disabledComment: Comment =
        "PM_DERIVE_PM2_CASES is not set: Derive's golden cases are not shipped (fetch them with scripts/fetch_derive_pm2_cases)"

    /// Case names (file names without `.json`) in the directory, in case-number order.
    static let caseNames: [String] = {
        guard let directory else { return [] }
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.filter { $0.hasPrefix("test_") && $0.hasSuffix(".json") }
            .map { String($0.dropLast(".json".count)) }
            .sorted { (number($0), $0) < (number($1), $1) }
    }()
    static var runnableCases: [String] { caseNames.filter { DerivePM2GoldenCase.harnessSkips[$0] == nil } }
    static var skippedCases: [String] { caseNames.filter { DerivePM2GoldenCase.harnessSkips[$0] != nil } }

    static func number(_ name: String) -> Int {
        let parts = name.split(separator: "_")
        return parts.count > 1 ? Int(parts[1]) ?? Int.max : Int.max
    }

    static func load(_ name: String) throws -> DerivePM2GoldenCase {
        let path = URL(fileURLWithPath: directory ?? ".").appendingPathComponent("\(name).json").path
        let data = try #require(FileManager.default.contents(atPath: path), "cannot read \(path)")
        return try DerivePM2GoldenCase(name: name, bytes: [UInt8](data))
    }

    @Test("the case directory holds Derive's cases", .enabled(if: directory != nil, disabledComment))
    func directoryHoldsCases() {
        #expect(!Self.caseNames.isEmpty, "\(Self.variable)=\(Self.directory ?? "") holds no test_*.json case files")
    }

    @Test("every asserted quantity within 1e-8", .enabled(if: directory != nil, disabledComment), arguments: runnableCases)
    func goldenCase(_ name: String) throws {
        let goldenCase = try Self.load(name)
        let comparisons = try goldenCase.check().comparisons
        #expect(comparisons.count == goldenCase.parameters.scenarios.count + 4)
        for comparison in comparisons {
            #expect(
                comparison.passed,
                "\(name) \(comparison.quantity): ours \(comparison.actual), Derive \(comparison.expected) (1e-8 \(comparison.tolerance.rawValue))"
            )
        }
    }

    /// Derive's harness comments test_67 out as an invalid setup: a skew scenario with a spot move, which
    /// `PMRM_2.setScenarios` refuses. Our parameter validation refuses it the same way.
    @Test("a case Derive skips is one its setters refuse", .enabled(if: directory != nil, disabledComment), arguments: skippedCases)
    func skippedCaseIsRefused(_ name: String) throws {
        #expect(throws: EngineError.self) { try Self.load(name) }
    }
}
