import MarginEngine
import MarginStore

// One order or cancellation staged into a change set: the order validated against the instrument and the
// book, sized, checked, then filled, rested or cancelled.

extension Exchange {
    /// One order of ``placeOrders(uid:_:)``, staged into `changes` against the account as `changes` leaves it.
    func stageOrder(uid: String, _ request: OrderRequest, into changes: inout ChangeSet) throws -> OrderRecord {
        guard var account = changes.current(uid, in: accounts) else { throw OKXError(.invalidKey, "Invalid OK-ACCESS-KEY") }
        let instrument = try liveInstrument(request.instId)
        if request.tdMode == .isolated {
            throw OKXError.parameter("tdMode isolated is not supported: the sandbox margins in cross mode only")
        }
        if instrument.kind == .spot {
            guard request.tdMode == .cash || request.tdMode == .cross else {
                throw OKXError.parameter("tdMode \(request.tdMode.rawValue) must be cash or cross for spot")
            }
        } else {
            guard request.tdMode == .cross else {
                throw OKXError.parameter("tdMode \(request.tdMode.rawValue) must be cross for \(instrument.kind.rawValue)")
            }
        }
        guard request.size.units > 0 else { throw OKXError.parameter("sz \(request.size) must be greater than 0") }
        let top = try book(instrument)
        let isBuy = request.side == .buy
        let limitPrice: ExactDecimal?
        if request.ordType.hasNoLimitPrice {
            limitPrice = nil
        } else {
            guard let price = request.price else { throw OKXError.empty("px") }
            guard price.units > 0 else { throw OKXError.parameter("px \(price) must be greater than 0") }
            let tick = ExactDecimal(instrument.tickSize)
            guard price.divided(by: tick).rounded(toScale: 0).multiplied(by: tick) == price else {
                throw OKXError.parameter("px \(price) must be a multiple of the tick size \(tick) of \(instrument.id)")
            }
            limitPrice = price
        }
        // Size in contracts (base coins for spot); a spot market buy may be sized in the quote currency.
        var size = request.size
        let lot = ExactDecimal(instrument.lotSize)
        // OKX's default: a spot market buy is sized in the quote currency unless tgtCcy says base_ccy.
        let quoteSized =
            request.tgtCcy == "quote_ccy"
            || (request.tgtCcy.isEmpty && isBuy && request.ordType.hasNoLimitPrice)
        if instrument.kind == .spot, quoteSized {
            let reference = limitPrice ?? (isBuy ? top.ask : top.bid)
            // The most whole lots the amount pays for (never spending more than sz).
            size = request.size.divided(by: reference).divided(by: lot).rounded(toScale: 0).multiplied(by: lot)
            if size.multiplied(by: reference) > request.size { size -= lot }
            if !(size.units > 0) {
                throw OKXError(
                    .belowMinimumSize, "Order amount \(request.size) \(instrument.quoteCurrency) is below one lot of \(instrument.id)")
            }
        } else {
            guard size.divided(by: lot).rounded(toScale: 0).multiplied(by: lot) == size else {
                throw OKXError(.notLotMultiple, "Order quantity sz \(request.size) must be a multiple of the lot size \(lot)")
            }
        }
        guard size >= ExactDecimal(instrument.minimumSize) else {
            throw OKXError(
                .belowMinimumSize, "Order amount sz \(size) must be at least the minimum size \(ExactDecimal(instrument.minimumSize))")
        }
        if request.reduceOnly {
            let position = account.positions[instrument.id.rawValue]?.pos ?? .zero
            let reduces = isBuy ? position.isNegative && size <= -position : position.units > 0 && size <= position
            guard instrument.kind != .spot, reduces else {
                throw OKXError(
                    .reduceOnlyDoesNotReduce, "Order failed because reduceOnly sz \(size) does not reduce the position of \(instrument.id)")
            }
        }
        // Marketable?
        let marketable: Bool
        if let limitPrice {
            marketable = isBuy ? limitPrice >= top.ask : limitPrice <= top.bid
        } else {
            marketable = true
        }
        if request.ordType == .postOnly, marketable {
            throw OKXError(
                .postOnlyWouldTake, "Post only order px \(limitPrice ?? .zero) would take liquidity (book \(top.bid)/\(top.ask))")
        }
        let fillPrice = marketable ? (isBuy ? top.ask : top.bid) : (limitPrice ?? top.mark)
        let willRest = !marketable && request.ordType.rests
        let now = clock()
        var order = OrderRecord(
            ordId: nextOrderID(for: uid), uid: uid, clOrdId: request.clOrdId, instId: instrument.id.rawValue, tdMode: request.tdMode,
            side: request.side, ordType: request.ordType, px: limitPrice?.description ?? "", sz: size.description,
            tgtCcy: request.tgtCcy, reduceOnly: request.reduceOnly, state: .live, accFillSz: "0", avgPx: "", fee: "0",
            feeCcy: feeCurrency(instrument, isBuy: isBuy), category: .normal, tag: request.tag, cTime: now, uTime: now)
        // Balance and margin, with open orders counted as filled.
        if marketable || willRest {
            try checkCapacity(account, adding: order, at: fillPrice, instrument: instrument, reduceOnly: request.reduceOnly)
        }
        takeOrderID(for: uid)
        let old = account
        if marketable {
            try fill(
                &order, of: &account, instrument: instrument, size: size, price: fillPrice, maker: false, category: .normal,
                changes: &changes)
        } else if willRest {
            account.openOrders[order.ordId] = order
        } else {
            order.state = .canceled  // an ioc or fok order that cannot fill
        }
        changes.orders.append(order)
        changes.touch(account, previous: old)
        return order
    }

    /// One cancellation of ``cancelOrders(uid:_:)``, staged into `changes`.
    func stageCancel(uid: String, instId: String, ordId: String?, clOrdId: String?, into changes: inout ChangeSet) throws -> OrderRecord {
        guard var account = changes.current(uid, in: accounts) else { throw OKXError(.invalidKey, "Invalid OK-ACCESS-KEY") }
        let match = account.openOrders.values.first { order in
            order.instId == instId && (ordId.map { String(order.ordId) == $0 } ?? (clOrdId.map { order.clOrdId == $0 } ?? false))
        }
        guard var order = match else {
            throw OKXError(
                .cancelFailed,
                "Cancellation failed as the order does not exist or is not open: ordId \(ordId ?? "") clOrdId \(clOrdId ?? "") on \(instId)"
            )
        }
        let old = account
        order.state = .canceled
        order.uTime = clock()
        account.openOrders[order.ordId] = nil
        changes.orders.append(order)
        changes.touch(account, previous: old)
        return order
    }
}
