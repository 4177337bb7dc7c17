import Foundation
import MarginEngine
import MarginTestSupport
import Testing

/// `--db` in every command that takes it: a path or sqlite: is SQLite, postgres:// a PostgreSQL database, any
/// other scheme an error before anything is opened or created.
@Suite struct DatabaseCLITests {
    static let postgresURL = ProcessInfo.processInfo.environment["PM_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    /// Before, `--db mysql://u@h/db` became a SQLite file under a folder named `mysql:`.
    @Test(arguments: [["serve", "--port", "0"], ["account", "create"], ["sandbox", "state"]])
    func otherSchemesAreRefused(_ command: [String]) throws {
        let folder = PMExecutable.packageRoot.appendingPathComponent("mysql:")
        #expect(!FileManager.default.fileExists(atPath: folder.path))
        let result = try runPM(command + ["--db", "mysql://u@h/db"])
        #expect(result.status != 0, "\(result)")
        #expect(result.stderr.contains("unsupported database scheme mysql://"), "\(result)")
        #expect(!FileManager.default.fileExists(atPath: folder.path), "pm made \(folder.path)")
    }

    /// `--partitions` and `--advertise` name a PostgreSQL node's share: refused on SQLite, and a list that is not
    /// partitions of 0-15 is refused before anything starts.
    @Test(arguments: [
        (["--partitions", "0-3"], "applies to a PostgreSQL ledger"), (["--advertise", "http://h:1"], "applies to a PostgreSQL ledger"),
        (["--db", "postgres://u@127.0.0.1:1/db", "--partitions", "3-1"], "partitions of 0-15"),
        (["--db", "postgres://u@127.0.0.1:1/db", "--partitions", "16"], "partitions of 0-15"),
        (["--db", "postgres://u@127.0.0.1:1/db", "--partitions", "0,,2"], "partitions of 0-15"),
        (
            ["--db", "postgres://u@127.0.0.1:1/db", "--partitions", "0-3", "--market-mode", "follow", "http://h"],
            "does not take --partitions"
        ),
    ])
    func partitionOptionsAreChecked(_ arguments: [String], _ message: String) throws {
        let result = try runPM(["serve", "--port", "0"] + arguments)
        #expect(result.status != 0, "\(result)")
        #expect(result.stderr.contains(message), "\(result)")
    }

    /// `pm account create --db postgres://…` writes the account into PostgreSQL (run twice: the second sees the
    /// migrated tables), with the key file where --files puts it.
    @Test(.enabled(if: postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"))
    func accountCreateOnPostgres() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let url = try #require(Self.postgresURL)
        let files = directory.url.appendingPathComponent("ledger").path
        var uids: [String] = []
        for _ in 0..<2 {
            let result = try runPM(["account", "create", "--db", url, "--files", files, "--deposit", "USDT=100", "--format", "json"])
            #expect(result.status == 0, "\(result)")
            let json = try JSONParser.parse(Array(result.stdout.utf8))
            uids.append(json[member: "uid"]?.scalarText ?? "")
        }
        #expect(Set(uids).count == 2 && uids.allSatisfy { !$0.isEmpty }, "\(uids)")
        #expect(FileManager.default.fileExists(atPath: files + ".key"))
    }
}
