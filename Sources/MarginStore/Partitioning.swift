/// Accounts belong to a fixed number of virtual partitions: `partition(of: uid)` is a stable hash of the account
/// id modulo the count, the same in every process, on every platform and in the database (PostgreSQL computes the
/// same value as the account's stored `partition` column with `pm_partition`). A partition is what one serving node
/// owns at a time, through its lease row (PostgreSQL); a SQLite ledger is one partition, owned by its one process.
///
/// The hash is FNV-1a (32-bit) over the id's UTF-8 bytes: Swift's `Hasher` is seeded per process, so it cannot name
/// a partition another node agrees on.
public struct LedgerPartitions: Sendable, Equatable, CustomStringConvertible {
    public let count: Int

    /// The embedded ledger (SQLite): one partition, 0.
    public static let single = LedgerPartitions(validCount: 1)
    /// A PostgreSQL ledger's partitions: fixed when the ledger is created (migration `pg-partitions`, whose
    /// `pm_partition` holds the same count), enough for 16 serving nodes.
    public static let postgres = LedgerPartitions(validCount: 16)

    private init(validCount: Int) { count = validCount }

    /// The partition an account id belongs to.
    public func partition(of uid: String) -> Int { Int(Self.stableHash(uid) % UInt32(count)) }

    /// Every partition, in order.
    public var all: [Int] { Array(0..<count) }

    /// FNV-1a, 32-bit, of the UTF-8 bytes.
    public static func stableHash(_ text: String) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }

    public var description: String { count == 1 ? "1 partition" : "\(count) partitions" }
}
