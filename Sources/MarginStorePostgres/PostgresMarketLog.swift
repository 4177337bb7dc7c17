import Foundation
import Logging
import MarginStore
import NIOConcurrencyHelpers
import PostgresNIO

/// The shared market's ticks in PostgreSQL (table `market_tick`, migration `pg-market-ticks`).
///
/// The driver is whoever holds the session advisory lock ``driverLockKey`` on this log's own connection, and it
/// appends through that same connection: a node whose connection died (its process killed, or paused past
/// `idle_session_timeout`, which the server then ends) lost the lock with it, and cannot append afterwards, so two
/// drivers never both append. The driver must call ``keepDriving()`` more often than ``idleSeconds``.
public final class PostgresMarketLog: MarketTickLog, @unchecked Sendable {  // @unchecked: every mutable field is behind `lock`
    public let address: PostgresAddress
    private let logger: Logger
    private let lock = NIOLock()
    private var connection: PostgresConnection?
    private var driving = false
    /// How long the driver's connection may stay idle before the server ends it (and the lock with it).
    public let idleSeconds: Int

    /// The advisory lock of the market's driver: 0x706d_6d6b ("pmmk").
    public static let driverLockKey: Int64 = 0x706d_6d6b

    /// A log over the (migrated) ledger at `address`; connects on first use.
    public init(_ address: PostgresAddress, idleSeconds: Int = 5, logger: Logger = Logger(label: "pm.market-log")) {
        self.address = address
        self.idleSeconds = idleSeconds
        self.logger = logger
    }

    deinit { discardLocked() }

    /// Closes the connection: the driver's lock, if held, goes with it.
    public func close() { lock.withLock { discardLocked() } }

    private func discardLocked() {
        if let connection { try? connection.close().wait() }
        connection = nil
        driving = false
    }

    private func connectedLocked() throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        discardLocked()
        do {
            let opened = try PostgresConnection.connect(
                on: PostgresLedger.eventLoops.next(), configuration: try PostgresLedger.configuration(address), id: 2, logger: logger
            ).wait()
            _ = try opened.query(PostgresQuery(unsafeSQL: "SET idle_session_timeout = '\(idleSeconds)s'"), logger: logger).wait()
            connection = opened
            return opened
        } catch let error as PostgresLedgerError {
            throw error
        } catch {
            throw PostgresLedgerError(describing: error, address: address)
        }
    }

    /// Runs `query` on the log's connection; a failure ends the connection (and any driving).
    private func runLocked(_ query: PostgresQuery) throws -> PostgresQueryResult {
        let connection = try connectedLocked()
        do {
            return try connection.query(query, logger: logger).wait()
        } catch {
            discardLocked()
            throw PostgresLedgerError(describing: error, address: address)
        }
    }

    public var drives: Bool { lock.withLock { driving && connection?.isClosed == false } }

    public func tryToDrive() throws -> Bool {
        try lock.withLock {
            if driving, connection?.isClosed == false { return true }
            driving = false
            let taken = try runLocked("SELECT pg_try_advisory_lock(\(Self.driverLockKey))")
            driving = try taken.rows.first?.decode(Bool.self) ?? false
            return driving
        }
    }

    public func keepDriving() throws {
        try lock.withLock {
            guard driving else { throw PostgresLedgerError("this node does not drive the market") }
            _ = try runLocked("SELECT 1")
        }
    }

    public func append(state: [String: String]) throws -> UInt64 {
        let text = try Self.encode(state)
        return try lock.withLock {
            guard driving, connection?.isClosed == false else {
                driving = false
                throw PostgresLedgerError("this node does not drive the market (another node took it over, or its connection ended)")
            }
            let appended = try runLocked(
                """
                INSERT INTO market_tick ("seq", "state") SELECT COALESCE(MAX("seq"), 0) + 1, \(text) FROM market_tick RETURNING "seq"
                """)
            guard let sequence = try appended.rows.first?.decode(Int64.self) else {
                throw PostgresLedgerError("appending a market tick answered no sequence number")
            }
            return UInt64(sequence)
        }
    }

    public func ticks(after sequence: UInt64, limit: Int) throws -> [PublishedTick] {
        try lock.withLock {
            try runLocked(
                #"SELECT "seq", "state" FROM market_tick WHERE "seq" > \#(Int64(sequence)) ORDER BY "seq" LIMIT \#(limit)"#
            ).rows.map(Self.tick)
        }
    }

    public func tick(_ sequence: UInt64) throws -> PublishedTick? {
        try lock.withLock {
            try runLocked(#"SELECT "seq", "state" FROM market_tick WHERE "seq" = \#(Int64(sequence))"#).rows.first.map(Self.tick)
        }
    }

    public func latest() throws -> PublishedTick? {
        try lock.withLock {
            try runLocked(#"SELECT "seq", "state" FROM market_tick ORDER BY "seq" DESC LIMIT 1"#).rows.first.map(Self.tick)
        }
    }

    static func tick(_ row: PostgresRow) throws -> PublishedTick {
        let (sequence, text) = try row.decode((Int64, String).self)
        guard let state = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
            throw PostgresLedgerError("market tick \(sequence) holds a state that is not a JSON object of strings")
        }
        return PublishedTick(sequence: UInt64(sequence), state: state)
    }

    static func encode(_ state: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(state), as: UTF8.self)
    }
}
