import MarginEngine
import MarginStore

// What `pm backtest` (the Backtest target) reads from the exchange while it replays a path: the same figures
// the risk loop acts on, the account rows the kernel margins, and the ledger's bills. Read-only; a separate
// file so that the exchange's own files stay as they are.

extension OrderRequest {
    /// A market order in cross mode, as a backtest opens its books (the API builds orders from request bodies).
    package init(marketOrder instId: String, side: OrderSide, size: ExactDecimal, tag: String = "") {
        self.instId = instId
        tdMode = .cross
        self.side = side
        ordType = .market
        self.size = size
        price = nil
        tgtCcy = ""
        clOrdId = ""
        self.tag = tag
        reduceOnly = false
    }
}

extension Exchange {
    /// The figures the risk loop holds for each of `uids`, in that order, at the current market (an account
    /// whose figures are stale is margined now); nil for an unknown account or one whose market is incomplete.
    package func riskFigures(of uids: [String]) -> [AccountFigures?] {
        uids.map { currentFigures($0) }
    }

    /// An account's position lines and balances as the engine sees them — positions at their ledger values,
    /// cash less pending interest — indexed against `table`, or nil when the kernel cannot express it (the
    /// exchange then margins the account directly).
    package nonisolated static func riskRows(
        of account: AccountState, table: ScenarioVectorTable
    ) -> (lines: [AccountBook.Line], balances: [(currency: Int32, amount: Double)])? {
        guard var rows = RiskMirror.rows(of: account, table: table) else { return nil }
        // The mirror keeps dictionary order; the kernel wants positions in the table's (canonical) order.
        rows.lines.sort { $0.instrument < $1.instrument }
        rows.balances.sort { $0.currency < $1.currency }
        return rows
    }

    /// Bills of `type` with a bill id above `afterBillID`, in id order.
    package func bills(type: BillType, after afterBillID: Int64) throws -> [BillRecord] {
        try database.bills(type: type, after: afterBillID)
    }
}
