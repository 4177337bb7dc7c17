import MarginEngine
import MarginStore

extension Exchange {
    /// The funding rate of a perpetual at `snapshot`: the rate the snapshot carries when its exchange
    /// published one (`pm market snapshot`, a followed upstream), else the parameter set's formula
    /// (``FundingFormula``).
    func fundingRate(_ instrument: Instrument, in snapshot: MarketSnapshot) -> Double? {
        if let published = snapshot.marks[instrument.id.rawValue]?.fundingRate { return published }
        guard let resolved = try? snapshot.market(for: instrument, path: "") else { return nil }
        return parameters.funding.rate(markPrice: resolved.markPrice, indexPrice: resolved.quoteIndex)
    }

    /// Funding at every funding hour (the parameter set's hours, UTC) crossed in `(start, end]`, paid by the
    /// holders of each perpetual at `snapshot`'s marks: `−pos × ctVal × mark × rate` (linear) or
    /// `−pos × ctVal / mark × rate` coins (inverse), the house on the other side.
    func payFunding(
        from start: UnixMillis, to end: UnixMillis, at snapshot: MarketSnapshot, rates: inout [String: (rate: Double, time: Int64)],
        changes: inout ChangeSet
    ) -> Int {
        let hour: Int64 = 3_600_000
        var instants: [Int64] = []
        var time = (start.rawValue / hour + 1) * hour
        while time <= end.rawValue {
            if parameters.fundingHoursUTC.contains(Int(time / hour % 24)) { instants.append(time) }
            time += hour
        }
        guard !instants.isEmpty else { return 0 }
        // Each perpetual's rate and mark once per tick, not once per account.
        var terms: [Int32: FundingTerm] = [:]
        for (index, instrument) in risk.table.instruments.enumerated() where instrument.kind == .perpetual {
            guard let rate = fundingRate(instrument, in: snapshot), let resolved = try? snapshot.market(for: instrument, path: "") else {
                continue
            }
            let mark = ExactDecimal(resolved.markPrice)
            terms[Int32(index)] = FundingTerm(
                instrument: instrument, rate: rate, exactRate: ExactDecimal(rate), mark: mark, markText: mark.description,
                contractValue: ExactDecimal(instrument.contractValue), note: "funding rate \(DecimalText.format(rate))")
        }
        let payers = holders { terms[$0] != nil }
        changes.reserveCashPostings(payers.count * instants.count)
        var payments = 0
        for instant in instants {
            for term in terms.values { rates[term.instrument.id.rawValue] = (term.rate, instant) }
            for slot in payers {
                let uid = risk.uids[slot]
                // An account that this tick also changes otherwise (interest) is posted to through its copy;
                // the others, nearly all of them, through the cash-only path, their positions read in place.
                var copy = changes.accounts[uid]
                let original = copy
                let positions: [String: PositionState]
                if let copy {
                    positions = copy.positions
                } else if let index = accounts.index(forKey: uid) {
                    positions = accounts.values[index].positions
                } else {
                    continue
                }
                let held = positions.count == 1 ? Array(positions) : positions.sorted { $0.key < $1.key }
                for (id, position) in held {
                    guard let index = risk.table.index(of: id), let term = terms[index] else { continue }
                    let instrument = term.instrument
                    let value =
                        instrument.margining == .inverse
                        ? position.pos.multiplied(by: term.contractValue).divided(by: term.mark)
                        : position.pos.multiplied(by: term.contractValue).multiplied(by: term.mark)
                    let payment = -value.multiplied(by: term.exactRate)
                    let subType = payment.isNegative ? BillSubType.fundingExpense : BillSubType.fundingIncome
                    let posted =
                        copy != nil
                        ? post(
                            payment, instrument.settleCurrency, to: &copy!, type: .funding, subType: subType, instId: id,
                            px: term.markText, notes: term.note, changes: &changes)
                        : postCash(
                            payment, instrument.settleCurrency, uid: uid, type: .funding, subType: subType, instId: id,
                            px: term.markText, notes: term.note, changes: &changes)
                    // The house is the other side of every position: it pays what the account receives.
                    houseBooks(-posted, instrument.settleCurrency, changes: &changes)
                    payments += 1
                }
                if let copy, let original { changes.touch(copy, previous: original) }
            }
        }
        return payments
    }
}

/// One perpetual's funding at one tick: its rate and mark, exactly and as the bill writes them.
struct FundingTerm {
    var instrument: Instrument
    var rate: Double
    var exactRate: ExactDecimal
    var mark: ExactDecimal
    var markText: String
    var contractValue: ExactDecimal
    var note: String
}
