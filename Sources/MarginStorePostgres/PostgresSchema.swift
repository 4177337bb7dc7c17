import Logging
import MarginStore
import PostgresNIO

/// The ledger's tables on PostgreSQL: those of the SQLite ledger (`AppDatabase.migrator`), column for column
/// and with the same names (quoted, so camelCase survives), keys, foreign keys and indexes. Types map one to
/// one: TEXT → text (exact decimals stay decimal text, so both backends hold the same strings), INTEGER →
/// bigint, BOOLEAN → boolean, BLOB → bytea.
enum PostgresSchema {
    /// Migrations by the identifiers GRDB records for SQLite, in the table GRDB uses, so the two ledgers list the
    /// same history. `v2-house` computes the house's opening balance from the deposits on a SQLite ledger written
    /// before the house existed; a PostgreSQL ledger always had the house, so on it the step only creates the table.
    static let migrations: [(identifier: String, sql: [String])] = [
        (
            "v1",
            [
                #"""
                CREATE TABLE account ("uid" text PRIMARY KEY, "acctLv" text NOT NULL, "acknowledged" boolean NOT NULL,
                    "autoLoan" boolean NOT NULL, "label" text NOT NULL, "createdAt" bigint NOT NULL)
                """#,
                #"""
                CREATE TABLE "apiKey" ("apiKey" text PRIMARY KEY, "uid" text NOT NULL REFERENCES account("uid"), "secretCipher" bytea NOT NULL,
                    "passphraseHash" text NOT NULL, "permissions" text NOT NULL, "label" text NOT NULL, "createdAt" bigint NOT NULL)
                """#,
                #"""
                CREATE TABLE balance ("uid" text NOT NULL REFERENCES account("uid"), "ccy" text NOT NULL, "cashBal" text NOT NULL,
                    PRIMARY KEY ("uid", "ccy"))
                """#,
                #"""
                CREATE TABLE position ("uid" text NOT NULL REFERENCES account("uid"), "instId" text NOT NULL, "pos" text NOT NULL,
                    "avgPx" text NOT NULL, "lever" text NOT NULL, "cTime" bigint NOT NULL, "uTime" bigint NOT NULL, PRIMARY KEY ("uid", "instId"))
                """#,
                #"""
                CREATE TABLE "order" ("ordId" bigint PRIMARY KEY, "uid" text NOT NULL REFERENCES account("uid"), "clOrdId" text NOT NULL,
                    "instId" text NOT NULL, "tdMode" text NOT NULL, "side" text NOT NULL, "ordType" text NOT NULL, "px" text NOT NULL,
                    "sz" text NOT NULL, "tgtCcy" text NOT NULL, "reduceOnly" boolean NOT NULL, "state" text NOT NULL, "accFillSz" text NOT NULL,
                    "avgPx" text NOT NULL, "fee" text NOT NULL, "feeCcy" text NOT NULL, "category" text NOT NULL, "tag" text NOT NULL,
                    "cTime" bigint NOT NULL, "uTime" bigint NOT NULL)
                """#,
                #"CREATE INDEX "order_on_uid" ON "order" ("uid")"#,
                #"CREATE INDEX "order_open" ON "order" ("state")"#,
                #"""
                CREATE TABLE fill ("tradeId" bigint PRIMARY KEY, "ordId" bigint NOT NULL, "uid" text NOT NULL, "clOrdId" text NOT NULL,
                    "instId" text NOT NULL, "side" text NOT NULL, "fillPx" text NOT NULL, "fillSz" text NOT NULL, "fee" text NOT NULL,
                    "feeCcy" text NOT NULL, "pnl" text NOT NULL, "execType" text NOT NULL, "category" text NOT NULL, "ts" bigint NOT NULL)
                """#,
                #"CREATE INDEX "fill_on_ordId" ON fill ("ordId")"#,
                #"CREATE INDEX "fill_on_uid" ON fill ("uid")"#,
                #"""
                CREATE TABLE bill ("billId" bigint PRIMARY KEY, "uid" text NOT NULL, "ccy" text NOT NULL, "balChg" text NOT NULL,
                    "bal" text NOT NULL, "type" text NOT NULL, "subType" text NOT NULL, "instId" text NOT NULL, "ordId" text NOT NULL,
                    "pnl" text NOT NULL, "fee" text NOT NULL, "sz" text NOT NULL, "px" text NOT NULL, "notes" text NOT NULL, "ts" bigint NOT NULL)
                """#,
                #"CREATE INDEX "bill_on_uid" ON bill ("uid")"#,
                #"""
                CREATE TABLE interest ("uid" text NOT NULL, "ccy" text NOT NULL, "pending" text NOT NULL, "accrued" text NOT NULL,
                    PRIMARY KEY ("uid", "ccy"))
                """#,
                #"CREATE TABLE "insuranceFund" ("ccy" text PRIMARY KEY, "balance" text NOT NULL)"#,
                #"CREATE TABLE setting ("key" text PRIMARY KEY, "value" text NOT NULL)"#,
            ]
        ),
        ("v2-house", [#"CREATE TABLE house ("ccy" text PRIMARY KEY, "balance" text NOT NULL)"#]),
        // PostgreSQL only (on SQLite one process writes): the serving node's lease (``PostgresLedger``). Partition 0
        // is the whole ledger; `epoch` grows with every new holder, and `pm_hold_lease` (run first in every write
        // transaction of a serving node) renews it, or fails the transaction unless the caller still holds that epoch.
        (
            "pg-serving-lease",
            [
                #"""
                CREATE TABLE lease ("partition" integer PRIMARY KEY, "owner" text NOT NULL, "epoch" bigint NOT NULL,
                    "expiresAt" timestamptz NOT NULL)
                """#,
                #"""
                CREATE FUNCTION pm_hold_lease(holder text, held bigint, seconds double precision) RETURNS void LANGUAGE plpgsql AS $$
                BEGIN
                    UPDATE lease SET "expiresAt" = clock_timestamp() + make_interval(secs => seconds)
                        WHERE "partition" = 0 AND "owner" = holder AND "epoch" = held;
                    IF NOT FOUND THEN
                        RAISE EXCEPTION 'the lease of % (epoch %) was taken over by another node', holder, held USING ERRCODE = 'PM001';
                    END IF;
                END $$
                """#,
            ]
        ),
        // Accounts belong to 16 partitions (``LedgerPartitions/postgres``): `pm_partition` is the same FNV-1a hash
        // as `LedgerPartitions.partition(of:)`, kept on the account as a generated column, so whoever inserts an
        // account (any node, `pm account create`, psql) stores the same partition. Each partition has its own
        // lease row; the single lease of partition 0 (the whole ledger) is dropped: every node of the version
        // before must be stopped before this one migrates. `pm_hold_leases` renews every lease the caller holds,
        // or fails the transaction (PM001) if any of them is no longer held under the caller's epoch.
        (
            "pg-partitions",
            [
                #"""
                CREATE FUNCTION pm_partition(uid text) RETURNS integer LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
                DECLARE
                    bytes bytea := convert_to(uid, 'UTF8');
                    hash bigint := 2166136261;
                BEGIN
                    FOR i IN 0 .. length(bytes) - 1 LOOP
                        hash := ((hash # get_byte(bytes, i)::bigint) * 16777619) % 4294967296;
                    END LOOP;
                    RETURN (hash % \#(LedgerPartitions.postgres.count))::integer;
                END $$
                """#,
                #"ALTER TABLE account ADD COLUMN "partition" integer GENERATED ALWAYS AS (pm_partition("uid")) STORED"#,
                #"CREATE INDEX "account_on_partition" ON account ("partition")"#,
                "DELETE FROM lease",
                "DROP FUNCTION pm_hold_lease(text, bigint, double precision)",
                #"""
                CREATE FUNCTION pm_hold_leases(holder text, held integer[], epochs bigint[], seconds double precision) RETURNS void
                LANGUAGE plpgsql AS $$
                DECLARE
                    renewed integer;
                BEGIN
                    UPDATE lease SET "expiresAt" = clock_timestamp() + make_interval(secs => seconds)
                        FROM unnest(held, epochs) AS mine(p, e)
                        WHERE lease."partition" = mine.p AND lease."owner" = holder AND lease."epoch" = mine.e;
                    GET DIAGNOSTICS renewed = ROW_COUNT;
                    IF renewed <> cardinality(held) THEN
                        RAISE EXCEPTION 'a lease of % was taken over by another node (% of % partitions still held)', holder, renewed,
                            cardinality(held) USING ERRCODE = 'PM001';
                    END IF;
                END $$
                """#,
            ]
        ),
        // The fund and the house get a row per partition and currency: each partition's owner books its accounts'
        // side there, so nodes owning different partitions never write the same row. The rows before are the whole
        // ledger's, kept as partition 0's; the fund and the house are the sums.
        (
            "v6-partition-books",
            [
                #"ALTER TABLE "insuranceFund" ADD COLUMN "partition" integer NOT NULL DEFAULT 0"#,
                #"ALTER TABLE "insuranceFund" DROP CONSTRAINT "insuranceFund_pkey", ADD PRIMARY KEY ("partition", "ccy")"#,
                #"ALTER TABLE house ADD COLUMN "partition" integer NOT NULL DEFAULT 0"#,
                #"ALTER TABLE house DROP CONSTRAINT "house_pkey", ADD PRIMARY KEY ("partition", "ccy")"#,
            ]
        ),
        // The shared market (``PostgresMarketLog``): the simulator state of every tick, appended by the node that
        // drives the market, applied by every node to the partitions it holds.
        (
            "pg-market-ticks",
            [
                #"""
                CREATE TABLE market_tick ("seq" bigint PRIMARY KEY, "state" text NOT NULL,
                    "createdAt" timestamptz NOT NULL DEFAULT clock_timestamp())
                """#,
                // Where the owner of a partition answers (its advertised URL), for the nodes that forward to it.
                #"ALTER TABLE lease ADD COLUMN "address" text NOT NULL DEFAULT ''"#,
            ]
        ),
        // The serving nodes alive: each one's heartbeat (every renewal of its leases), for rebalancing.
        (
            "pg-nodes",
            [#"CREATE TABLE node ("id" text PRIMARY KEY, "url" text NOT NULL, "seenAt" timestamptz NOT NULL)"#]
        ),
        (
            "v7-orders-by-client-id",
            [#"CREATE INDEX "order_on_uid_clOrdId" ON "order" ("uid", "clOrdId")"#, #"DROP INDEX "order_on_uid""#]
        ),
    ]

    /// Applies the migrations not yet recorded, in one transaction under an advisory lock (two nodes starting
    /// at once migrate once).
    static func migrate(_ connection: PostgresConnection, logger: Logger) throws {
        func run(_ sql: String) throws { _ = try connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).wait() }
        try run("BEGIN")
        do {
            try run("SELECT pg_advisory_xact_lock(\(PostgresLedger.migrationLockKey))")
            try run("CREATE TABLE IF NOT EXISTS grdb_migrations (identifier text NOT NULL PRIMARY KEY)")
            let applied = Set(
                try connection.query("SELECT identifier FROM grdb_migrations", logger: logger).wait().map { try $0.decode(String.self) })
            for migration in migrations where !applied.contains(migration.identifier) {
                for statement in migration.sql { try run(statement) }
                _ = try connection.query("INSERT INTO grdb_migrations (identifier) VALUES (\(migration.identifier))", logger: logger).wait()
            }
            try run("COMMIT")
        } catch {
            _ = try? connection.query("ROLLBACK", logger: logger).wait()
            throw error
        }
    }

    static let orderColumns = [
        "ordId", "uid", "clOrdId", "instId", "tdMode", "side", "ordType", "px", "sz", "tgtCcy", "reduceOnly", "state", "accFillSz",
        "avgPx", "fee", "feeCcy", "category", "tag", "cTime", "uTime",
    ]
    static let orderSelect = "SELECT " + orderColumns.map { "\"\($0)\"" }.joined(separator: ", ") + #" FROM "order""#

    /// An order row of ``orderSelect``.
    /// A stored value of a closed set (side, order type, state, bill type), or an error naming the column.
    static func closed<Value: RawRepresentable>(_ text: String, _ column: String) throws -> Value where Value.RawValue == String {
        guard let value = Value(rawValue: text) else {
            throw PostgresLedgerError("\(column) holds \"\(text.prefix(40))\", which is not a known value")
        }
        return value
    }

    static func order(_ row: PostgresRow) throws -> OrderRecord {
        let (
            ordId, uid, clOrdId, instId, tdMode, side, ordType, px, sz, tgtCcy, reduceOnly, state, accFillSz, avgPx, fee, feeCcy,
            category, tag, cTime, uTime
        ) = try row.decode(
            (
                Int64, String, String, String, String, String, String, String, String, String, Bool, String, String, String, String,
                String, String, String, Int64, Int64
            ).self)
        return OrderRecord(
            ordId: ordId, uid: uid, clOrdId: clOrdId, instId: instId, tdMode: try closed(tdMode, "order.tdMode"),
            side: try closed(side, "order.side"), ordType: try closed(ordType, "order.ordType"), px: px, sz: sz, tgtCcy: tgtCcy,
            reduceOnly: reduceOnly, state: try closed(state, "order.state"), accFillSz: accFillSz, avgPx: avgPx, fee: fee, feeCcy: feeCcy,
            category: try closed(category, "order.category"), tag: tag, cTime: cTime, uTime: uTime)
    }

    /// A bill row, columns in the table's order.
    static func bill(_ row: PostgresRow) throws -> BillRecord {
        let (billId, uid, ccy, balChg, bal, type, subType, instId, ordId, pnl, fee, sz, px, notes, ts) = try row.decode(
            (Int64, String, String, String, String, String, String, String, String, String, String, String, String, String, Int64).self)
        return BillRecord(
            billId: billId, uid: uid, ccy: ccy, balChg: balChg, bal: bal, type: try closed(type, "bill.type"), subType: subType,
            instId: instId, ordId: ordId,
            pnl: pnl, fee: fee, sz: sz, px: px, notes: notes, ts: ts)
    }
}
