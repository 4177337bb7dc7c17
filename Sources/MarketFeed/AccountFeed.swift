import MarginEngine

/// A real account's holdings, read through the signed `GET /api/v5/account/positions` and
/// `GET /api/v5/account/balance`.
public struct AccountHoldings: Sendable {
    /// `account/positions` rows.
    public var positions: [JSONValue]
    /// `account/balance` `data[0].details` rows.
    public var balances: [JSONValue]

    public init(positions: [JSONValue], balances: [JSONValue]) {
        self.positions = positions
        self.balances = balances
    }

    /// Reads both endpoints with the client's credentials.
    public static func fetch(_ client: some OKXTransport) async throws(OKXFeedError) -> AccountHoldings {
        let positions = try await client.get("/api/v5/account/positions", [], signed: true)
        let balance = try await client.get("/api/v5/account/balance", [], signed: true)
        var details: [JSONValue] = []
        for row in balance {
            if case .object(let account) = row, case .array(let rows)? = account["details"] { details += rows }
        }
        return AccountHoldings(positions: positions, balances: details)
    }

    /// The coins the holdings need prices for: each position's underlying and each balance currency.
    public var currencies: Set<String> {
        var coins = Set<String>()
        for row in positions {
            guard case .object(let entry) = row, let id = MarketAssembler.text(entry["instId"]), let parsed = InstrumentID(id) else {
                continue
            }
            coins.insert(parsed.baseCurrency)
            coins.insert(parsed.quoteCurrency)
        }
        for row in balances {
            guard case .object(let entry) = row, let currency = MarketAssembler.text(entry["ccy"]) else { continue }
            coins.insert(currency)
        }
        coins.remove("USD")
        return coins
    }

    /// The holdings as the engine margins them: each derivative position with its signed size, entry price
    /// and leverage; each balance as `cashBal − interest` (accrued interest is owed); the user's chosen spot
    /// in use (`clSpotInUseAmt`). Throws, naming it, for a position the catalog or the market cannot price
    /// (leaving it out would understate the margin); a balance with no USD index, or a spot margin (`MARGIN`)
    /// position whose loan the balances already carry, is left out and named in the problems.
    public func portfolio(catalog: InstrumentCatalog, market: MarketSnapshot) throws(EngineError) -> (Portfolio, [FeedProblem]) {
        var problems: [FeedProblem] = []
        var held: [Position] = []
        for (offset, row) in positions.enumerated() {
            let reader = FieldReader(row, path: "account/positions[\(offset)]")
            let id = try reader.required("instId").string()
            if let type = try reader.optional("instType")?.string(), type == "MARGIN" {
                problems.append(FeedProblem(id, "a MARGIN position: its loan and coins are in account/balance; not added as a position"))
                continue
            }
            let size = try reader.required("pos").double()
            guard size != 0 else { continue }
            let side = try reader.optional("posSide")?.string() ?? "net"
            let signed = side == "short" ? -abs(size) : (side == "long" ? abs(size) : size)
            let instrument = try catalog.instrument(id, path: "\(reader.path).instId")
            guard instrument.isDerivative else {
                throw .invalidField(path: "\(reader.path).instId", value: "\"\(id)\"", reason: "is a spot pair, not a derivative position")
            }
            let resolved = try market.market(for: instrument, path: "\(reader.path).instId")
            var averagePrice = try reader.optional("avgPx")?.double() ?? 0
            if !(averagePrice > 0) {
                problems.append(
                    FeedProblem(id, "no avgPx in account/positions; the mark \(DecimalText.format(resolved.markPrice)) is used"))
                averagePrice = resolved.markPrice
            }
            let leverage = try? reader.optional("lever")?.double(in: 1...1000)
            held.append(
                Position(
                    instrument: instrument, sizeContracts: signed, averagePrice: averagePrice, source: "\(reader.path) \(id)",
                    leverage: leverage ?? nil))
        }
        var cash: [String: Double] = [:]
        var spotInUse: [String: Double] = [:]
        for (offset, row) in balances.enumerated() {
            let reader = FieldReader(row, path: "account/balance details[\(offset)]")
            let currency = try reader.required("ccy").string()
            let balance = try reader.optional("cashBal")?.double() ?? 0
            let interest = try reader.optional("interest")?.double() ?? 0
            let amount = balance - interest
            guard amount != 0 else { continue }
            guard (try? market.indexUSD(currency)) != nil else {
                problems.append(FeedProblem(currency, "balance \(DecimalText.format(amount)) has no USD index in the market; left out"))
                continue
            }
            cash[currency, default: 0] += amount
            if let chosen = try reader.optional("clSpotInUseAmt")?.double(), chosen >= 0 { spotInUse[currency] = chosen }
        }
        return (Portfolio(positions: held, cashBalances: cash, chosenSpotInUse: spotInUse), problems)
    }
}
