import MarginEngine
import MarginStore
import Synchronization

// Placing and cancelling: the API's submissions are queued and committed together (group commit), each
// item staged against the state the earlier ones left.

extension Exchange {
    /// Places an order: validates it, checks balance and margin with open orders counted as filled, fills
    /// at once what is marketable (taker) and rests the rest (maker), all in one transaction.
    /// Returns the order record as stored.
    package func placeOrder(uid: String, _ request: OrderRequest) throws -> OrderRecord {
        try placeOrders(uid: uid, [request])[0].get()
    }

    /// Places orders one after the other, as `batch-orders` does: each is checked against the account as the
    /// orders before it left it (their margin counts), a refused one changes nothing, and every accepted one
    /// is stored in one transaction. If that transaction fails, every order of the batch fails with 50000 and
    /// nothing is changed. One transaction per batch rather than per order: the commit (SQLite's WAL append,
    /// its file locks, GRDB's bookkeeping) was most of the exchange's time per order.
    package func placeOrders(uid: String, _ requests: [OrderRequest]) -> [Result<OrderRecord, OKXError>] {
        process([(uid, .place(requests))])[0]
    }

    /// Cancels orders one after the other, as `cancel-batch-orders` does, storing every cancellation in one
    /// transaction (all fail with 50000, nothing changed, if it fails).
    package func cancelOrders(uid: String, _ requests: [CancelRequest]) -> [Result<OrderRecord, OKXError>] {
        process([(uid, .cancel(requests))])[0]
    }

    /// What the API submits: one request's orders to place or cancel, for one account.
    package enum TradeRequests: Sendable {
        case place([OrderRequest])
        case cancel([CancelRequest])
    }

    /// Group commit: waits in a queue with the submissions of other connections that arrive meanwhile; the
    /// queue is then processed in arrival order exactly as ``placeOrders(uid:_:)`` and
    /// ``cancelOrders(uid:_:)`` would one after the other (each item against the state the earlier ones left,
    /// a refusal changing nothing), and everything accepted is stored in one transaction before anyone is
    /// answered. Under load many requests share a commit; alone, a request waits for no one.
    ///
    /// The caller announces itself first (``announceSubmission()``, outside the actor): when nobody else is
    /// announced, the queue is processed at once; otherwise the processing is a new job on this actor, behind
    /// the submissions already waiting for it, so they join the group. A lone client thus pays no extra hop.
    package func submit(uid: String, _ requests: TradeRequests) async -> [Result<OrderRecord, OKXError>] {
        await withCheckedContinuation { reply in
            queuedSubmissions.append((uid, requests, reply))
            let othersComing = announcedSubmissions.subtract(1, ordering: .relaxed).newValue > 0
            if !othersComing {
                drainSubmissions()
            } else if !drainScheduled {
                drainScheduled = true
                Task { self.drainSubmissions() }
            }
        }
    }

    /// Called before awaiting ``submit(uid:_:)``: counts a submission on its way to the actor.
    package nonisolated func announceSubmission() {
        announcedSubmissions.add(1, ordering: .relaxed)
    }

    func drainSubmissions() {
        drainScheduled = false
        guard !queuedSubmissions.isEmpty else { return }
        let group = queuedSubmissions
        queuedSubmissions = []
        let results = process(group.map { ($0.uid, $0.requests) })
        for (entry, result) in zip(group, results) { entry.reply.resume(returning: result) }
    }

    /// Stages every item of every submission into one change set, in order (a refused item leaves the set as
    /// it was), then commits the set once. If the commit fails, every item staged fails with 50000, the order
    /// ids are handed out again, and nothing is changed.
    func process(_ submissions: [(uid: String, requests: TradeRequests)]) -> [[Result<OrderRecord, OKXError>]] {
        let firstOrderIDs = nextOrderIDs
        var changes = ChangeSet()
        var results: [[Result<OrderRecord, OKXError>]] = []
        var staged = false
        // The clOrdIds already used, by a stored order or an earlier one of this group: an order retried after its
        // answer was lost is refused (51016), never placed twice. One read for the whole group.
        var asked: [ClientOrderKey] = []
        for submission in submissions {
            guard case .place(let requests) = submission.requests else { continue }
            for request in requests where !request.clOrdId.isEmpty {
                asked.append(ClientOrderKey(uid: submission.uid, clOrdId: request.clOrdId))
            }
        }
        var used = Set<ClientOrderKey>()
        var unchecked: String?
        if !asked.isEmpty {
            do { used = try database.storedClientOrderIDs(asked) } catch { unchecked = "\(error)" }
        }
        for submission in submissions {
            var outcome: [Result<OrderRecord, OKXError>] = []
            func attempt(_ stage: (inout ChangeSet) throws -> OrderRecord) {
                var trial = changes
                do {
                    let order = try stage(&trial)
                    changes = trial
                    staged = true
                    outcome.append(.success(order))
                } catch {
                    outcome.append(.failure(Self.okxError(error)))
                }
            }
            if !holds(submission.uid) {
                // The account's partition went to another node while this submission waited: it is not served here.
                let moving = OKXError(.serviceUnavailable, "Service temporarily unavailable: the account is moving to another node; retry")
                switch submission.requests {
                case .place(let requests): outcome = requests.map { _ in .failure(moving) }
                case .cancel(let requests): outcome = requests.map { _ in .failure(moving) }
                }
                results.append(outcome)
                continue
            }
            switch submission.requests {
            case .place(let requests):
                for request in requests {
                    let key = ClientOrderKey(uid: submission.uid, clOrdId: request.clOrdId)
                    attempt { changes in
                        if !request.clOrdId.isEmpty {
                            if let unchecked {
                                throw OKXError(.internalError, "The clOrdId could not be checked against the stored orders (\(unchecked))")
                            }
                            guard !used.contains(key) else {
                                throw OKXError(
                                    .duplicateClientOrderID, "Duplicated clOrdId \(request.clOrdId): the account already placed it")
                            }
                        }
                        return try stageOrder(uid: submission.uid, request, into: &changes)
                    }
                    if !request.clOrdId.isEmpty, case .success? = outcome.last { used.insert(key) }
                }
            case .cancel(let requests):
                for request in requests {
                    attempt {
                        try stageCancel(
                            uid: submission.uid, instId: request.instId, ordId: request.ordId, clOrdId: request.clOrdId, into: &$0)
                    }
                }
            }
            results.append(outcome)
        }
        metrics.groupCommit(submissions: submissions.count)
        guard staged else { return results }
        let commitStart = ContinuousClock.now
        defer { metrics.groupCommit(duration: ContinuousClock.now - commitStart) }
        do {
            try commit(changes)
        } catch {
            nextOrderIDs = firstOrderIDs
            return zip(submissions, results).map { submission, outcome in
                let noun: String
                switch submission.requests {
                case .place: noun = "order"
                case .cancel: noun = "cancellation"
                }
                return outcome.map { result in
                    result.flatMap { _ in
                        .failure(OKXError(.internalError, "The \(noun) could not be stored; nothing was changed: \(error)"))
                    }
                }
            }
        }
        return results
    }

    static func okxError(_ error: any Error) -> OKXError {
        if let error = error as? OKXError { return error }
        if let error = error as? EngineError { return .engine(error) }
        return OKXError(.internalError, "\(error)")
    }

    /// Cancels an open order of `uid` by ordId or clOrdId.
    package func cancelOrder(uid: String, instId: String, ordId: String?, clOrdId: String?) throws -> OrderRecord {
        try cancelOrders(uid: uid, [CancelRequest(instId: instId, ordId: ordId, clOrdId: clOrdId)])[0].get()
    }
}
