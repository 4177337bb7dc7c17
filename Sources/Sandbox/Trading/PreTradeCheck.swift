import MarginEngine
import MarginStore

// The pre-trade check: balance and margin with open orders counted as filled, in the account's mode.

extension Exchange {
    /// Refuses an order the account cannot carry (spot balance; margin with open orders counted as filled).
    func checkCapacity(
        _ account: AccountState, adding order: OrderRecord, at price: ExactDecimal, instrument: Instrument, reduceOnly: Bool
    ) throws {
        var pending = Array(account.openOrders.values)
        if instrument.kind == .spot {
            // Cash mode and auto-borrow off: the spent currency must be covered by the balance left after
            // every open order that spends it.
            let spent = order.side == .buy ? instrument.quoteCurrency : instrument.underlying
            pending.append(order)
            var spendable = account.balances[spent] ?? .zero
            for open in pending {
                guard let openInstrument = catalog.instrument(open.instId), openInstrument.kind == .spot else { continue }
                let openSize = (ExactDecimal(open.sz) ?? .zero) - (ExactDecimal(open.accFillSz) ?? .zero)
                let openPrice = open.ordId == order.ordId ? price : (ExactDecimal(open.px) ?? price)
                if open.side == .buy, openInstrument.quoteCurrency == spent { spendable -= openSize.multiplied(by: openPrice) }
                if open.side == .sell, openInstrument.underlying == spent { spendable -= openSize }
            }
            if spendable.isNegative {
                let borrow = order.tdMode == .cross && account.record.autoLoan
                if !borrow {
                    throw OKXError.insufficient(
                        "\(spent) balance \((account.balances[spent] ?? .zero)) does not cover the order and the open orders (auto-borrow is off)"
                    )
                }
                let index = (try? market.indexUSD(spent)) ?? 1
                let limit = ExactDecimal(parameters.borrowLimit(for: spent, indexUSD: index))
                if -spendable > limit {
                    throw OKXError.insufficient("borrowing \(-spendable) \(spent) would exceed the borrow limit \(limit)")
                }
            }
        }
        if reduceOnly { return }
        let proposed = try figures(account, withOrders: Array(account.openOrders.values), extra: order, price: price)
        // The figures without the order matter only when the order is over the limit (an order that lowers the
        // IMR is still accepted): computed then, not for every order (the margin check was a quarter of the
        // exchange's time per order).
        if proposed.totalImrUSD > proposed.adjustedEquityUSD,
            !(proposed.totalImrUSD
                < (try figures(account, withOrders: Array(account.openOrders.values), extra: nil, price: price)).totalImrUSD)
        {
            throw OKXError.insufficient(
                "total IMR \(MoneyText.usd(proposed.totalImrUSD)) USD with open orders filled would exceed adjusted equity \(MoneyText.usd(proposed.adjustedEquityUSD)) USD"
            )
        }
    }

    /// The account as the engine sees it: positions and balances in `Double`, pending interest deducted.
    func portfolio(_ account: AccountState) -> Portfolio { Self.portfolio(account, catalog: catalog) }

    static func portfolio(_ account: AccountState, catalog: InstrumentCatalog) -> Portfolio {
        var positions: [Position] = []
        for (id, position) in account.positions.sorted(by: { $0.key < $1.key }) {
            guard let instrument = catalog.instrument(id) else { continue }
            positions.append(
                Position(
                    instrument: instrument, ledger: LedgerPosition(sizeContracts: position.pos, averagePrice: position.avgPx), source: id,
                    leverage: account.leverage[id]?.doubleValue))
        }
        var balances: [String: Double] = [:]
        for (currency, balance) in account.balances {
            balances[currency] = (balance - (account.pendingInterest[currency] ?? .zero)).doubleValue
        }
        for (currency, pending) in account.pendingInterest where balances[currency] == nil { balances[currency] = -pending.doubleValue }
        return Portfolio(positions: positions, cashBalances: balances, chosenSpotInUse: account.chosenSpotInUse.mapValues(\.doubleValue))
    }

    /// The account's figures in its mode with `orders` (and `extra`) counted as filled at their prices, from
    /// the market's scenario vectors (``figures(of:level:)``).
    func figures(
        _ account: AccountState, withOrders orders: [OrderRecord], extra: OrderRecord?, price: ExactDecimal
    ) throws -> AccountFigures {
        var portfolio = portfolio(account)
        for order in orders + (extra.map { [$0] } ?? []) {
            guard let instrument = catalog.instrument(order.instId) else { continue }
            let size = (ExactDecimal(order.sz) ?? .zero) - (ExactDecimal(order.accFillSz) ?? .zero)
            let orderPrice = (extra.map { $0.ordId == order.ordId } ?? false) ? price : (ExactDecimal(order.px) ?? price)
            let signed = order.side == .buy ? size.doubleValue : -size.doubleValue
            // Counted as filled without inventing profit: a buy at no better than the mark, a sell at no
            // better than the mark; a new derivative position enters at the mark (no unrealised P&L).
            let mark = (try? market.market(for: instrument, path: order.instId).markPrice) ?? orderPrice.doubleValue
            let conservative = order.side == .buy ? max(orderPrice.doubleValue, mark) : min(orderPrice.doubleValue, mark)
            if instrument.kind == .spot {
                portfolio.cashBalances[instrument.underlying, default: 0] += signed
                portfolio.cashBalances[instrument.quoteCurrency, default: 0] -= signed * conservative
            } else if let index = portfolio.positions.firstIndex(where: { $0.instrument.id == instrument.id }) {
                let current = portfolio.positions[index]
                let combined = current.sizeContracts + signed
                if combined != 0, current.sizeContracts * signed > 0 {
                    // Adding at the mark: the entry price moves so the existing P&L is kept.
                    portfolio.positions[index].averagePrice =
                        (current.sizeContracts * current.averagePrice + signed * mark) / combined
                }
                portfolio.positions[index].sizeContracts = combined
            } else {
                portfolio.positions.append(
                    Position(
                        instrument: instrument, sizeContracts: signed, averagePrice: mark,
                        source: order.instId, leverage: account.leverage[order.instId]?.doubleValue))
            }
        }
        portfolio.positions.removeAll { $0.sizeContracts == 0 }
        do {
            return try figures(of: portfolio, level: account.level)
        } catch {
            throw OKXError.engine(error)
        }
    }
}
