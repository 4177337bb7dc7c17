import Foundation
import MarginEngine
import MarginStorePostgres
import MarketFeedHTTP
import Sandbox
import Synchronization

/// Forwards a request for an account of a partition this node does not hold to the node that holds it (the URL its
/// lease row advertises), over HTTP, with the client's signed headers and body unchanged; the owner authenticates
/// it again and its answer is relayed as it is. Owners are looked up in the ledger, and remembered for a second.
final class OwnerForwarder: RequestForwarder {
    let ledger: PostgresLedger
    /// This node's own id: a partition it holds is never forwarded (the API serves it).
    let node: String
    /// How long a forwarded request may take: the owner answers in milliseconds; one that does not answer within this
    /// is stopped or paused (its lease runs out within 10 s), and the client is better told 50001 than kept waiting.
    static let timeoutSeconds = 5.0
    private let owners = Mutex<[Int: (url: String, until: ContinuousClock.Instant)]>([:])

    init(ledger: PostgresLedger, node: String) {
        self.ledger = ledger
        self.node = node
    }

    /// The owner's URL, from memory for a second after it was read.
    func ownerURL(_ partition: Int, fresh: Bool) -> String? {
        let now = ContinuousClock.now
        if !fresh, let known = owners.withLock({ $0[partition] }), known.until > now { return known.url }
        guard let owner = try? ledger.owner(of: partition), owner.node != node, !owner.url.isEmpty else {
            owners.withLock { $0[partition] = nil }
            return nil
        }
        owners.withLock { $0[partition] = (owner.url, now + .seconds(1)) }
        return owner.url
    }

    func forward(_ request: APIRequest, partition: Int) async -> APIResponse? {
        // A remembered owner that no longer answers is looked up again once, for a read. A write that got no answer
        // may have been done: it is not sent again (the client learns the outcome by its clOrdId).
        for fresh in request.method == "GET" ? [false, true] : [false] {
            guard let url = ownerURL(partition, fresh: fresh) else { return nil }
            var headers: [(String, String)] = request.headers.filter { !["host", "content-length", "connection"].contains($0.key) }
                .map { ($0.key, $0.value) }
            headers.append((RequestForwarding.header, node))
            do {
                let answer = try await HTTPRequest.send(
                    request.method, url + request.rawTarget, headers: headers, body: request.body.isEmpty ? nil : request.body,
                    timeoutSeconds: Self.timeoutSeconds)
                let envelope = try JSONParser.parse(answer.body)
                return APIResponse(status: answer.status, envelope: envelope)
            } catch {
                if request.method == "GET" { continue }
                return .error(
                    OKXError(
                        .requestTimeout,
                        "Endpoint request timeout: the node serving this account did not answer (\(error)); the request may or may not have been carried out: look the order up by clOrdId, or send it again with the same clOrdId"
                    ))
            }
        }
        return nil
    }
}
