import Foundation
import Testing

@testable import Sandbox

/// The sandbox's error codes are one table, and the compatibility document lists exactly that table.
@Suite struct OKXErrorCodeTests {
    @Test func everyCodeIsDistinctAndAnsweredWithAnHTTPErrorOrOKXsTwoHundred() {
        let codes = OKXErrorCode.allCases.map(\.rawValue)
        #expect(Set(codes).count == codes.count)
        for code in OKXErrorCode.allCases {
            #expect(code.httpStatus == 200 || (400...599).contains(code.httpStatus), "\(code)")
            #expect(OKXError(code, "x").httpStatus == code.httpStatus)
        }
    }

    @Test func theCompatibilityDocumentListsTheTable() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let text = try String(contentsOf: root.appendingPathComponent("docs/okx-client-compat.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "## The codes the sandbox answers").last)
        let rows = section.split(separator: "\n").filter { $0.hasPrefix("| ") && !$0.hasPrefix("| code") && !$0.hasPrefix("| ---") }
        let listed = rows.map { row in row.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } }
            .map { cells in (cells[0], cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`")), cells[2]) }
        #expect(listed.map(\.0) == OKXErrorCode.allCases.map(\.rawValue))
        #expect(listed.map(\.1) == OKXErrorCode.allCases.map { "\($0)" })
        #expect(listed.map(\.2) == OKXErrorCode.allCases.map { String($0.httpStatus) })
    }
}
