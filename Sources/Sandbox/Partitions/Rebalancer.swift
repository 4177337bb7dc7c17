import Logging
import MarginStore

/// Spreads the partitions over the nodes alive, when nodes join or leave (`pm serve --partitions auto`): every
/// interval each node compares what it holds with its fair share — the partitions divided by the nodes alive, the
/// first nodes by id taking one more while some remain — and lets the partitions above its share go when another node
/// is below its own, or takes free partitions (no live lease: their node left or stopped) up to its share, catching
/// them up with the market first (``MarketFollower/adopt(_:at:)``). While a partition moves, its requests are
/// answered 50001.
package struct Rebalancer: Sendable {
    let leases: any PartitionLeases
    let follower: MarketFollower
    let database: any LedgerStore

    package init(leases: any PartitionLeases, follower: MarketFollower, database: any LedgerStore) {
        self.leases = leases
        self.follower = follower
        self.database = database
    }

    /// What node `me` should take and let go, given who is alive and who holds what, over `count` partitions.
    package static func plan(me: String, membership: PartitionMembership, count: Int) -> (take: [Int], release: [Int]) {
        let nodes = Set(membership.nodes + [me]).sorted()
        func share(_ node: String) -> Int {
            let index = nodes.firstIndex(of: node) ?? 0
            return count / nodes.count + (index < count % nodes.count ? 1 : 0)
        }
        let held = (0..<count).filter { membership.owners[$0] == me }
        let target = share(me)
        if held.count > target {
            let underShare = nodes.contains { node in node != me && (0..<count).filter { membership.owners[$0] == node }.count < share(node)
            }
            return ([], underShare ? Array(held.suffix(held.count - target)) : [])
        }
        let free = (0..<count).filter { membership.owners[$0] == nil }
        return (Array(free.prefix(target - held.count)), [])
    }

    /// One round: lets go or takes, as ``plan(me:membership:count:)`` says. Returns what moved.
    @discardableResult
    package func step() async throws -> (taken: [Int], released: [Int]) {
        let (take, release) = Self.plan(me: leases.nodeID, membership: try leases.membership(), count: database.partitions.count)
        if !release.isEmpty {
            let leases = leases
            try await follower.release(release) { try leases.release(partitions: release) }
        }
        guard !take.isEmpty else { return ([], release) }
        try leases.take(partitions: take)
        for (tick, group) in try MarketFollower.ticks(of: take, in: database).sorted(by: { $0.key < $1.key }) {
            do {
                try await follower.adopt(group, at: tick)
            } catch {
                // Not served here after all: let them go for this or another node to take again.
                try? leases.release(partitions: group)
                throw error
            }
        }
        return (take, release)
    }

    /// A round every `interval` seconds until cancelled; a failed round is logged and tried again.
    package func run(interval: Double, logger: Logger) async {
        while !Task.isCancelled {
            do {
                let moved = try await step()
                if !moved.taken.isEmpty || !moved.released.isEmpty {
                    logger.info("partitions: took \(moved.taken), let go \(moved.released); now \(leases.heldPartitions)")
                }
            } catch {
                logger.warning("rebalancing failed: \(error)")
            }
            try? await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
        }
    }
}
