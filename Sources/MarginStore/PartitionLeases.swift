/// Who serves what, when several nodes share one ledger (PostgreSQL): the nodes alive now and the owner of each
/// partition whose lease has not expired.
public struct PartitionMembership: Sendable, Equatable {
    /// The ids of the nodes alive (their heartbeat is recent), in order.
    public var nodes: [String]
    /// Each partition with a live lease, and its owner.
    public var owners: [Int: String]

    public init(nodes: [String], owners: [Int: String]) {
        self.nodes = nodes
        self.owners = owners
    }
}

/// A serving node's side of the partition leases: what it holds, who else is there, and taking and letting go of
/// partitions while it runs (rebalancing).
public protocol PartitionLeases: Sendable {
    /// This node's id.
    var nodeID: String { get }
    /// The partitions this node holds, in order.
    var heldPartitions: [Int] { get }
    func membership() throws -> PartitionMembership
    /// Takes the leases of `partitions` (all or none).
    func take(partitions: [Int]) throws
    /// Lets the leases of `partitions` go, once nothing of this node writes them any more.
    func release(partitions: [Int]) throws
    /// Lets every lease go and leaves the nodes alive (a graceful stop), so the others take the partitions at once.
    func leave() throws
}
