import Foundation

/// One row of ``LedgerStore/load(only:into:)``, as the store read it: what a ``LedgerVisitor`` is handed.
enum LedgerRow: Sendable {
    case account(AccountRecord)
    case balance(uid: String, ccy: String, cashBal: String)
    case position(uid: String, instId: String, pos: String, avgPx: String, cTime: Int64, uTime: Int64)
    case openOrder(OrderRecord)
    case interest(uid: String, ccy: String, pending: String, accrued: String)
    case accountSetting(key: String, value: String)
    case insuranceFund(partition: Int, ccy: String, balance: String)
    case house(partition: Int, ccy: String, balance: String)
    case largestOrderID(Int64)

    func deliver(to visitor: inout some LedgerVisitor) {
        switch self {
        case .account(let record): visitor.account(record)
        case .balance(let uid, let ccy, let cashBal): visitor.balance(uid: uid, ccy: ccy, cashBal: cashBal)
        case .position(let uid, let instId, let pos, let avgPx, let cTime, let uTime):
            visitor.position(uid: uid, instId: instId, pos: pos, avgPx: avgPx, cTime: cTime, uTime: uTime)
        case .openOrder(let order): visitor.openOrder(order)
        case .interest(let uid, let ccy, let pending, let accrued): visitor.interest(uid: uid, ccy: ccy, pending: pending, accrued: accrued)
        case .accountSetting(let key, let value): visitor.accountSetting(key: key, value: value)
        case .insuranceFund(let partition, let ccy, let balance): visitor.insuranceFund(partition: partition, ccy: ccy, balance: balance)
        case .house(let partition, let ccy, let balance): visitor.house(partition: partition, ccy: ccy, balance: balance)
        case .largestOrderID(let id): visitor.largestOrderID(id)
        }
    }
}

/// Batches of rows from the thread that reads them to the thread that builds accounts from them, in order. At
/// most `capacity` batches wait (the reader blocks beyond), so memory stays bounded whatever the ledger's size.
/// The reader ends with ``finish(failure:)``; ``take()`` then returns the batches still waiting, then nil, or
/// throws the reader's error.
final class LedgerRowPipe: @unchecked Sendable {  // @unchecked: every field is behind `condition`
    static let batchSize = 2_048
    private let capacity = 16
    private let condition = NSCondition()
    private var batches: [[LedgerRow]] = []
    private var finished = false
    private var failure: (any Error)?

    func put(_ batch: [LedgerRow]) {
        guard !batch.isEmpty else { return }
        condition.lock()
        defer { condition.unlock() }
        while batches.count >= capacity { condition.wait() }
        batches.append(batch)
        condition.broadcast()
    }

    func finish(failure error: (any Error)?) {
        condition.lock()
        defer { condition.unlock() }
        finished = true
        failure = error
        condition.broadcast()
    }

    func take() throws -> [LedgerRow]? {
        condition.lock()
        defer { condition.unlock() }
        while batches.isEmpty && !finished { condition.wait() }
        if !batches.isEmpty {
            condition.broadcast()
            return batches.removeFirst()
        }
        if let failure { throw failure }
        return nil
    }
}
