import MarginStore

/// Sends a request to the node that holds an account's partition, when several `pm serve` nodes share one ledger:
/// any node authenticates a private request, and one for an account of a partition it does not hold goes to that
/// partition's owner, whose answer is relayed as it is.
public protocol RequestForwarder: Sendable {
    /// The owner's answer to `request` (sent with ``RequestForwarding/header`` set), or nil when no node holds
    /// `partition` now (it is moving between nodes, or its node stopped and no other took it yet).
    func forward(_ request: APIRequest, partition: Int) async -> APIResponse?
}

public enum RequestForwarding {
    /// Marks a request one node sent to another: the receiver answers it or refuses it (50001), and never sends it
    /// on, so a partition that moved meanwhile costs the client a retry, not a loop.
    public static let header = "x-pm-forwarded-by"
}

extension SandboxAPI {
    /// A request for account `uid`, which another node serves: that node's answer, or OKX's "service temporarily
    /// unavailable" (50001, which ccxt retries) while the account's partition has no live owner. A request already
    /// forwarded once is refused rather than sent on.
    func forward(_ request: APIRequest, uid: String) async -> APIResponse {
        let partition = exchange.partitions.partition(of: uid)
        if request.headers[RequestForwarding.header] == nil, let forwarder,
            let answer = await forwarder.forward(request, partition: partition)
        {
            return answer
        }
        return .error(
            OKXError(
                .serviceUnavailable,
                "Service temporarily unavailable: account \(uid) is in partition \(partition), which no node serves right now (it is moving); retry"
            ))
    }
}
