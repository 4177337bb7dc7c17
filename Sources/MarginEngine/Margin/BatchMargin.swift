/// Many accounts, stored flat for batch re-margining: account `i`'s positions are
/// `positionStart[i] ..< positionStart[i + 1]` of the position columns, its balances likewise.
///
/// Positions must be sorted within each account by instrument index, then size, then entry price (the
/// engine's canonical order; ``append(positions:balances:table:)`` sorts them).
public struct AccountBook: Sendable {
    public private(set) var positionStart: [Int] = [0]
    public private(set) var instrument: [Int32] = []
    public private(set) var size: [Double] = []
    public private(set) var averagePrice: [Double] = []
    public private(set) var balanceStart: [Int] = [0]
    public private(set) var balanceCurrency: [Int32] = []
    public private(set) var balanceAmount: [Double] = []

    public init() {}

    public var count: Int { positionStart.count - 1 }

    public mutating func reserve(accounts: Int, positions: Int) {
        positionStart.reserveCapacity(accounts + 1)
        balanceStart.reserveCapacity(accounts + 1)
        instrument.reserveCapacity(positions)
        size.reserveCapacity(positions)
        averagePrice.reserveCapacity(positions)
    }

    /// Adds an account: positions as (instrument index, contracts, entry price), balances as (currency
    /// index, amount). Positions of one instrument and balances of one currency must appear once (positions
    /// are net; ``append(_:table:)`` nets a portfolio's lines first).
    public mutating func append(positions: [(Int32, Double, Double)], balances: [(Int32, Double)]) {
        let sorted = positions.sorted { lhs, rhs in
            if lhs.0 != rhs.0 { return lhs.0 < rhs.0 }
            if lhs.1 != rhs.1 { return lhs.1 < rhs.1 }
            return lhs.2 < rhs.2
        }
        for position in sorted {
            instrument.append(position.0)
            size.append(position.1)
            averagePrice.append(position.2)
        }
        positionStart.append(instrument.count)
        for balance in balances.sorted(by: { $0.0 < $1.0 }) {
            balanceCurrency.append(balance.0)
            balanceAmount.append(balance.1)
        }
        balanceStart.append(balanceCurrency.count)
    }

    /// Adds `portfolio` as an account. Returns false, adding nothing, when a position's instrument or a
    /// balance's currency is not in `table`, or the portfolio chooses its spot in use (such an account
    /// needs the direct computation).
    @discardableResult
    public mutating func append(_ portfolio: Portfolio, table: ScenarioVectorTable) -> Bool {
        guard portfolio.chosenSpotInUse.isEmpty else { return false }
        let portfolio = portfolio.canonicalGroups().contains { $0.slots.count > 1 } ? portfolio.nettedByInstrument() : portfolio
        var positions: [(Int32, Double, Double)] = []
        for position in portfolio.positions {
            guard let index = table.index(of: position.instrument.id.rawValue) else { return false }
            positions.append((index, position.sizeContracts, position.averagePrice))
        }
        var balances: [(Int32, Double)] = []
        for (currency, amount) in portfolio.cashBalances {
            guard let index = table.currencyIndex(of: currency) else { return false }
            balances.append((index, amount))
        }
        append(positions: positions, balances: balances)
        return true
    }

    /// Account `index` as a ``Portfolio``, for comparison with the direct computation.
    public func portfolio(_ index: Int, table: ScenarioVectorTable) -> Portfolio {
        var positions: [Position] = []
        for slot in positionStart[index]..<positionStart[index + 1] {
            positions.append(Position(instrument: table.instruments[Int(instrument[slot])], sizeContracts: size[slot], averagePrice: averagePrice[slot]))
        }
        var balances: [String: Double] = [:]
        for slot in balanceStart[index]..<balanceStart[index + 1] {
            balances[table.currencies[Int(balanceCurrency[slot])]] = balanceAmount[slot]
        }
        return Portfolio(positions: positions, cashBalances: balances)
    }
}

/// The account figures a risk loop needs: equity, requirements and the margin ratio (no attribution).
public struct AccountFigures: Sendable, Equatable {
    public var equityUSD: Double
    public var adjustedEquityUSD: Double
    public var derivativesMmrUSD: Double
    public var derivativesImrUSD: Double
    public var borrowMmrUSD: Double
    public var borrowImrUSD: Double
    public var totalMmrUSD: Double
    public var totalImrUSD: Double
    /// nil when nothing is required.
    public var marginRatio: Double?

    public init(
        equityUSD: Double, adjustedEquityUSD: Double, derivativesMmrUSD: Double, derivativesImrUSD: Double, borrowMmrUSD: Double,
        borrowImrUSD: Double, totalMmrUSD: Double, totalImrUSD: Double, marginRatio: Double?
    ) {
        self.equityUSD = equityUSD
        self.adjustedEquityUSD = adjustedEquityUSD
        self.derivativesMmrUSD = derivativesMmrUSD
        self.derivativesImrUSD = derivativesImrUSD
        self.borrowMmrUSD = borrowMmrUSD
        self.borrowImrUSD = borrowImrUSD
        self.totalMmrUSD = totalMmrUSD
        self.totalImrUSD = totalImrUSD
        self.marginRatio = marginRatio
    }

    public static let zero = AccountFigures(
        equityUSD: 0, adjustedEquityUSD: 0, derivativesMmrUSD: 0, derivativesImrUSD: 0, borrowMmrUSD: 0, borrowImrUSD: 0,
        totalMmrUSD: 0, totalImrUSD: 0, marginRatio: nil)
}

/// Portfolio margin of many accounts from a ``ScenarioVectorTable``, without pricing and without allocating
/// per account: the same arithmetic as ``PortfolioMargin/compute(_:market:parameters:risks:)`` in the same
/// order, so its figures agree bit for bit (a test checks this on random accounts).
public struct BatchMargin: Sendable {
    public let table: ScenarioVectorTable
    public let parameters: MarginParameters
    let context: ComponentContext
    let mmrBorrowBands: [ProgressiveBand]
    let imrBorrowBands: [ProgressiveBand]
    let collateral: [[ProgressiveBand]]
    let tierParameters: [TierParameters]

    public init(table: ScenarioVectorTable, parameters: MarginParameters) {
        self.table = table
        self.parameters = parameters
        mmrBorrowBands = parameters.borrowingBands.map { ProgressiveBand(upTo: $0.upToUSD, rate: $0.mmrRate) }
        imrBorrowBands = parameters.borrowingBands.map { ProgressiveBand(upTo: $0.upToUSD, rate: $0.imrRate) }
        collateral = table.currencies.map { parameters.collateralTiers[$0] ?? [] }
        tierParameters = table.currencies.map { parameters.derivativeParameters(for: $0) }
        let usdt = table.currencies.firstIndex(of: "USDT")
        let usdc = table.currencies.firstIndex(of: "USDC")
        func price(_ index: Int?, _ code: String) -> Result<Double, EngineError> {
            guard let index, let value = table.currencyIndexUSD[index] else { return .failure(.missingMarketData(name: "\(code)-USD", detail: "no index price")) }
            return .success(value)
        }
        context = ComponentContext(parameters: parameters, usdtUSD: price(usdt, "USDT"), usdcUSD: price(usdc, "USDC"))
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

    /// The figures of account `index`. Accounts whose prices are missing (a currency without an index)
    /// report `nil`.
    public func figures(_ book: AccountBook, _ index: Int, scratch: inout Scratch) -> AccountFigures? {
        let start = book.positionStart[index]
        let end = book.positionStart[index + 1]
        for currency in 0..<scratch.equity.count {
            scratch.equity[currency] = 0
            scratch.touched[currency] = false
        }
        for slot in book.balanceStart[index]..<book.balanceStart[index + 1] {
            let currency = Int(book.balanceCurrency[slot])
            scratch.equity[currency] = book.balanceAmount[slot]
            scratch.touched[currency] = true
        }
        var derivativesMmr = 0.0
        var derivativesImr = 0.0
        var slot = start
        while slot < end {
            let coin = table.coin[Int(book.instrument[slot])]
            var unitEnd = slot
            while unitEnd < end, table.coin[Int(book.instrument[unitEnd])] == coin { unitEnd += 1 }
            guard let unit = unitMargin(book, account: index, from: slot, to: unitEnd, coin: Int(coin), scratch: &scratch) else { return nil }
            derivativesMmr += unit.mmr
            derivativesImr += unit.imr
            slot = unitEnd
        }
        // Equity contributions, in position order (canonical, as the direct computation adds them).
        for slot in start..<end {
            let instrument = Int(book.instrument[slot])
            let size = book.size[slot]
            let mark = table.markPrice[instrument]
            let contribution: Double
            switch table.valuation[instrument] {
            case 2: contribution = size * table.coinsPerContract[instrument] * mark
            case 1: contribution = size * table.contractValue[instrument] * (1 / book.averagePrice[slot] - 1 / mark)
            default: contribution = size * table.contractValue[instrument] * (mark - book.averagePrice[slot])
            }
            let currency = Int(table.settleCurrency[instrument])
            scratch.equity[currency] += contribution
            scratch.touched[currency] = true
        }
        var equityUSD = 0.0
        var adjusted = 0.0
        var borrowMmr = 0.0
        var borrowImr = 0.0
        for currency in 0..<scratch.equity.count where scratch.touched[currency] {
            guard let indexUSD = table.currencyIndexUSD[currency] else { return nil }
            let amount = scratch.equity[currency]
            let value = amount * indexUSD
            let discounted = amount >= 0 ? progressiveCharge(amount, bands: collateral[currency]) * indexUSD : value
            let liability = amount < 0 ? -value : 0
            equityUSD += value
            adjusted += discounted
            borrowMmr += progressiveCharge(liability, bands: mmrBorrowBands)
            borrowImr += progressiveCharge(liability, bands: imrBorrowBands)
        }
        let totalMmr = derivativesMmr + borrowMmr
        return AccountFigures(
            equityUSD: equityUSD, adjustedEquityUSD: adjusted, derivativesMmrUSD: derivativesMmr, derivativesImrUSD: derivativesImr,
            borrowMmrUSD: borrowMmr, borrowImrUSD: borrowImr, totalMmrUSD: totalMmr, totalImrUSD: derivativesImr + borrowImr,
            marginRatio: totalMmr > 0 ? reportedRatio(adjusted, over: totalMmr) : nil)
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
        for slot in book.balanceStart[account]..<book.balanceStart[account + 1] where Int(book.balanceCurrency[slot]) == coin {
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
