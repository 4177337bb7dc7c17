/// The JSON form of a liquidation plan, shared by `pm liquidate` and the server.
extension LiquidationPlan {
    /// `{triggered, summary, before, actions, after, insuranceFund, paramsId, marketTs}`; `before` and
    /// `after` carry `mgnRatio`, `adjEq`, `eq`, `totalMmr`, `totalImr`, the remaining `positions` and the
    /// cash `balances`; each action its step, status, risk unit, instrument, side, size, price, fee, margin
    /// ratio and MMR before and after, reason, and every fill.
    public func json(parameters: MarginParameters) -> JSONValue {
        func state(_ result: PortfolioMarginResult, _ portfolio: Portfolio) -> JSONValue {
            let positions: [JSONValue] = portfolio.positions.sorted { $0.instrument.id < $1.instrument.id }.map { position in
                .object([
                    ("instId", .string(position.instrument.id.rawValue)),
                    ("pos", .decimal(position.sizeContracts)),
                    ("avgPx", .decimal(position.averagePrice)),
                ])
            }
            let balances: [JSONValue] = portfolio.cashBalances.keys.sorted().map { currency in
                .object([("ccy", .string(currency)), ("cashBal", .decimal(portfolio.cashBalances[currency] ?? 0))])
            }
            return .object([
                ("mgnRatio", result.marginRatio.map(JSONValue.decimal) ?? .string("")),
                ("adjEq", .decimal(result.adjustedEquityUSD)),
                ("eq", .decimal(result.equityUSD)),
                ("totalMmr", .decimal(result.totalMmrUSD)),
                ("totalImr", .decimal(result.totalImrUSD)),
                ("positions", .array(positions)),
                ("balances", .array(balances)),
            ])
        }
        func fillJSON(_ fill: TradeFill) -> JSONValue {
            .object([
                ("instId", .string(fill.instrumentID)),
                ("side", .string(fill.sizeContracts > 0 ? "buy" : "sell")),
                ("sz", .decimal(abs(fill.sizeContracts))),
                ("px", .decimal(fill.price)),
                ("fee", .decimal(fill.fee)),
                ("feeCcy", .string(fill.settleCurrency)),
                ("feeUsd", .decimal(fill.feeUSD)),
                ("realizedPnl", .decimal(fill.realizedPnL)),
                ("premium", .decimal(fill.premium)),
            ])
        }
        func amounts(_ values: [String: Double]) -> JSONValue {
            .object(values.keys.sorted().map { ($0, .decimal(values[$0] ?? 0)) })
        }
        func actionJSON(_ action: LiquidationAction) -> JSONValue {
            let first = action.fills.first
            let instrument: String = first?.instrumentID ?? action.instrumentIDs.first ?? ""
            let side: String = first.map { $0.sizeContracts > 0 ? "buy" : "sell" } ?? ""
            let size: JSONValue = first.map { JSONValue.decimal(abs($0.sizeContracts)) } ?? .string("")
            let price: JSONValue = first.map { JSONValue.decimal($0.price) } ?? .string("")
            let fee: Double = action.fills.reduce(0) { $0 + $1.feeUSD }
            let ratioBefore: JSONValue = action.ratioBefore.map(JSONValue.decimal) ?? .string("")
            let ratioAfter: JSONValue = action.ratioAfter.map(JSONValue.decimal) ?? .string("")
            var members: [(String, JSONValue)] = [
                ("step", .string(action.step.rawValue)), ("status", .string(action.status.rawValue)),
                ("riskUnit", .string(action.riskUnit)), ("instId", .string(instrument)), ("side", .string(side)),
                ("sz", size), ("px", price), ("fee", .decimal(fee)),
            ]
            members += [
                ("mgnRatioBefore", ratioBefore), ("mgnRatioAfter", ratioAfter), ("mmrBefore", .decimal(action.mmrBeforeUSD)),
                ("mmrAfter", .decimal(action.mmrAfterUSD)), ("reason", .string(action.reason)),
                ("instIds", .array(action.instrumentIDs.map(JSONValue.string))), ("fills", .array(action.fills.map(fillJSON))),
                ("cashChanges", amounts(action.cashChanges)), ("insuranceFund", amounts(action.insuranceFundChanges)),
            ]
            return .object(members)
        }
        let actionValues = actions.map(actionJSON)
        return .object([
            ("triggered", .bool(triggered)),
            ("summary", .string(summary)),
            ("before", state(before, initialPortfolio.nettedByInstrument())),
            ("actions", .array(actionValues)),
            ("after", state(after, finalPortfolio)),
            ("insuranceFund", amounts(insuranceFundChanges)),
            ("paramsId", .string(parameters.id)),
            ("marketTs", .string(String(after.marketTime.rawValue))),
        ])
    }
}
