import MarginEngine

/// Public market endpoints (no authentication).
extension Exchange {
    /// Catalog entries live at the market time, in OKX's schema, filtered like `/public/instruments`.
    package func instrumentsView(instType: String, uly: String?, instFamily: String?, instId: String?) throws -> JSONValue {
        guard ["SPOT", "SWAP", "FUTURES", "OPTION", "MARGIN"].contains(instType) else {
            throw OKXError.parameter("instType \(instType) must be SPOT, SWAP, FUTURES or OPTION")
        }
        let kind = instType == "MARGIN" ? "SPOT" : instType
        var rows: [JSONValue] = []
        for instrument in catalog.instruments where instrument.kind.rawValue == kind {
            if let expiry = instrument.expiry, expiry <= market.valuationTime { continue }
            if let uly, instrument.id.family != uly { continue }
            if let instFamily, instrument.id.family != instFamily { continue }
            if let instId, instrument.id.rawValue != instId { continue }
            if kind == "OPTION" || kind == "FUTURES" {
                // Only instruments the market prices are tradable.
                guard market.marks[instrument.id.rawValue] != nil else { continue }
            }
            var entry = instrument.catalogEntry
            entry["state"] = .string("live")
            rows.append(.object(entry))
        }
        return .array(rows)
    }

    func markView(_ instrument: Instrument) -> JSONValue? {
        guard let resolved = try? market.market(for: instrument, path: "") else { return nil }
        return .object([
            ("instType", .string(instrument.kind.rawValue)),
            ("instId", .string(instrument.id.rawValue)),
            ("markPx", .decimal(resolved.markPrice)),
            ("ts", .string(String(market.valuationTime.rawValue))),
        ])
    }

    /// Live instruments of a type and family (all types when nil).
    func instruments(type: String?, family: String?, id: String?) throws -> [Instrument] {
        if let id {
            return [try liveInstrument(id)]
        }
        return catalog.instruments.filter { instrument in
            if let type, instrument.kind.rawValue != (type == "MARGIN" ? "SPOT" : type) { return false }
            if let family, instrument.id.family != family { return false }
            if let expiry = instrument.expiry, expiry <= market.valuationTime { return false }
            return instrument.kind == .spot || market.marks[instrument.id.rawValue] != nil
        }
    }

    package func markPriceView(instType: String?, family: String?, instId: String?) throws -> JSONValue {
        if instId == nil, instType == nil { throw OKXError.empty("instType") }
        return .array(try instruments(type: instType, family: family, id: instId).filter { $0.kind != .spot }.compactMap(markView))
    }

    func tickerView(_ instrument: Instrument) -> JSONValue? {
        guard let top = try? book(instrument), let resolved = try? market.market(for: instrument, path: "") else { return nil }
        let ts = String(market.valuationTime.rawValue)
        return .object([
            ("instType", .string(instrument.kind.rawValue)),
            ("instId", .string(instrument.id.rawValue)),
            ("last", .string(top.mark.description)),
            ("lastSz", .string("0")),
            ("askPx", .string(top.ask.description)),
            ("askSz", .string("1000000")),
            ("bidPx", .string(top.bid.description)),
            ("bidSz", .string("1000000")),
            ("open24h", .string(top.mark.description)),
            ("high24h", .string(top.mark.description)),
            ("low24h", .string(top.mark.description)),
            ("volCcy24h", .string("0")),
            ("vol24h", .string("0")),
            ("sodUtc0", .string(top.mark.description)),
            ("sodUtc8", .string(top.mark.description)),
            ("markPx", .decimal(resolved.markPrice)),
            ("idxPx", .decimal(resolved.quoteIndex)),
            ("ts", .string(ts)),
        ])
    }

    package func tickerView(instId: String) throws -> JSONValue {
        let instrument = try liveInstrument(instId)
        guard let view = tickerView(instrument) else {
            throw OKXError(.unknownInstrument, "Instrument ID does not exist: \(instId) has no market price")
        }
        return .array([view])
    }

    package func tickersView(instType: String, family: String?) throws -> JSONValue {
        guard ["SPOT", "SWAP", "FUTURES", "OPTION"].contains(instType) else {
            throw OKXError.parameter("instType \(instType) must be SPOT, SWAP, FUTURES or OPTION")
        }
        return .array(try instruments(type: instType, family: family, id: nil).compactMap(tickerView))
    }

    package func bookView(instId: String, depth: Int) throws -> JSONValue {
        let instrument = try liveInstrument(instId)
        let top = try book(instrument)
        let tick = ExactDecimal(instrument.tickSize)
        let levels = max(1, min(depth, 400))
        var bids: [JSONValue] = []
        var asks: [JSONValue] = []
        for level in 0..<levels {
            let offset = tick.multiplied(by: ExactDecimal(level))
            let bid = top.bid - offset
            if bid.units > 0 { bids.append(.array([.string(bid.description), .string("1000000"), .string("0"), .string("1")])) }
            asks.append(.array([.string((top.ask + offset).description), .string("1000000"), .string("0"), .string("1")]))
        }
        return .array([.object([("asks", .array(asks)), ("bids", .array(bids)), ("ts", .string(String(market.valuationTime.rawValue)))])])
    }

    package func indexTickersView(instId: String?, quoteCurrency: String?) throws -> JSONValue {
        var rows: [JSONValue] = []
        let pairs = market.indices.keys.sorted()
        var wanted: [String] = []
        if let instId {
            wanted = [instId]
        } else {
            let quote = quoteCurrency ?? "USDT"
            let coins = Set(catalog.instruments.map(\.underlying))
            wanted = coins.sorted().map { "\($0)-\(quote)" }
            wanted += pairs.filter { $0.hasSuffix("-\(quote)") && !wanted.contains($0) }
        }
        for pair in wanted {
            let parts = pair.split(separator: "-").map(String.init)
            guard parts.count == 2, let price = try? market.index(base: parts[0], quote: parts[1]) else {
                if instId != nil { throw OKXError(.unknownInstrument, "Index does not exist: \(pair)") }
                continue
            }
            let text = DecimalText.format(price)
            rows.append(
                .object([
                    ("instId", .string(pair)), ("idxPx", .string(text)), ("high24h", .string(text)), ("low24h", .string(text)),
                    ("open24h", .string(text)), ("sodUtc0", .string(text)), ("sodUtc8", .string(text)),
                    ("ts", .string(String(market.valuationTime.rawValue))),
                ]))
        }
        return .array(rows)
    }

    /// Option Greeks and volatilities by family (`opt-summary`).
    package func optionSummaryView(family: String, expiryDate: String?) throws -> JSONValue {
        var rows: [JSONValue] = []
        for instrument in try instruments(type: "OPTION", family: family, id: nil) {
            if let expiryDate, !instrument.id.rawValue.contains("-\(expiryDate)-") { continue }
            guard let resolved = try? market.market(for: instrument, path: ""), let option = resolved.option,
                let strike = instrument.id.strikeUSD, let kind = instrument.id.optionKind
            else { continue }
            let greeks = Black76(
                kind, forward: option.forwardUSD, strike: strike, volatility: option.volatility,
                timeToExpiryYears: option.timeToExpiryYears, discountFactor: option.discountFactor)
            let vol = DecimalText.format(option.volatility)
            rows.append(
                .object([
                    ("instType", .string("OPTION")), ("instId", .string(instrument.id.rawValue)), ("uly", .string(family)),
                    ("instFamily", .string(family)),
                    ("delta", .decimal(greeks.delta - resolved.markPrice)), ("gamma", .decimal(greeks.gamma)),
                    ("vega", .decimal(greeks.vegaPerVolPoint / resolved.indexUSD)),
                    ("theta", .decimal(greeks.thetaPerDay / resolved.indexUSD)),
                    ("deltaBS", .decimal(greeks.delta)), ("gammaBS", .decimal(greeks.gamma)),
                    ("vegaBS", .decimal(greeks.vegaPerVolPoint)), ("thetaBS", .decimal(greeks.thetaPerDay)),
                    // 1 / mark overflows for a far out-of-the-money option after a crash (a mark of 1e-320 coins).
                    ("lever", (1 / resolved.markPrice).isFinite ? .decimal(1 / resolved.markPrice) : .string("")),
                    ("markVol", .string(vol)), ("bidVol", .string(vol)), ("askVol", .string(vol)), ("realVol", .string("")),
                    ("volLv", .string(vol)), ("fwdPx", .decimal(option.forwardUSD)),
                    ("ts", .string(String(market.valuationTime.rawValue))),
                ]))
        }
        return .array(rows)
    }

    package func fundingRateView(instId: String) throws -> JSONValue {
        if instId == "ANY" {
            // OKX: `instId=ANY` answers every perpetual's funding rate at once.
            return .array(
                try instruments(type: "SWAP", family: nil, id: nil).flatMap { instrument -> [JSONValue] in
                    guard case .array(let rows) = try fundingRateView(instId: instrument.id.rawValue) else { return [] }
                    return rows
                })
        }
        let instrument = try liveInstrument(instId)
        guard instrument.kind == .perpetual else { throw OKXError.parameter("instId \(instId) is not a perpetual swap") }
        let rate = fundingRate(instrument, in: market) ?? 0
        let hour: Int64 = 3_600_000
        var next = (market.valuationTime.rawValue / hour + 1) * hour
        while !parameters.fundingHoursUTC.contains(Int(next / hour % 24)) { next += hour }
        return .array([
            .object([
                ("instType", .string("SWAP")), ("instId", .string(instId)), ("fundingRate", .decimal(rate)),
                ("nextFundingRate", .decimal(rate)), ("fundingTime", .string(String(next))),
                ("nextFundingTime", .string(String(next + 8 * hour))), ("minFundingRate", .string("-0.0075")),
                ("maxFundingRate", .string("0.0075")), ("method", .string("current_period")), ("settState", .string("settled")),
                ("ts", .string(String(market.valuationTime.rawValue))),
            ])
        ])
    }

    /// Collateral discount tiers and interest-free quotas per currency.
    package func discountView(currency: String?) -> JSONValue {
        var rows: [JSONValue] = []
        for ccy in parameters.collateralTiers.keys.sorted() where currency.map({ $0 == ccy }) ?? true {
            var lower = 0.0
            let tiers: [JSONValue] = (parameters.collateralTiers[ccy] ?? []).map { band in
                defer { lower = band.upTo ?? lower }
                return .object([
                    ("minAmt", .decimal(lower)), ("maxAmt", band.upTo.map(JSONValue.decimal) ?? .string("")),
                    ("discountRate", .decimal(band.rate)),
                ])
            }
            rows.append(
                .object([
                    ("ccy", .string(ccy)), ("amt", .decimal(parameters.interestFreeQuota(for: ccy, equities: [:]))),
                    ("discountLv", .string("1")), ("discountInfo", .array(tiers)), ("details", .array(tiers)),
                ]))
        }
        return .array(rows)
    }

    /// Classic-mode position tiers of a family's tier.
    package func positionTiersView(instType: String, family: String?, instId: String?) throws -> JSONValue {
        guard let underlying = family?.split(separator: "-").first.map(String.init) ?? instId.flatMap({ InstrumentID($0)?.baseCurrency })
        else {
            throw OKXError.empty("instFamily")
        }
        let tiers = parameters.classicPositionTiers[parameters.tier(of: underlying)] ?? []
        var lower = 0.0
        var rows: [JSONValue] = []
        for (number, tier) in tiers.enumerated() {
            rows.append(
                .object([
                    ("uly", .string(family ?? "")), ("instFamily", .string(family ?? "")), ("instId", .string(instId ?? "")),
                    ("tier", .string(String(number + 1))), ("minSz", .decimal(lower)),
                    ("maxSz", tier.upToUSD.map(JSONValue.decimal) ?? .string("")),
                    ("mmr", .decimal(tier.mmrRate)), ("imr", .decimal(1 / tier.maxLeverage)), ("maxLever", .decimal(tier.maxLeverage)),
                    ("optMgnFactor", .string("")), ("quoteMaxLoan", .string("")), ("baseMaxLoan", .string("")),
                ]))
            lower = tier.upToUSD ?? lower
        }
        return .array(rows)
    }

    /// Our public endpoint: the active risk parameters and the rates in force now (docs/methodology/06-sandbox-api.md
    /// §3: a trader can look them up) — MR tables by tier, MR9 bands with the column in force for each stablecoin pair,
    /// discount tiers, borrowing bands, interest curves with the current utilisation and rate.
    package func riskParametersView() -> JSONValue {
        let usdt = (try? market.indexUSD("USDT")) ?? 1
        let usdc = (try? market.indexUSD("USDC")) ?? 1
        let pairs: [(String, Double)] = [("USDT/USD", abs(1 - usdt)), ("USDT/USDC", abs(1 - usdt / usdc)), ("USDC/USD", abs(1 - usdc))]
        var tiers: [(String, JSONValue)] = []
        for tier in RiskTier.allCases {
            guard let values = parameters.derivatives[tier] else { continue }
            tiers.append(
                (
                    tier.rawValue,
                    .object([
                        ("coins", .array(parameters.tierOfCoin.filter { $0.value == tier }.keys.sorted().map(JSONValue.string))),
                        ("mr1SpotMoves", .array(values.mr1SpotMoves.map(JSONValue.decimal))),
                        ("mr6ExtremeMove", .decimal(values.mr6ExtremeMove)), ("mr6LossFactor", .decimal(values.mr6LossFactor)),
                        ("perpBasis", .decimal(values.perpBasis)), ("annualBasis", .decimal(values.annualBasis)),
                        ("spotBasis", .decimal(values.spotBasis)), ("mr7RateLinear", .decimal(values.mr7RateLinear)),
                        ("mr7RateOption", .decimal(values.mr7RateOption)), ("mr7BandDivisor", .decimal(values.mr7BandDivisor)),
                        ("imrFactor", .decimal(values.imrFactor)),
                        (
                            "mr7Bands",
                            .array(
                                parameters.mr7Bands(for: tier).map {
                                    .object([("upToUsd", $0.upTo.map(JSONValue.decimal) ?? .string("")), ("multiplier", .decimal($0.rate))])
                                })
                        ),
                    ])
                ))
        }
        // Utilisation as the last interest accrual measured it (liabilities that bear interest, by currency).
        let borrowed = borrowedByCurrency
        let currencies = Set(parameters.interestRates.keys).union(parameters.interestFreeQuotas.keys).union(borrowed.keys).sorted()
        let interest: [JSONValue] = currencies.map { currency in
            let curve = parameters.interestRateCurve(for: currency)
            let index = (try? market.indexUSD(currency)) ?? 1
            let utilisation = curve.utilisation(totalBorrowed: borrowed[currency] ?? 0, indexUSD: index)
            return .object([
                ("ccy", .string(currency)), ("base", .decimal(curve.base)), ("slope1", .decimal(curve.slope1)),
                ("kink", .decimal(curve.kink)),
                ("slope2", .decimal(curve.slope2)), ("utilisation", .decimal(utilisation)),
                ("annualRate", .decimal(curve.annualRate(utilisation: utilisation))),
                ("interestFreeQuotaBase", .decimal(parameters.interestFreeQuotas[currency]?.base ?? 0)),
                ("quotaPlusEquityOf", .string(parameters.interestFreeQuotas[currency]?.plusEquityOf ?? "")),
            ])
        }
        let mr9: [JSONValue] = pairs.map { pair, deviation in
            .object([
                ("pair", .string(pair)), ("deviation", .decimal(deviation)),
                (
                    "bands",
                    .array(
                        parameters.mr9.schedule(deviation: deviation).map {
                            .object([("upToUsd", $0.upTo.map(JSONValue.decimal) ?? .string("")), ("rate", .decimal($0.rate))])
                        })
                ),
            ])
        }
        return .array([
            .object([
                ("paramsId", .string(parameters.id)), ("marketTs", .string(String(market.valuationTime.rawValue))),
                ("tiers", .object(tiers)),
                ("mr2HorizonDays", .decimal(parameters.mr2HorizonDays)), ("mr3Factor", .decimal(parameters.mr3Factor)),
                ("mr5RateShift", .decimal(parameters.mr5RateShift)), ("volatilityFloor", .decimal(parameters.volatilityFloor)),
                (
                    "volatilityShock",
                    .array(
                        parameters.volatilityShock.map {
                            .object([
                                ("days", .decimal($0.days)), ("upPoints", .decimal($0.upPoints)), ("upPercent", .decimal($0.upPercent)),
                                ("downPoints", .decimal($0.downPoints)), ("downPercent", .decimal($0.downPercent)),
                            ])
                        })
                ),
                (
                    "mr9",
                    .object([
                        ("deviationBounds", .array(parameters.mr9.deviationBounds.map(JSONValue.decimal))),
                        (
                            "table",
                            .array(
                                zip(parameters.mr9.bandUpTo, parameters.mr9.rates).map { upTo, rates in
                                    .object([
                                        ("upToUsd", upTo.map(JSONValue.decimal) ?? .string("")),
                                        ("rates", .array(rates.map(JSONValue.decimal))),
                                    ])
                                })
                        ),
                        ("current", .array(mr9)),
                    ])
                ),
                ("collateral", discountView(currency: nil)),
                (
                    "borrowing",
                    .array(
                        parameters.borrowingBands.map {
                            .object([
                                ("upToUsd", $0.upToUSD.map(JSONValue.decimal) ?? .string("")), ("mmr", .decimal($0.mmrRate)),
                                ("imr", .decimal($0.imrRate)),
                            ])
                        })
                ),
                ("interest", .array(interest)),
                (
                    "liquidation",
                    .object([
                        ("trigger", .decimal(parameters.liquidationTriggerRatio)), ("stop", .decimal(parameters.liquidationStopRatio)),
                        ("warnRatio", .decimal(parameters.warningRatio)), ("sliceBuffer", .decimal(parameters.liquidationSliceBuffer)),
                        ("slippage", Self.perTierJSON(parameters.liquidationSlippage)),
                        ("feeRate", Self.perTierJSON(parameters.liquidationFeeRate)),
                        ("collateralPenaltyMin", .decimal(parameters.liquidationPenaltyMinimum)),
                        ("collateralPenaltyMax", .decimal(parameters.liquidationPenaltyMaximum)),
                        ("hedgePerpetualSettle", .string(parameters.hedgePerpetualSettleCurrency)),
                    ])
                ),
                (
                    "sandbox",
                    .object([
                        ("fees", .object(parameters.fees.keys.sorted().map { ($0, .decimal(parameters.fees[$0] ?? 0)) })),
                        ("halfSpread", Self.perTierJSON(parameters.halfSpread)),
                        ("fundingHoursUtc", .array(parameters.fundingHoursUTC.map { .string(String($0)) })),
                        (
                            "funding",
                            .object([
                                (
                                    "formula",
                                    .string(
                                        "clamp(premium + clamp(interestRate − premium, ±interestClamp), ±cap), premium = (mark − index) / index"
                                    )
                                ),
                                ("interestRate", .decimal(parameters.funding.interestRate)),
                                ("interestClamp", .decimal(parameters.funding.interestClamp)),
                                ("cap", .decimal(parameters.funding.cap)),
                            ])
                        ),
                        ("settlementFeeRate", .decimal(parameters.settlementFeeRate)),
                    ])
                ),
                (
                    "limits",
                    .object([
                        ("maxPositions", .string(String(parameters.maximumPositions))),
                        ("maxTenorYears", .decimal(parameters.maximumTenorYears)),
                    ])
                ),
            ])
        ])
    }

    static func perTierJSON(_ values: [RiskTier: Double]) -> JSONValue {
        .object(RiskTier.allCases.compactMap { tier in values[tier].map { (tier.rawValue, .decimal($0)) } })
    }
}
