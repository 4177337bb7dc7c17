import Foundation
import Logging
import MarginEngine
import MarginStore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import PostgresNIO

/// The sandbox's ledger on PostgreSQL, through one PostgresNIO connection: the same tables as the SQLite
/// ledger (``PostgresSchema``), exact decimals stored as the same decimal TEXT, one transaction per change set.
///
/// **Blocking by design.** Every method waits for PostgreSQL's answer on the calling thread, as SQLite's writes
/// do: the exchange's actor computes a change set, waits for its commit, and only then applies it to memory, and
/// no other job of the actor runs meanwhile. An `await` there would let the actor run other requests between the
/// write and the apply, staging them against accounts the commit is about to change; waiting keeps the
/// invariant (memory changes only after its commit, commits one at a time) without a lock around every path
/// that stages changes. The connection lives on an event loop of its own (``eventLoops``), never on a thread
/// that waits for it, so the wait cannot deadlock; it holds one thread of the caller's pool for a round trip.
///
/// **A commit is sent whole.** `BEGIN`, the transaction's id and ledger lock, one `INSERT … SELECT FROM
/// unnest(…)` per table (10,000 rows a statement) and `COMMIT` are queued at once and waited for together; a
/// statement that fails aborts the transaction (PostgreSQL answers the `COMMIT` with `ROLLBACK`) and the error
/// is thrown. If the connection drops after `COMMIT` was sent, the outcome is read back from a new connection
/// (`txid_status` of the transaction's id): committed counts as committed, aborted as failed. Only when that
/// cannot be learnt does the store refuse every later write (``PostgresLedgerError``): memory and storage might
/// differ, and a restart reloads the truth.
///
/// **Ledger lock.** Every write transaction takes `pg_advisory_xact_lock(ledgerLockKey)` first, so writers on
/// the same database (another node, `pm account create`) are serialised and bill and trade ids, numbered after
/// the largest stored ones inside the transaction, never collide.
public final class PostgresLedger: LedgerStore, PartitionLeases, @unchecked Sendable {  // @unchecked: every mutable field is behind `lock`
    public let address: PostgresAddress
    private let logger: Logger
    private let lock = NIOLock()
    private var connection: PostgresConnection?
    /// Set when a commit's outcome could not be learnt, or when this serving node lost the ledger to another:
    /// every later write is refused.
    private var inDoubt: String?
    /// For a serving node (``init(_:servingAs:partitions:leaseSeconds:renewsLease:logger:)``): its id, the owner
    /// of its partitions' leases.
    private let servingNode: String?
    /// The partitions a serving node holds, in order, and the epoch of each one's lease (none for a ledger that
    /// does not serve); how long a renewal holds them.
    private var held: [Int]
    private var epochs: [Int64] = []
    /// The URL a serving node advertises in its lease rows (where other nodes forward its partitions' requests).
    public let url: String
    private let leaseSeconds: Double
    /// Set when the ledger stops renewing (``close()``, deinit).
    private var renewalStopped = false

    /// The event loop of every PostgreSQL connection of the process: a thread of its own, so a caller
    /// blocked on a query is never the thread that must complete it.
    static let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// Rows per `INSERT … unnest` statement.
    static let rowsPerStatement = 10_000
    /// The advisory lock every write transaction holds: 0x706d_6c65 ("pmle", the ledger).
    public static let ledgerLockKey: Int64 = 0x706d_6c65
    /// The advisory lock held while migrating ("pmmi").
    static let migrationLockKey: Int64 = 0x706d_6d69
    /// Seconds a session may sit idle inside a transaction before the server ends it (and releases its locks).
    static let idleInTransactionSeconds = 5
    /// The SQLSTATE `pm_hold_lease` raises when the caller's lease was taken over.
    static let leaseLostState = "PM001"

    /// Connects to `address` and migrates the database (creating the tables when missing). Throws when the
    /// server cannot be reached or refuses the user.
    ///
    /// `servingAs` (a node id) makes this the ledger of a serving node (`pm serve`): the exchange keeps its accounts
    /// in memory, so two nodes writing the same accounts would each overwrite what the other wrote. Accounts belong
    /// to partitions (``LedgerPartitions/postgres``), each with a lease row; the node takes the leases of
    /// `partitions` (every partition when nil), all of them or none: each only when it is free, expired, or already
    /// this node id's (a restarted node), and always with a new epoch; otherwise it is refused, naming the node that
    /// holds one. Every write transaction first renews every lease it holds for `leaseSeconds` under those epochs
    /// (`pm_hold_leases`), and a thread renews them every third of that while the node is idle (`renewsLease`). A
    /// node that stops renewing — stopped, paused (SIGSTOP), cut off — loses its partitions once the leases expire to
    /// the next node that takes them; from then on every write it attempts fails inside its transaction, storing
    /// nothing, and it refuses writes until restarted (it is fenced), whatever its connection did meanwhile. A
    /// connection that drops and comes back changes nothing: the epochs are the fence. `pm account create` opens the
    /// ledger without `servingAs`: it only adds new accounts, which a serving node loads on first use.
    public init(
        _ address: PostgresAddress, servingAs node: String? = nil, partitions: [Int]? = nil, advertising url: String = "",
        leaseSeconds: Double = 10, renewsLease: Bool = true, logger: Logger = Logger(label: "pm.postgres")
    ) throws {
        self.address = address
        self.logger = logger
        servingNode = node
        self.leaseSeconds = leaseSeconds
        let wanted = node == nil ? [] : (partitions ?? LedgerPartitions.postgres.all).sorted()
        let count = LedgerPartitions.postgres.count
        guard wanted.allSatisfy({ (0..<count).contains($0) }), Set(wanted).count == wanted.count else {
            throw PostgresLedgerError("partitions \(wanted) are not distinct partitions of 0..<\(count)")
        }
        held = wanted
        self.url = url
        try lock.withLock {
            let connection = try connectedLocked()
            try PostgresSchema.migrate(connection, logger: logger)
            if let node {
                try Self.heartbeat(node, url: url, on: connection, logger: logger)
                if !wanted.isEmpty {
                    epochs = try Self.takeLeases(
                        wanted, as: node, advertising: url, seconds: leaseSeconds, on: connection, address: address, logger: logger)
                }
            }
        }
        if node != nil && renewsLease { startRenewing() }
    }

    /// Takes the leases of `partitions` (in order) for `node`, in one transaction: their new epochs, in the same
    /// order, or — taking none — an error naming a node that holds one of them and until when.
    private static func takeLeases(
        _ partitions: [Int], as node: String, advertising url: String, seconds: Double, on connection: PostgresConnection,
        address: PostgresAddress, logger: Logger
    ) throws -> [Int64] {
        let wanted = partitions.map(Int32.init)
        _ = try connection.query("BEGIN", logger: logger).wait()
        do {
            let taken = try connection.query(
                """
                INSERT INTO lease ("partition", "owner", "epoch", "expiresAt", "address")
                    SELECT p, \(node), 1, clock_timestamp() + make_interval(secs => \(seconds)), \(url) FROM unnest(\(wanted)::integer[]) AS p
                ON CONFLICT ("partition") DO UPDATE SET "owner" = EXCLUDED."owner", "epoch" = lease."epoch" + 1, "expiresAt" = EXCLUDED."expiresAt",
                    "address" = EXCLUDED."address"
                    WHERE lease."expiresAt" < clock_timestamp() OR lease."owner" = EXCLUDED."owner"
                RETURNING "partition", "epoch"
                """, logger: logger
            ).wait()
            var epochs: [Int: Int64] = [:]
            for row in taken.rows {
                let (partition, epoch) = try row.decode((Int32, Int64).self)
                epochs[Int(partition)] = epoch
            }
            if epochs.count == partitions.count {
                _ = try connection.query("COMMIT", logger: logger).wait()
                return partitions.map { epochs[$0] ?? 0 }
            }
            _ = try connection.query("ROLLBACK", logger: logger).wait()
        } catch {
            _ = try? connection.query("ROLLBACK", logger: logger).wait()
            throw error
        }
        let holder = try connection.query(
            """
            SELECT "partition", "owner", "expiresAt"::text FROM lease WHERE "partition" = ANY(\(wanted)::integer[]) AND "owner" <> \(node)
                ORDER BY "partition" LIMIT 1
            """, logger: logger
        ).wait()
        let (partition, owner, until) = try holder.rows.first?.decode((Int32, String, String).self) ?? (Int32(-1), "?", "?")
        throw PostgresLedgerError(
            "another pm serve node (\(owner)) holds partition \(partition) of the ledger at \(address) until \(until); a partition has one serving node at a time"
        )
    }

    /// The partitions this serving node holds, in order.
    public var heldPartitions: [Int] { lock.withLock { held } }

    public var nodeID: String { servingNode ?? "" }

    /// Records that `node` is alive now.
    private static func heartbeat(_ node: String, url: String, on connection: PostgresConnection, logger: Logger) throws {
        _ = try connection.query(
            """
            INSERT INTO node ("id", "url", "seenAt") VALUES (\(node), \(url), clock_timestamp())
            ON CONFLICT ("id") DO UPDATE SET "url" = EXCLUDED."url", "seenAt" = EXCLUDED."seenAt"
            """, logger: logger
        ).wait()
    }

    /// Leaves the group of serving nodes (a graceful stop): lets every lease go and removes the heartbeat, so the
    /// other nodes take the partitions at once rather than after the leases expire. Call it once nothing writes.
    public func leave() throws {
        try release(partitions: heldPartitions)
        guard let node = servingNode else { return }
        _ = try query(#"DELETE FROM node WHERE "id" = \#(node)"#)
    }

    /// The nodes seen within a lease length, and the owner of every partition whose lease has not expired.
    public func membership() throws -> PartitionMembership {
        let nodes = try query(
            #"SELECT "id" FROM node WHERE "seenAt" > clock_timestamp() - make_interval(secs => \#(leaseSeconds)) ORDER BY "id" COLLATE "C""#
        ).map { try $0.decode(String.self) }
        var owners: [Int: String] = [:]
        for row in try query(#"SELECT "partition", "owner" FROM lease WHERE "expiresAt" > clock_timestamp()"#) {
            let (partition, owner) = try row.decode((Int32, String).self)
            owners[Int(partition)] = owner
        }
        return PartitionMembership(nodes: nodes, owners: owners)
    }

    /// Takes the leases of `partitions` as well (all or none, each free, expired or this node's): from now on every
    /// write renews them too. Throws, taking none, naming a node that holds one.
    public func take(partitions: [Int]) throws {
        try lock.withLock {
            guard let node = servingNode else { throw PostgresLedgerError("only a serving node holds partitions") }
            if let inDoubt { throw PostgresLedgerError(inDoubt) }
            let wanted = partitions.filter { !held.contains($0) }.sorted()
            guard !wanted.isEmpty else { return }
            let taken = try Self.takeLeases(
                wanted, as: node, advertising: url, seconds: leaseSeconds, on: try connectedLocked(), address: address, logger: logger)
            let merged = (zip(held, epochs).map { ($0, $1) } + zip(wanted, taken).map { ($0, $1) }).sorted { $0.0 < $1.0 }
            held = merged.map(\.0)
            epochs = merged.map(\.1)
        }
    }

    /// Lets the leases of `partitions` go (they expire at once, under this node's epoch): call it once nothing of this
    /// node writes them any more. The writes after it no longer renew them.
    public func release(partitions: [Int]) throws {
        try lock.withLock {
            guard let node = servingNode else { return }
            let going = partitions.filter { held.contains($0) }
            guard !going.isEmpty else { return }
            let goingEpochs = going.map { epochs[held.firstIndex(of: $0)!] }
            let kept = zip(held, epochs).filter { !going.contains($0.0) }
            held = kept.map(\.0)
            epochs = kept.map(\.1)
            _ = try connectedLocked().query(
                """
                UPDATE lease SET "expiresAt" = clock_timestamp() - interval '1 second'
                    FROM unnest(\(going.map(Int32.init))::integer[], \(goingEpochs)::bigint[]) AS mine(p, e)
                    WHERE lease."partition" = mine.p AND lease."owner" = \(node) AND lease."epoch" = mine.e
                """, logger: logger
            ).wait()
        }
    }

    /// The statement that renews every lease this serving node holds, or raises PM001 when one was taken over.
    private func holdStatement(_ node: String) -> PostgresQuery {
        "SELECT pm_hold_leases(\(node), \(held.map(Int32.init))::integer[], \(epochs)::bigint[], \(leaseSeconds))"
    }

    /// Renews the lease every third of its length on a thread of its own, while the ledger lives and is not closed.
    private func startRenewing() {
        let interval = leaseSeconds / 3
        let thread = Thread { [weak self] in
            while true {
                Thread.sleep(forTimeInterval: interval)
                guard let self, self.renewLease() else { return }
            }
        }
        thread.name = "pm-lease"
        thread.start()
    }

    /// One renewal; false once renewing has stopped (closed, or fenced).
    private func renewLease() -> Bool {
        lock.withLock {
            guard !renewalStopped, inDoubt == nil, let node = servingNode else { return false }
            do {
                let connection = try connectedLocked()
                _ = try connection.query(holdStatement(node), logger: logger).wait()
                try Self.heartbeat(node, url: url, on: connection, logger: logger)
            } catch let error as PSQLError where error.serverInfo?[.sqlState] == Self.leaseLostState {
                fenceLocked(error)
                return false
            } catch {
                // Unreachable for now: the next renewal (or write) tries again; the epoch decides.
                if let error = error as? PSQLError, error.serverInfo == nil { discardConnectionLocked() }
                logger.warning("renewing the lease at \(address) failed: \(PostgresLedgerError(describing: error, address: address))")
            }
            return true
        }
    }

    /// Records that another node took the lease: every later write is refused.
    private func fenceLocked(_ error: any Error) {
        let message =
            "another node took over a partition of the ledger at \(address) from this node (\(servingNode ?? "?"), partitions \(held), epochs \(epochs)); it refuses writes until restarted: \(PostgresLedgerError(describing: error, address: address))"
        inDoubt = message
        logger.critical("\(message)")
    }

    deinit {
        discardConnectionLocked()
    }

    /// Closes the connection (a later call reconnects) and stops renewing the lease (a write still renews it).
    public func close() {
        lock.withLock {
            renewalStopped = true
            discardConnectionLocked()
        }
    }

    /// Closes the connection, waiting until it is (PostgresNIO requires a connection closed before it is
    /// released), after a failure or to reconnect.
    private func discardConnectionLocked() {
        if let connection {
            let closing: EventLoopFuture<Void> = connection.close()
            try? closing.wait()
        }
        connection = nil
    }

    // MARK: - Connection

    /// How to connect to `address`: its TLS mode as libpq means it (NIOSSL, re-exported by PostgresNIO for its TLS
    /// settings), a 10 s connect timeout.
    static func configuration(_ address: PostgresAddress) throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        do {
            var settings = TLSConfiguration.makeClientConfiguration()
            switch address.tls {
            case .disable:
                tls = .disable
            case .prefer, .require:
                settings.certificateVerification = .none
                let context = try NIOSSLContext(configuration: settings)
                tls = address.tls == .prefer ? .prefer(context) : .require(context)
            case .verifyCA, .verifyFull:
                settings.certificateVerification = address.tls == .verifyCA ? .noHostnameVerification : .fullVerification
                if let path = address.rootCertificatePath { settings.trustRoots = .file(path) }
                tls = .require(try NIOSSLContext(configuration: settings))
            }
        } catch {
            throw PostgresLedgerError("PostgreSQL \(address): the TLS settings cannot be used: \(error)")
        }
        var configuration = PostgresConnection.Configuration(
            host: address.host, port: address.port, username: address.user, password: address.password, database: address.database,
            tls: tls)
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }

    private func connectedLocked() throws -> PostgresConnection {
        if let connection, !connection.isClosed { return connection }
        discardConnectionLocked()
        let configuration = try Self.configuration(address)
        let opened: PostgresConnection
        do {
            opened = try PostgresConnection.connect(on: Self.eventLoops.next(), configuration: configuration, id: 1, logger: logger).wait()
        } catch {
            // PSQLError's own description hides everything; say what failed (unreachable, refused, TLS) and where.
            throw PostgresLedgerError(describing: error, address: address)
        }
        // A node stopped (SIGSTOP, a frozen VM) inside a write transaction holds the ledger lock every other node's
        // writes wait for: the server ends such a session after a few idle seconds, rolling its transaction back (its
        // COMMIT never came), so the other nodes go on.
        do {
            _ = try opened.query(
                PostgresQuery(unsafeSQL: "SET idle_in_transaction_session_timeout = '\(Self.idleInTransactionSeconds)s'"), logger: logger
            ).wait()
        } catch {
            try? opened.close().wait()
            throw PostgresLedgerError(describing: error, address: address)
        }
        connection = opened
        return opened
    }

    /// Runs one statement and returns its rows (all of them: for short answers).
    private func query(_ query: PostgresQuery) throws -> PostgresQueryResult {
        try lock.withLock {
            let connection = try connectedLocked()
            do {
                return try connection.query(query, logger: logger).wait()
            } catch {
                if let error = error as? PSQLError, error.serverInfo == nil { discardConnectionLocked() }
                throw PostgresLedgerError(describing: error, address: address)
            }
        }
    }

    // MARK: - Loading

    public var partitions: LedgerPartitions { .postgres }

    public func load(only uid: String?, partitions: [Int]?, into visitor: inout some LedgerVisitor) throws {
        try checkPartitions(partitions)
        try lock.withLock {
            let connection = try connectedLocked()
            do {
                try loadLocked(connection, only: uid, partitions: partitions, into: &visitor)
            } catch let error as PSQLError {
                if error.serverInfo == nil {
                    discardConnectionLocked()
                } else {
                    _ = try? connection.query("ROLLBACK", logger: logger).wait()
                }
                throw PostgresLedgerError(describing: error, address: address)
            }
        }
    }

    /// Reads every table through a server-side cursor, 10,000 rows a fetch, in one read-only snapshot.
    private func loadLocked(
        _ connection: PostgresConnection, only uid: String?, partitions: [Int]?, into visitor: inout some LedgerVisitor
    ) throws {
        _ = try connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger).wait()
        func each(_ sql: String, _ binds: PostgresBindings, _ body: (PostgresRow) throws -> Void) throws {
            _ = try connection.query(PostgresQuery(unsafeSQL: "DECLARE rows NO SCROLL CURSOR FOR " + sql, binds: binds), logger: logger)
                .wait()
            while true {
                let chunk = try connection.query("FETCH FORWARD 10000 FROM rows", logger: logger).wait()
                if chunk.rows.isEmpty { break }
                for row in chunk.rows { try body(row) }
            }
            _ = try connection.query("CLOSE rows", logger: logger).wait()
        }
        var binds = PostgresBindings()
        // One account, or the accounts of some partitions (found through the account's stored partition), or all.
        let filter: String
        let accountFilter: String
        if let uid {
            binds.append(uid)
            filter = #" WHERE "uid" = $1"#
            accountFilter = filter
        } else if let partitions {
            binds.append(partitions.map(Int32.init))
            filter = #" WHERE "uid" IN (SELECT "uid" FROM account WHERE "partition" = ANY($1))"#
            accountFilter = #" WHERE "partition" = ANY($1)"#
        } else {
            filter = ""
            accountFilter = ""
        }
        // Byte order, as LedgerVisitor promises (the database's collation may sort otherwise).
        let accounts = #"SELECT "uid", "acctLv", "acknowledged", "autoLoan", "label", "createdAt" FROM account"#
        try each(accounts + accountFilter + #" ORDER BY "uid" COLLATE "C""#, binds) { row in
            let (uid, level, acknowledged, autoLoan, label, created) = try row.decode((String, String, Bool, Bool, String, Int64).self)
            visitor.account(
                AccountRecord(uid: uid, acctLv: level, acknowledged: acknowledged, autoLoan: autoLoan, label: label, createdAt: created))
        }
        try each(#"SELECT "uid", "ccy", "cashBal" FROM balance"# + filter, binds) { row in
            let (uid, ccy, cash) = try row.decode((String, String, String).self)
            visitor.balance(uid: uid, ccy: ccy, cashBal: cash)
        }
        try each(#"SELECT "uid", "instId", "pos", "avgPx", "cTime", "uTime" FROM position"# + filter, binds) { row in
            let (uid, instId, pos, avgPx, cTime, uTime) = try row.decode((String, String, String, String, Int64, Int64).self)
            visitor.position(uid: uid, instId: instId, pos: pos, avgPx: avgPx, cTime: cTime, uTime: uTime)
        }
        let open = #""state" IN ('live', 'partially_filled')"#
        try each(PostgresSchema.orderSelect + (filter.isEmpty ? " WHERE \(open)" : filter + " AND " + open), binds) { row in
            visitor.openOrder(try PostgresSchema.order(row))
        }
        try each(#"SELECT "uid", "ccy", "pending", "accrued" FROM interest"# + filter, binds) { row in
            let (uid, ccy, pending, accrued) = try row.decode((String, String, String, String).self)
            visitor.interest(uid: uid, ccy: ccy, pending: pending, accrued: accrued)
        }
        var settingFilter =
            uid == nil
            ? #"(starts_with("key", 'lever:') OR starts_with("key", 'siu:'))"#
            : #"(starts_with("key", 'lever:' || $1 || ':') OR starts_with("key", 'siu:' || $1 || ':'))"#
        if uid == nil, partitions != nil {
            // lever:UID:INSTID and siu:UID:CCY: the account is the key's second field.
            settingFilter += #" AND split_part("key", ':', 2) IN (SELECT "uid" FROM account WHERE "partition" = ANY($1))"#
        }
        try each(#"SELECT "key", "value" FROM setting WHERE "# + settingFilter, binds) { row in
            let (key, value) = try row.decode((String, String).self)
            visitor.accountSetting(key: key, value: value)
        }
        if uid == nil {
            let books = partitions == nil ? "" : #" WHERE "partition" = ANY($1)"#
            try each(#"SELECT "partition", "ccy", "balance" FROM "insuranceFund""# + books, binds) { row in
                let (partition, ccy, balance) = try row.decode((Int32, String, String).self)
                visitor.insuranceFund(partition: Int(partition), ccy: ccy, balance: balance)
            }
            try each(#"SELECT "partition", "ccy", "balance" FROM house"# + books, binds) { row in
                let (partition, ccy, balance) = try row.decode((Int32, String, String).self)
                visitor.house(partition: Int(partition), ccy: ccy, balance: balance)
            }
        }
        let largest = try connection.query(#"SELECT COALESCE(MAX("ordId"), 0) FROM "order""#, logger: logger).wait()
        visitor.largestOrderID(try largest.rows.first?.decode(Int64.self) ?? 0)
        _ = try connection.query("COMMIT", logger: logger).wait()
    }

    // MARK: - Writing

    @discardableResult
    public func write(_ body: (any LedgerWriter) throws -> Void) throws -> LedgerIDs {
        let batch = PostgresWriteBatch()
        try body(batch)
        let statements = try batch.statements()
        return try lock.withLock {
            if let inDoubt { throw PostgresLedgerError(inDoubt) }
            let connection = try connectedLocked()
            return try commitLocked(statements, on: connection)
        }
    }

    private func commitLocked(_ statements: [PostgresWriteBatch.Statement], on connection: PostgresConnection) throws -> LedgerIDs {
        // Everything is queued at once: PostgresNIO sends each statement when the one before it has been answered,
        // and a failed one makes PostgreSQL refuse the rest and answer COMMIT with ROLLBACK.
        let begin = connection.query("BEGIN", logger: logger)
        let start = connection.query(
            "SELECT txid_current() FROM (SELECT pg_advisory_xact_lock(\(Self.ledgerLockKey))) AS locked", logger: logger)
        // A serving node's writes commit only under its lease: the first statement fails the transaction otherwise.
        let hold = servingNode.map { connection.query(holdStatement($0), logger: logger) }
        let sent = statements.map { connection.query($0.query, logger: logger) }
        let commit = connection.query("COMMIT", logger: logger)
        var firstError: (any Error)?
        var transactionID: Int64?
        var ids = LedgerIDs(firstBillID: 0, firstTradeID: 0)
        do {
            _ = try begin.wait()
            transactionID = try start.wait().rows.first?.decode(Int64.self)
            _ = try hold?.wait()
        } catch {
            firstError = error
        }
        for (statement, future) in zip(statements, sent) {
            do {
                let result = try future.wait()
                guard firstError == nil, let numbered = statement.numbers else { continue }
                let first = try result.rows.first?.decode(Int64.self) ?? 0
                switch numbered {
                case .bills where ids.firstBillID == 0: ids.firstBillID = first
                case .fills where ids.firstTradeID == 0: ids.firstTradeID = first
                default: break
                }
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        let outcome: Result<PostgresQueryResult, any Error>
        do { outcome = .success(try commit.wait()) } catch { outcome = .failure(error) }
        if let firstError {
            // The transaction is rolled back (PostgreSQL answered COMMIT with ROLLBACK, or the connection is gone).
            if case .failure = outcome { discardConnectionLocked() }
            if let error = firstError as? PSQLError, error.serverInfo?[.sqlState] == Self.leaseLostState {
                fenceLocked(error)
                throw PostgresLedgerError(inDoubt ?? "lease lost")
            }
            if let error = firstError as? PSQLError, error.serverInfo == nil { discardConnectionLocked() }
            throw PostgresLedgerError(describing: firstError, address: address)
        }
        switch outcome {
        case .success(let result):
            guard result.metadata.command == "COMMIT" else {
                throw PostgresLedgerError("PostgreSQL answered COMMIT with \(result.metadata.command); nothing was stored")
            }
            return ids
        case .failure(let error):
            if let error = error as? PSQLError, error.serverInfo != nil {
                // The server refused the commit (a deferred check, a serialisation failure): nothing was stored.
                throw PostgresLedgerError(describing: error, address: address)
            }
            discardConnectionLocked()
            return try resolveLocked(transactionID, lost: error, ids: ids)
        }
    }

    /// The connection dropped after COMMIT was sent: asks a new connection whether the transaction committed.
    private func resolveLocked(_ transactionID: Int64?, lost: any Error, ids: LedgerIDs) throws -> LedgerIDs {
        var status: String?
        if let transactionID {
            for attempt in 0..<20 {
                if attempt > 0 { Thread.sleep(forTimeInterval: 0.25) }
                guard let connection = try? connectedLocked() else { continue }
                let answer = try? connection.query("SELECT txid_status(\(transactionID))", logger: logger).wait()
                status = try? answer?.rows.first?.decode(String?.self)
                if status == "committed" || status == "aborted" { break }
            }
        }
        switch status {
        case "committed":
            logger.warning("the connection to \(address) dropped after COMMIT; the transaction \(transactionID ?? 0) committed")
            return ids
        case "aborted":
            throw PostgresLedgerError(describing: lost, address: address)
        default:
            let message = "the outcome of a commit to \(address) is unknown (\(lost)); this node refuses writes until it is restarted"
            inDoubt = message
            logger.critical("\(message)")
            throw PostgresLedgerError(message)
        }
    }

    // MARK: - Reads

    /// The node that holds `partition` now (its lease not expired) and the URL it advertised; nil when none does.
    public func owner(of partition: Int) throws -> (node: String, url: String)? {
        let rows = try query(
            #"""
            SELECT "owner", "address" FROM lease WHERE "partition" = \#(Int32(partition)) AND "expiresAt" > clock_timestamp()
            """#)
        return try rows.first.map { try $0.decode((String, String).self) }
    }

    public func apiKey(_ key: String) throws -> APIKeyRecord? {
        let rows = try query(
            #"SELECT "apiKey", "uid", "secretCipher", "passphraseHash", "permissions", "label", "createdAt" FROM "apiKey" WHERE "apiKey" = \#(key)"#
        )
        return try rows.first.map { row in
            let (apiKey, uid, cipher, hash, permissions, label, created) = try row.decode(
                (String, String, Data, String, String, String, Int64).self)
            return APIKeyRecord(
                apiKey: apiKey, uid: uid, secretCipher: cipher, passphraseHash: hash, permissions: permissions, label: label,
                createdAt: created)
        }
    }

    public func settings(prefix: String) throws -> [SettingRecord] {
        try query(#"SELECT "key", "value" FROM setting WHERE starts_with("key", \#(prefix)) ORDER BY "key""#).map { row in
            let (key, value) = try row.decode((String, String).self)
            return SettingRecord(key: key, value: value)
        }
    }

    public func bills(uid: String, currency: String?, type: String?, limit: Int) throws -> [BillRecord] {
        let sql: PostgresQuery = """
            SELECT "billId", "uid", "ccy", "balChg", "bal", "type", "subType", "instId", "ordId", "pnl", "fee", "sz", "px", "notes", "ts"
            FROM bill WHERE "uid" = \(uid) AND (\(currency)::text IS NULL OR "ccy" = \(currency)) AND (\(type)::text IS NULL OR "type" = \(type))
            ORDER BY "billId" DESC LIMIT \(Int64(limit))
            """
        return try query(sql).map(PostgresSchema.bill)
    }

    public func bills(type: BillType, after billID: Int64) throws -> [BillRecord] {
        let sql: PostgresQuery = """
            SELECT "billId", "uid", "ccy", "balChg", "bal", "type", "subType", "instId", "ordId", "pnl", "fee", "sz", "px", "notes", "ts"
            FROM bill WHERE "type" = \(type.rawValue) AND "billId" > \(billID) ORDER BY "billId"
            """
        return try query(sql).map(PostgresSchema.bill)
    }

    public func books() throws -> (fund: [InsuranceFundRecord], house: [HouseRecord]) {
        let fund = try query(#"SELECT "partition", "ccy", "balance" FROM "insuranceFund""#).map { row in
            let (partition, ccy, balance) = try row.decode((Int32, String, String).self)
            return InsuranceFundRecord(partition: Int(partition), ccy: ccy, balance: balance)
        }
        let house = try query(#"SELECT "partition", "ccy", "balance" FROM house"#).map { row in
            let (partition, ccy, balance) = try row.decode((Int32, String, String).self)
            return HouseRecord(partition: Int(partition), ccy: ccy, balance: balance)
        }
        return (fund, house)
    }

    public func storedClientOrderIDs(_ keys: [ClientOrderKey]) throws -> Set<ClientOrderKey> {
        let rows = try query(
            #"""
            SELECT "uid", "clOrdId" FROM "order" JOIN unnest(\#(keys.map(\.uid))::text[], \#(keys.map(\.clOrdId))::text[]) AS asked(u, c)
                ON "uid" = asked.u AND "clOrdId" = asked.c
            """#)
        return Set(
            try rows.map { row in
                let (uid, clOrdId) = try row.decode((String, String).self)
                return ClientOrderKey(uid: uid, clOrdId: clOrdId)
            })
    }

    public func order(uid: String, instId: String, ordId: Int64?, clOrdId: String?) throws -> OrderRecord? {
        guard ordId != nil || clOrdId != nil else { return nil }
        let filter = ordId != nil ? #""ordId" = $3"# : #""clOrdId" = $3"#
        var binds = PostgresBindings()
        binds.append(uid)
        binds.append(instId)
        if let ordId { binds.append(ordId) } else { binds.append(clOrdId ?? "") }
        let sql = PostgresSchema.orderSelect + #" WHERE "uid" = $1 AND "instId" = $2 AND "# + filter + #" ORDER BY "ordId" DESC LIMIT 1"#
        return try query(PostgresQuery(unsafeSQL: sql, binds: binds)).first.map(PostgresSchema.order)
    }

    public func closedOrders(uid: String, instId: String?, limit: Int) throws -> [OrderRecord] {
        var binds = PostgresBindings()
        binds.append(uid)
        binds.append(instId)
        binds.append(Int64(limit))
        let sql =
            PostgresSchema.orderSelect
            + #" WHERE "uid" = $1 AND "state" IN ('filled', 'canceled') AND ($2::text IS NULL OR "instId" = $2) ORDER BY "ordId" DESC LIMIT $3"#
        return try query(PostgresQuery(unsafeSQL: sql, binds: binds)).map(PostgresSchema.order)
    }

    public func fills(uid: String, instId: String?, ordId: Int64?, limit: Int) throws -> [FillRecord] {
        let sql: PostgresQuery = """
            SELECT "tradeId", "ordId", "uid", "clOrdId", "instId", "side", "fillPx", "fillSz", "fee", "feeCcy", "pnl", "execType", "category", "ts"
            FROM fill WHERE "uid" = \(uid) AND (\(instId)::text IS NULL OR "instId" = \(instId)) AND (\(ordId)::bigint IS NULL OR "ordId" = \(ordId))
            ORDER BY "tradeId" DESC LIMIT \(Int64(limit))
            """
        return try query(sql).map { row in
            let (tradeId, ordId, uid, clOrdId, instId, side, fillPx, fillSz, fee, feeCcy, pnl, execType, category, ts) = try row.decode(
                (Int64, Int64, String, String, String, String, String, String, String, String, String, String, String, Int64).self)
            return FillRecord(
                tradeId: tradeId, ordId: ordId, uid: uid, clOrdId: clOrdId, instId: instId,
                side: try PostgresSchema.closed(side, "fill.side"),
                fillPx: fillPx, fillSz: fillSz, fee: fee, feeCcy: feeCcy, pnl: pnl, execType: execType,
                category: try PostgresSchema.closed(category, "fill.category"), ts: ts)
        }
    }

    /// Runs `sql` outside the ledger's writes (tests and tools: installing a trigger, counting rows).
    public func execute(_ sql: String) throws -> [PostgresRow] {
        try query(PostgresQuery(unsafeSQL: sql)).rows
    }
}

/// A PostgreSQL failure, with the server's message when it sent one.
public struct PostgresLedgerError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }

    init(describing error: any Error, address: PostgresAddress) {
        if let error = error as? PSQLError {
            if let server = error.serverInfo {
                let fields = [server[.sqlState], server[.message], server[.detail]].compactMap { $0 }
                description = "PostgreSQL \(address): " + fields.joined(separator: " ")
            } else {
                description = "PostgreSQL \(address): \(error.code)" + (error.underlying.map { " (\($0))" } ?? "")
            }
        } else if let error = error as? PostgresLedgerError {
            description = error.description
        } else {
            description = "PostgreSQL \(address): \(error)"
        }
    }
}

/// Databases of a PostgreSQL server, made and dropped through its database `address`: for tests (a fresh
/// ledger per test) and tools.
public enum PostgresDatabases {
    /// Creates an empty database `name` on `address`'s server; answers its address.
    public static func create(_ name: String, on address: PostgresAddress) throws -> PostgresAddress {
        try run(#"CREATE DATABASE "\#(name)""#, on: address)
        var created = address
        created.database = name
        return created
    }

    /// Drops database `name` (connections to it are ended first).
    public static func drop(_ name: String, on address: PostgresAddress) throws {
        try run(#"DROP DATABASE IF EXISTS "\#(name)" WITH (FORCE)"#, on: address)
    }

    private static func run(_ sql: String, on address: PostgresAddress) throws {
        let logger = Logger(label: "pm.postgres")
        do {
            let configuration = try PostgresLedger.configuration(address)
            let connection = try PostgresConnection.connect(
                on: PostgresLedger.eventLoops.next(), configuration: configuration, id: 2, logger: logger
            ).wait()
            defer {
                let closing: EventLoopFuture<Void> = connection.close()
                try? closing.wait()
            }
            _ = try connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).wait()
        } catch {
            throw PostgresLedgerError(describing: error, address: address)
        }
    }
}
