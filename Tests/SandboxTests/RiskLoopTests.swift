import Foundation
import GRDB
import MarginEngine
import MarginStore
import MarginTestSupport
import Testing

@testable import Sandbox

/// Market ticks: liquidation by the planner, funding, expiry, interest; and restarts
/// (docs/methodology/06-sandbox-api.md §5–§6).
@Suite struct RiskLoopTests {
    @Test func anAccountBelowTheTriggerIsLiquidatedWithBillsAndFills() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account([("USDT", "10000")])
        _ = await sandbox.call(
            "POST", "/api/v5/account/set-leverage", body: #"{"lever":"50","mgnMode":"cross","instId":"BTC-USDT-SWAP"}"#, as: user)
        let placed = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"300"}"#, as: user)
        #expect(placed.code == "0", "\(placed.envelope)")
        let report = try await sandbox.simulator.shock(["BTC": -0.035])
        #expect(report.liquidatedAccounts == [user.uid])
        let fills = try await sandbox.database.writer.read { db in
            try FillRecord.filter(Column("uid") == user.uid && Column("category") != "normal").fetchAll(db)
        }
        #expect(!fills.isEmpty)
        #expect(fills.allSatisfy { [.partialLiquidation, .fullLiquidation].contains($0.category) && $0.side == .sell })
        let bills = try await sandbox.database.writer.read { db in
            try BillRecord.filter(Column("uid") == user.uid && Column("type") == "5").fetchCount(db)
        }
        #expect(bills == fills.count)
        let state = await sandbox.call("GET", "/api/v5/account/risk-state", as: user).first
        // After liquidation the ratio is above the stop, or nothing is required any more ("").
        let ratio = Double(state?[member: "mgnRatio"]?.scalarText ?? "") ?? .infinity
        let remaining = await sandbox.call("GET", "/api/v5/account/positions", as: user).data
        #expect(ratio > 1.1 || remaining.isEmpty)
        #expect(try await sandbox.ledgerBalances(user.uid))
        #expect(try await sandbox.cashImbalances() == [])
        let fund = await sandbox.exchange.insuranceFundBalances()
        #expect((fund["USDT"] ?? .zero).units > 0, "liquidation fees go to the insurance fund")
    }

    @Test func fundingExpiryAndInterestAreBills() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account([("USDT", "100000"), ("BTC", "1")])
        _ = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"10"}"#, as: user)
        _ = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USD-251231-90000-C","tdMode":"cross","side":"buy","ordType":"market","sz":"10"}"#, as: user)
        _ = await sandbox.call("POST", "/api/v5/account/set-auto-loan", body: #"{"autoLoan":true}"#, as: user)
        let borrow = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"ETH-USDT","tdMode":"cross","side":"buy","ordType":"market","sz":"60","tgtCcy":"base_ccy"}"#, as: user)
        #expect(borrow.code == "0", "\(borrow.envelope)")
        // 2025-12-30T17:31Z + 24 h crosses the 00:00, 08:00 and 16:00 funding times and the 2025-12-31 08:00 expiry.
        let report = try await sandbox.simulator.shock([:], advanceSeconds: 86_400)
        #expect(report.fundingPayments == 3)
        #expect(report.settlements == 1)
        #expect(report.interestBills >= 20, "hourly interest on the USDT loan above the 20,000 quota")
        let bills = try await sandbox.database.writer.read { db in try BillRecord.filter(Column("uid") == user.uid).fetchAll(db) }
        #expect(bills.filter { $0.type == .funding }.count == 3)
        #expect(bills.filter { $0.type == .delivery }.count == 1)
        #expect(bills.filter { $0.type == .interest }.allSatisfy { ($0.balChg.hasPrefix("-")) })
        let positions = await sandbox.call("GET", "/api/v5/account/positions", as: user)
        #expect(positions.data.map { $0[member: "instId"]?.scalarText } == ["BTC-USDT-SWAP"], "the option settled at expiry")
        #expect(try await sandbox.ledgerBalances(user.uid))
        #expect(try await sandbox.cashImbalances() == [])
    }

    /// Funding reaches most accounts through a cash-only posting; an account whose option also expires in the
    /// same tick is settled from a copy that holds that funding (once), and the tick commits. (Chaos found
    /// the server stopping on this: the two paths met in one change set.)
    @Test func fundingAndExpiryInOneTickOfAnAccountWithoutInterest() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account([("USDT", "100000"), ("BTC", "1")])
        for body in [
            #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"10"}"#,
            #"{"instId":"BTC-USD-251231-90000-C","tdMode":"cross","side":"buy","ordType":"market","sz":"10"}"#,
        ] {
            let placed = await sandbox.call("POST", "/api/v5/trade/order", body: body, as: user)
            #expect(placed.code == "0", "\(placed.envelope)")
        }
        let report = try await sandbox.simulator.shock([:], advanceSeconds: 86_400)
        #expect(report.fundingPayments == 3 && report.settlements == 1 && report.interestBills == 0)
        let bills = try await sandbox.database.writer.read { db in try BillRecord.filter(Column("uid") == user.uid).fetchAll(db) }
        #expect(bills.filter { $0.type == .funding }.count == 3)
        #expect(bills.filter { $0.type == .delivery }.count == 1)
        // OKX's sub-types: 173 a funding fee paid, 174 one received.
        #expect(bills.filter { $0.type == .funding }.allSatisfy { $0.subType == ($0.balChg.hasPrefix("-") ? "173" : "174") })
        #expect(try await sandbox.ledgerBalances(user.uid), "every balance, in memory and stored, is the sum of its bills")
        #expect(try await sandbox.cashImbalances() == [])
        // A restart reads back what memory holds.
        let memory = await sandbox.exchange.account(user.uid)?.balances
        let stored = try await sandbox.database.writer.read { db in
            try BalanceRecord.filter(Column("uid") == user.uid).fetchAll(db)
        }
        #expect(Dictionary(uniqueKeysWithValues: stored.map { ($0.ccy, ExactDecimal($0.cashBal) ?? .zero) }) == memory)
    }

    /// The loader attaches rows to their accounts whatever the order the store hands them in: in uid order by
    /// its cursors, out of it by search; a row of an unknown account is ignored.
    @Test func theLoaderAttachesRowsInAnyOrder() {
        var loader = LedgerLoader(accounts: [:], fund: [:], house: [:])
        for uid in ["a", "b", "c", "d"] {
            loader.account(AccountRecord(uid: uid, acctLv: "4", acknowledged: true, autoLoan: false, label: "", createdAt: 0))
        }
        for (uid, amount) in [("c", "3"), ("a", "1"), ("d", "4"), ("x", "9"), ("b", "2"), ("a", "1.5")] {
            loader.balance(uid: uid, ccy: uid == "a" && amount == "1.5" ? "BTC" : "USDT", cashBal: amount)
        }
        for uid in ["d", "a", "c"] {
            loader.position(uid: uid, instId: "BTC-USDT-SWAP", pos: "1", avgPx: "100", cTime: 1, uTime: 2)
        }
        loader.interest(uid: "b", ccy: "USDT", pending: "0.5", accrued: "1")
        loader.accountSetting(key: "lever:c:BTC-USDT-SWAP", value: "3")
        loader.accountSetting(key: "lever:a:BTC-USDT-SWAP", value: "2")
        loader.finish()
        let accounts = loader.accounts
        #expect(accounts.keys.sorted() == ["a", "b", "c", "d"] && loader.order == ["a", "b", "c", "d"])
        #expect(accounts["a"]?.balances == ["USDT": ExactDecimal(1), "BTC": ExactDecimal("1.5")!])
        #expect(accounts["b"]?.balances == ["USDT": ExactDecimal(2)] && accounts["c"]?.balances == ["USDT": ExactDecimal(3)])
        #expect(accounts["d"]?.balances == ["USDT": ExactDecimal(4)])
        #expect(["a", "c", "d"].allSatisfy { accounts[$0]?.positions.count == 1 } && accounts["b"]?.positions.isEmpty == true)
        #expect(accounts["b"]?.pendingInterest == ["USDT": ExactDecimal("0.5")!])
        #expect(accounts["a"]?.leverage == ["BTC-USDT-SWAP": ExactDecimal(2)])
        #expect(accounts["c"]?.leverage == ["BTC-USDT-SWAP": ExactDecimal(3)])
    }

    /// Funding posted by the commit's run (an account nothing else in the tick changes) and through an account's
    /// copy (one that also pays interest that tick) is the same: per perpetual and funding hour, the bill's change
    /// is −pos × ctVal × mark × rate (÷ mark for inverse), at the mark and rate the bill states, rounded to the
    /// currency's ledger scale; each bill's balance follows from the one before; balances are their bills, cash
    /// is conserved, and a restart reads the balances back.
    @Test func fundingIsTheSameThroughTheRunAndThroughACopy() async throws {
        let sandbox = try SandboxHarness()
        let book = [("BTC-USDT-SWAP", "buy", "10"), ("ETH-USDC-SWAP", "sell", "7"), ("BTC-USD-SWAP", "buy", "30")]
        var users: [SandboxHarness.Credentials] = []
        for borrows in [false, true] {
            let user = try await sandbox.account([("USDT", "100000"), ("USDC", "50000"), ("BTC", "1")])
            for (instId, side, size) in book {
                let placed = await sandbox.call(
                    "POST", "/api/v5/trade/order",
                    body: #"{"instId":"\#(instId)","tdMode":"cross","side":"\#(side)","ordType":"market","sz":"\#(size)"}"#, as: user)
                #expect(placed.code == "0", "\(placed.envelope)")
            }
            if borrows {
                _ = await sandbox.call("POST", "/api/v5/account/set-auto-loan", body: #"{"autoLoan":true}"#, as: user)
                let borrow = await sandbox.call(
                    "POST", "/api/v5/trade/order",
                    body: #"{"instId":"ETH-USDT","tdMode":"cross","side":"buy","ordType":"market","sz":"60","tgtCcy":"base_ccy"}"#, as: user
                )
                #expect(borrow.code == "0", "\(borrow.envelope)")
            }
            users.append(user)
        }
        // 24 h from 2025-12-30T17:31Z crosses three funding hours; the borrower pays interest every hour.
        let report = try await sandbox.simulator.shock([:], advanceSeconds: 86_400)
        #expect(report.fundingPayments == 2 * book.count * 3)
        #expect(report.interestBills > 0)
        let catalog = await sandbox.exchange.catalog
        var changes: [[String]] = []
        for user in users {
            let bills = try await sandbox.database.writer.read { db in
                try BillRecord.filter(Column("uid") == user.uid).order(Column("billId")).fetchAll(db)
            }
            let funding = bills.filter { $0.type == BillType.funding }
            #expect(funding.count == book.count * 3)
            for bill in funding {
                let instrument = try #require(catalog.instrument(bill.instId))
                let (_, side, size) = try #require(book.first { $0.0 == bill.instId })
                let contracts = try #require(ExactDecimal(size))
                let pos = side == "buy" ? contracts : -contracts
                let mark = try #require(ExactDecimal(bill.px))
                let rate = try #require(ExactDecimal(String(bill.notes.dropFirst("funding rate ".count))))
                let value = pos.multiplied(by: ExactDecimal(instrument.contractValue))
                let notional = instrument.margining == Margining.inverse ? value.divided(by: mark) : value.multiplied(by: mark)
                let expected = LedgerAmount(instrument.settleCurrency, -notional.multiplied(by: rate)).amount
                #expect(bill.ccy == instrument.settleCurrency && ExactDecimal(bill.balChg) == expected, "\(bill)")
                #expect(bill.subType == (expected.isNegative ? "173" : "174"))
                // The balance after it is the balance after the bill before it in that currency.
                let before = bills.last { $0.billId < bill.billId && $0.ccy == bill.ccy }
                #expect(ExactDecimal(bill.bal) == (before.flatMap { ExactDecimal($0.bal) } ?? .zero) + expected, "\(bill)")
            }
            changes.append(funding.map { "\($0.instId) \($0.balChg) \($0.px) \($0.notes)" }.sorted())
            #expect(try await sandbox.ledgerBalances(user.uid), "every balance, in memory and stored, is the sum of its bills")
        }
        #expect(changes[0] == changes[1], "the run and the copy post the same funding")
        #expect(try await sandbox.cashImbalances() == [])
        for user in users {
            let memory = await sandbox.exchange.account(user.uid)?.balances
            let stored = try await sandbox.database.writer.read { db in try BalanceRecord.filter(Column("uid") == user.uid).fetchAll(db) }
            #expect(Dictionary(uniqueKeysWithValues: stored.map { ($0.ccy, ExactDecimal($0.cashBal) ?? .zero) }) == memory)
        }
    }

    /// A funding tick whose write fails inside the funding run (a trigger refuses one account's funding bill)
    /// changes nothing, in memory or stored, and the next tick over the same interval pays it once.
    @Test func aFundingTickWhoseWriteFailsChangesNothing() async throws {
        let sandbox = try SandboxHarness()
        var users: [SandboxHarness.Credentials] = []
        for _ in 0..<3 {
            let user = try await sandbox.account([("USDT", "100000")])
            let placed = await sandbox.call(
                "POST", "/api/v5/trade/order",
                body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"10"}"#, as: user)
            #expect(placed.code == "0", "\(placed.envelope)")
            users.append(user)
        }
        func balances() async -> [[String: ExactDecimal]] {
            var all: [[String: ExactDecimal]] = []
            for user in users { all.append(await sandbox.exchange.account(user.uid)?.balances ?? [:]) }
            return all
        }
        func fundingBills() async throws -> Int {
            try await sandbox.database.writer.read { db in try BillRecord.filter(Column("type") == "8").fetchCount(db) }
        }
        let before = await balances()
        let last = try #require(users.last).uid
        try await sandbox.database.writer.write { db in
            // (A trigger takes no parameters; a uid is digits and hex.)
            try db.execute(
                sql:
                    "CREATE TRIGGER refuse BEFORE INSERT ON bill WHEN NEW.type = '8' AND NEW.uid = '\(last)' BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
        }
        await #expect(throws: (any Error).self) { try await sandbox.simulator.shock([:], advanceSeconds: 86_400) }
        #expect(await balances() == before, "memory unchanged")
        #expect(try await fundingBills() == 0, "nothing stored")
        try await sandbox.database.writer.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
        let report = try await sandbox.simulator.shock([:], advanceSeconds: 0)
        #expect(report.fundingPayments == 3 * 3, "three holders, three funding hours, once")
        #expect(try await fundingBills() == 9)
        for user in users { #expect(try await sandbox.ledgerBalances(user.uid)) }
        #expect(try await sandbox.cashImbalances() == [])
    }

    /// An account another process creates on the same database (`pm account create` beside `pm serve`) is loaded
    /// with its balances on its key's first use, and trades. (The clients' integration test found this path
    /// broken once, when start-up got a loading path of its own.)
    @Test func anAccountAnotherProcessCreatesIsLoadedWholeOnFirstUse() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pm-other-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let server = try SandboxHarness(database: try AppDatabase(path: path))
        let cli = try SandboxHarness(database: try AppDatabase(path: path))
        let user = try await cli.account([("USDT", "25000"), ("BTC", "0.5")])
        let balance = await server.call("GET", "/api/v5/account/balance", as: user)
        #expect(balance.code == "0", "\(balance.envelope)")
        var cash: [String: String] = [:]
        for row in balance.first?[member: "details"]?.arrayItems ?? [] {
            if let ccy = row[member: "ccy"]?.scalarText { cash[ccy] = row[member: "cashBal"]?.scalarText }
        }
        #expect(cash.count == 2 && ExactDecimal(cash["USDT"] ?? "") == ExactDecimal(25_000), "\(cash)")
        #expect(ExactDecimal(cash["BTC"] ?? "") == ExactDecimal("0.5"), "\(cash)")
        let placed = await server.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#, as: user)
        #expect(placed.code == "0", "\(placed.envelope)")
    }

    /// A restart restores every account exactly: balances, positions, open orders, keys.
    @Test func restartRestoresAccountsExactly() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pm-restart-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        let first = try SandboxHarness(database: try AppDatabase(path: path))
        let user = try await first.account([("USDT", "50000"), ("ETH", "3")])
        _ = await first.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"ETH-USDT-SWAP","tdMode":"cross","side":"sell","ordType":"market","sz":"7"}"#, as: user)
        _ = await first.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"70000","sz":"3"}"#, as: user)
        let balance = await first.call("GET", "/api/v5/account/balance", as: user).first
        let positions = await first.call("GET", "/api/v5/account/positions", as: user).data
        let pending = await first.call("GET", "/api/v5/trade/orders-pending", as: user).data

        let second = try SandboxHarness(database: try AppDatabase(path: path))
        second.clock.advance(first.clock.now - second.clock.now)
        let restoredBalance = await second.call("GET", "/api/v5/account/balance", as: user).first
        #expect(restoredBalance?[member: "details"] == balance?[member: "details"] || Self.sameExceptTime(restoredBalance, balance))
        #expect(await second.call("GET", "/api/v5/account/positions", as: user).data == positions)
        #expect(await second.call("GET", "/api/v5/trade/orders-pending", as: user).data == pending)
        // New ids continue after the stored ones.
        let next = await second.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"ETH-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#, as: user)
        let ids = pending.compactMap { Int($0[member: "ordId"]?.scalarText ?? "") }
        #expect((Int(next.first?[member: "ordId"]?.scalarText ?? "") ?? 0) > (ids.max() ?? 0))
    }

    static func sameExceptTime(_ a: JSONValue?, _ b: JSONValue?) -> Bool {
        func strip(_ value: JSONValue?) -> String {
            JSONWriter.serialize(value ?? .null).replacingOccurrences(of: #""uTime":"\d+""#, with: "", options: .regularExpression)
        }
        return strip(a) == strip(b)
    }

    @Test func theRiskParametersArePublic() async throws {
        let sandbox = try SandboxHarness()
        let response = await sandbox.call("GET", "/api/v5/public/pm-risk-parameters", as: nil)
        let data = try #require(response.first)
        #expect(data[member: "paramsId"]?.scalarText == "okx-2025-01")
        #expect(data[member: "tiers"]?[member: "tier1"]?[member: "mr1SpotMoves"]?.arrayItems.count == 3)
        let current = data[member: "mr9"]?[member: "current"]?.arrayItems ?? []
        #expect(current.map { $0[member: "pair"]?.scalarText } == ["USDT/USD", "USDT/USDC", "USDC/USD"])
        #expect(current.first?[member: "bands"]?.arrayItems.first?[member: "rate"]?.scalarText == "0.0075")
        #expect(data[member: "interest"]?.arrayItems.contains { $0[member: "ccy"]?.scalarText == "USDT" } == true)
    }
}

/// One trade formula (issue: "a planned liquidation's fills and fees equal what the sandbox books").
@Suite struct PlannedFillsTests {
    @Test func theSandboxBooksExactlyThePlannedFills() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account([("USDT", "20000")])
        try await sandbox.exchange.acknowledgePortfolioMargin(uid: user.uid)
        #expect(await sandbox.call("POST", "/api/v5/account/set-account-level", body: #"{"acctLv":"4"}"#, as: user).code == "0")
        let placed = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"100"}"#, as: user)
        #expect(placed.code == "0", "\(placed.envelope)")
        let account = try #require(await sandbox.exchange.account(user.uid))
        let portfolio = await sandbox.exchange.portfolio(account)
        let shocked = try Fixtures.calmMarket.shocked(by: -0.12, onlyCoin: "BTC")
        let report = try await sandbox.exchange.replaceMarket(shocked)
        #expect(report.liquidatedAccounts == [user.uid])
        // The plan the engine makes for the account as it stood, at the shocked market.
        let plan = try LiquidationPlanner.plan(portfolio, catalog: Fixtures.catalog, market: shocked, parameters: Fixtures.parameters)
        let planned = plan.executedActions.flatMap(\.fills)
        let booked = try await sandbox.database.writer.read { db in
            try FillRecord.filter(Column("uid") == user.uid && Column("category") != "normal").order(Column("tradeId")).fetchAll(db)
        }
        #expect(!planned.isEmpty)
        #expect(booked.count == planned.count)
        for (fill, record) in zip(planned, booked) {
            #expect(ExactDecimal(record.fillSz) == fill.ledger.sizeContracts.magnitude)
            #expect(ExactDecimal(record.fillPx) == fill.ledger.price)
            #expect(ExactDecimal(record.fee) == -fill.ledger.fee, "fee \(record.fee) vs planned \(fill.ledger.fee)")
            #expect(ExactDecimal(record.pnl) == fill.ledger.realizedPnL, "P&L \(record.pnl) vs planned \(fill.ledger.realizedPnL)")
            #expect(record.side == (fill.ledger.sizeContracts.isNegative ? .sell : .buy))
        }
        // And the account's cash moved by exactly the planned cash changes.
        let after = try #require(await sandbox.exchange.account(user.uid))
        let plannedCash = planned.reduce(ExactDecimal.zero) { $0 + $1.ledger.cashChange }
        #expect((after.balances["USDT"] ?? .zero) - (account.balances["USDT"] ?? .zero) == plannedCash)
    }
}

/// Interest on the liability `−eq` (docs/methodology/03-account.md §4): unrealised losses are a liability too.
@Suite struct InterestOnEquityTests {
    /// Golden case 1 held in the sandbox: USDT cash +100 but equity −78,589.37 (an LTC perpetual bought at
    /// 8,000 now marked at 102): one hour accrues interest on 78,589.37 − 20,000 = 58,589.37 USDT.
    @Test func goldenCaseOneAccruesOnItsEquity() async throws {
        let golden = try MarketSnapshot(
            bytes: Array(
                """
                {"ts": "1736935200000",
                 "indices": {"BTC-USDT": "97078.9", "LTC-USDT": "101.9951", "USDT-USD": "0.99954", "USDC-USD": "1"},
                 "rates": {"USD": "0"},
                 "marks": [{"instId": "BTC-USDT-SWAP", "markPx": "97093.7"}, {"instId": "LTC-USDT-SWAP", "markPx": "102"}]}
                """.utf8))
        let database = try AppDatabase.inMemory()
        let first = try SandboxHarness(market: golden, database: database)
        let user = try await first.account([("USDT", "100")])
        try await database.writer.write { db in
            for (instId, pos, avgPx) in [("BTC-USDT-SWAP", "-10", "100000"), ("LTC-USDT-SWAP", "10", "8000")] {
                try PositionRecord(uid: user.uid, instId: instId, pos: pos, avgPx: avgPx, lever: "", cTime: 0, uTime: 0).insert(db)
            }
        }
        // A restart loads the positions as stored.
        let sandbox = try SandboxHarness(market: golden, database: database)
        let hour = UnixMillis(golden.valuationTime.rawValue + 3_600_000)
        let later = try MarketSnapshot(valuationTime: hour, indices: golden.indices, usdRate: 0, marks: golden.marks)
        let report = try await sandbox.exchange.advance(to: later)
        #expect(report.interestBills == 1)
        let bill = try #require(
            try await database.writer.read { db in
                try BillRecord.filter(Column("uid") == user.uid && Column("type") == "7").fetchOne(db)
            })
        let curve = Fixtures.parameters.interestRateCurve(for: "USDT")
        let rate = curve.annualRate(utilisation: curve.utilisation(totalBorrowed: 78_589.37, indexUSD: 0.99954))
        let expected = 58_589.37 * rate * 3_600 / 31_536_000
        let charged = -(Double(bill.balChg) ?? 0)
        #expect(abs(charged - expected) < 1e-5, "charged \(charged), expected \(expected) on 58,589.37 USDT at \(rate)")
    }
}

/// A deficit with interest accrued and not yet capitalised: the fund covers the interest too, so that nothing
/// is left owing beside no position (the backtest found such accounts at a margin ratio of −50, liquidated again
/// at every tick for the interest of their last hour).
@Suite struct DeficitWithPendingInterestTests {
    /// A BTC deposit, 60 ETH bought with borrowed USDT (≈ 179,000, far above the 20,000 interest-free quota).
    static func borrower(_ sandbox: SandboxHarness, portfolioMargin: Bool) async throws -> SandboxHarness.Credentials {
        let user = try await sandbox.account([("BTC", "1")])
        if portfolioMargin {
            try await sandbox.exchange.acknowledgePortfolioMargin(uid: user.uid)
            #expect(await sandbox.call("POST", "/api/v5/account/set-account-level", body: #"{"acctLv":"4"}"#, as: user).code == "0")
        }
        _ = await sandbox.call("POST", "/api/v5/account/set-auto-loan", body: #"{"autoLoan":true}"#, as: user)
        let borrow = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"ETH-USDT","tdMode":"cross","side":"buy","ordType":"market","sz":"60","tgtCcy":"base_ccy"}"#, as: user)
        #expect(borrow.code == "0", "\(borrow.envelope)")
        return user
    }

    @Test func theFundCoversTheInterestAccruedBeforeTheDeficit() async throws {
        let sandbox = try SandboxHarness()
        let user = try await Self.borrower(sandbox, portfolioMargin: true)
        // 20 minutes inside one hour (17:31 → 17:51): interest accrues on the loan and is not capitalised yet.
        _ = try await sandbox.simulator.shock([:], advanceSeconds: 1_200)
        let pending = try #require(await sandbox.exchange.account(user.uid)?.pendingInterest["USDT"])
        #expect(pending > ExactDecimal(0.01), "\(pending) USDT of interest pending")
        // Both coins fall 60 %: the collateral sold does not repay the loan.
        let crash = try await sandbox.simulator.shock(["BTC": -0.6, "ETH": -0.6])
        #expect(crash.liquidatedAccounts == [user.uid])
        let account = try #require(await sandbox.exchange.account(user.uid))
        #expect(account.positions.isEmpty)
        #expect(account.balances.values.allSatisfy { !$0.isNegative }, "\(account.balances)")
        #expect((account.pendingInterest["USDT"] ?? .zero).isZero, "nothing left owing: \(account.pendingInterest)")
        let bills = try await sandbox.database.writer.read { db in try BillRecord.filter(Column("uid") == user.uid).fetchAll(db) }
        #expect(bills.contains { $0.type == .interest && $0.notes == "interest before the deficit cover" })
        #expect(bills.contains { $0.type == .deficitCover })
        #expect(try await sandbox.ledgerBalances(user.uid))
        #expect(try await sandbox.cashImbalances() == [])
        // The next hour neither bills interest nor liquidates the account again.
        let after = try await sandbox.simulator.shock([:], advanceSeconds: 3_600)
        #expect(after.liquidatedAccounts.isEmpty)
        let later = try await sandbox.database.writer.read { db in try BillRecord.filter(Column("uid") == user.uid).fetchCount(db) }
        #expect(later == bills.count)
    }
}

/// The classic (multi-currency margin) liquidation path: whole positions, the largest requirement first,
/// at the slipped mark with the liquidation fee, then the insurance fund for what equity cannot cover.
@Suite struct ClassicLiquidationTests {
    static func leveredClassicAccount(
        _ sandbox: SandboxHarness, deposit: String, size: String, restingOrder: Bool = false
    ) async throws
        -> SandboxHarness.Credentials
    {
        let user = try await sandbox.account([("USDT", deposit)])
        _ = await sandbox.call(
            "POST", "/api/v5/account/set-leverage", body: #"{"lever":"50","mgnMode":"cross","instId":"BTC-USDT-SWAP"}"#, as: user)
        let placed = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"\#(size)"}"#, as: user)
        #expect(placed.code == "0", "\(placed.envelope)")
        if restingOrder {
            let resting = await sandbox.call(
                "POST", "/api/v5/trade/order",
                body: #"{"instId":"ETH-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"1000","sz":"1"}"#, as: user)
            #expect(resting.code == "0", "\(resting.envelope)")
        }
        return user
    }

    @Test func aClassicAccountIsClosedOutAtTheSlippedMarkWithTheFee() async throws {
        let sandbox = try SandboxHarness()
        let user = try await Self.leveredClassicAccount(sandbox, deposit: "10000", size: "300", restingOrder: true)
        let shocked = try Fixtures.calmMarket.shocked(by: -0.035, onlyCoin: "BTC")
        let fundBefore = await sandbox.exchange.insuranceFundBalances()["USDT"] ?? .zero
        let report = try await sandbox.exchange.replaceMarket(shocked)
        #expect(report.liquidatedAccounts == [user.uid])
        // The open order went first, cancelled as part of the liquidation.
        let orders = try await sandbox.database.writer.read { db in try OrderRecord.filter(Column("uid") == user.uid).fetchAll(db) }
        #expect(orders.contains { $0.instId == "ETH-USDT-SWAP" && $0.state == .canceled && $0.category == .partialLiquidation })
        // The whole position went in one fill: a sell at the mark less the tier-1 slippage, with the tier-1 fee.
        let fills = try await sandbox.database.writer.read { db in
            try FillRecord.filter(Column("uid") == user.uid && Column("category") == "full_liquidation").fetchAll(db)
        }
        let fill = try #require(fills.first)
        #expect(fills.count == 1 && fill.side == .sell && ExactDecimal(fill.fillSz) == ExactDecimal(300))
        let mark = try shocked.market(for: try #require(Fixtures.catalog.instrument("BTC-USDT-SWAP")), path: "").markPrice
        #expect(ExactDecimal(fill.fillPx) == LedgerBoundary.ledger(mark * (1 - 0.001)))
        let expectedFee = LedgerAmount(
            "USDT",
            ExactDecimal(300).multiplied(by: ExactDecimal(0.01)).multiplied(by: ExactDecimal(fill.fillPx) ?? .zero)
                .multiplied(by: ExactDecimal(0.001))
        ).amount
        #expect(ExactDecimal(fill.fee) == -expectedFee)
        #expect(await sandbox.exchange.account(user.uid)?.positions.isEmpty == true)
        #expect(try await sandbox.ledgerBalances(user.uid))
        #expect(try await sandbox.cashImbalances() == [])
        let fund = await sandbox.exchange.insuranceFundBalances()
        #expect((fund["USDT"] ?? .zero) - fundBefore == expectedFee, "the liquidation fee is the fund's only income from it")
    }

    @Test func aClassicDeficitIsCoveredByTheInsuranceFund() async throws {
        let sandbox = try SandboxHarness()
        let user = try await Self.leveredClassicAccount(sandbox, deposit: "10000", size: "300")
        // A gap far through the account's equity: closing out leaves a negative balance.
        let report = try await sandbox.exchange.replaceMarket(try Fixtures.calmMarket.shocked(by: -0.30, onlyCoin: "BTC"))
        #expect(report.liquidatedAccounts == [user.uid])
        let account = try #require(await sandbox.exchange.account(user.uid))
        #expect(account.positions.isEmpty)
        #expect((account.balances["USDT"] ?? .zero) == .zero, "the deficit is covered, not left owing")
        let cover = try await sandbox.database.writer.read { db in
            try BillRecord.filter(Column("uid") == user.uid && Column("type") == "102").fetchAll(db)
        }
        #expect(cover.count == 1)
        let fund = await sandbox.exchange.insuranceFundBalances()
        #expect((fund["USDT"] ?? .zero).isNegative, "the fund paid more than the fee it received")
        #expect(try await sandbox.ledgerBalances(user.uid))
        #expect(try await sandbox.cashImbalances() == [])
    }

    /// With no position left, a classic account's liability is repaid from its collateral (sold at the index less
    /// the penalty, as under portfolio margin) and only the rest is the fund's: before, the fund paid the whole USDT
    /// loan once undiscounted equity went negative and the account kept its coins (and while it was still positive,
    /// the account sat below the trigger, liquidated at every tick with nothing done).
    @Test func aClassicLiabilityIsRepaidFromCollateralBeforeTheFund() async throws {
        let sandbox = try SandboxHarness()
        let user = try await DeficitWithPendingInterestTests.borrower(sandbox, portfolioMargin: false)
        let loan = try #require(await sandbox.exchange.account(user.uid)?.balances["USDT"])
        #expect(loan < ExactDecimal(-170_000), "\(loan)")
        // ETH −50 %: about 88,500 of BTC and 89,400 of ETH against ≈ 179,000 of USDT owed, below the trigger.
        let report = try await sandbox.simulator.shock(["ETH": -0.5])
        #expect(report.liquidatedAccounts == [user.uid])
        let account = try #require(await sandbox.exchange.account(user.uid))
        #expect(account.balances.values.allSatisfy { !$0.isNegative }, "\(account.balances)")
        let sales = try await sandbox.database.writer.read { db in
            try BillRecord.filter(Column("uid") == user.uid && Column("type") == "5" && Column("subType") == "1001").fetchAll(db)
        }
        #expect(Set(sales.map(\.ccy)).isSuperset(of: ["BTC", "ETH"]), "the coins were sold into the loan: \(sales.map(\.ccy))")
        let covered = try await sandbox.database.writer.read { db in
            try BillRecord.filter(Column("uid") == user.uid && Column("type") == "102").fetchAll(db)
        }.reduce(ExactDecimal.zero) { $0 + (ExactDecimal($1.balChg) ?? .zero) }
        #expect(covered < ExactDecimal(20_000), "the fund covers what the collateral could not, not the loan: \(covered)")
        #expect(try await sandbox.ledgerBalances(user.uid))
        #expect(try await sandbox.cashImbalances() == [])
        let next = try await sandbox.simulator.shock([:], advanceSeconds: 60)
        #expect(next.liquidatedAccounts.isEmpty)
    }

    @Test func aSafeClassicAccountIsLeftAlone() async throws {
        let sandbox = try SandboxHarness()
        let user = try await Self.leveredClassicAccount(sandbox, deposit: "50000", size: "300")
        let report = try await sandbox.exchange.replaceMarket(try Fixtures.calmMarket.shocked(by: -0.035, onlyCoin: "BTC"))
        #expect(report.liquidatedAccounts.isEmpty)
        #expect(await sandbox.exchange.account(user.uid)?.positions["BTC-USDT-SWAP"]?.pos == ExactDecimal(300))
    }
}

/// Policy is data: the funding formula, settlement fee, fees and liquidation penalties come from the parameter
/// set and are public.
@Suite struct RiskParametersViewTests {
    @Test func thePublicParametersShowThePolicy() async throws {
        let sandbox = try SandboxHarness()
        let view = try #require(await sandbox.call("GET", "/api/v5/public/pm-risk-parameters", as: nil).first)
        let parameters = Fixtures.parameters
        let funding = view[member: "sandbox"]?[member: "funding"]
        #expect(funding?[member: "interestRate"]?.doubleValue == parameters.funding.interestRate)
        #expect(funding?[member: "interestClamp"]?.doubleValue == parameters.funding.interestClamp)
        #expect(funding?[member: "cap"]?.doubleValue == parameters.funding.cap)
        #expect(view[member: "sandbox"]?[member: "settlementFeeRate"]?.doubleValue == parameters.settlementFeeRate)
        #expect(view[member: "sandbox"]?[member: "fees"]?[member: "derivativesTaker"]?.doubleValue == parameters.fees["derivativesTaker"])
        let liquidation = view[member: "liquidation"]
        #expect(liquidation?[member: "collateralPenaltyMax"]?.doubleValue == parameters.liquidationPenaltyMaximum)
        #expect(liquidation?[member: "feeRate"]?[member: "tier2"]?.doubleValue == parameters.liquidationFeeRate[.tier2])
        #expect(view[member: "limits"]?[member: "maxTenorYears"]?.doubleValue == parameters.maximumTenorYears)
        // The sandbox pays funding by the published formula.
        let perpetual = try #require(Fixtures.catalog.instrument("BTC-USDT-SWAP"))
        let resolved = try Fixtures.calmMarket.market(for: perpetual, path: "")
        let rate = await sandbox.exchange.fundingRate(perpetual, in: Fixtures.calmMarket)
        #expect(rate == parameters.funding.rate(markPrice: resolved.markPrice, indexPrice: resolved.quoteIndex))
    }
}
