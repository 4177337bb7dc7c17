import Dispatch
import Foundation
import MarginEngine

/// Re-margins many accounts after a tick, in parallel over the machine's cores, with results in account
/// order whatever the scheduling (each worker owns a contiguous range of the output).
public enum BatchRemargin {
    /// Figures of every account of `book` (nil where a price is missing).
    /// - Complexity: O(positions × 32) in total, split over `workers` threads.
    public static func run(
        _ book: AccountBook, kernel: BatchMargin, workers: Int = ProcessInfo.processInfo.activeProcessorCount
    ) -> [AccountFigures?] {
        run(book, kernel: kernel, accounts: Array(0..<book.count), workers: workers)
    }

    /// Figures of the listed accounts, in the listed order.
    package static func run(_ book: AccountBook, kernel: BatchMargin, accounts: [Int], workers: Int) -> [AccountFigures?] {
        let count = accounts.count
        guard count > 0 else { return [] }
        var results = [AccountFigures?](repeating: nil, count: count)
        let chunk = 4_096
        let chunks = (count + chunk - 1) / chunk
        let currencies = kernel.table.currencies.count
        results.withUnsafeMutableBufferPointer { output in
            let base = UnsafeMutableSendablePointer(output.baseAddress)
            let work: @Sendable (Int) -> Void = { part in
                var scratch = BatchMargin.Scratch(currencies: currencies)
                for slot in (part * chunk)..<min(count, (part + 1) * chunk) {
                    base.pointer?[slot] = kernel.figures(book, accounts[slot], scratch: &scratch)
                }
            }
            if workers <= 1 {
                for part in 0..<chunks { work(part) }
            } else {
                // GCD runs the chunks on at most as many threads as there are cores.
                DispatchQueue.concurrentPerform(iterations: chunks, execute: work)
            }
        }
        return results
    }
}

/// A pointer handed to concurrent workers that write disjoint ranges.
struct UnsafeMutableSendablePointer<Element>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<Element>?
    init(_ pointer: UnsafeMutablePointer<Element>?) { self.pointer = pointer }
}

/// Keeps every account's figures current across ticks, recomputing only the accounts that hold an
/// instrument whose scenario vector changed, or a balance in a currency whose index moved.
package struct IncrementalRemargin: Sendable {
    package let book: AccountBook
    package private(set) var kernel: BatchMargin
    package private(set) var figures: [AccountFigures?]
    let holdersByInstrument: [Int32: [Int]]
    let holdersByCurrency: [Int32: [Int]]

    package init(book: AccountBook, kernel: BatchMargin, workers: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.book = book
        self.kernel = kernel
        var byInstrument: [Int32: [Int]] = [:]
        var byCurrency: [Int32: [Int]] = [:]
        for account in 0..<book.count {
            var seen = Set<Int32>()
            for slot in book.positionStart[account]..<book.positionEnd[account] where seen.insert(book.instrument[slot]).inserted {
                byInstrument[book.instrument[slot], default: []].append(account)
            }
            for slot in book.balanceStart[account]..<book.balanceEnd[account] {
                byCurrency[book.balanceCurrency[slot], default: []].append(account)
            }
        }
        holdersByInstrument = byInstrument
        holdersByCurrency = byCurrency
        figures = BatchRemargin.run(book, kernel: kernel, workers: workers)
    }

    /// Moves to a new table (same instruments and currencies, new market); returns how many accounts were
    /// recomputed.
    @discardableResult
    package mutating func update(to table: ScenarioVectorTable, workers: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        let previous = kernel.table
        precondition(
            table.instruments.map(\.id) == previous.instruments.map(\.id) && table.currencies == previous.currencies,
            "an incremental update needs the same instruments and currencies")
        var affected = Set<Int>()
        for instrument in table.changedInstruments(since: previous) { affected.formUnion(holdersByInstrument[instrument] ?? []) }
        for currency in table.changedCurrencies(since: previous) { affected.formUnion(holdersByCurrency[currency] ?? []) }
        kernel = BatchMargin(table: table, parameters: kernel.parameters)
        let accounts = affected.sorted()
        let updated = BatchRemargin.run(book, kernel: kernel, accounts: accounts, workers: workers)
        for (slot, account) in accounts.enumerated() { figures[account] = updated[slot] }
        return accounts.count
    }
}
