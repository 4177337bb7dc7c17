/// Many accounts' holdings as the batch kernel reads them, in flat columns: account `i`'s position lines
/// are `positionStart[i] ..< positionEnd[i]` of the line columns, its balances likewise, and it is margined
/// under `level[i]`.
///
/// Lines refer to instruments by their index in a ``ScenarioVectorTable``'s universe. Within an account
/// they are sorted by instrument index, one line per instrument (positions are net); balances hold one row
/// per currency. ``replace(_:lines:balances:level:)`` rewrites an account in place when its new lines fit,
/// else appends them; what no account points at any more is reclaimed by ``compact()``.
public struct AccountBook: Sendable {
    /// One position line: instrument index, signed contracts, entry price, and the classic leverage set on
    /// it (0: the parameter set's default).
    public struct Line: Sendable, Equatable {
        public var instrument: Int32
        public var sizeContracts: Double
        public var averagePrice: Double
        public var leverage: Double

        public init(instrument: Int32, sizeContracts: Double, averagePrice: Double, leverage: Double = 0) {
            self.instrument = instrument
            self.sizeContracts = sizeContracts
            self.averagePrice = averagePrice
            self.leverage = leverage
        }
    }

    public private(set) var positionStart: [Int] = []
    public private(set) var positionEnd: [Int] = []
    public private(set) var instrument: [Int32] = []
    public private(set) var size: [Double] = []
    public private(set) var averagePrice: [Double] = []
    public private(set) var leverage: [Double] = []
    public private(set) var balanceStart: [Int] = []
    public private(set) var balanceEnd: [Int] = []
    public private(set) var balanceCurrency: [Int32] = []
    public private(set) var balanceAmount: [Double] = []
    public private(set) var level: [AccountLevel] = []
    /// Line and balance rows no account points at any more.
    public private(set) var garbageRows = 0

    public init() {}

    public var count: Int { positionStart.count }

    public mutating func reserve(accounts: Int, positions: Int) {
        for column in [\AccountBook.positionStart, \.positionEnd, \.balanceStart, \.balanceEnd] {
            self[keyPath: column].reserveCapacity(accounts)
        }
        level.reserveCapacity(accounts)
        instrument.reserveCapacity(positions)
        size.reserveCapacity(positions)
        averagePrice.reserveCapacity(positions)
        leverage.reserveCapacity(positions)
        balanceCurrency.reserveCapacity(accounts)
        balanceAmount.reserveCapacity(accounts)
    }

    /// Adds an account and returns its index. Lines are sorted by instrument index (then size and entry
    /// price: the canonical order); one line per instrument.
    @discardableResult
    public mutating func append(
        lines: [Line], balances: [(currency: Int32, amount: Double)], level accountLevel: AccountLevel = .portfolioMargin
    ) -> Int {
        positionStart.append(instrument.count)
        writeLines(Self.sorted(lines))
        positionEnd.append(instrument.count)
        balanceStart.append(balanceCurrency.count)
        writeBalances(balances.sorted { $0.currency < $1.currency })
        balanceEnd.append(balanceCurrency.count)
        level.append(accountLevel)
        return count - 1
    }

    /// Adds an account from (instrument index, contracts, entry price) lines, portfolio-margined.
    public mutating func append(positions: [(Int32, Double, Double)], balances: [(Int32, Double)]) {
        append(
            lines: positions.map { Line(instrument: $0.0, sizeContracts: $0.1, averagePrice: $0.2) },
            balances: balances.map { (currency: $0.0, amount: $0.1) })
    }

    /// Rewrites account `index`: in place when the new lines and balances fit where the old ones were,
    /// else at the end of the columns (the old rows become garbage until ``compact()``).
    public mutating func replace(
        _ index: Int, lines: [Line], balances: [(currency: Int32, amount: Double)], level accountLevel: AccountLevel
    ) {
        let sortedLines = Self.sorted(lines)
        let sortedBalances = balances.sorted { $0.currency < $1.currency }
        let oldLines = positionEnd[index] - positionStart[index]
        if sortedLines.count <= oldLines {
            var slot = positionStart[index]
            for line in sortedLines {
                instrument[slot] = line.instrument
                size[slot] = line.sizeContracts
                averagePrice[slot] = line.averagePrice
                leverage[slot] = line.leverage
                slot += 1
            }
            positionEnd[index] = slot
            garbageRows += oldLines - sortedLines.count
        } else {
            positionStart[index] = instrument.count
            writeLines(sortedLines)
            positionEnd[index] = instrument.count
            garbageRows += oldLines
        }
        let oldBalances = balanceEnd[index] - balanceStart[index]
        if sortedBalances.count <= oldBalances {
            var slot = balanceStart[index]
            for balance in sortedBalances {
                balanceCurrency[slot] = balance.currency
                balanceAmount[slot] = balance.amount
                slot += 1
            }
            balanceEnd[index] = slot
            garbageRows += oldBalances - sortedBalances.count
        } else {
            balanceStart[index] = balanceCurrency.count
            writeBalances(sortedBalances)
            balanceEnd[index] = balanceCurrency.count
            garbageRows += oldBalances
        }
        level[index] = accountLevel
        if garbageRows > 65_536, garbageRows > (instrument.count + balanceCurrency.count) / 2 { compact() }
    }

    /// Sets account `index`'s balance of `currency` in place; false (nothing changed) when it has none.
    public mutating func setBalance(_ index: Int, currency: Int32, amount: Double) -> Bool {
        for slot in balanceStart[index]..<balanceEnd[index] where balanceCurrency[slot] == currency {
            balanceAmount[slot] = amount
            return true
        }
        return false
    }

    /// Rewrites the columns without garbage, accounts in index order.
    public mutating func compact() {
        var compacted = AccountBook()
        compacted.reserve(accounts: count, positions: instrument.count - garbageRows)
        for index in 0..<count {
            compacted.positionStart.append(compacted.instrument.count)
            for slot in positionStart[index]..<positionEnd[index] {
                compacted.instrument.append(instrument[slot])
                compacted.size.append(size[slot])
                compacted.averagePrice.append(averagePrice[slot])
                compacted.leverage.append(leverage[slot])
            }
            compacted.positionEnd.append(compacted.instrument.count)
            compacted.balanceStart.append(compacted.balanceCurrency.count)
            for slot in balanceStart[index]..<balanceEnd[index] {
                compacted.balanceCurrency.append(balanceCurrency[slot])
                compacted.balanceAmount.append(balanceAmount[slot])
            }
            compacted.balanceEnd.append(compacted.balanceCurrency.count)
            compacted.level.append(level[index])
        }
        self = compacted
    }

    /// Account `index`'s lines.
    public func lines(_ index: Int) -> [Line] {
        (positionStart[index]..<positionEnd[index]).map {
            Line(instrument: instrument[$0], sizeContracts: size[$0], averagePrice: averagePrice[$0], leverage: leverage[$0])
        }
    }

    private static func sorted(_ lines: [Line]) -> [Line] {
        lines.sorted { lhs, rhs in
            if lhs.instrument != rhs.instrument { return lhs.instrument < rhs.instrument }
            if lhs.sizeContracts != rhs.sizeContracts { return lhs.sizeContracts < rhs.sizeContracts }
            return lhs.averagePrice < rhs.averagePrice
        }
    }

    private mutating func writeLines(_ lines: [Line]) {
        for line in lines {
            instrument.append(line.instrument)
            size.append(line.sizeContracts)
            averagePrice.append(line.averagePrice)
            leverage.append(line.leverage)
        }
    }

    private mutating func writeBalances(_ balances: [(currency: Int32, amount: Double)]) {
        for balance in balances {
            balanceCurrency.append(balance.currency)
            balanceAmount.append(balance.amount)
        }
    }

    /// The lines and balances of `portfolio` against `table`, netted by instrument; nil when a position's
    /// instrument or a balance's currency is not in the table's universe, or the portfolio chooses its spot
    /// in use (such an account needs the direct computation).
    public static func rows(
        of portfolio: Portfolio, table: ScenarioVectorTable
    ) -> (lines: [Line], balances: [(currency: Int32, amount: Double)])? {
        guard portfolio.chosenSpotInUse.isEmpty else { return nil }
        let portfolio = portfolio.canonicalGroups().contains { $0.slots.count > 1 } ? portfolio.nettedByInstrument() : portfolio
        var lines: [Line] = []
        lines.reserveCapacity(portfolio.positions.count)
        for position in portfolio.positions {
            guard let index = table.index(of: position.instrument.id.rawValue) else { return nil }
            lines.append(
                Line(
                    instrument: index, sizeContracts: position.sizeContracts, averagePrice: position.averagePrice,
                    leverage: position.leverage ?? 0))
        }
        var balances: [(currency: Int32, amount: Double)] = []
        for (currency, amount) in portfolio.cashBalances {
            guard let index = table.currencyIndex(of: currency) else { return nil }
            balances.append((index, amount))
        }
        return (lines, balances)
    }

    /// Adds `portfolio` as an account (lines of one instrument netted first). Returns false, adding nothing,
    /// when ``rows(of:table:)`` cannot express it.
    @discardableResult
    public mutating func append(
        _ portfolio: Portfolio, table: ScenarioVectorTable, level accountLevel: AccountLevel = .portfolioMargin
    ) -> Bool {
        guard let rows = Self.rows(of: portfolio, table: table) else { return false }
        append(lines: rows.lines, balances: rows.balances, level: accountLevel)
        return true
    }

    /// Account `index` as a ``Portfolio``, for comparison with the direct computation.
    public func portfolio(_ index: Int, table: ScenarioVectorTable) -> Portfolio {
        var positions: [Position] = []
        for slot in positionStart[index]..<positionEnd[index] {
            positions.append(
                Position(
                    instrument: table.instruments[Int(instrument[slot])], sizeContracts: size[slot], averagePrice: averagePrice[slot],
                    source: table.instruments[Int(instrument[slot])].id.rawValue, leverage: leverage[slot] > 0 ? leverage[slot] : nil))
        }
        var balances: [String: Double] = [:]
        for slot in balanceStart[index]..<balanceEnd[index] {
            balances[table.currencies[Int(balanceCurrency[slot])]] = balanceAmount[slot]
        }
        return Portfolio(positions: positions, cashBalances: balances)
    }
}
