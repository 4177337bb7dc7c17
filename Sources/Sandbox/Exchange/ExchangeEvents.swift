import MarginEngine
import MarginStore

/// What the exchange announces after each committed change (the WebSocket feed listens).
package enum ExchangeEvent: Sendable {
    /// Orders that changed (placed, filled, cancelled), with the fills made.
    case orders(uid: String, orders: [OrderRecord], fills: [FillRecord])
    /// An account's balances or positions changed.
    case account(uid: String)
    /// An account's margin ratio is at or below the warning level.
    case liquidationWarning(uid: String, marginRatio: Double)
    /// A new market tick was applied.
    case market
}

extension Exchange {
    /// Registers a listener; returns its id for ``removeListener(_:)``.
    package func addListener(_ listener: @escaping @Sendable (ExchangeEvent) -> Void) -> Int {
        nextListenerID += 1
        listeners[nextListenerID] = listener
        return nextListenerID
    }

    package func removeListener(_ id: Int) { listeners[id] = nil }

    func emit(_ event: ExchangeEvent) {
        for listener in listeners.values { listener(event) }
    }

    func publish(_ changes: ChangeSet, funded: [FundingPostings.Moved] = []) {
        guard !listeners.isEmpty else { return }
        var ordersByAccount: [String: [OrderRecord]] = [:]
        for order in changes.orders { ordersByAccount[order.uid, default: []].append(order) }
        var fillsByAccount: [String: [FillRecord]] = [:]
        for fill in changes.fills { fillsByAccount[fill.uid, default: []].append(fill) }
        for uid in Set(ordersByAccount.keys).union(fillsByAccount.keys).sorted() {
            emit(.orders(uid: uid, orders: ordersByAccount[uid] ?? [], fills: fillsByAccount[uid] ?? []))
        }
        for uid in Set(changes.accounts.keys).union(funded.map(\.uid)).sorted() { emit(.account(uid: uid)) }
    }
}
