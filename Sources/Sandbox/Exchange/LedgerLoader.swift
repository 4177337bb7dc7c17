import MarginEngine
import MarginStore

/// Builds the exchange's accounts from the rows a ``LedgerStore`` hands over at start-up: an account's rows of
/// other tables attach to it (rows of an unknown account are ignored), decimals are parsed from their text.
struct LedgerLoader: LedgerVisitor {
    var accounts: [String: AccountState]
    var fund: [String: ExactDecimal]
    var house: [String: ExactDecimal]
    var largestOrderID: Int64 = 0

    mutating func account(_ record: AccountRecord) {
        accounts[record.uid] = AccountState(
            record: record, balances: [:], positions: [:], openOrders: [:], pendingInterest: [:], accruedInterest: [:], leverage: [:])
    }

    mutating func balance(uid: String, ccy: String, cashBal: String) {
        accounts[uid]?.balances[ccy] = ExactDecimal(cashBal) ?? .zero
    }

    mutating func position(uid: String, instId: String, pos: String, avgPx: String, cTime: Int64, uTime: Int64) {
        accounts[uid]?.positions[instId] = PositionState(
            pos: ExactDecimal(pos) ?? .zero, avgPx: ExactDecimal(avgPx) ?? .zero, cTime: cTime, uTime: uTime)
    }

    mutating func openOrder(_ order: OrderRecord) {
        accounts[order.uid]?.openOrders[order.ordId] = order
    }

    mutating func interest(uid: String, ccy: String, pending: String, accrued: String) {
        accounts[uid]?.pendingInterest[ccy] = ExactDecimal(pending) ?? .zero
        accounts[uid]?.accruedInterest[ccy] = ExactDecimal(accrued) ?? .zero
    }

    mutating func accountSetting(key: String, value: String) {
        let parts = key.split(separator: ":").map(String.init)
        guard parts.count == 3 else { return }
        if parts[0] == "lever" { accounts[parts[1]]?.leverage[parts[2]] = ExactDecimal(value) }
        if parts[0] == "siu" { accounts[parts[1]]?.chosenSpotInUse[parts[2]] = ExactDecimal(value) }
    }

    mutating func insuranceFund(ccy: String, balance: String) { fund[ccy] = ExactDecimal(balance) ?? .zero }
    mutating func house(ccy: String, balance: String) { house[ccy] = ExactDecimal(balance) ?? .zero }
    mutating func largestOrderID(_ id: Int64) { largestOrderID = id }
}
