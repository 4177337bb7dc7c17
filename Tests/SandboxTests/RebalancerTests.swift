import MarginStore
import MarginTestSupport
import Testing

@testable import Sandbox

/// How partitions spread over the nodes alive: each node's share is the partitions divided by the nodes, the first
/// nodes by id taking one more; a node above its share lets the excess go only when another is below its own; a node
/// below takes free partitions.
@Suite struct RebalancerTests {
    static func owners(_ spec: [String: ClosedRange<Int>]) -> [Int: String] {
        var owners: [Int: String] = [:]
        for (node, range) in spec { for partition in range { owners[partition] = node } }
        return owners
    }

    @Test func aNodeThatJoinsIsGivenItsShare() {
        let membership = PartitionMembership(nodes: ["a", "b", "c"], owners: Self.owners(["a": 0...7, "b": 8...15]))
        // Shares 6, 5, 5: a lets 2 go, b lets 3 go, c takes none until they are free.
        #expect(Rebalancer.plan(me: "a", membership: membership, count: 16) == ([], [6, 7]))
        #expect(Rebalancer.plan(me: "b", membership: membership, count: 16) == ([], [13, 14, 15]))
        #expect(Rebalancer.plan(me: "c", membership: membership, count: 16) == ([], []))
        let freed = PartitionMembership(nodes: ["a", "b", "c"], owners: Self.owners(["a": 0...5, "b": 8...12]))
        #expect(Rebalancer.plan(me: "c", membership: freed, count: 16) == ([6, 7, 13, 14, 15], []))
    }

    @Test func theNodesLeftTakeTheLeaversPartitions() {
        // c stopped: its heartbeat and leases expired.
        let membership = PartitionMembership(nodes: ["a", "b"], owners: Self.owners(["a": 0...5, "b": 6...10]))
        #expect(Rebalancer.plan(me: "a", membership: membership, count: 16) == ([11, 12], []))
        #expect(Rebalancer.plan(me: "b", membership: membership, count: 16) == ([11, 12, 13], []))
    }

    @Test func aLoneNodeTakesEverythingAndABalancedGroupStaysPut() {
        let alone = PartitionMembership(nodes: [], owners: [:])
        #expect(Rebalancer.plan(me: "a", membership: alone, count: 16) == (Array(0..<16), []))
        let balanced = PartitionMembership(nodes: ["a", "b", "c"], owners: Self.owners(["a": 0...5, "b": 6...10, "c": 11...15]))
        for node in ["a", "b", "c"] { #expect(Rebalancer.plan(me: node, membership: balanced, count: 16) == ([], [])) }
        // Above its share: the excess goes, the highest first.
        let uneven = PartitionMembership(nodes: ["a", "b"], owners: Self.owners(["a": 0...9, "b": 10...15]))
        #expect(Rebalancer.plan(me: "a", membership: uneven, count: 16) == ([], [8, 9]))
        // A node whose heartbeat stopped but whose leases still run keeps them until they expire.
        let silent = PartitionMembership(nodes: ["a"], owners: Self.owners(["a": 0...7, "x": 8...15]))
        #expect(Rebalancer.plan(me: "a", membership: silent, count: 16) == ([], []))
    }

    /// Whatever the nodes and who holds what, rounds of every node acting on its plan (in a random order, each on
    /// what the others left) settle within a few rounds on every partition held once, each node at its share.
    @Test(arguments: 0..<200)
    func roundsSettleOnTheShares(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        func random(_ bound: Int) -> Int { Int.random(in: 0..<bound, using: &generator) }
        let count = [1, 4, 16][random(3)]
        let nodes = (0..<(1 + random(5))).map { "n\($0)" }
        var owners: [Int: String] = [:]
        // Some partitions held by nodes alive, some by a node that left (expired: not in owners), some free.
        for partition in 0..<count where random(3) > 0 { owners[partition] = nodes[random(nodes.count)] }
        var rounds = 0
        while rounds < 10 {
            var moved = false
            for node in nodes.shuffled(using: &generator) {
                let plan = Rebalancer.plan(me: node, membership: PartitionMembership(nodes: nodes, owners: owners), count: count)
                for partition in plan.release { owners[partition] = nil }
                for partition in plan.take {
                    #expect(owners[partition] == nil, "took partition \(partition), held by \(owners[partition] ?? "")")
                    owners[partition] = node
                }
                moved = moved || !plan.take.isEmpty || !plan.release.isEmpty
            }
            rounds += 1
            if !moved { break }
        }
        #expect(rounds < 10, "no settling: \(owners)")
        #expect(owners.count == count)
        let held = nodes.map { node in owners.values.filter { $0 == node }.count }
        #expect(held.max()! - held.min()! <= 1, "\(held)")
    }
}
