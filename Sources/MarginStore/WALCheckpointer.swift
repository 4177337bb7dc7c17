import Dispatch
import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// Copies the write-ahead log back into the database file on a connection and thread of its own.
///
/// SQLite's automatic checkpoint runs inside the `COMMIT` that takes the WAL past 1,000 pages, on the writer's
/// connection: the committing caller waits for every page to be copied. A funding tick of a million accounts
/// commits ~250 MB of pages and then waited ~0.9 s more for that copy. Here the writer connection's WAL hook
/// (which replaces the automatic checkpoint) only wakes this thread, which runs a passive checkpoint: it
/// copies what no reader still needs, never blocks the writer or the readers, and lets the next write start
/// the WAL from its beginning once everything is copied. Durability is unchanged: a commit is durable once in
/// the WAL (`synchronous = NORMAL`), checkpointed or not.
final class WALCheckpointer: Sendable {
    /// The WAL size, in pages, past which a commit wakes the checkpointer (SQLite's own default threshold).
    static let thresholdPages: Int32 = 1_000
    /// Past this many pages (~1 GB) the committing connection checkpoints itself as well, as SQLite would:
    /// a checkpointer that cannot keep up (or whose thread is gone) never lets the WAL grow without bound.
    static let inlinePages: Int32 = 250_000

    /// What the WAL hook of the writer connection signals. Retained by the hook for the connection's life
    /// (a writer may outlive the `AppDatabase` it came from), so it is never freed: a few bytes per database.
    final class Wakeup: Sendable {
        let pending = Atomic<Bool>(false)
        let stopped = Atomic<Bool>(false)
        let semaphore = DispatchSemaphore(value: 0)
        let started = Atomic<Bool>(false)
        /// Signalled by the thread once its connection is closed.
        let finished = DispatchSemaphore(value: 0)
        /// Checkpoints run, for tests.
        let runs = Atomic<Int>(0)

        var isPending: Bool { pending.load(ordering: .acquiring) }
        var runCount: Int { runs.load(ordering: .acquiring) }

        func signal() {
            if pending.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged {
                semaphore.signal()
            }
        }
    }

    let wakeup = Wakeup()

    /// Installs the WAL hook on `db` when it is a writer connection (readers never commit). Called from the
    /// configuration's `prepareDatabase`, before the checkpointer's thread exists.
    func install(on db: Database) {
        guard !db.configuration.readonly else { return }
        let context = Unmanaged.passRetained(wakeup).toOpaque()
        sqlite3_wal_hook(
            db.sqliteConnection,
            { context, connection, name, pages in
                if pages >= WALCheckpointer.inlinePages {
                    _ = sqlite3_wal_checkpoint_v2(connection, name, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
                } else if pages >= WALCheckpointer.thresholdPages, let context {
                    Unmanaged<Wakeup>.fromOpaque(context).takeUnretainedValue().signal()
                }
                return SQLITE_OK
            }, context)
    }

    /// Starts the thread, with its own read-write connection to `path` (which must exist: the writer made it).
    func start(path: String) throws {
        var connection: OpaquePointer?
        let opened = sqlite3_open_v2(path, &connection, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        guard opened == SQLITE_OK, let connection else {
            let message = connection.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(connection)
            throw DatabaseError(resultCode: ResultCode(rawValue: opened), message: "checkpointer connection: \(message)")
        }
        sqlite3_busy_timeout(connection, 1_000)
        // A connection learns that the database is in WAL mode when it first reads it; until then a checkpoint
        // does nothing.
        let read = sqlite3_exec(connection, "SELECT count(*) FROM sqlite_master", nil, nil, nil)
        guard read == SQLITE_OK else {
            let message = String(cString: sqlite3_errmsg(connection))
            sqlite3_close(connection)
            throw DatabaseError(resultCode: ResultCode(rawValue: read), message: "checkpointer connection: \(message)")
        }
        let handle = ConnectionHandle(connection)
        let wakeup = self.wakeup
        let thread = Thread {
            while true {
                wakeup.semaphore.wait()
                if wakeup.stopped.load(ordering: .acquiring) { break }
                wakeup.pending.store(false, ordering: .releasing)
                // Passive: copies what it can without waiting for anyone; a busy or partial run is retried at
                // the next commit's signal.
                _ = sqlite3_wal_checkpoint_v2(handle.connection, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
                wakeup.runs.add(1, ordering: .releasing)
            }
            sqlite3_close(handle.connection)
            wakeup.finished.signal()
        }
        thread.name = "pm-wal-checkpoint"
        wakeup.started.store(true, ordering: .releasing)
        thread.start()
    }

    /// Stops the thread and waits until its connection is closed: whoever opens the file next (another
    /// process, a `DatabaseQueue` in the same one) must not find it still checkpointing.
    deinit {
        wakeup.stopped.store(true, ordering: .releasing)
        wakeup.semaphore.signal()
        if wakeup.started.load(ordering: .acquiring) { wakeup.finished.wait() }
    }
}

/// A SQLite connection handed to the checkpointer's thread, which alone uses it.
private struct ConnectionHandle: @unchecked Sendable {  // @unchecked: one thread uses the connection
    let connection: OpaquePointer
    init(_ connection: OpaquePointer) { self.connection = connection }
}
