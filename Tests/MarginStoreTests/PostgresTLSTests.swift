import Foundation
import MarginStore
import MarginStorePostgres
import Testing

/// `?sslmode=` as libpq means it, against the test server (`scripts/postgres` serves TLS with a self-signed
/// certificate for 127.0.0.1, named by `PM_TEST_POSTGRES_CA`): the server itself reports whether the ledger's
/// session is encrypted (`pg_stat_ssl`).
struct PostgresTLSTests {
    /// The scratch database's address with `mode` (and the test root for the verifying modes).
    static func address(_ scratch: ScratchLedger, _ mode: PostgresTLSMode, trustingTheTestRoot: Bool = true) throws -> PostgresAddress {
        var address = try #require((scratch.store as? PostgresLedger)?.address)
        address.tls = mode
        if trustingTheTestRoot, mode == .verifyCA || mode == .verifyFull {
            address.rootCertificatePath = try #require(
                ProcessInfo.processInfo.environment["PM_TEST_POSTGRES_CA"], "PM_TEST_POSTGRES_CA is not set (scripts/postgres sets it)")
        }
        return address
    }

    /// Whether the server sees the ledger's session encrypted with TLS.
    static func sessionIsEncrypted(_ ledger: PostgresLedger) throws -> Bool {
        let session = try ledger.execute("SELECT 1 FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        #expect(session.count == 1, "the server knows the session")
        return try ledger.execute("SELECT 1 FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl AND version LIKE 'TLS%'").count == 1
    }

    @Test(
        .enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"),
        arguments: [PostgresTLSMode.disable, .prefer, .require, .verifyCA, .verifyFull])
    func theSessionIsEncryptedExactlyWhenTheModeAsks(_ mode: PostgresTLSMode) throws {
        let scratch = try ScratchLedger(.postgres)
        defer { scratch.remove() }
        let ledger = try PostgresLedger(try Self.address(scratch, mode))
        defer { ledger.close() }
        #expect(try Self.sessionIsEncrypted(ledger) == (mode != .disable))
        // And the ledger works over it.
        try ledger.write { writer in try writer.store(SettingRecord(key: "tls", value: mode.rawValue)) }
        #expect(try ledger.settings(prefix: "tls").map(\.value) == [mode.rawValue])
    }

    /// A verifying mode without the test root trusts only the system's roots, which do not include the test
    /// server's self-signed certificate: no connection, and an error that says why.
    @Test(
        .enabled(if: Backend.postgresURL != nil, "PM_TEST_POSTGRES_URL names no PostgreSQL server"),
        arguments: [PostgresTLSMode.verifyCA, .verifyFull])
    func anUntrustedServerIsRefused(_ mode: PostgresTLSMode) throws {
        let scratch = try ScratchLedger(.postgres)
        defer { scratch.remove() }
        let address = try Self.address(scratch, mode, trustingTheTestRoot: false)
        let error = #expect(throws: PostgresLedgerError.self) { try PostgresLedger(address) }
        #expect(error?.description.contains("127.0.0.1") == true, "\(String(describing: error))")
    }

    /// A root file that does not exist is an error naming it, not a silent fall-back to plain TCP.
    @Test func aMissingRootFileIsAnError() throws {
        let address = PostgresAddress(
            user: "pm", host: "127.0.0.1", port: 1, database: "ledger", tls: .verifyFull, rootCertificatePath: "/nonexistent/root.pem")
        let error = #expect(throws: PostgresLedgerError.self) { try PostgresLedger(address) }
        #expect(error?.description.contains("TLS") == true, "\(String(describing: error))")
    }
}
