import Foundation
import GRDB
import MarginEngine
import MarginStore
import MarginTestSupport
import Testing

@testable import Sandbox

/// The server margins through the market's scenario vectors (issue 16): after a tick every account's
/// figures equal the direct computation, a move of one coin re-margins exactly its holders, requests during
/// a tick see it whole, and a liquidation is re-checked against the account as it is when it executes.
@Suite struct TickTests {
    /// A sandbox whose accounts hold random portfolios of the shipped market (a third classic), written to
    /// the database and loaded by a restart, as a server starts on an existing database.
    static func populated(accounts count: Int, seed: UInt64 = 7) async throws -> (SandboxHarness, [String]) {
        let database = try AppDatabase.inMemory()
        let first = try SandboxHarness(database: database)
        let universe = RandomPortfolios(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
        var uids: [String] = []
        for index in 0..<count {
            let portfolio = universe.portfolio(seed: seed &+ UInt64(index), maximumPositions: 5).nettedByInstrument()
            let user = try await first.account([("USDT", "2000000"), ("BTC", "3"), ("ETH", "40")])
            uids.append(user.uid)
            try await database.writer.write { db in
                for position in portfolio.positions {
                    try PositionRecord(
                        uid: user.uid, instId: position.instrument.id.rawValue,
                        pos: LedgerBoundary.contracts(
                            position.sizeContracts, lotSize: position.instrument.lotSize
                        ).description,
                        avgPx: ExactDecimal(position.averagePrice).description, lever: "", cTime: 0, uTime: 0
                    ).insert(db)
                }
                if index % 3 == 0 {
                    try db.execute(sql: "UPDATE account SET acctLv = '3' WHERE uid = ?", arguments: [user.uid])
                } else {
                    try db.execute(sql: "UPDATE account SET acctLv = '4' WHERE uid = ?", arguments: [user.uid])
                }
            }
        }
        return (try SandboxHarness(database: database), uids)
    }

    /// What the engine computes for an account on its own, pricing every instrument itself.
    static func direct(_ account: AccountState, market: MarketSnapshot, exchange: Exchange) async throws -> AccountFigures {
        let portfolio = await exchange.portfolio(account)
        switch account.level {
        case .portfolioMargin: return try PortfolioMargin.compute(portfolio, market: market, parameters: Fixtures.parameters).figures
        case .classic: return try ClassicMargin.compute(portfolio, market: market, parameters: Fixtures.parameters).figures
        }
    }

    /// Slots follow uid order, so every restart numbers accounts alike: the store hands them over sorted (no
    /// sort at start-up), and an order that is not sorted, or not complete, is sorted rather than trusted.
    @Test func accountsTakeSlotsInUidOrderWhateverOrderTheyArriveIn() async throws {
        let (sandbox, uids) = try await Self.populated(accounts: 12)
        let loaded = await sandbox.exchange.risk.uids
        #expect(loaded == uids.sorted())
        let accounts = await sandbox.exchange.accounts
        for order in [uids.reversed(), Array(uids.sorted().dropLast()), uids.sorted()] {
            var mirror = RiskMirror(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
            mirror.build(accounts: accounts, order: order, workers: 1) { _ in nil }
            #expect(mirror.uids == uids.sorted())
            #expect(mirror.slots.count == uids.count)
        }
    }

    /// Start-up prepares the accounts' rows over both cores once there are thousands: the mirror (slots, rows,
    /// figures) is the one a single worker builds.
    @Test func aMirrorBuiltOverTwoWorkersIsTheOneOneWorkerBuilds() async throws {
        let (sandbox, uids) = try await Self.populated(accounts: 45)
        let held = await sandbox.exchange.accounts
        var accounts: [String: AccountState] = [:]
        for copy in 0..<100 {
            for uid in uids {
                var account = try #require(held[uid])
                account.record.uid = "\(uid)-\(copy)"
                accounts[account.record.uid] = account
            }
        }
        #expect(accounts.count >= 4_096, "enough accounts for the parallel path")
        var mirrors: [RiskMirror] = []
        for workers in [1, 2] {
            var mirror = RiskMirror(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
            mirror.build(accounts: accounts, order: accounts.keys.sorted(), workers: workers) { _ in nil }
            mirrors.append(mirror)
        }
        #expect(mirrors[0].uids == mirrors[1].uids && mirrors[0].uids.count == accounts.count)
        #expect(mirrors[0].direct == mirrors[1].direct)
        #expect(mirrors[0].figures == mirrors[1].figures)
        #expect(mirrors[0].figures.allSatisfy { $0 != nil })
    }

    @Test func afterATickEveryAccountEqualsTheDirectComputation() async throws {
        let (sandbox, uids) = try await Self.populated(accounts: 45)
        // A tick that moves every coin and an hour of time (options and futures reprice).
        let moved = try Fixtures.calmMarket.shocked(by: 0.031)
        let later = try MarketSnapshot(
            valuationTime: UnixMillis(moved.valuationTime.rawValue + 3_600_000), indices: moved.indices, usdRate: moved.usdRate,
            marks: moved.marks)
        let report = try await sandbox.exchange.advance(to: later)
        #expect(report.remarginedAccounts == uids.count)
        for uid in uids {
            let account = try #require(await sandbox.exchange.account(uid))
            let served = try #require(await sandbox.exchange.currentFigures(uid))
            let expected = try await Self.direct(account, market: later, exchange: sandbox.exchange)
            #expect(served == expected, "\(uid) \(account.level)")
        }
    }

    @Test func anETHOnlyMoveRecomputesExactlyTheETHHolders() async throws {
        let (sandbox, uids) = try await Self.populated(accounts: 60)
        // Without ETH balances, only positions decide who holds ETH.
        var holders = 0
        for uid in uids {
            let account = try #require(await sandbox.exchange.account(uid))
            if account.positions.keys.contains(where: { $0.hasPrefix("ETH-") }) || account.balances["ETH"] != nil { holders += 1 }
        }
        #expect(holders == uids.count, "every account holds ETH as collateral")
        // A population whose ETH exposure differs: drop the ETH balance of half of them.
        let (plain, plainUIDs) = try await Self.populatedWithoutETHBalance(accounts: 60)
        var ethHolders: Set<String> = []
        for uid in plainUIDs {
            let account = try #require(await plain.exchange.account(uid))
            if account.positions.keys.contains(where: { $0.hasPrefix("ETH-") }) { ethHolders.insert(uid) }
        }
        #expect(!ethHolders.isEmpty && ethHolders.count < plainUIDs.count)
        let report = try await plain.exchange.replaceMarket(try Fixtures.calmMarket.shocked(by: -0.04, onlyCoin: "ETH"))
        #expect(report.remarginedAccounts == ethHolders.count)
        // And every account's figures are those of the new market.
        let market = await plain.exchange.market
        for uid in plainUIDs {
            let account = try #require(await plain.exchange.account(uid))
            let served = try #require(await plain.exchange.currentFigures(uid))
            #expect(served == (try await Self.direct(account, market: market, exchange: plain.exchange)))
        }
    }

    static func populatedWithoutETHBalance(accounts count: Int) async throws -> (SandboxHarness, [String]) {
        let database = try AppDatabase.inMemory()
        let first = try SandboxHarness(database: database)
        let universe = RandomPortfolios(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
        var uids: [String] = []
        for index in 0..<count {
            let portfolio = universe.portfolio(seed: 500 + UInt64(index), maximumPositions: 2).nettedByInstrument()
            let user = try await first.account([("USDT", "2000000"), ("BTC", "3")])
            uids.append(user.uid)
            try await database.writer.write { db in
                for position in portfolio.positions {
                    try PositionRecord(
                        uid: user.uid, instId: position.instrument.id.rawValue,
                        pos: LedgerBoundary.contracts(position.sizeContracts, lotSize: position.instrument.lotSize).description,
                        avgPx: ExactDecimal(position.averagePrice).description, lever: "", cTime: 0, uTime: 0
                    ).insert(db)
                }
            }
        }
        return (try SandboxHarness(database: database), uids)
    }

    /// Requests answered while a tick re-margins see the account before the tick or after it, never a mix:
    /// the funding the tick pays and the new mark arrive together.
    @Test func requestsDuringATickSeeItWhole() async throws {
        let (sandbox, _) = try await Self.populated(accounts: 300, seed: 11)
        // One account per slice: the re-margin lets requests in between every account.
        await sandbox.exchange.setRemarginSlice(1)
        let user = try await sandbox.account([("USDT", "100000")])
        let placed = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"20"}"#, as: user)
        #expect(placed.code == "0", "\(placed.envelope)")
        func observe() async -> [String] {
            let detail = await sandbox.call("GET", "/api/v5/account/balance?ccy=USDT", as: user).first?[member: "details"]?.arrayItems.first
            return [detail?[member: "cashBal"]?.scalarText ?? "?", detail?[member: "upl"]?.scalarText ?? "?"]
        }
        let before = await observe()
        // Past the next funding hour, with BTC up 2 %: funding changes the cash, the mark the unrealised P&L.
        let start = Fixtures.calmMarket.valuationTime.rawValue
        let nextFunding = (start / 28_800_000 + 1) * 28_800_000
        let shocked = try Fixtures.calmMarket.shocked(by: 0.02, onlyCoin: "BTC")
        let later = try MarketSnapshot(
            valuationTime: UnixMillis(nextFunding + 1_000), indices: shocked.indices, usdRate: shocked.usdRate, marks: shocked.marks)
        let done = ManualClock(0)
        let tick = Task {
            defer { done.advance(1) }
            return try await sandbox.exchange.advance(to: later)
        }
        var seen: [[String]] = []
        var duringTick = 0
        while done.now == 0 {
            let observation = await observe()
            seen.append(observation)
            if done.now == 0 { duringTick += 1 }
        }
        let report = try await tick.value
        #expect(report.fundingPayments > 0 && report.remarginedAccounts > 300)
        let after = await observe()
        #expect(before[0] != after[0] && before[1] != after[1], "the tick changes both the cash and the unrealised P&L")
        #expect(duringTick > 0, "requests are answered while the tick re-margins")
        for observation in seen {
            #expect(observation == before || observation == after, "half a tick: \(observation) (before \(before), after \(after))")
        }
    }

    /// A liquidation decided on a state that a newer change made safe is re-checked and not executed.
    @Test func aLiquidationIsRecheckedBeforeItExecutes() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account([("USDT", "20000")])
        try await sandbox.exchange.acknowledgePortfolioMargin(uid: user.uid)
        #expect(await sandbox.call("POST", "/api/v5/account/set-account-level", body: #"{"acctLv":"4"}"#, as: user).code == "0")
        #expect(
            await sandbox.call(
                "POST", "/api/v5/trade/order",
                body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"100"}"#, as: user
            ).code == "0")
        // The move puts the account below the trigger ...
        let shocked = try Fixtures.calmMarket.shocked(by: -0.12, onlyCoin: "BTC")
        let candidates = await sandbox.exchange.moveWithoutLiquidating(to: shocked)
        let slot = try #require(await sandbox.exchange.risk.slots[user.uid])
        #expect(candidates.contains(slot))
        // ... a deposit arrives before the liquidation runs ...
        try await sandbox.exchange.deposit(uid: user.uid, currency: "USDT", amount: ExactDecimal(50_000))
        // ... and the re-check finds it safe.
        let liquidated = try await sandbox.exchange.liquidate(candidates: candidates)
        #expect(liquidated.isEmpty)
        #expect(await sandbox.exchange.account(user.uid)?.positions["BTC-USDT-SWAP"]?.pos == ExactDecimal(100))
        // Without the deposit the same candidates are liquidated (the control).
        let control = try SandboxHarness()
        let other = try await control.account([("USDT", "20000")])
        try await control.exchange.acknowledgePortfolioMargin(uid: other.uid)
        _ = await control.call("POST", "/api/v5/account/set-account-level", body: #"{"acctLv":"4"}"#, as: other)
        _ = await control.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"100"}"#, as: other)
        let controlCandidates = await control.exchange.moveWithoutLiquidating(to: shocked)
        #expect(try await control.exchange.liquidate(candidates: controlCandidates) == [other.uid])
    }
}

extension Exchange {
    func setRemarginSlice(_ accounts: Int) { remarginSliceAccounts = accounts }

    /// The market move up to the liquidation step: the accounts found at or below the trigger.
    func moveWithoutLiquidating(to newMarket: MarketSnapshot) async -> [Int] {
        market = newMarket
        let previous = risk.move(to: newMarket, parameters: parameters)
        return await remargin(accountsAffected(since: previous))
    }
}
