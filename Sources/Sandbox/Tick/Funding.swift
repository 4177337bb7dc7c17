import Foundation
import MarginEngine
import MarginStore
import Synchronization

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
    /// `−pos × ctVal / mark × rate` coins (inverse), the house on the other side. Returns the number of
    /// payments (one per perpetual position and funding hour).
    ///
    /// The tick's last change: an account the tick has already copied (interest, expiry) is posted to through
    /// its copy here. The others, nearly all of them, become `changes.funding`, a ``FundingRun`` that the commit
    /// computes in chunks on a thread of its own while it writes the chunks computed before.
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
        var terms: [String: FundingTerm] = [:]
        var riskCurrencies: [String: Int32] = [:]
        var paying = Set<Int32>()
        for (index, instrument) in risk.table.instruments.enumerated() where instrument.kind == .perpetual {
            guard let rate = fundingRate(instrument, in: snapshot), let resolved = try? snapshot.market(for: instrument, path: "") else {
                continue
            }
            let mark = ExactDecimal(resolved.markPrice)
            terms[instrument.id.rawValue] = FundingTerm(
                instrument: instrument, rate: rate, exactRate: ExactDecimal(rate), mark: mark, markText: mark.description,
                contractValue: ExactDecimal(instrument.contractValue), note: "funding rate \(DecimalText.format(rate))")
            paying.insert(Int32(index))
            riskCurrencies[instrument.settleCurrency] = risk.table.currencyIndex(of: instrument.settleCurrency)
            for instant in instants { rates[instrument.id.rawValue] = (rate, instant) }
        }
        let book = risk.book
        var payments = 0
        var bulk: [Int] = []
        for slot in holders(where: { paying.contains($0) }) {
            let uid = risk.uids[slot]
            guard var copy = changes.accounts[uid] else {
                bulk.append(slot)
                for line in book.positionStart[slot]..<book.positionEnd[slot] where paying.contains(book.instrument[line]) {
                    payments += instants.count
                }
                continue
            }
            let original = copy
            for _ in instants {
                for (id, position) in FundingRun.held(copy.positions) {
                    guard let term = terms[id] else { continue }
                    let payment = term.payment(position.pos)
                    let posted = post(
                        payment, term.instrument.settleCurrency, to: &copy, type: .funding, subType: FundingTerm.subType(payment),
                        instId: id, px: term.markText, notes: term.note, changes: &changes)
                    // The house is the other side of every position: it pays what the account receives.
                    houseBooks(-posted, term.instrument.settleCurrency, for: copy.uid, changes: &changes)
                    payments += 1
                }
            }
            changes.touch(copy, previous: original)
        }
        if !bulk.isEmpty {
            changes.funding = FundingRun(
                accounts: accounts, slots: bulk, uids: bulk.map { risk.uids[$0] }, terms: terms, instants: instants.count,
                riskCurrencies: riskCurrencies, ts: clock(), partitions: partitions)
        }
        return payments
    }
}

/// One perpetual's funding at one tick: its rate and mark, exactly and as the bill writes them.
struct FundingTerm: Sendable {
    var instrument: Instrument
    var rate: Double
    var exactRate: ExactDecimal
    var mark: ExactDecimal
    var markText: String
    var contractValue: ExactDecimal
    var note: String

    /// What a holder of `pos` contracts pays (negative) or receives, before rounding to the ledger scale.
    func payment(_ pos: ExactDecimal) -> ExactDecimal {
        let value =
            instrument.margining == .inverse
            ? pos.multiplied(by: contractValue).divided(by: mark) : pos.multiplied(by: contractValue).multiplied(by: mark)
        return -value.multiplied(by: exactRate)
    }

    /// OKX's sub-types: 173 a funding fee paid, 174 one received.
    static func subType(_ payment: ExactDecimal) -> String {
        payment.isNegative ? BillSubType.fundingExpense : BillSubType.fundingIncome
    }
}

/// The funding of the accounts nothing else in the tick changes, computed from the exchange's accounts as the
/// tick found them (shared with the exchange, not copied): a pure function of its inputs, run in chunks on any
/// thread. ``write(to:)`` overlaps the computation with the store's writes; the exchange applies the resulting
/// balances to memory once the transaction has committed.
struct FundingRun: Sendable {
    /// The exchange's accounts, held until ``release()``.
    private let snapshot: AccountsSnapshot
    /// The payers' risk slots and uids, in slot order (uid order: the order the store keeps balances in).
    let slots: [Int]
    let uids: [String]
    /// By perpetual id.
    let terms: [String: FundingTerm]
    /// Funding hours crossed: each is paid at the tick's marks and rates.
    let instants: Int
    /// The risk mirror's index of each settlement currency.
    let riskCurrencies: [String: Int32]
    /// The bills' time.
    let ts: Int64
    /// The house's side goes to the row of each payer's partition.
    let partitions: LedgerPartitions

    /// Payers per chunk: small enough to keep the writer busy from the first chunk on, large enough that
    /// handing a chunk over costs nothing next to writing it.
    static let chunkSize = 16_384
    /// Chunks computed ahead of the writer, at most (bounds the memory held by rows not yet written).
    static let chunksAhead = 8

    /// An account's positions in id order (a fixed order for its bills).
    static func held(_ positions: [String: PositionState]) -> [(key: String, value: PositionState)] {
        positions.count == 1 ? Array(positions) : positions.sorted { $0.key < $1.key }
    }

    init(
        accounts: [String: AccountState], slots: [Int], uids: [String], terms: [String: FundingTerm], instants: Int,
        riskCurrencies: [String: Int32], ts: Int64, partitions: LedgerPartitions
    ) {
        self.partitions = partitions
        snapshot = AccountsSnapshot(accounts)
        self.slots = slots
        self.uids = uids
        self.terms = terms
        self.instants = instants
        self.riskCurrencies = riskCurrencies
        self.ts = ts
    }

    /// Drops the run's reference to the exchange's accounts (every copy of the run shares it): called once
    /// nothing computes any more, before the exchange changes its accounts in place.
    func release() { snapshot.accounts = nil }

    /// The postings of payers `range`: their bills, their new balances, and the house's side.
    func postings(_ range: Range<Int>) -> FundingPostings {
        guard let accounts = snapshot.accounts else { preconditionFailure("funding run computed after its release") }
        var out = FundingPostings()
        out.rows = EncodedLedgerRows(reservingBills: range.count, balances: range.count)
        out.moved.reserveCapacity(range.count)
        var moved: [(currency: String, balance: ExactDecimal)] = []
        for payer in range {
            let uid = uids[payer]
            guard let index = accounts.index(forKey: uid) else { continue }
            let partition = partitions.partition(of: uid)
            let account = accounts.values[index]
            moved.removeAll(keepingCapacity: true)
            for _ in 0..<instants {
                for (id, position) in Self.held(account.positions) {
                    guard let term = terms[id] else { continue }
                    let currency = term.instrument.settleCurrency
                    let payment = term.payment(position.pos)
                    let amount = LedgerAmount(currency, payment).amount
                    guard !amount.isZero else { continue }
                    let balance: ExactDecimal
                    if let entry = moved.firstIndex(where: { $0.currency == currency }) {
                        moved[entry].balance += amount
                        balance = moved[entry].balance
                    } else {
                        balance = (account.balances[currency] ?? .zero) + amount
                        moved.append((currency, balance))
                    }
                    out.rows.appendBill(
                        uid: uid, ccy: currency, balChg: amount.description, bal: balance.description, type: .funding,
                        subType: FundingTerm.subType(payment), instId: id, ordId: "", pnl: "0", fee: "0", sz: "", px: term.markText,
                        notes: term.note, ts: ts)
                    out.house(-amount, Book(partition: partition, currency: currency))
                }
            }
            for (currency, balance) in moved {
                out.rows.appendBalance(uid: uid, ccy: currency, cashBal: balance.description)
                // What the exchange will apply, worked out here rather than on its actor: where the account is in
                // its dictionary, and the balance the risk mirror holds (net of interest not yet capitalised).
                let risk = LedgerBoundary.risk(balance - (account.pendingInterest[currency] ?? .zero))
                out.moved.append(
                    FundingPostings.Moved(
                        uid: uid, index: index, slot: slots[payer], currency: currency, balance: balance,
                        riskCurrency: riskCurrencies[currency], riskBalance: risk))
            }
        }
        return out
    }

    /// Computes the postings chunk by chunk on a thread of its own and writes each chunk (balances, then bills)
    /// through `writer` as soon as it is ready, in payer order. Returns every chunk's new balances and the
    /// house's total per currency (their rows are dropped once written). A failed write stops the computation
    /// and is rethrown once the thread has finished.
    func write(to writer: any LedgerWriter) throws -> FundingPostings {
        let chunks = (uids.count + Self.chunkSize - 1) / Self.chunkSize
        let pipe = ChunkPipe(ahead: Self.chunksAhead)
        let run = self
        let producer = Thread {
            for chunk in 0..<chunks {
                pipe.room.wait()
                if pipe.cancelled.load(ordering: .acquiring) { break }
                let start = chunk * Self.chunkSize
                pipe.put(chunk, run.postings(start..<min(start + Self.chunkSize, run.uids.count)))
            }
            pipe.finished.signal()
        }
        producer.name = "pm-funding"
        producer.start()
        var total = FundingPostings()
        total.moved.reserveCapacity(uids.count)
        do {
            for chunk in 0..<chunks {
                let postings = pipe.take(chunk)
                try writer.write(postings.rows)
                total.moved += postings.moved
                for (book, amount) in postings.houseTotals { total.house(amount, book) }
                pipe.room.signal()
            }
        } catch {
            pipe.cancelled.store(true, ordering: .releasing)
            for _ in 0..<chunks { pipe.room.signal() }
            pipe.finished.wait()
            throw error
        }
        pipe.finished.wait()
        return total
    }
}

/// The exchange's accounts as a funding run found them. Written only by ``FundingRun/release()``, after the
/// run's thread has finished (the pipe's `finished` semaphore orders the two).
private final class AccountsSnapshot: @unchecked Sendable {  // @unchecked: see above
    var accounts: [String: AccountState]?
    init(_ accounts: [String: AccountState]) { self.accounts = accounts }
}

/// A funding run's postings: rows for the store and the balances the exchange applies after the commit.
struct FundingPostings: Sendable {
    /// A cash balance a run moved.
    struct Moved: Sendable {
        var uid: String
        /// The account's place in the exchange's dictionary (the one the run computed from).
        var index: Dictionary<String, AccountState>.Index
        var slot: Int
        var currency: String
        var balance: ExactDecimal
        /// The currency's index in the risk mirror (nil: not one it knows) and the balance it holds there.
        var riskCurrency: Int32?
        var riskBalance: Double
    }

    /// The store's rows: balances and bills, encoded by the computing thread.
    var rows = EncodedLedgerRows(reservingBills: 0, balances: 0)
    var moved: [Moved] = []
    /// What the house received (negative: paid), per partition and currency: a handful per partition.
    private(set) var houseTotals: [(book: Book, amount: ExactDecimal)] = []

    mutating func house(_ amount: ExactDecimal, _ book: Book) {
        if let entry = houseTotals.firstIndex(where: { $0.book == book }) {
            houseTotals[entry].amount += amount
        } else {
            houseTotals.append((book, amount))
        }
    }
}

/// Hands a funding run's chunks from the computing thread to the writer, in order, with at most `ahead`
/// computed and not yet written.
private final class ChunkPipe: Sendable {
    let room: DispatchSemaphore
    let ready = DispatchSemaphore(value: 0)
    let finished = DispatchSemaphore(value: 0)
    let cancelled = Atomic<Bool>(false)
    private let chunks = Mutex<[Int: FundingPostings]>([:])

    init(ahead: Int) { room = DispatchSemaphore(value: ahead) }

    func put(_ index: Int, _ postings: FundingPostings) {
        chunks.withLock { $0[index] = postings }
        ready.signal()
    }

    /// Waits for chunk `index` (chunks arrive in order: one signal per chunk).
    func take(_ index: Int) -> FundingPostings {
        ready.wait()
        guard let postings = chunks.withLock({ $0.removeValue(forKey: index) }) else {
            preconditionFailure("funding chunk \(index) signalled before it was put")
        }
        return postings
    }
}
