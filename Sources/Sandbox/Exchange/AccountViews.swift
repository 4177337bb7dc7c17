import MarginEngine
import MarginStore

/// OKX-shaped JSON views of the exchange's state. Every number is a decimal string; "not applicable" is
/// `""` — never NaN or infinity.
extension Exchange {
    static func text(_ value: Double?) -> JSONValue {
        guard let value, value.isFinite else { return .string("") }
        return .decimal(value)
    }

    static func text(_ value: ExactDecimal?) -> JSONValue { .string(value?.description ?? "") }

    func marginResult(_ account: AccountState) -> (pm: PortfolioMarginResult?, classic: ClassicMarginResult?) {
        let portfolio = portfolio(account)
        if account.level == .portfolioMargin {
            return (try? PortfolioMargin.compute(portfolio, market: market, parameters: parameters, risks: risk.risksByID), nil)
        }
        return (nil, try? ClassicMargin.compute(portfolio, market: market, parameters: parameters))
    }

    /// `GET /account/balance` for one account (`currencies` filters `details`).
    package func balanceView(uid: String, currencies: Set<String>? = nil) -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        let (pm, classic) = marginResult(account)
        let rows = pm?.currencies ?? classic?.currencies ?? []
        let now = clock()
        var frozen: [String: ExactDecimal] = [:]
        for order in account.openOrders.values {
            guard let instrument = catalog.instrument(order.instId), instrument.kind == .spot else { continue }
            let remaining = (ExactDecimal(order.sz) ?? .zero) - (ExactDecimal(order.accFillSz) ?? .zero)
            if order.side == .buy {
                frozen[instrument.quoteCurrency, default: .zero] += remaining.multiplied(by: ExactDecimal(order.px) ?? .zero)
            } else {
                frozen[instrument.underlying, default: .zero] += remaining
            }
        }
        var details: [JSONValue] = []
        for row in rows where currencies.map({ $0.contains(row.currency) }) ?? true {
            let cash = account.balances[row.currency] ?? .zero
            let frozenAmount = frozen[row.currency] ?? .zero
            let pending = account.pendingInterest[row.currency] ?? .zero
            let available = cash - frozenAmount
            details.append(
                .object([
                    ("ccy", .string(row.currency)),
                    ("eq", .decimal(row.equity)),
                    ("cashBal", .string(cash.description)),
                    ("availBal", .string(max(available, .zero).description)),
                    ("availEq", .decimal(row.availableEquity - frozenAmount.doubleValue)),
                    ("frozenBal", .string(frozenAmount.description)),
                    ("ordFrozen", .string(frozenAmount.description)),
                    ("upl", .decimal(row.equity - cash.doubleValue + pending.doubleValue)),
                    ("eqUsd", .decimal(row.equityUSD)),
                    ("disEq", .decimal(row.discountedEquityUSD)),
                    ("liab", .decimal(row.equity < 0 ? -row.equity : 0)),
                    ("crossLiab", .decimal(row.equity < 0 ? -row.equity : 0)),
                    ("interest", .string(pending.description)),
                    ("isoEq", .string("0")),
                    ("isoLiab", .string("0")),
                    ("isoUpl", .string("0")),
                    ("mgnRatio", .string("")),
                    ("notionalLever", .string("")),
                    ("spotInUseAmt", .decimal(row.spotInUse)),
                    ("stgyEq", .string("0")),
                    ("twap", .string("0")),
                    ("uTime", .string(String(now))),
                    ("imr", .string("")),
                    ("mmr", .string("")),
                    ("maxLoan", .string("")),
                    ("borrowFroz", .string("0")),
                ]))
        }
        let totalEq = pm?.equityUSD ?? classic?.equityUSD ?? 0
        let adjEq = pm?.adjustedEquityUSD ?? classic?.adjustedEquityUSD ?? 0
        let imr = pm?.totalImrUSD ?? classic?.totalImrUSD ?? 0
        let mmr = pm?.totalMmrUSD ?? classic?.totalMmrUSD ?? 0
        let ratio = pm?.marginRatio ?? classic?.marginRatio
        let notional = pm?.notionalUSD ?? classic?.notionalUSD ?? 0
        let upl = pm?.uplUSD ?? classic?.uplUSD ?? 0
        return .array([
            .object([
                ("uTime", .string(String(now))),
                ("totalEq", .decimal(totalEq)),
                ("adjEq", .decimal(adjEq)),
                ("isoEq", .string("0")),
                ("ordFroz", .string("0")),
                ("imr", .decimal(imr)),
                ("mmr", .decimal(mmr)),
                ("borrowFroz", .string("0")),
                ("mgnRatio", Self.text(ratio)),
                ("notionalUsd", .decimal(notional)),
                ("upl", .decimal(upl)),
                ("details", .array(details)),
            ])
        ])
    }

    /// `GET /account/positions`.
    package func positionsView(uid: String, instType: String? = nil, instIds: Set<String>? = nil) -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        let (pm, classic) = marginResult(account)
        let pmPositions = Dictionary(
            (pm?.units ?? []).flatMap { $0.positions }.map { ($0.position.instrument.id.rawValue, $0) },
            uniquingKeysWith: uniquingKeysWithFirst)
        let classicPositions = Dictionary(
            (classic?.positions ?? []).map { ($0.position.instrument.id.rawValue, $0) }, uniquingKeysWith: uniquingKeysWithFirst)
        let ratio = pm?.marginRatio ?? classic?.marginRatio
        var rows: [JSONValue] = []
        for (id, position) in account.positions.sorted(by: { $0.key < $1.key }) {
            guard let instrument = catalog.instrument(id) else { continue }
            if let instType, instType != instrument.kind.rawValue { continue }
            if let instIds, !instIds.contains(id) { continue }
            let resolved = try? market.market(for: instrument, path: id)
            let pmRow = pmPositions[id]
            let classicRow = classicPositions[id]
            let upl = pmRow?.floatingPnL ?? classicRow?.valuation.floatingPnL
            let notional = pmRow?.notionalUSD ?? classicRow?.valuation.notionalUSD
            let cost =
                position.pos.magnitude.doubleValue * instrument.contractValue
                * (instrument.margining == .inverse && instrument.kind != .option
                    ? 1 / position.avgPx.doubleValue : position.avgPx.doubleValue)
            let greeks = pmRow?.greeks
            rows.append(
                .object([
                    ("instType", .string(instrument.kind.rawValue)),
                    ("instId", .string(id)),
                    ("mgnMode", .string("cross")),
                    ("posId", .string(String(abs(id.hashValue) % 1_000_000_000_000))),
                    ("posSide", .string("net")),
                    ("pos", .string(position.pos.description)),
                    ("availPos", .string(position.pos.magnitude.description)),
                    ("avgPx", .string(position.avgPx.description)),
                    ("markPx", Self.text(resolved?.markPrice)),
                    ("idxPx", Self.text(resolved?.indexUSD)),
                    ("last", Self.text(resolved?.markPrice)),
                    ("upl", Self.text(upl)),
                    ("uplRatio", Self.text(upl.map { cost > 0 ? $0 / cost : 0 })),
                    ("lever", Self.text(classicRow?.leverage ?? account.leverage[id]?.doubleValue)),
                    ("liqPx", .string("")),
                    ("imr", Self.text(classicRow?.imrUSD ?? .some(0))),
                    ("mmr", Self.text(classicRow?.mmrUSD ?? pmRow?.marginalMmrUSD)),
                    ("margin", .string("")),
                    ("mgnRatio", Self.text(ratio)),
                    ("notionalUsd", Self.text(notional)),
                    ("ccy", .string(instrument.settleCurrency)),
                    (
                        "optVal",
                        Self.text(
                            instrument.kind == .option
                                ? pmRow.map { $0.equityContribution } ?? classicRow?.valuation.equityContribution : nil)
                    ),
                    ("deltaBS", Self.text(greeks?.deltaBS)),
                    ("deltaPA", Self.text(greeks?.deltaPA)),
                    ("gammaBS", Self.text(greeks?.gammaBS)),
                    ("vegaBS", Self.text(greeks?.vegaBS)),
                    ("thetaBS", Self.text(greeks?.thetaBS)),
                    ("realizedPnl", .string("")),
                    ("cTime", .string(String(position.cTime))),
                    ("uTime", .string(String(position.uTime))),
                ]))
        }
        return .array(rows)
    }

    /// An order in OKX's shape.
    nonisolated static func orderJSON(_ order: OrderRecord, instType: String) -> JSONValue {
        .object([
            ("instType", .string(instType)),
            ("instId", .string(order.instId)),
            ("ordId", .string(String(order.ordId))),
            ("clOrdId", .string(order.clOrdId)),
            ("tag", .string(order.tag)),
            ("px", .string(order.px)),
            ("sz", .string(order.sz)),
            ("ordType", .string(order.ordType.rawValue)),
            ("side", .string(order.side.rawValue)),
            ("posSide", .string("net")),
            ("tdMode", .string(order.tdMode.rawValue)),
            ("tgtCcy", .string(order.tgtCcy)),
            ("accFillSz", .string(order.accFillSz)),
            ("fillPx", .string(order.avgPx)),
            ("fillSz", .string(order.accFillSz)),
            ("avgPx", .string(order.avgPx)),
            ("state", .string(order.state.rawValue)),
            ("lever", .string("")),
            ("fee", .string(order.fee)),
            ("feeCcy", .string(order.feeCcy)),
            ("rebate", .string("0")),
            ("rebateCcy", .string(order.feeCcy)),
            ("pnl", .string("0")),
            ("category", .string(order.category.rawValue)),
            ("reduceOnly", .string(order.reduceOnly ? "true" : "false")),
            ("cancelSource", .string("")),
            ("source", .string("")),
            ("slTriggerPx", .string("")),
            ("tpTriggerPx", .string("")),
            ("attachAlgoOrds", .array([])),
            ("uTime", .string(String(order.uTime))),
            ("cTime", .string(String(order.cTime))),
        ])
    }

    nonisolated static func fillJSON(_ fill: FillRecord, instType: String) -> JSONValue {
        .object([
            ("instType", .string(instType)),
            ("instId", .string(fill.instId)),
            ("tradeId", .string(String(fill.tradeId))),
            ("ordId", .string(String(fill.ordId))),
            ("clOrdId", .string(fill.clOrdId)),
            ("billId", .string(String(fill.tradeId))),
            ("tag", .string("")),
            ("fillPx", .string(fill.fillPx)),
            ("fillSz", .string(fill.fillSz)),
            ("side", .string(fill.side.rawValue)),
            ("posSide", .string("net")),
            ("execType", .string(fill.execType)),
            ("feeCcy", .string(fill.feeCcy)),
            ("fee", .string(fill.fee)),
            ("fillPnl", .string(fill.pnl)),
            ("category", .string(fill.category.rawValue)),
            ("ts", .string(String(fill.ts))),
            ("fillTime", .string(String(fill.ts))),
        ])
    }
}

private func uniquingKeysWithFirst<Value>(_ first: Value, _: Value) -> Value { first }
