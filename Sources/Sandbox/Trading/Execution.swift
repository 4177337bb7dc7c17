import MarginEngine
import MarginStore

// Fills: the one trade formula (TradeArithmetic) applied to an account, its bills, the fee to the insurance
// fund and the house on the other side.

extension Exchange {
    /// The currency a fill's fee is charged in: the settlement currency, or for spot the currency received.
    func feeCurrency(_ instrument: Instrument, isBuy: Bool) -> String {
        instrument.kind == .spot ? (isBuy ? instrument.underlying : instrument.quoteCurrency) : instrument.settleCurrency
    }

    /// Fills `size` of an order at `price`: moves the position or spot balances, realises P&L, charges the
    /// fee, writes the fill and its bills, and updates the order.
    func fill(
        _ order: inout OrderRecord, of account: inout AccountState, instrument: Instrument, size: ExactDecimal, price: ExactDecimal,
        maker: Bool, category: OrderCategory, changes: inout ChangeSet
    ) throws {
        let isBuy = order.side == .buy
        let now = clock()
        let signed = isBuy ? size : -size
        let trade = try execute(
            on: &account, instrument: instrument, size: signed, price: price, maker: maker, feeRate: nil,
            ordId: String(order.ordId), billType: category == .normal ? .trade : .liquidation, changes: &changes)
        let filledBefore = ExactDecimal(order.accFillSz) ?? .zero
        let filledAfter = filledBefore + size
        let averageBefore = ExactDecimal(order.avgPx) ?? .zero
        order.avgPx =
            filledAfter.isZero
            ? "" : (averageBefore.multiplied(by: filledBefore) + price.multiplied(by: size)).divided(by: filledAfter).description
        order.accFillSz = filledAfter.description
        order.fee = ((ExactDecimal(order.fee) ?? .zero) - trade.fee).description
        order.feeCcy = trade.feeCurrency
        order.state = filledAfter >= (ExactDecimal(order.sz) ?? .zero) ? .filled : .partiallyFilled
        order.uTime = now
        order.category = category
        if order.state == .filled { account.openOrders[order.ordId] = nil } else { account.openOrders[order.ordId] = order }
        changes.fills.append(
            FillRecord(
                tradeId: 0, ordId: order.ordId, uid: account.uid, clOrdId: order.clOrdId, instId: order.instId, side: order.side,
                fillPx: price.description, fillSz: size.description, fee: (-trade.fee).description, feeCcy: trade.feeCurrency,
                pnl: trade.realizedPnL.description, execType: maker ? "M" : "T", category: category, ts: now))
    }

    /// Applies a trade to an account's positions or spot balances and posts its bills. `feeRate` overrides the
    /// maker/taker schedule (liquidations).
    @discardableResult
    func execute(
        on account: inout AccountState, instrument: Instrument, size signed: ExactDecimal, price: ExactDecimal, maker: Bool,
        feeRate: Double?, ordId: String, billType: BillType, changes: inout ChangeSet
    ) throws -> ExecutedTrade {
        let id = instrument.id.rawValue
        let isBuy = !signed.isNegative
        let size = signed.magnitude
        let fees = parameters.fees
        let subType = isBuy ? BillSubType.buy : BillSubType.sell
        if instrument.kind == .spot {
            let rate = ExactDecimal(feeRate ?? (maker ? fees["spotMaker"] ?? 0 : fees["spotTaker"] ?? 0))
            let spot = TradeArithmetic.spotFill(instrument, sizeCoins: signed, price: price, feeRate: rate)
            let (spent, received) =
                isBuy ? (instrument.quoteCurrency, instrument.underlying) : (instrument.underlying, instrument.quoteCurrency)
            let paid = post(
                isBuy ? spot.quoteChange : spot.baseChange, spent, to: &account, type: billType, subType: subType, instId: id,
                ordId: ordId, sz: size.description, px: price.description, changes: &changes)
            let got = post(
                isBuy ? spot.baseChange : spot.quoteChange, received, to: &account, type: billType, subType: subType, instId: id,
                ordId: ordId, fee: -spot.fee, sz: size.description, px: price.description, changes: &changes)
            let charged = fund(spot.fee, spot.feeCurrency, for: account.uid, changes: &changes)
            // The house is the other side: it receives what the account paid and pays what it received.
            houseBooks(-paid, spent, for: account.uid, changes: &changes)
            houseBooks(-(got + charged), received, for: account.uid, changes: &changes)
            return ExecutedTrade(
                instrument: instrument, size: signed, price: price, realizedPnL: .zero, premium: .zero, fee: spot.fee,
                feeCurrency: spot.feeCurrency, isMaker: maker)
        }
        let option = instrument.kind == .option
        let rate = ExactDecimal(
            feeRate ?? (option ? fees["optionRate"] ?? 0 : (maker ? fees["derivativesMaker"] ?? 0 : fees["derivativesTaker"] ?? 0)))
        // Options pay at most a share of the premium, except in liquidation (an explicit fee rate).
        let cap = option && feeRate == nil ? ExactDecimal(fees["optionPremiumCap"] ?? 1) : nil
        let now = clock()
        let current = account.positions[id]
        let (position, fill) = TradeArithmetic.fill(
            instrument, held: current.map { LedgerPosition(sizeContracts: $0.pos, averagePrice: $0.avgPx) }, sizeContracts: signed,
            price: price, feeRate: rate, premiumCap: cap)
        account.positions[id] = position.map {
            PositionState(pos: $0.sizeContracts, avgPx: $0.averagePrice, cTime: current?.cTime ?? now, uTime: now)
        }
        let settle = instrument.settleCurrency
        let posted = post(
            fill.realizedPnL + fill.premium - fill.fee, settle, to: &account, type: billType, subType: subType, instId: id,
            ordId: ordId, pnl: fill.realizedPnL, fee: -fill.fee, sz: size.description, px: price.description, changes: &changes)
        let charged = fund(fill.fee, settle, for: account.uid, changes: &changes)
        // The house, on the other side, pays the realised P&L and receives the premium.
        houseBooks(-(posted + charged), settle, for: account.uid, changes: &changes)
        return ExecutedTrade(
            instrument: instrument, size: signed, price: price, realizedPnL: fill.realizedPnL, premium: fill.premium,
            fee: fill.fee, feeCurrency: settle, isMaker: maker)
    }
}
