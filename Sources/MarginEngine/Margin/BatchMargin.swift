/// Portfolio and classic margin of many accounts from a ``ScenarioVectorTable``, without pricing and without
/// allocating per account: the same arithmetic as ``PortfolioMargin/compute(_:market:parameters:risks:)`` and
/// ``ClassicMargin/compute(_:market:parameters:)`` in the same order (each position's requirement and the
/// account roll-up are the functions those use), so its figures agree bit for bit (tests check this on random
/// accounts).
public struct BatchMargin: Sendable {
    public let table: ScenarioVectorTable
    public let parameters: MarginParameters
    let context: ComponentContext
    let borrowing: BorrowingSchedule
    let collateral: [[ProgressiveBand]]
    let quotaBase: [Double]

    public init(table: ScenarioVectorTable, parameters: MarginParameters) {
        self.table = table
        self.parameters = parameters
        borrowing = BorrowingSchedule(parameters)
        collateral = table.currencies.map { parameters.collateralTiers[$0] ?? [] }
        quotaBase = table.currencies.map { parameters.interestFreeQuotas[$0]?.base ?? 0 }
        func price(_ code: String) -> Result<Double, EngineError> {
            guard let index = table.currencyIndex(of: code), let value = table.currencyIndexUSD[Int(index)] else {
                return .failure(.missingMarketData(name: "\(code)-USD", detail: "no index price"))
            }
            return .success(value)
        }
        context = ComponentContext(parameters: parameters, usdtUSD: price("USDT"), usdcUSD: price("USDC"))
    }

    /// Scratch space reused across accounts by one worker.
    public struct Scratch: Sendable {
        var pnl = [Double](repeating: 0, count: ScenarioLayout.count)
        var equity: [Double]
        var touched: [Bool]
        var expiries = ExpiryBuckets()

        public init(currencies: Int) {
            equity = [Double](repeating: 0, count: currencies)
            touched = [Bool](repeating: false, count: currencies)
        }
    }

    /// The figures of account `index` in its mode. Accounts holding an instrument the table cannot price,
    /// or a currency without an index, report `nil` (they need the direct computation, which names what is
    /// missing).
    public func figures(_ book: AccountBook, _ index: Int, scratch: inout Scratch) -> AccountFigures? {
        let start = book.positionStart[index]
        let end = book.positionEnd[index]
        for currency in 0..<scratch.equity.count {
            scratch.equity[currency] = 0
            scratch.touched[currency] = false
        }
        for slot in book.balanceStart[index]..<book.balanceEnd[index] {
            let currency = Int(book.balanceCurrency[slot])
            scratch.equity[currency] = book.balanceAmount[slot]
            scratch.touched[currency] = true
        }
        for slot in start..<end where !table.isPriced[Int(book.instrument[slot])] { return nil }
        var rollup = AccountRollup()
        var derivativesMmr = 0.0
        var derivativesImr = 0.0
        if book.level[index] == .classic {
            var isolatedUSD = 0.0
            for slot in start..<end {
                let instrument = Int(book.instrument[slot])
                let size = book.size[slot]
                let contribution = equityContribution(book, slot, instrument)
                let currency = Int(table.settleCurrency[instrument])
                let requirement: (mmrUSD: Double, imrUSD: Double)
                if table.valuation[instrument] == 2 {
                    let isShort = size < 0
                    requirement = ClassicMargin.optionRequirement(
                        sizeContracts: size, coinsPerContract: table.coinsPerContract[instrument],
                        mmrCoins: isShort ? table.classicMmrCoins[instrument] : 0,
                        imrCoins: isShort ? table.classicImrCoins[instrument] : 0,
                        indexUSD: table.underlyingIndexUSD[instrument])
                    if size > 0 {
                        // Long options are isolated: in equity, not in cross-margin equity.
                        guard let settleUSD = table.currencyIndexUSD[currency] else { return nil }
                        isolatedUSD += contribution * settleUSD
                        scratch.touched[currency] = true
                        derivativesMmr += requirement.mmrUSD
                        derivativesImr += requirement.imrUSD
                        continue
                    }
                } else {
                    let requested = book.leverage[slot] > 0 ? book.leverage[slot] : parameters.classicDefaultLeverage
                    let linear = ClassicMargin.linearRequirement(
                        notionalUSD: abs(size) * table.notionalPerContract[instrument], tiers: table.classicTiers[instrument],
                        requestedLeverage: requested)
                    requirement = (linear.mmrUSD, linear.imrUSD)
                }
                derivativesMmr += requirement.mmrUSD
                derivativesImr += requirement.imrUSD
                scratch.equity[currency] += contribution
                scratch.touched[currency] = true
            }
            guard rollUp(&rollup, scratch: scratch) else { return nil }
            rollup.addIsolated(isolatedUSD)
            return rollup.figures(derivativesMmrUSD: derivativesMmr, derivativesImrUSD: derivativesImr)
        }
        var slot = start
        while slot < end {
            let coin = table.coin[Int(book.instrument[slot])]
            var unitEnd = slot
            while unitEnd < end, table.coin[Int(book.instrument[unitEnd])] == coin { unitEnd += 1 }
            guard let unit = unitMargin(book, account: index, from: slot, to: unitEnd, coin: Int(coin), scratch: &scratch) else {
                return nil
            }
            derivativesMmr += unit.mmr
            derivativesImr += unit.imr
            slot = unitEnd
        }
        // Equity contributions, in position order (canonical, as the direct computation adds them).
        for slot in start..<end {
            let instrument = Int(book.instrument[slot])
            let currency = Int(table.settleCurrency[instrument])
            scratch.equity[currency] += equityContribution(book, slot, instrument)
            scratch.touched[currency] = true
        }
        guard rollUp(&rollup, scratch: scratch) else { return nil }
        return rollup.figures(derivativesMmrUSD: derivativesMmr, derivativesImrUSD: derivativesImr)
    }

    /// What a line adds to its settlement currency's equity (``PositionValuation/equityContribution``).
    func equityContribution(_ book: AccountBook, _ slot: Int, _ instrument: Int) -> Double {
        let size = book.size[slot]
        let mark = table.markPrice[instrument]
        switch table.valuation[instrument] {
        case 2: return size * table.coinsPerContract[instrument] * mark
        case 1: return size * table.contractValue[instrument] * (1 / book.averagePrice[slot] - 1 / mark)
        default: return size * table.contractValue[instrument] * (mark - book.averagePrice[slot])
        }
    }

    /// Adds every touched currency, in code order, to the roll-up; false when one has no index.
    func rollUp(_ rollup: inout AccountRollup, scratch: Scratch) -> Bool {
        for currency in 0..<scratch.equity.count where scratch.touched[currency] {
            guard let indexUSD = table.currencyIndexUSD[currency] else { return false }
            let amount = scratch.equity[currency]
            rollup.add(
                CurrencyValuation(amount: amount, indexUSD: indexUSD, discountTiers: collateral[currency], borrowing: borrowing),
                owedCoins: -amount, quotaBaseCoins: quotaBase[currency])
        }
        return true
    }

    /// One risk unit's MMR and IMR (spot in use from the account's coin balance).
    func unitMargin(
        _ book: AccountBook, account: Int, from start: Int, to end: Int, coin: Int, scratch: inout Scratch
    ) -> (mmr: Double, imr: Double)? {
        let count = ScenarioLayout.count
        for cell in 0..<count { scratch.pnl[cell] = 0 }
        scratch.expiries.removeAll()
        var coinDelta = 0.0
        var legs = (0.0, 0.0, 0.0)
        var minimumCharge = 0.0
        scratch.pnl.withUnsafeMutableBufferPointer { pnl in
            table.pnl.withUnsafeBufferPointer { vectors in
                for slot in start..<end {
                    let instrument = Int(book.instrument[slot])
                    let size = book.size[slot]
                    let base = instrument * count
                    for cell in 0..<count { pnl[cell] += size * vectors[base + cell] }
                    coinDelta += size * table.coinDelta[instrument]
                    switch table.leg[instrument] {
                    case 0: legs.0 += size * table.cashDelta[instrument]
                    case 1: legs.1 += size * table.cashDelta[instrument]
                    default: legs.2 += size * table.cashDelta[instrument]
                    }
                    var charge = abs(size) * table.minimumCharge[instrument]
                    if table.isOption[instrument] {
                        if size > 0 { charge = min(charge, size * table.optionValue[instrument]) }
                        scratch.expiries.add(size * table.vegaShock[instrument], at: UnixMillis(table.expiry[instrument]))
                    }
                    minimumCharge += charge
                }
            }
        }
        // Spot in use from the coin's cash balance.
        var balance = 0.0
        for slot in book.balanceStart[account]..<book.balanceEnd[account] where Int(book.balanceCurrency[slot]) == coin {
            balance = book.balanceAmount[slot]
        }
        let tier = table.currencyTier[coin]
        let (amount, _) = spotInUse(balanceCoins: balance, derivativeDeltaCoins: coinDelta, chosenCoins: nil)
        guard amount != 0, let indexUSD = table.currencyIndexUSD[coin] else {
            return components(scratch.pnl, expiries: &scratch.expiries, minimumCharge: minimumCharge, legs: legs, tier: tier)
        }
        var bare: (mmr: Double, imr: Double)?
        if parameters.spotHedgeAggregation == .conservativeMax {
            bare = components(scratch.pnl, expiries: &scratch.expiries, minimumCharge: minimumCharge, legs: legs, tier: tier)
        }
        let spotBase = coin * count
        for cell in 0..<count { scratch.pnl[cell] += amount * table.spotPnL[spotBase + cell] }
        legs.2 += amount * indexUSD
        guard let hedged = components(scratch.pnl, expiries: &scratch.expiries, minimumCharge: minimumCharge, legs: legs, tier: tier) else {
            return nil
        }
        guard let bare else { return hedged }
        return bare.mmr > hedged.mmr ? bare : hedged
    }

    /// MMR and IMR from the unit's sums (the arithmetic of ``RiskUnitComponents``, shared).
    func components(
        _ pnl: [Double], expiries: inout ExpiryBuckets, minimumCharge: Double, legs: (Double, Double, Double), tier: RiskTier
    ) -> (mmr: Double, imr: Double)? {
        let charges = pnl.withUnsafeBufferPointer { pnl in
            try? context.charges(pnl: pnl, vega: expiries, minimumChargeUSD: minimumCharge, cashDeltaUSD: legs, tier: tier)
        }
        return charges.map { ($0.mmr, $0.imr) }
    }
}
