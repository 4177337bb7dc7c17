import MarginEngine
import MarginStore
import Synchronization

/// An order request, already parsed into typed fields.
public struct OrderRequest: Sendable {
    public var instId: String
    public var tdMode: String
    public var side: String
    public var ordType: String
    public var size: ExactDecimal
    public var price: ExactDecimal?
    public var tgtCcy: String
    public var clOrdId: String
    public var tag: String
    public var reduceOnly: Bool
}

/// One cancellation: the order's instrument and its ordId or clOrdId (ordId wins when both are given).
public struct CancelRequest: Sendable {
    public var instId: String
    public var ordId: String?
    public var clOrdId: String?

    public init(instId: String, ordId: String?, clOrdId: String?) {
        self.instId = instId
        self.ordId = ordId
        self.clOrdId = clOrdId
    }
}

/// The top of the simulated book of an instrument.
public struct BookTop: Sendable {
    public var bid: ExactDecimal
    public var ask: ExactDecimal
    public var mark: ExactDecimal
}

extension Exchange {
    /// The simulated top of book around the mark: `mark × (1 ∓ half-spread)`, bid rounded down and ask up
    /// to the tick. Spot uses the pair's index as its mark.
    func book(_ instrument: Instrument) throws -> BookTop {
        let resolved: InstrumentMarket
        do { resolved = try market.market(for: instrument, path: "instId") } catch { throw OKXError.engine(error) }
        let halfSpread = parameters.halfSpread[parameters.tier(of: instrument.underlying)] ?? 0
        let tick = ExactDecimal(instrument.tickSize)
        let mark = ExactDecimal(max(resolved.markPrice, instrument.tickSize))
        func onTick(_ value: Double, up: Bool) -> ExactDecimal {
            let ticks = (value / instrument.tickSize).rounded(up ? .up : .down)
            return ExactDecimal(Swift.max(ticks, 1)).multiplied(by: tick)
        }
        return BookTop(
            bid: onTick(resolved.markPrice * (1 - halfSpread), up: false), ask: onTick(resolved.markPrice * (1 + halfSpread), up: true),
            mark: mark)
    }

    /// The live instrument with this id (listed and not expired at market time).
    func liveInstrument(_ id: String) throws -> Instrument {
        guard !id.isEmpty else { throw OKXError.empty("instId") }
        guard let instrument = catalog.instrument(id) else { throw OKXError.unknownInstrument(id) }
        if let expiry = instrument.expiry, expiry <= market.valuationTime {
            throw OKXError("51001", "Instrument ID does not exist: \(id) expired at \(expiry.iso8601)")
        }
        return instrument
    }

    // MARK: - Placing orders

    /// Places an order: validates it, checks balance and margin with open orders counted as filled, fills
    /// at once what is marketable (taker) and rests the rest (maker), all in one transaction.
    /// Returns the order record as stored.
    public func placeOrder(uid: String, _ request: OrderRequest) throws -> OrderRecord {
        try placeOrders(uid: uid, [request])[0].get()
    }

    /// Places orders one after the other, as `batch-orders` does: each is checked against the account as the
    /// orders before it left it (their margin counts), a refused one changes nothing, and every accepted one
    /// is stored in one transaction. If that transaction fails, every order of the batch fails with 50000 and
    /// nothing is changed. One transaction per batch rather than per order: the commit (SQLite's WAL append,
    /// its file locks, GRDB's bookkeeping) was most of the exchange's time per order.
    public func placeOrders(uid: String, _ requests: [OrderRequest]) -> [Result<OrderRecord, OKXError>] {
        process([(uid, .place(requests))])[0]
    }

    /// Cancels orders one after the other, as `cancel-batch-orders` does, storing every cancellation in one
    /// transaction (all fail with 50000, nothing changed, if it fails).
    public func cancelOrders(uid: String, _ requests: [CancelRequest]) -> [Result<OrderRecord, OKXError>] {
        process([(uid, .cancel(requests))])[0]
    }

    /// What the API submits: one request's orders to place or cancel, for one account.
    public enum TradeRequests: Sendable {
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
    public func submit(uid: String, _ requests: TradeRequests) async -> [Result<OrderRecord, OKXError>] {
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
    public nonisolated func announceSubmission() {
        announcedSubmissions.add(1, ordering: .relaxed)
    }

    private func drainSubmissions() {
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
    private func process(_ submissions: [(uid: String, requests: TradeRequests)]) -> [[Result<OrderRecord, OKXError>]] {
        let firstOrderID = nextOrderID
        var changes = ChangeSet()
        var results: [[Result<OrderRecord, OKXError>]] = []
        var staged = false
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
            switch submission.requests {
            case .place(let requests):
                for request in requests { attempt { try stageOrder(uid: submission.uid, request, into: &$0) } }
            case .cancel(let requests):
                for request in requests {
                    attempt { try stageCancel(uid: submission.uid, instId: request.instId, ordId: request.ordId, clOrdId: request.clOrdId, into: &$0) }
                }
            }
            results.append(outcome)
        }
        guard staged else { return results }
        do {
            try commit(changes)
        } catch {
            nextOrderID = firstOrderID
            return zip(submissions, results).map { submission, outcome in
                let noun: String
                switch submission.requests {
                case .place: noun = "order"
                case .cancel: noun = "cancellation"
                }
                return outcome.map { result in result.flatMap { _ in .failure(OKXError("50000", "The \(noun) could not be stored; nothing was changed")) } }
            }
        }
        return results
    }

    static func okxError(_ error: any Error) -> OKXError {
        if let error = error as? OKXError { return error }
        if let error = error as? EngineError { return .engine(error) }
        return OKXError("50000", "\(error)")
    }

    /// One order of ``placeOrders(uid:_:)``, staged into `changes` against the account as `changes` leaves it.
    private func stageOrder(uid: String, _ request: OrderRequest, into changes: inout ChangeSet) throws -> OrderRecord {
        guard var account = changes.current(uid, in: accounts) else { throw OKXError("50111", "Invalid OK-ACCESS-KEY", httpStatus: 401) }
        let instrument = try liveInstrument(request.instId)
        guard ["buy", "sell"].contains(request.side) else { throw OKXError.parameter("side \(request.side) must be buy or sell") }
        guard ["market", "limit", "post_only", "ioc", "fok", "optimal_limit_ioc"].contains(request.ordType) else {
            throw OKXError.parameter("ordType \(request.ordType) is not supported (market, limit, post_only, ioc, fok)")
        }
        if request.tdMode == "isolated" { throw OKXError.parameter("tdMode isolated is not supported: the sandbox margins in cross mode only") }
        if instrument.kind == .spot {
            guard ["cash", "cross"].contains(request.tdMode) else { throw OKXError.parameter("tdMode \(request.tdMode) must be cash or cross for spot") }
        } else {
            guard request.tdMode == "cross" else { throw OKXError.parameter("tdMode \(request.tdMode) must be cross for \(instrument.kind.rawValue)") }
        }
        guard request.size.units > 0 else { throw OKXError.parameter("sz \(request.size) must be greater than 0") }
        let top = try book(instrument)
        let isBuy = request.side == "buy"
        let limitPrice: ExactDecimal?
        if request.ordType == "market" || request.ordType == "optimal_limit_ioc" {
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
        let quoteSized = request.tgtCcy == "quote_ccy"
            || (request.tgtCcy.isEmpty && isBuy && (request.ordType == "market" || request.ordType == "optimal_limit_ioc"))
        if instrument.kind == .spot, quoteSized {
            let reference = limitPrice ?? (isBuy ? top.ask : top.bid)
            // The most whole lots the amount pays for (never spending more than sz).
            size = request.size.divided(by: reference).divided(by: lot).rounded(toScale: 0).multiplied(by: lot)
            if size.multiplied(by: reference) > request.size { size -= lot }
            if !(size.units > 0) {
                throw OKXError("51020", "Order amount \(request.size) \(instrument.quoteCurrency) is below one lot of \(instrument.id)")
            }
        } else {
            guard size.divided(by: lot).rounded(toScale: 0).multiplied(by: lot) == size else {
                throw OKXError("51121", "Order quantity sz \(request.size) must be a multiple of the lot size \(lot)")
            }
        }
        guard size >= ExactDecimal(instrument.minimumSize) else {
            throw OKXError("51020", "Order amount sz \(size) must be at least the minimum size \(ExactDecimal(instrument.minimumSize))")
        }
        if request.reduceOnly {
            let position = account.positions[instrument.id.rawValue]?.pos ?? .zero
            let reduces = isBuy ? position.isNegative && size <= -position : position.units > 0 && size <= position
            guard instrument.kind != .spot, reduces else {
                throw OKXError("51169", "Order failed because reduceOnly sz \(size) does not reduce the position of \(instrument.id)")
            }
        }
        // Marketable?
        let marketable: Bool
        if let limitPrice {
            marketable = isBuy ? limitPrice >= top.ask : limitPrice <= top.bid
        } else {
            marketable = true
        }
        if request.ordType == "post_only", marketable {
            throw OKXError("51019", "Post only order px \(limitPrice ?? .zero) would take liquidity (book \(top.bid)/\(top.ask))")
        }
        let fillPrice = marketable ? (isBuy ? top.ask : top.bid) : (limitPrice ?? top.mark)
        let willRest = !marketable && (request.ordType == "limit" || request.ordType == "post_only")
        let now = clock()
        var order = OrderRecord(
            ordId: nextOrderID, uid: uid, clOrdId: request.clOrdId, instId: instrument.id.rawValue, tdMode: request.tdMode,
            side: request.side, ordType: request.ordType, px: limitPrice?.description ?? "", sz: size.description,
            tgtCcy: request.tgtCcy, reduceOnly: request.reduceOnly, state: "live", accFillSz: "0", avgPx: "", fee: "0",
            feeCcy: feeCurrency(instrument, isBuy: isBuy), category: "normal", tag: request.tag, cTime: now, uTime: now)
        // Balance and margin, with open orders counted as filled.
        if marketable || willRest {
            try checkCapacity(account, adding: order, at: fillPrice, instrument: instrument, reduceOnly: request.reduceOnly)
        }
        nextOrderID += 1
        let old = account
        if marketable {
            try fill(&order, of: &account, instrument: instrument, size: size, price: fillPrice, maker: false, category: "normal", changes: &changes)
        } else if willRest {
            account.openOrders[order.ordId] = order
        } else {
            order.state = "canceled"  // an ioc or fok order that cannot fill
        }
        changes.orders.append(order)
        changes.touch(account, previous: old)
        return order
    }

    /// The currency a fill's fee is charged in: the settlement currency, or for spot the currency received.
    func feeCurrency(_ instrument: Instrument, isBuy: Bool) -> String {
        instrument.kind == .spot ? (isBuy ? instrument.underlying : instrument.quoteCurrency) : instrument.settleCurrency
    }

    /// Refuses an order the account cannot carry (spot balance; margin with open orders counted as filled).
    func checkCapacity(_ account: AccountState, adding order: OrderRecord, at price: ExactDecimal, instrument: Instrument, reduceOnly: Bool) throws {
        var pending = Array(account.openOrders.values)
        if instrument.kind == .spot {
            // Cash mode and auto-borrow off: the spent currency must be covered by the balance left after
            // every open order that spends it.
            let spent = order.side == "buy" ? instrument.quoteCurrency : instrument.underlying
            pending.append(order)
            var spendable = account.balances[spent] ?? .zero
            for open in pending {
                guard let openInstrument = catalog.instrument(open.instId), openInstrument.kind == .spot else { continue }
                let openSize = (ExactDecimal(open.sz) ?? .zero) - (ExactDecimal(open.accFillSz) ?? .zero)
                let openPrice = open.ordId == order.ordId ? price : (ExactDecimal(open.px) ?? price)
                if open.side == "buy", openInstrument.quoteCurrency == spent { spendable -= openSize.multiplied(by: openPrice) }
                if open.side == "sell", openInstrument.underlying == spent { spendable -= openSize }
            }
            if spendable.isNegative {
                let borrow = order.tdMode == "cross" && account.record.autoLoan
                if !borrow {
                    throw OKXError.insufficient("\(spent) balance \((account.balances[spent] ?? .zero)) does not cover the order and the open orders (auto-borrow is off)")
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
            !(proposed.totalImrUSD < (try figures(account, withOrders: Array(account.openOrders.values), extra: nil, price: price)).totalImrUSD)
        {
            throw OKXError.insufficient(
                "total IMR \(MoneyText.usd(proposed.totalImrUSD)) USD with open orders filled would exceed adjusted equity \(MoneyText.usd(proposed.adjustedEquityUSD)) USD")
        }
    }

    // MARK: - Fills

    /// Fills `size` of an order at `price`: moves the position or spot balances, realises P&L, charges the
    /// fee, writes the fill and its bills, and updates the order.
    func fill(
        _ order: inout OrderRecord, of account: inout AccountState, instrument: Instrument, size: ExactDecimal, price: ExactDecimal,
        maker: Bool, category: String, changes: inout ChangeSet
    ) throws {
        let isBuy = order.side == "buy"
        let now = clock()
        let signed = isBuy ? size : -size
        let trade = try execute(on: &account, instrument: instrument, size: signed, price: price, maker: maker, feeRate: nil,
            ordId: String(order.ordId), billType: category == "normal" ? "2" : "5", changes: &changes)
        let filledBefore = ExactDecimal(order.accFillSz) ?? .zero
        let filledAfter = filledBefore + size
        let averageBefore = ExactDecimal(order.avgPx) ?? .zero
        order.avgPx = filledAfter.isZero ? "" : (averageBefore.multiplied(by: filledBefore) + price.multiplied(by: size)).divided(by: filledAfter).description
        order.accFillSz = filledAfter.description
        order.fee = ((ExactDecimal(order.fee) ?? .zero) - trade.fee).description
        order.feeCcy = trade.feeCurrency
        order.state = filledAfter >= (ExactDecimal(order.sz) ?? .zero) ? "filled" : "partially_filled"
        order.uTime = now
        order.category = category
        if order.state == "filled" { account.openOrders[order.ordId] = nil } else { account.openOrders[order.ordId] = order }
        changes.fills.append(FillRecord(
            tradeId: 0, ordId: order.ordId, uid: account.uid, clOrdId: order.clOrdId, instId: order.instId, side: order.side,
            fillPx: price.description, fillSz: size.description, fee: (-trade.fee).description, feeCcy: trade.feeCurrency,
            pnl: trade.realizedPnL.description, execType: maker ? "M" : "T", category: category, ts: now))
    }

    /// Applies a trade to an account's positions or spot balances and posts its bills. `feeRate` overrides the
    /// maker/taker schedule (liquidations).
    @discardableResult
    func execute(
        on account: inout AccountState, instrument: Instrument, size signed: ExactDecimal, price: ExactDecimal, maker: Bool,
        feeRate: Double?, ordId: String, billType: String, changes: inout ChangeSet
    ) throws -> ExecutedTrade {
        let id = instrument.id.rawValue
        let isBuy = !signed.isNegative
        let size = signed.magnitude
        let fees = parameters.fees
        let subType = isBuy ? "1" : "2"
        if instrument.kind == .spot {
            let rate = ExactDecimal(feeRate ?? (maker ? fees["spotMaker"] ?? 0 : fees["spotTaker"] ?? 0))
            let spot = TradeArithmetic.spotFill(instrument, sizeCoins: signed, price: price, feeRate: rate)
            let (spent, received) = isBuy ? (instrument.quoteCurrency, instrument.underlying) : (instrument.underlying, instrument.quoteCurrency)
            let paid = post(isBuy ? spot.quoteChange : spot.baseChange, spent, to: &account, type: billType, subType: subType, instId: id,
                ordId: ordId, sz: size.description, px: price.description, changes: &changes)
            let got = post(isBuy ? spot.baseChange : spot.quoteChange, received, to: &account, type: billType, subType: subType, instId: id,
                ordId: ordId, fee: -spot.fee, sz: size.description, px: price.description, changes: &changes)
            let charged = fund(spot.fee, spot.feeCurrency, changes: &changes)
            // The house is the other side: it receives what the account paid and pays what it received.
            houseBooks(-paid, spent, changes: &changes)
            houseBooks(-(got + charged), received, changes: &changes)
            return ExecutedTrade(instrument: instrument, size: signed, price: price, realizedPnL: .zero, premium: .zero, fee: spot.fee,
                feeCurrency: spot.feeCurrency, isMaker: maker)
        }
        let option = instrument.kind == .option
        let rate = ExactDecimal(feeRate ?? (option ? fees["optionRate"] ?? 0 : (maker ? fees["derivativesMaker"] ?? 0 : fees["derivativesTaker"] ?? 0)))
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
        let posted = post(fill.realizedPnL + fill.premium - fill.fee, settle, to: &account, type: billType, subType: subType, instId: id,
            ordId: ordId, pnl: fill.realizedPnL, fee: -fill.fee, sz: size.description, px: price.description, changes: &changes)
        let charged = fund(fill.fee, settle, changes: &changes)
        // The house, on the other side, pays the realised P&L and receives the premium.
        houseBooks(-(posted + charged), settle, changes: &changes)
        return ExecutedTrade(instrument: instrument, size: signed, price: price, realizedPnL: fill.realizedPnL, premium: fill.premium,
            fee: fill.fee, feeCurrency: settle, isMaker: maker)
    }

    // MARK: - Cancelling

    /// Cancels an open order of `uid` by ordId or clOrdId.
    public func cancelOrder(uid: String, instId: String, ordId: String?, clOrdId: String?) throws -> OrderRecord {
        try cancelOrders(uid: uid, [CancelRequest(instId: instId, ordId: ordId, clOrdId: clOrdId)])[0].get()
    }

    /// One cancellation of ``cancelOrders(uid:_:)``, staged into `changes`.
    private func stageCancel(uid: String, instId: String, ordId: String?, clOrdId: String?, into changes: inout ChangeSet) throws -> OrderRecord {
        guard var account = changes.current(uid, in: accounts) else { throw OKXError("50111", "Invalid OK-ACCESS-KEY", httpStatus: 401) }
        let match = account.openOrders.values.first { order in
            order.instId == instId && (ordId.map { String(order.ordId) == $0 } ?? (clOrdId.map { order.clOrdId == $0 } ?? false))
        }
        guard var order = match else {
            throw OKXError("51400", "Cancellation failed as the order does not exist or is not open: ordId \(ordId ?? "") clOrdId \(clOrdId ?? "") on \(instId)")
        }
        let old = account
        order.state = "canceled"
        order.uTime = clock()
        account.openOrders[order.ordId] = nil
        changes.orders.append(order)
        changes.touch(account, previous: old)
        return order
    }

    // MARK: - Risk figures

    /// The account as the engine sees it: positions and balances in `Double`, pending interest deducted.
    func portfolio(_ account: AccountState) -> Portfolio { Self.portfolio(account, catalog: catalog) }

    static func portfolio(_ account: AccountState, catalog: InstrumentCatalog) -> Portfolio {
        var positions: [Position] = []
        for (id, position) in account.positions.sorted(by: { $0.key < $1.key }) {
            guard let instrument = catalog.instrument(id) else { continue }
            positions.append(Position(
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
    func figures(_ account: AccountState, withOrders orders: [OrderRecord], extra: OrderRecord?, price: ExactDecimal) throws -> AccountFigures {
        var portfolio = portfolio(account)
        for order in orders + (extra.map { [$0] } ?? []) {
            guard let instrument = catalog.instrument(order.instId) else { continue }
            let size = (ExactDecimal(order.sz) ?? .zero) - (ExactDecimal(order.accFillSz) ?? .zero)
            let orderPrice = (extra.map { $0.ordId == order.ordId } ?? false) ? price : (ExactDecimal(order.px) ?? price)
            let signed = order.side == "buy" ? size.doubleValue : -size.doubleValue
            // Counted as filled without inventing profit: a buy at no better than the mark, a sell at no
            // better than the mark; a new derivative position enters at the mark (no unrealised P&L).
            let mark = (try? market.market(for: instrument, path: order.instId).markPrice) ?? orderPrice.doubleValue
            let conservative = order.side == "buy" ? max(orderPrice.doubleValue, mark) : min(orderPrice.doubleValue, mark)
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
                portfolio.positions.append(Position(instrument: instrument, sizeContracts: signed, averagePrice: mark,
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
