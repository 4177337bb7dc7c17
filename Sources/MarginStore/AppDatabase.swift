import Foundation
import GRDB
import MarginEngine

/// The sandbox's database: one `DatabaseWriter` that migrates itself when opened.
///
/// SQLite in WAL mode is the embedded default. Every state change is written in one transaction by the
/// caller (`write`), so a crash between two changes leaves the ledger as it was after the first. Exact
/// amounts are stored as decimal TEXT, which round-trips `ExactDecimal` exactly.
public struct AppDatabase: Sendable {
    public let writer: any DatabaseWriter
    /// Checkpoints a file database's WAL off the committing thread (nil in memory).
    let checkpointer: WALCheckpointer?

    /// Opens (creating if needed) the database file at `path`, in WAL mode with `synchronous = NORMAL`:
    /// a committed transaction survives the process being killed (it is in the WAL), which is what the
    /// sandbox promises; surviving power loss would need `FULL`. The WAL is checkpointed by a
    /// ``WALCheckpointer`` rather than inside the commit that fills it.
    public init(path: String) throws {
        try self.init(path: path, checkpointing: true)
    }

    /// `checkpointing: false` leaves the checkpointer's thread unstarted (tests: nothing copies the WAL back).
    init(path: String, checkpointing: Bool) throws {
        let checkpointer = WALCheckpointer()
        var configuration = Configuration()
        // Another connection to the file (the checkpointer, `pm account create`, an instance closing) may hold a lock
        // for a moment: wait for it rather than fail.
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            try db.execute(sql: "PRAGMA cache_size = -262144")
            try db.execute(sql: "PRAGMA mmap_size = 4294967296")
            checkpointer.install(on: db)
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        writer = try DatabasePool(path: path, configuration: configuration)
        try Self.migrator.migrate(writer)
        if checkpointing { try checkpointer.start(path: path) }
        self.checkpointer = checkpointer
    }

    /// Runs `body` in one immediate transaction, like `writer.write`, but through cached `BEGIN`/`COMMIT`
    /// statements: GRDB compiles both anew for every transaction, which was ~1.5 % of the sandbox's CPU when
    /// every order is a transaction. Any error (from `body` or from `COMMIT`) rolls the whole transaction back
    /// and is rethrown, so nothing of a failed write stays.
    public func transaction<T>(_ body: (Database) throws -> T) throws -> T {
        try writer.writeWithoutTransaction { db in
            try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
            do {
                let result = try body(db)
                try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
                return result
            } catch {
                if db.isInsideTransaction { try? db.rollback() }
                throw error
            }
        }
    }

    /// An in-memory database, for tests.
    public static func inMemory() throws -> AppDatabase {
        try AppDatabase(writer: DatabaseQueue())
    }

    public init(writer: any DatabaseWriter) throws {
        self.writer = writer
        checkpointer = nil
        try Self.migrator.migrate(writer)
    }

    /// Bills are indexed by `(billId >> billRangeBits, uid)`: ranges of 2²⁰ ids (about one funding tick of a
    /// million accounts), read newest first. Changing it needs a migration: the index expression holds it.
    static let billRangeBits = 20

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "account") { table in
                table.primaryKey("uid", .text)
                table.column("acctLv", .text).notNull()
                table.column("acknowledged", .boolean).notNull()
                table.column("autoLoan", .boolean).notNull()
                table.column("label", .text).notNull()
                table.column("createdAt", .integer).notNull()
            }
            try db.create(table: "apiKey") { table in
                table.primaryKey("apiKey", .text)
                table.column("uid", .text).notNull().references("account")
                table.column("secretCipher", .blob).notNull()
                table.column("passphraseHash", .text).notNull()
                table.column("permissions", .text).notNull()
                table.column("label", .text).notNull()
                table.column("createdAt", .integer).notNull()
            }
            try db.create(table: "balance") { table in
                table.column("uid", .text).notNull().references("account")
                table.column("ccy", .text).notNull()
                table.column("cashBal", .text).notNull()
                table.primaryKey(["uid", "ccy"])
            }
            try db.create(table: "position") { table in
                table.column("uid", .text).notNull().references("account")
                table.column("instId", .text).notNull()
                table.column("pos", .text).notNull()
                table.column("avgPx", .text).notNull()
                table.column("lever", .text).notNull()
                table.column("cTime", .integer).notNull()
                table.column("uTime", .integer).notNull()
                table.primaryKey(["uid", "instId"])
            }
            try db.create(table: "order") { table in
                table.primaryKey("ordId", .integer)
                table.column("uid", .text).notNull().references("account").indexed()
                table.column("clOrdId", .text).notNull()
                table.column("instId", .text).notNull()
                table.column("tdMode", .text).notNull()
                table.column("side", .text).notNull()
                table.column("ordType", .text).notNull()
                table.column("px", .text).notNull()
                table.column("sz", .text).notNull()
                table.column("tgtCcy", .text).notNull()
                table.column("reduceOnly", .boolean).notNull()
                table.column("state", .text).notNull()
                table.column("accFillSz", .text).notNull()
                table.column("avgPx", .text).notNull()
                table.column("fee", .text).notNull()
                table.column("feeCcy", .text).notNull()
                table.column("category", .text).notNull()
                table.column("tag", .text).notNull()
                table.column("cTime", .integer).notNull()
                table.column("uTime", .integer).notNull()
            }
            try db.create(index: "order_open", on: "order", columns: ["state"])
            try db.create(table: "fill") { table in
                table.primaryKey("tradeId", .integer)
                table.column("ordId", .integer).notNull().indexed()
                table.column("uid", .text).notNull().indexed()
                table.column("clOrdId", .text).notNull()
                table.column("instId", .text).notNull()
                table.column("side", .text).notNull()
                table.column("fillPx", .text).notNull()
                table.column("fillSz", .text).notNull()
                table.column("fee", .text).notNull()
                table.column("feeCcy", .text).notNull()
                table.column("pnl", .text).notNull()
                table.column("execType", .text).notNull()
                table.column("category", .text).notNull()
                table.column("ts", .integer).notNull()
            }
            try db.create(table: "bill") { table in
                table.primaryKey("billId", .integer)
                table.column("uid", .text).notNull().indexed()
                table.column("ccy", .text).notNull()
                table.column("balChg", .text).notNull()
                table.column("bal", .text).notNull()
                table.column("type", .text).notNull()
                table.column("subType", .text).notNull()
                table.column("instId", .text).notNull()
                table.column("ordId", .text).notNull()
                table.column("pnl", .text).notNull()
                table.column("fee", .text).notNull()
                table.column("sz", .text).notNull()
                table.column("px", .text).notNull()
                table.column("notes", .text).notNull()
                table.column("ts", .integer).notNull()
            }
            try db.create(table: "interest") { table in
                table.column("uid", .text).notNull()
                table.column("ccy", .text).notNull()
                table.column("pending", .text).notNull()
                table.column("accrued", .text).notNull()
                table.primaryKey(["uid", "ccy"])
            }
            try db.create(table: "insuranceFund") { table in
                table.primaryKey("ccy", .text)
                table.column("balance", .text).notNull()
            }
            try db.create(table: "setting") { table in
                table.primaryKey("key", .text)
                table.column("value", .text).notNull()
            }
        }
        migrator.registerMigration("v2-house") { db in
            try db.create(table: "house") { table in
                table.primaryKey("ccy", .text)
                table.column("balance", .text).notNull()
            }
            // A ledger written before the house was recorded: deposits (bill type 1) are the only value that ever
            // entered it, and every other movement was between accounts, the insurance fund and the house, so the
            // house's opening balance is what the deposits leave after the balances and the fund.
            var opening: [String: ExactDecimal] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT ccy, balChg FROM bill WHERE type = '1'") {
                opening[row["ccy"], default: .zero] += ExactDecimal(row["balChg"] as String) ?? .zero
            }
            for row in try Row.fetchAll(
                db, sql: "SELECT ccy, cashBal AS amount FROM balance UNION ALL SELECT ccy, balance FROM insuranceFund")
            {
                opening[row["ccy"], default: .zero] -= ExactDecimal(row["amount"] as String) ?? .zero
            }
            for (ccy, balance) in opening.sorted(by: { $0.key < $1.key }) where !balance.isZero {
                // Raw SQL: the record type has since gained a partition column this table does not have yet.
                try db.execute(sql: "INSERT INTO house (ccy, balance) VALUES (?, ?)", arguments: [ccy, balance.description])
            }
        }
        migrator.registerMigration("v3-clustered-by-account") { db in
            // Balances, positions and interest are only ever found by (uid, …). Stored in that key's order (WITHOUT
            // ROWID), an upsert touches one b-tree instead of the key's index and then the row, and start-up reads
            // each table in uid order by scanning it, which lets the loader attach rows to accounts without
            // hashing (a funding tick upserts a million balances; start-up reads every row). Same columns, same
            // rows; GRDB checks the foreign keys at the end of the migration.
            try db.execute(
                sql: """
                    CREATE TABLE balance_clustered (
                        uid TEXT NOT NULL REFERENCES account(uid),
                        ccy TEXT NOT NULL,
                        cashBal TEXT NOT NULL,
                        PRIMARY KEY (uid, ccy)
                    ) WITHOUT ROWID;
                    INSERT INTO balance_clustered (uid, ccy, cashBal) SELECT uid, ccy, cashBal FROM balance ORDER BY uid, ccy;
                    DROP TABLE balance;
                    ALTER TABLE balance_clustered RENAME TO balance;
                    CREATE TABLE position_clustered (
                        uid TEXT NOT NULL REFERENCES account(uid),
                        instId TEXT NOT NULL,
                        pos TEXT NOT NULL,
                        avgPx TEXT NOT NULL,
                        lever TEXT NOT NULL,
                        cTime INTEGER NOT NULL,
                        uTime INTEGER NOT NULL,
                        PRIMARY KEY (uid, instId)
                    ) WITHOUT ROWID;
                    INSERT INTO position_clustered (uid, instId, pos, avgPx, lever, cTime, uTime)
                        SELECT uid, instId, pos, avgPx, lever, cTime, uTime FROM position ORDER BY uid, instId;
                    DROP TABLE position;
                    ALTER TABLE position_clustered RENAME TO position;
                    CREATE TABLE interest_clustered (
                        uid TEXT NOT NULL,
                        ccy TEXT NOT NULL,
                        pending TEXT NOT NULL,
                        accrued TEXT NOT NULL,
                        PRIMARY KEY (uid, ccy)
                    ) WITHOUT ROWID;
                    INSERT INTO interest_clustered (uid, ccy, pending, accrued)
                        SELECT uid, ccy, pending, accrued FROM interest ORDER BY uid, ccy;
                    DROP TABLE interest;
                    ALTER TABLE interest_clustered RENAME TO interest;
                    """)
        }
        migrator.registerMigration("v4-bills-by-id-range") { db in
            // Bills were indexed by uid alone. A funding tick writes a bill for nearly every account, in uid
            // order, so each one landed somewhere else in that index: every page of it was rewritten, and the
            // index grows with every tick (3.8M bills: 100 MB rewritten per tick, 1.5–2 s of its writes). Keyed
            // by (id range, uid), a tick's bills fill the newest range or two, leaving older ranges untouched; an
            // account's bills are read range by range, newest first (`bills(uid:currency:type:limit:)`).
            try db.execute(
                sql: """
                    DROP INDEX bill_on_uid;
                    CREATE INDEX bill_by_id_range ON bill(billId >> \(billRangeBits), uid);
                    """)
        }
        migrator.registerMigration("v5-account-partition") { db in
            // The account's partition (``LedgerPartitions``), stored on it as on PostgreSQL; a SQLite ledger is one
            // partition, so every account is in partition 0.
            try db.execute(sql: "ALTER TABLE account ADD COLUMN partition INTEGER NOT NULL DEFAULT 0 CHECK (partition = 0)")
        }
        migrator.registerMigration("v6-partition-books") { db in
            // The insurance fund and the house get a row per partition and currency, as on PostgreSQL, where each
            // partition's owner books its accounts' side; a SQLite ledger's rows are all partition 0's.
            for table in ["insuranceFund", "house"] {
                try db.execute(
                    sql: """
                        CREATE TABLE \(table)_partitioned (
                            partition INTEGER NOT NULL DEFAULT 0 CHECK (partition = 0),
                            ccy TEXT NOT NULL,
                            balance TEXT NOT NULL,
                            PRIMARY KEY (partition, ccy)
                        );
                        INSERT INTO \(table)_partitioned (partition, ccy, balance) SELECT 0, ccy, balance FROM \(table);
                        DROP TABLE \(table);
                        ALTER TABLE \(table)_partitioned RENAME TO \(table);
                        """)
            }
        }
        migrator.registerMigration("v7-orders-by-client-id") { db in
            // An account's clOrdId is looked up before every order that has one (a retried order is refused, not placed
            // twice): the index on (uid, clOrdId) serves that and, by its prefix, every lookup by uid the old one did.
            try db.execute(
                sql: """
                    CREATE INDEX order_on_uid_clOrdId ON "order"(uid, clOrdId);
                    DROP INDEX order_on_uid;
                    """)
        }
        return migrator
    }
}
