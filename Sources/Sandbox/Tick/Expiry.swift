import MarginEngine
import MarginStore

extension Exchange {
    /// Settles futures and options that expired in `(start, end]` against the index (delivery bills, the
    /// parameter set's settlement fee on the notional), and cancels their open orders. Only holders of an
    /// expiring instrument and accounts with open orders are visited.
    func settleExpiries(from start: UnixMillis, to end: UnixMillis, at snapshot: MarketSnapshot, changes: inout ChangeSet) throws -> Int {
        var expiring = Set<Int32>()
        for (index, instrument) in risk.table.instruments.enumerated() {
            if let expiry = instrument.expiry, expiry > start, expiry <= end { expiring.insert(Int32(index)) }
        }
        var visit = Set(holders { expiring.contains($0) }.map { risk.uids[$0] })
        for uid in accountsWithOpenOrders {
            guard let account = accounts[uid] else { continue }
            let expires = account.openOrders.values.contains { order in
                catalog.instrument(order.instId)?.expiry.map { $0 <= end } ?? false
            }
            if expires { visit.insert(uid) }
        }
        let feeRate = ExactDecimal(parameters.settlementFeeRate)
        var settled = 0
        for uid in visit.sorted() {
            guard let account = changes.current(uid, in: accounts) else { continue }
            var updated = account
            var touched = false
            for (ordId, order) in account.openOrders.sorted(by: { $0.key < $1.key }) {
                guard let instrument = catalog.instrument(order.instId), let expiry = instrument.expiry, expiry <= end else { continue }
                var cancelled = order
                cancelled.state = .canceled
                cancelled.uTime = clock()
                updated.openOrders[ordId] = nil
                changes.orders.append(cancelled)
                touched = true
            }
            for (id, position) in account.positions.sorted(by: { $0.key < $1.key }) {
                guard let instrument = catalog.instrument(id), let expiry = instrument.expiry, expiry > start, expiry <= end,
                    let index = try? snapshot.index(
                        base: instrument.underlying, quote: instrument.margining == .linear ? instrument.quoteCurrency : "USD")
                else { continue }
                let settlement = ExactDecimal(index)
                if instrument.kind == .option, let strike = instrument.id.strikeUSD, let kind = instrument.id.optionKind {
                    let intrinsic = max(kind == .call ? index - strike : strike - index, 0) / index
                    let coins = position.pos.multiplied(by: ExactDecimal(instrument.coinsPerContract))
                    let payout = coins.multiplied(by: ExactDecimal(intrinsic))
                    let fee = LedgerAmount(instrument.settleCurrency, coins.magnitude.multiplied(by: feeRate)).amount
                    let paid = post(
                        payout - fee, instrument.settleCurrency, to: &updated, type: .delivery, subType: BillSubType.delivery, instId: id,
                        pnl: payout,
                        fee: -fee, sz: position.pos.magnitude.description, px: settlement.description,
                        notes: payout.isZero ? "option expired worthless" : "option exercise at expiry", always: true, changes: &changes)
                    let charged = fund(fee, instrument.settleCurrency, for: updated.uid, changes: &changes)
                    houseBooks(-(paid + charged), instrument.settleCurrency, for: updated.uid, changes: &changes)
                    updated.positions[id] = nil
                } else {
                    try execute(
                        on: &updated, instrument: instrument, size: -position.pos, price: settlement, maker: false,
                        feeRate: parameters.settlementFeeRate, ordId: "", billType: .delivery, changes: &changes)
                }
                settled += 1
                touched = true
            }
            if touched { changes.touch(updated, previous: account) }
        }
        return settled
    }
}
