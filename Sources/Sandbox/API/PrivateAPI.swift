import MarginEngine
import MarginStore

/// Account, trade and asset endpoints: the views and operations behind them.
extension Exchange {
    package func configView(uid: String, permissions: Set<String>) -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        return .array([
            .object([
                ("uid", .string(uid)), ("mainUid", .string(uid)), ("acctLv", .string(account.record.acctLv)),
                ("posMode", .string("net_mode")), ("autoLoan", .bool(account.record.autoLoan)), ("greeksType", .string("BS")),
                ("level", .string("Lv1")), ("levelTmp", .string("")), ("ctIsoMode", .string("automatic")),
                ("mgnIsoMode", .string("automatic")), ("spotOffsetType", .string("")), ("roleType", .string("0")),
                ("traderInsts", .array([])), ("spotRoleType", .string("0")), ("spotTraderInsts", .array([])),
                ("opAuth", .string("0")), ("kycLv", .string("1")), ("label", .string(account.record.label)), ("ip", .string("")),
                ("perm", .string(permissions.sorted().joined(separator: ","))), ("liquidationGear", .string("-1")),
                ("enableSpotBorrow", .bool(account.record.autoLoan)), ("spotBorrowAutoRepay", .bool(false)), ("type", .string("0")),
                ("acknowledgedPm", .bool(account.record.acknowledged)),
            ])
        ])
    }

    package func riskStateView(uid: String) -> JSONValue {
        let ratio = currentFigures(uid)?.marginRatio
        let atRisk = ratio.map { $0 <= parameters.warningRatio } ?? false
        return .array([
            .object([
                ("atRisk", .bool(atRisk)), ("atRiskIdx", .array([])), ("atRiskMgn", .array([])), ("mgnRatio", Self.text(ratio)),
                ("warnRatio", .decimal(parameters.warningRatio)), ("liquidationRatio", .decimal(parameters.liquidationTriggerRatio)),
                ("ts", .string(String(riskStateTime))),
            ])
        ])
    }

    package func billsView(uid: String, currency: String?, type: String?, limit: Int) throws -> JSONValue {
        let rows = try database.bills(uid: uid, currency: currency, type: type, limit: max(1, min(limit, 100)))
        return .array(
            rows.map { bill in
                .object([
                    ("billId", .string(String(bill.billId))), ("ccy", .string(bill.ccy)), ("balChg", .string(bill.balChg)),
                    ("bal", .string(bill.bal)), ("type", .string(bill.type.rawValue)), ("subType", .string(bill.subType)),
                    ("instId", .string(bill.instId)),
                    ("instType", .string(catalog.instrument(bill.instId)?.kind.rawValue ?? "")), ("ordId", .string(bill.ordId)),
                    ("pnl", .string(bill.pnl)), ("fee", .string(bill.fee)), ("sz", .string(bill.sz)), ("px", .string(bill.px)),
                    ("mgnMode", .string(bill.instId.isEmpty ? "" : "cross")), ("notes", .string(bill.notes)), ("from", .string("")),
                    ("to", .string("")), ("execType", .string("")),
                    ("interest", .string(bill.type == .interest ? String(bill.balChg.dropFirst()) : "0")),
                    ("ts", .string(String(bill.ts))),
                ])
            })
    }

    package func interestAccruedView(uid: String) throws -> JSONValue {
        let rows = try database.bills(uid: uid, currency: nil, type: BillType.interest.rawValue, limit: 100)
        return .array(
            rows.map { bill in
                let amount = bill.balChg.hasPrefix("-") ? String(bill.balChg.dropFirst()) : bill.balChg
                let curve = parameters.interestRateCurve(for: bill.ccy)
                return .object([
                    ("type", .string("2")), ("ccy", .string(bill.ccy)), ("instId", .string("")), ("mgnMode", .string("cross")),
                    ("interest", .string(amount)), ("interestRate", .decimal(curve.base / 8760)), ("liab", .string("")),
                    ("ts", .string(String(bill.ts))),
                ])
            })
    }

    package func interestRateView(currency: String?) -> JSONValue {
        var borrowed: [String: Double] = [:]
        for account in accounts.values {
            for (ccy, balance) in account.balances where balance.isNegative { borrowed[ccy, default: 0] -= balance.doubleValue }
        }
        let currencies = currency.map { [$0] } ?? Set(parameters.interestRates.keys).union(borrowed.keys).sorted()
        return .array(
            currencies.map { ccy in
                let curve = parameters.interestRateCurve(for: ccy)
                let index = (try? market.indexUSD(ccy)) ?? 1
                let annual = curve.annualRate(utilisation: curve.utilisation(totalBorrowed: borrowed[ccy] ?? 0, indexUSD: index))
                return .object([("ccy", .string(ccy)), ("interestRate", .decimal(annual / 8760)), ("annualRate", .decimal(annual))])
            })
    }

    package func leverageView(uid: String, instIds: [String]) throws -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        return .array(
            try instIds.map { id in
                _ = try liveInstrument(id)
                let lever = account.leverage[id] ?? ExactDecimal(parameters.classicDefaultLeverage)
                return .object([
                    ("instId", .string(id)), ("mgnMode", .string("cross")), ("posSide", .string("net")),
                    ("lever", .string(lever.description)),
                ])
            })
    }

    package func setLeverage(uid: String, instId: String, lever: ExactDecimal) throws -> JSONValue {
        guard var account = accounts[uid] else { throw OKXError(.invalidKey, "Invalid OK-ACCESS-KEY") }
        let instrument = try liveInstrument(instId)
        guard instrument.kind == .perpetual || instrument.kind == .future else {
            throw OKXError.parameter("instId \(instId): leverage applies to perpetuals and futures only")
        }
        guard lever >= ExactDecimal(1), lever <= ExactDecimal(125) else {
            throw OKXError.parameter("lever \(lever) must be between 1 and 125")
        }
        let old = account
        account.leverage[instId] = lever
        var changes = ChangeSet()
        changes.touch(account, previous: old)
        try commit(changes)
        return .array([
            .object([
                ("instId", .string(instId)), ("lever", .string(lever.description)), ("mgnMode", .string("cross")),
                ("posSide", .string("net")),
            ])
        ])
    }

    package func setAutoLoan(uid: String, enabled: Bool) throws -> JSONValue {
        guard var account = accounts[uid] else { throw OKXError(.invalidKey, "Invalid OK-ACCESS-KEY") }
        let old = account
        account.record.autoLoan = enabled
        var changes = ChangeSet()
        changes.touch(account, previous: old)
        try commit(changes)
        return .array([.object([("autoLoan", .bool(enabled))])])
    }

    package func setSpotInUse(uid: String, currency: String, amount: ExactDecimal) throws -> JSONValue {
        guard var account = accounts[uid] else { throw OKXError(.invalidKey, "Invalid OK-ACCESS-KEY") }
        guard !amount.isNegative else { throw OKXError.parameter("clSpotInUseAmt \(amount) must be 0 or more") }
        let old = account
        account.chosenSpotInUse[currency] = amount
        var changes = ChangeSet()
        changes.touch(account, previous: old)
        try commit(changes)
        return .array([.object([("ccy", .string(currency)), ("clSpotInUseAmt", .string(amount.description))])])
    }

    /// `max-size`: the largest buy and sell the account's available equity supports at the current book.
    package func maxSizeView(uid: String, instId: String) throws -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        let instrument = try liveInstrument(instId)
        let figures = try figures(account, withOrders: Array(account.openOrders.values), extra: nil, price: .zero)
        let available = max(0, figures.adjustedEquityUSD - figures.totalImrUSD)
        let top = try book(instrument)
        let lot = instrument.lotSize
        func lots(_ value: Double) -> String { DecimalText.format(max(0, (value / lot).rounded(.down) * lot)) }
        if instrument.kind == .spot {
            let quote = (account.balances[instrument.quoteCurrency] ?? .zero).doubleValue
            let base = (account.balances[instrument.underlying] ?? .zero).doubleValue
            return .array([
                .object([
                    ("instId", .string(instId)), ("ccy", .string(instrument.quoteCurrency)),
                    ("maxBuy", .string(lots(max(0, quote) / top.ask.doubleValue))), ("maxSell", .string(lots(max(0, base)))),
                ])
            ])
        }
        let resolved = try market.market(for: instrument, path: instId)
        let imrPerContract = max(resolved.notionalUSDPerContract / max(parameters.classicDefaultLeverage, 1), 1e-12)
        return .array([
            .object([
                ("instId", .string(instId)), ("ccy", .string(instrument.settleCurrency)),
                ("maxBuy", .string(lots(available / imrPerContract))), ("maxSell", .string(lots(available / imrPerContract))),
            ])
        ])
    }

    package func maxWithdrawalView(uid: String, currency: String?) throws -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        let figures = try figures(account, withOrders: Array(account.openOrders.values), extra: nil, price: .zero)
        let freeUSD = max(0, figures.adjustedEquityUSD - figures.totalImrUSD)
        return .array(
            account.balances.keys.sorted().filter { currency == nil || $0 == currency }.map { ccy in
                let cash = max(0, (account.balances[ccy] ?? .zero).doubleValue)
                let index = (try? market.indexUSD(ccy)) ?? 1
                let maximum = DecimalText.format(min(cash, freeUSD / index))
                return .object([("ccy", .string(ccy)), ("maxWd", .string(maximum)), ("maxWdEx", .string(maximum))])
            })
    }

    // MARK: - Modes

    package func switchPrecheckView(uid: String, target: String) throws -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        guard let level = AccountLevel(rawValue: target) else { throw OKXError.parameter("acctLv \(target) must be 3 or 4") }
        let blocking = account.openOrders.isEmpty ? [] : ["\(account.openOrders.count) open order(s) must be cancelled before switching"]
        let check: SwitchPrecheck
        do {
            check = try AccountModes.precheck(
                portfolio(account), from: account.level, to: level, acknowledged: account.record.acknowledged, blockingOrders: blocking,
                market: market, parameters: parameters)
        } catch { throw OKXError.engine(error) }
        var report = PositionBuilder.precheckJSON(check, parameters: parameters, market: market)
        if case .object(var object) = report {
            func margin(_ figures: ModeFigures) -> JSONValue {
                .object([
                    ("acctAvailEq", .decimal(figures.availableEquityUSD)), ("mgnRatio", Self.text(figures.marginRatio)),
                    ("details", .array([])),
                ])
            }
            object["sCode"] = .string(check.allowed ? "0" : "1")
            object["curAcctLv"] = .string(account.record.acctLv)
            object["acctLv"] = .string(target)
            object["riskOffsetType"] = .string("")
            object["unmatchedInfoCheck"] = .array(check.reasons.map { .object([("type", .string("reason")), ("msg", .string($0))]) })
            object["posList"] = .array([])
            object["posTierCheck"] = .array(
                check.failingPositions.map { .object([("instId", .string($0.instrumentID)), ("msg", .string($0.reason))]) })
            object["mgnBf"] = margin(check.before)
            object["mgnAft"] = margin(check.after)
            report = .object(object)
        }
        return .array([report])
    }

    /// `set-account-level`: to portfolio margin under the eligibility rules, to classic under the pre-check.
    package func setAccountLevel(uid: String, target: String) throws -> JSONValue {
        guard var account = accounts[uid] else { throw OKXError(.invalidKey, "Invalid OK-ACCESS-KEY") }
        guard let level = AccountLevel(rawValue: target) else {
            throw OKXError.parameter("acctLv \(target) must be 3 (classic) or 4 (portfolio margin)")
        }
        if level == account.level { return .array([.object([("acctLv", .string(target))])]) }
        guard account.openOrders.isEmpty else {
            throw OKXError(
                .levelSwitchRefused,
                "Cannot switch the account level while \(account.openOrders.count) order(s) are open; cancel them first")
        }
        let check: SwitchPrecheck
        do {
            check = try AccountModes.precheck(
                portfolio(account), from: account.level, to: level, acknowledged: account.record.acknowledged, market: market,
                parameters: parameters)
        } catch { throw OKXError.engine(error) }
        guard check.allowed else {
            throw OKXError(
                .levelSwitchRefused,
                "You do not meet the requirements for switching to \(level.name): " + check.reasons.joined(separator: "; "))
        }
        let old = account
        account.record.acctLv = level.rawValue
        var changes = ChangeSet()
        changes.touch(account, previous: old)
        try commit(changes)
        return .array([.object([("acctLv", .string(target))])])
    }

    package func positionBuilder(uid: String, body: JSONValue, graph: Bool) throws -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        do {
            let request = try PositionBuilderRequest(json: body)
            guard request.market == nil else { throw OKXError.parameter("market: the server uses its own market; remove the market field") }
            let result =
                graph
                ? try PositionBuilder.graph(
                    request, catalog: catalog, market: market, parameters: parameters, realPortfolio: portfolio(account))
                : try PositionBuilder.build(
                    request, catalog: catalog, market: market, parameters: parameters, realPortfolio: portfolio(account))
            return .array([result.withModel(.okxPM)])
        } catch let error as EngineError {
            throw OKXError.engine(error)
        }
    }

    package enum PublicBuilderKind: Sendable { case build, graph, compare }

    /// The position builder on a simulated portfolio only (no account): our public endpoints.
    package func publicPositionBuilder(body: JSONValue, kind: PublicBuilderKind) throws -> JSONValue {
        do {
            let request = try PositionBuilderRequest(json: body)
            guard request.market == nil else { throw OKXError.parameter("market: the server uses its own market; remove the market field") }
            guard !request.includeRealPositions else {
                throw OKXError.parameter(
                    "inclRealPosAndEq: the public position builder has no account; use /api/v5/account/position-builder")
            }
            if let other = try otherModelPositionBuilder(request, kind: kind) { return .array([other]) }
            switch kind {
            case .build:
                return .array([
                    try PositionBuilder.build(request, catalog: catalog, market: market, parameters: parameters).withModel(.okxPM)
                ])
            case .graph:
                return .array([
                    try PositionBuilder.graph(request, catalog: catalog, market: market, parameters: parameters).withModel(.okxPM)
                ])
            case .compare:
                return .array([
                    try PositionBuilder.compare(request, catalog: catalog, market: market, parameters: parameters).withModel(.okxPM)
                ])
            }
        } catch let error as EngineError {
            throw OKXError.engine(error)
        }
    }

    // MARK: - Orders and fills from the database

    package func orderView(uid: String, instId: String, ordId: String?, clOrdId: String?) throws -> JSONValue {
        let instrument = try liveInstrumentOrListed(instId)
        let record: OrderRecord?
        if let ordId {
            record = try Int64(ordId).flatMap { try database.order(uid: uid, instId: instId, ordId: $0, clOrdId: nil) }
        } else if let clOrdId {
            record = try database.order(uid: uid, instId: instId, ordId: nil, clOrdId: clOrdId)
        } else {
            record = nil
        }
        guard let record else { throw OKXError.orderNotFound(ordId ?? clOrdId ?? "") }
        return .array([Self.orderJSON(record, instType: instrument.kind.rawValue)])
    }

    func liveInstrumentOrListed(_ id: String) throws -> Instrument {
        guard !id.isEmpty else { throw OKXError.empty("instId") }
        guard let instrument = catalog.instrument(id) else { throw OKXError.unknownInstrument(id) }
        return instrument
    }

    package func pendingOrdersView(uid: String, instType: String?, instId: String?, limit: Int) -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        let rows = account.openOrders.values.sorted { $0.ordId > $1.ordId }.compactMap { order -> JSONValue? in
            guard let instrument = catalog.instrument(order.instId) else { return nil }
            if let instType, instrument.kind.rawValue != instType { return nil }
            if let instId, order.instId != instId { return nil }
            return Self.orderJSON(order, instType: instrument.kind.rawValue)
        }
        return .array(Array(rows.prefix(max(1, min(limit, 100)))))
    }

    package func orderHistoryView(uid: String, instType: String?, instId: String?, limit: Int) throws -> JSONValue {
        let rows = try database.closedOrders(uid: uid, instId: instId, limit: 500)
        let views: [JSONValue] = rows.compactMap { order in
            guard let instrument = catalog.instrument(order.instId) else { return nil }
            if let instType, instrument.kind.rawValue != instType { return nil }
            return Self.orderJSON(order, instType: instrument.kind.rawValue)
        }
        return .array(Array(views.prefix(max(1, min(limit, 100)))))
    }

    package func fillsView(uid: String, instType: String?, instId: String?, ordId: String?, limit: Int) throws -> JSONValue {
        let rows = try database.fills(uid: uid, instId: instId, ordId: ordId.flatMap { Int64($0) }, limit: 500)
        let views: [JSONValue] = rows.compactMap { fill in
            guard let instrument = catalog.instrument(fill.instId) else { return nil }
            if let instType, instrument.kind.rawValue != instType { return nil }
            return Self.fillJSON(fill, instType: instrument.kind.rawValue)
        }
        return .array(Array(views.prefix(max(1, min(limit, 100)))))
    }

    package func currenciesView() -> JSONValue {
        var currencies = Set<String>()
        for instrument in catalog.instruments {
            currencies.insert(instrument.underlying)
            if instrument.kind == .spot || instrument.margining == .linear { currencies.insert(instrument.quoteCurrency) }
        }
        return .array(
            currencies.sorted().map { ccy in
                .object([
                    ("ccy", .string(ccy)), ("name", .string(ccy)), ("chain", .string("\(ccy)-Sandbox")), ("canDep", .bool(true)),
                    ("canWd", .bool(false)), ("canInternal", .bool(false)), ("minWd", .string("0")), ("maxWd", .string("0")),
                    ("wdTickSz", .string(String(LedgerScale.scale(of: ccy)))), ("minFee", .string("0")), ("maxFee", .string("0")),
                    ("fee", .string("0")), ("minDep", .string("0")), ("mainNet", .bool(true)),
                ])
            })
    }

    package func assetBalancesView(uid: String, currency: String?) -> JSONValue {
        guard let account = accounts[uid] else { return .array([]) }
        return .array(
            account.balances.keys.sorted().filter { currency == nil || $0 == currency }.map { ccy in
                .object([("ccy", .string(ccy)), ("bal", .string("0")), ("availBal", .string("0")), ("frozenBal", .string("0"))])
            })
    }
}
