import GRDB
import MarginEngine
import MarginStore
import MarginTestSupport
import Testing

@testable import Sandbox

/// The trading model (docs/methodology/06-sandbox-api.md §4): order types, fills, fees, the pre-trade check, modes, bad
/// input.
@Suite struct TradingTests {
    static func order(_ fields: String) -> String { "{\(fields)}" }

    @Test func marketOrderFillsAtTheBookAndPaysTheTakerFee() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let response = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"ETH-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"10"}"#, as: user)
        #expect(response.code == "0" && response.first?[member: "sCode"]?.scalarText == "0")
        let ordId = try #require(response.first?[member: "ordId"]?.scalarText)
        let order = await sandbox.call("GET", "/api/v5/trade/order?instId=ETH-USDT-SWAP&ordId=\(ordId)", as: user).first
        #expect(order?[member: "state"]?.scalarText == "filled")
        let instrument = try Fixtures.catalog.instrument("ETH-USDT-SWAP", path: "")
        let top = try await sandbox.exchange.book(instrument)
        #expect(order?[member: "avgPx"]?.scalarText == top.ask.description)
        let fee = (ExactDecimal("10") ?? .zero).multiplied(by: ExactDecimal("0.1") ?? .zero).multiplied(by: top.ask)
            .multiplied(by: ExactDecimal("0.0005") ?? .zero)
        #expect(order?[member: "fee"]?.scalarText == (-LedgerAmount("USDT", fee).amount).description)
        #expect(order?[member: "reduceOnly"]?.scalarText == "false", "ccxt reads reduceOnly as a string")
        #expect(try await sandbox.ledgerBalances(user.uid))
        #expect(try await sandbox.cashImbalances() == [])
    }

    @Test func limitOrdersRestAndFillWhenTheMarkCrosses() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let resting = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"80000","sz":"2"}"#, as: user)
        let ordId = try #require(resting.first?[member: "ordId"]?.scalarText)
        #expect(await sandbox.call("GET", "/api/v5/trade/orders-pending", as: user).data.count == 1)
        // A 5 % fall takes the ask below 80,000 for BTC at ~88.5k? No: 10 % is needed.
        try await sandbox.simulator.shock(["BTC": -0.12])
        let order = await sandbox.call("GET", "/api/v5/trade/order?instId=BTC-USDT-SWAP&ordId=\(ordId)", as: user).first
        #expect(order?[member: "state"]?.scalarText == "filled")
        #expect(order?[member: "avgPx"]?.scalarText == "80000", "a resting order fills at its own price")
        let fills = await sandbox.call("GET", "/api/v5/trade/fills?instId=BTC-USDT-SWAP", as: user)
        #expect(fills.first?[member: "execType"]?.scalarText == "M")
        #expect(await sandbox.call("GET", "/api/v5/trade/orders-pending", as: user).data.isEmpty)
    }

    @Test(arguments: [
        ("post_only", "99000", "51019"), ("ioc", "50000", "0"), ("fok", "50000", "0"),
    ])
    func timeInForce(ordType: String, price: String, code: String) async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let response = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"\#(ordType)","px":"\#(price)","sz":"1"}"#, as: user)
        #expect(response.first?[member: "sCode"]?.scalarText == code, "\(response.envelope)")
        if code == "0" {
            // ioc/fok below the ask cannot fill: the order is cancelled, nothing rests, no position.
            let ordId = response.first?[member: "ordId"]?.scalarText ?? ""
            let order = await sandbox.call("GET", "/api/v5/trade/order?instId=BTC-USDT-SWAP&ordId=\(ordId)", as: user).first
            #expect(order?[member: "state"]?.scalarText == "canceled")
            #expect(await sandbox.call("GET", "/api/v5/account/positions", as: user).data.isEmpty)
        }
    }

    /// The pre-trade check counts open orders as filled: two orders that each fit but not together.
    @Test func preTradeCheckCountsOpenOrders() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account([("USDT", "20000")])
        // Classic, default 10x: 1 BTC-USDT-SWAP contract ≈ 885 USD notional ≈ 88.5 USD IMR. 150 contracts ≈ 13.3k IMR.
        let first = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"85000","sz":"150"}"#, as: user)
        #expect(first.code == "0")
        let second = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"85000","sz":"150"}"#, as: user)
        #expect(second.code == "1" && second.first?[member: "sCode"]?.scalarText == "51008", "\(second.envelope)")
        // A risk-reducing order is accepted even so.
        let reducing = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"sell","ordType":"limit","px":"95000","sz":"100"}"#, as: user)
        #expect(reducing.code == "0")
    }

    @Test func spotCashAndAutoBorrow() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account([("USDT", "1000")])
        let tooBig = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"0.1","tgtCcy":"base_ccy"}"#, as: user)
        #expect(tooBig.first?[member: "sCode"]?.scalarText == "51008")
        let small = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"0.01","tgtCcy":"base_ccy"}"#, as: user)
        #expect(small.code == "0", "\(small.envelope)")
        let balance = await sandbox.call("GET", "/api/v5/account/balance?ccy=BTC", as: user)
        let btc = balance.first?[member: "details"]?.arrayItems.first
        #expect(btc?[member: "cashBal"]?.scalarText == "0.00999", "0.01 BTC less the 0.1 % taker fee in BTC")
        // Cross mode with auto-borrow may overdraw USDT within the margin; without auto-borrow it may not.
        let refused = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT","tdMode":"cross","side":"buy","ordType":"market","sz":"0.02","tgtCcy":"base_ccy"}"#, as: user)
        #expect(refused.first?[member: "sCode"]?.scalarText == "51008")
        #expect(await sandbox.call("POST", "/api/v5/account/set-auto-loan", body: #"{"autoLoan":true}"#, as: user).code == "0")
        let borrowed = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT","tdMode":"cross","side":"buy","ordType":"market","sz":"0.005","tgtCcy":"base_ccy"}"#, as: user)
        #expect(borrowed.code == "0", "\(borrowed.envelope)")
        let usdt = await sandbox.call("GET", "/api/v5/account/balance?ccy=USDT", as: user).first?[member: "details"]?.arrayItems.first
        #expect((Double(usdt?[member: "cashBal"]?.scalarText ?? "0") ?? 0) < 0)
        #expect(try await sandbox.ledgerBalances(user.uid))
        #expect(try await sandbox.cashImbalances() == [])
    }

    /// set-account-level to PM needs the acknowledgement and 10,000 USD; back to classic passes the pre-check.
    @Test func switchingModes() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let refused = await sandbox.call("POST", "/api/v5/account/set-account-level", body: #"{"acctLv":"4"}"#, as: user)
        #expect(refused.code == "51070" && refused.message.contains("acknowledgement"))
        let precheck = await sandbox.call("GET", "/api/v5/account/set-account-switch-precheck?acctLv=4", as: user).first
        #expect(precheck?[member: "allowed"] == .bool(false))
        try await sandbox.exchange.acknowledgePortfolioMargin(uid: user.uid)
        #expect(await sandbox.call("POST", "/api/v5/account/set-account-level", body: #"{"acctLv":"4"}"#, as: user).code == "0")
        #expect(await sandbox.call("GET", "/api/v5/account/config", as: user).first?[member: "acctLv"]?.scalarText == "4")
        #expect(await sandbox.call("POST", "/api/v5/account/set-account-level", body: #"{"acctLv":"3"}"#, as: user).code == "0")
        let poor = try await sandbox.account([("USDT", "5000")])
        try await sandbox.exchange.acknowledgePortfolioMargin(uid: poor.uid)
        let small = await sandbox.call("POST", "/api/v5/account/set-account-level", body: #"{"acctLv":"4"}"#, as: poor)
        #expect(small.code == "51070" && small.message.contains("10,000"))
    }

    /// The position builder over real positions plus simulated ones.
    @Test func positionBuilderIncludesRealPositions() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        _ = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"sell","ordType":"market","sz":"20"}"#, as: user)
        let real = await sandbox.call("POST", "/api/v5/account/position-builder", body: #"{"acctLv":"4"}"#, as: user)
        let unit = real.first?[member: "riskUnitData"]?.arrayItems.first
        #expect(unit?[member: "riskUnit"]?.scalarText == "BTC")
        let simulatedOnly = await sandbox.call(
            "POST", "/api/v5/account/position-builder",
            body: #"{"acctLv":"4","inclRealPosAndEq":false,"simPos":[{"instId":"BTC-USDT-SWAP","pos":"-20"}]}"#, as: user)
        #expect(simulatedOnly.first?[member: "riskUnitData"]?.arrayItems.first?[member: "mmr"] == unit?[member: "mmr"])
        let combined = await sandbox.call(
            "POST", "/api/v5/account/position-builder",
            body: #"{"acctLv":"4","simPos":[{"instId":"BTC-USDT-SWAP","pos":"20"}]}"#, as: user)
        #expect(combined.first?[member: "riskUnitData"]?.arrayItems.isEmpty == true, "the simulated long nets the real short to nothing")
        #expect(combined.first?[member: "derivMmr"]?.doubleValue == 0)
        let graph = await sandbox.call("POST", "/api/v5/account/position-builder-graph", body: #"{}"#, as: user)
        #expect(graph.first?[member: "mmrData"]?.arrayItems.count == 200)
    }

    struct BadInput: Sendable, CustomTestStringConvertible {
        var name: String
        var body: String
        var sCode: String
        var mentions: String
        var testDescription: String { name }
    }

    static let badOrders: [BadInput] = [
        BadInput(
            name: "unknown instrument", body: #"{"instId":"NOPE-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#,
            sCode: "51001", mentions: "NOPE-USDT-SWAP"),
        BadInput(
            name: "non-numeric size", body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"abc"}"#,
            sCode: "51000", mentions: "sz"),
        BadInput(
            name: "non-finite size", body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1e999"}"#,
            sCode: "51000", mentions: "sz"),
        // The fuzz target fuzz-rest-auth found bodies with numbers beyond a Double (-2e308) parse; they must not trade.
        BadInput(
            name: "non-finite size as a JSON number",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":-2e308}"#, sCode: "51000",
            mentions: "sz"),
        BadInput(
            name: "non-finite price as a JSON number",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":1e400,"sz":"1"}"#, sCode: "51000",
            mentions: "px"),
        BadInput(
            name: "huge size",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"99999999999999999999"}"#,
            sCode: "51000", mentions: "sz"),
        BadInput(
            name: "negative size", body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"-1"}"#,
            sCode: "51000", mentions: "sz"),
        BadInput(
            name: "not a lot multiple", body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1.005"}"#,
            sCode: "51121", mentions: "1.005"),
        BadInput(
            name: "below the minimum",
            body: #"{"instId":"BTC-USDT","tdMode":"cash","side":"buy","ordType":"market","sz":"0.000001","tgtCcy":"base_ccy"}"#,
            sCode: "51020", mentions: "0.000001"),
        BadInput(
            name: "missing side", body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","ordType":"market","sz":"1"}"#, sCode: "50014",
            mentions: "side"),
        BadInput(
            name: "isolated margin", body: #"{"instId":"BTC-USDT-SWAP","tdMode":"isolated","side":"buy","ordType":"market","sz":"1"}"#,
            sCode: "51000", mentions: "isolated"),
        BadInput(
            name: "long/short mode",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","posSide":"long","ordType":"market","sz":"1"}"#, sCode: "51000",
            mentions: "posSide"),
        BadInput(
            name: "limit without price", body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","sz":"1"}"#,
            sCode: "50014", mentions: "px"),
        BadInput(
            name: "price off the tick",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"80000.05","sz":"1"}"#, sCode: "51000",
            mentions: "80000.05"),
        BadInput(
            name: "wrong type", body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":{"n":1}}"#,
            sCode: "51000", mentions: "sz"),
        BadInput(
            name: "unknown field",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1","size":"5"}"#, sCode: "51000",
            mentions: "size"),
        BadInput(
            name: "boolean as a string that is not one",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1","reduceOnly":"maybe"}"#,
            sCode: "51000", mentions: "reduceOnly"),
        BadInput(
            name: "expired instrument",
            body: #"{"instId":"BTC-USD-251230-90000-C","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#, sCode: "51001",
            mentions: "BTC-USD-251230"),
    ]

    /// Bad orders get the documented code naming the field, and change nothing.
    @Test(arguments: badOrders)
    func badOrdersAreRejectedAndChangeNothing(_ input: BadInput) async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let before = try await sandbox.database.writer.read { db in try BillRecord.fetchCount(db) }
        let response = await sandbox.call("POST", "/api/v5/trade/order", body: input.body, as: user)
        #expect(response.code == "1")
        #expect(response.first?[member: "sCode"]?.scalarText == input.sCode, "\(response.envelope)")
        #expect(response.first?[member: "sMsg"]?.scalarText?.contains(input.mentions) == true, "\(response.envelope)")
        let after = try await sandbox.database.writer.read { db in try BillRecord.fetchCount(db) }
        #expect(before == after)
        #expect(await sandbox.call("GET", "/api/v5/account/positions", as: user).data.isEmpty)
    }

    @Test(arguments: [("{", "50002"), ("[1,2]", "50002"), (String(repeating: "[", count: 500), "50002"), ("", "50014")])
    func malformedBodiesGetAnEnvelope(body: String, code: String) async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let response = await sandbox.call("POST", "/api/v5/account/set-leverage", body: body, as: user)
        #expect(response.code == code, "\(response.envelope)")
    }

    @Test func batchOrdersReportEachItem() async throws {
        let sandbox = try SandboxHarness()
        let user = try await sandbox.account()
        let good = #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#
        let bad = #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"0"}"#
        let mixed = await sandbox.call("POST", "/api/v5/trade/batch-orders", body: "[\(good),\(bad)]", as: user)
        #expect(mixed.code == "2")
        #expect(mixed.data.map { $0[member: "sCode"]?.scalarText } == ["0", "51000"])
        #expect(await sandbox.call("POST", "/api/v5/trade/batch-orders", body: "[\(bad)]", as: user).code == "1")
        #expect(await sandbox.call("POST", "/api/v5/trade/batch-orders", body: "[\(good)]", as: user).code == "0")
        let tooMany = "[" + Array(repeating: good, count: 21).joined(separator: ",") + "]"
        #expect(await sandbox.call("POST", "/api/v5/trade/batch-orders", body: tooMany, as: user).code == "51000")
    }

    /// A batch (stored in one transaction) answers and stores exactly what the same orders sent one by one
    /// do: each checked against the account the orders before it left (here the margin runs out after a few
    /// resting buys), refusals changing nothing, fills, bills and ordIds the same; then the same for cancels.
    @Test func aBatchActsLikeItsOrdersOneByOne() async throws {
        func order(
            _ side: String, _ type: String, _ size: String, _ price: String? = nil, clOrdId: String = "", reduceOnly: Bool = false
        ) -> String {
            #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"\#(side)","ordType":"\#(type)","sz":"\#(size)""#
                + (price.map { #","px":"\#($0)""# } ?? "") + (clOrdId.isEmpty ? "" : #","clOrdId":"\#(clOrdId)""#)
                + (reduceOnly ? #","reduceOnly":true"# : "") + "}"
        }
        var orders = [order("buy", "market", "3", clOrdId: "m1"), order("buy", "limit", "0", "85000")]
        for index in 0..<14 { orders.append(order("buy", "limit", "30", "85000", clOrdId: "r\(index)")) }
        orders += [
            order("sell", "market", "2", reduceOnly: true), order("sell", "limit", "5", "99000", clOrdId: "s1"),
            order("buy", "limit", "1", "85000.3"), order("sell", "market", "9", reduceOnly: true),
        ]
        #expect(orders.count == 20)

        func run(batched: Bool) async throws -> (answers: [[String?]], cancels: [[String?]], stored: [String]) {
            let sandbox = try SandboxHarness()
            let user = try await sandbox.account([("USDT", "20000")])
            func items(_ response: APIResponse) -> [[String?]] {
                response.data.map { item in ["ordId", "clOrdId", "sCode", "sMsg"].map { item[member: $0]?.scalarText } }
            }
            var answers: [[String?]] = []
            if batched {
                answers = items(
                    await sandbox.call("POST", "/api/v5/trade/batch-orders", body: "[" + orders.joined(separator: ",") + "]", as: user))
            } else {
                for body in orders { answers += items(await sandbox.call("POST", "/api/v5/trade/order", body: body, as: user)) }
            }
            let live = answers.compactMap { $0[2] == "0" ? $0[0] : nil }
            let cancelBodies = (live + ["999999"]).map { #"{"instId":"BTC-USDT-SWAP","ordId":"\#($0)"}"# }
            var cancels: [[String?]] = []
            if batched {
                cancels = items(
                    await sandbox.call(
                        "POST", "/api/v5/trade/cancel-batch-orders", body: "[" + cancelBodies.joined(separator: ",") + "]", as: user))
            } else {
                for body in cancelBodies {
                    cancels += items(await sandbox.call("POST", "/api/v5/trade/cancel-order", body: body, as: user))
                }
            }
            #expect(try await sandbox.ledgerBalances(user.uid))
            #expect(try await sandbox.cashImbalances() == [])
            let stored = try await sandbox.database.writer.read { db in
                try OrderRecord.order(Column("ordId")).fetchAll(db).map {
                    "\($0.ordId) \($0.clOrdId) \($0.side) \($0.sz) \($0.px) \($0.state) \($0.accFillSz) \($0.avgPx) \($0.fee)"
                }
                    + BalanceRecord.filter(Column("uid") == user.uid).order(Column("ccy")).fetchAll(db).map {
                        "balance \($0.ccy) \($0.cashBal)"
                    }
                    + PositionRecord.filter(Column("uid") == user.uid).fetchAll(db).map { "position \($0.instId) \($0.pos) \($0.avgPx)" }
                    + BillRecord.filter(Column("uid") == user.uid).order(Column("billId")).fetchAll(db).map {
                        "bill \($0.billId) \($0.type) \($0.balChg) \($0.bal)"
                    }
            }
            return (answers, cancels, stored)
        }
        let batch = try await run(batched: true)
        let single = try await run(batched: false)
        #expect(batch.answers == single.answers)
        #expect(batch.cancels == single.cancels)
        #expect(batch.stored == single.stored)
        // The case is not degenerate: fills, refusals for margin and for bad input, and resting orders all occur.
        let codes = batch.answers.map { $0[2] ?? "" }
        #expect(codes.filter { $0 == "0" }.count >= 6 && codes.contains("51008") && codes.contains("51000"), "\(codes)")
        #expect(batch.cancels.last?[2] == "51400" && batch.cancels.dropLast().allSatisfy { $0[2] == "0" || $0[2] == "51400" })
        #expect(
            batch.stored.contains { $0.hasPrefix("bill ") && $0.contains(" 2 ") } || batch.stored.contains { $0.hasPrefix("position ") })
    }

    /// Group commit: many concurrent single-order requests from several accounts (which then share
    /// transactions; how many depends on timing, so it is not asserted) still end exactly: every answer is
    /// definite, each account carries what its margin allows, the database holds exactly the acknowledged
    /// orders and then their cancels, balances equal their bills and cash is conserved.
    @Test func concurrentRequestsShareCommitsAndLoseNothing() async throws {
        let sandbox = try SandboxHarness()
        var created: [SandboxHarness.Credentials] = []
        for _ in 0..<6 { created.append(try await sandbox.account([("USDT", "20000")])) }
        let users = created
        // 6 accounts × 12 orders at once: each account can carry about 7 of them (the margin check refuses the rest).
        let answers = await withTaskGroup(of: (Int, String?, String?).self) { group in
            for (index, user) in users.enumerated() {
                for n in 0..<12 {
                    group.addTask {
                        let response = await sandbox.call(
                            "POST", "/api/v5/trade/order",
                            body:
                                #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"85000","sz":"30","clOrdId":"c\#(n)"}"#,
                            as: user)
                        return (index, response.first?[member: "sCode"]?.scalarText, response.first?[member: "ordId"]?.scalarText)
                    }
                }
            }
            var all: [(Int, String?, String?)] = []
            for await answer in group { all.append(answer) }
            return all
        }
        #expect(answers.count == 72 && answers.allSatisfy { $0.1 == "0" || $0.1 == "51008" }, "\(answers)")
        let accepted = answers.filter { $0.1 == "0" }
        for index in users.indices {
            let count = accepted.filter { $0.0 == index }.count
            #expect((5...8).contains(count), "account \(index) carries \(count) orders of 30 contracts")
        }
        let stored = try await sandbox.database.writer.read { db in
            try OrderRecord.filter(Column("state") == "live").fetchAll(db).map { String($0.ordId) }
        }
        #expect(Set(stored) == Set(accepted.compactMap(\.2)) && stored.count == accepted.count)
        // Cancel them all at once, as concurrently.
        let cancelled = await withTaskGroup(of: String?.self) { group in
            for (index, _, ordId) in accepted {
                group.addTask {
                    await sandbox.call(
                        "POST", "/api/v5/trade/cancel-order",
                        body: #"{"instId":"BTC-USDT-SWAP","ordId":"\#(ordId ?? "")"}"#, as: users[index]
                    ).first?[member: "sCode"]?.scalarText
                }
            }
            var codes: [String?] = []
            for await code in group { codes.append(code) }
            return codes
        }
        #expect(cancelled.count == accepted.count && cancelled.allSatisfy { $0 == "0" })
        let open = try await sandbox.database.writer.read { db in try OrderRecord.filter(Column("state") == "live").fetchCount(db) }
        #expect(open == 0)
        for user in users { #expect(try await sandbox.ledgerBalances(user.uid)) }
        #expect(try await sandbox.cashImbalances() == [])
    }

    @Test func unknownRoutesAnd405AreEnvelopes() async throws {
        let sandbox = try SandboxHarness()
        let missing = await sandbox.call("GET", "/api/v5/nowhere", as: nil)
        #expect(missing.status == 404 && missing.code == "404")
        let wrongMethod = await sandbox.call("DELETE", "/api/v5/account/balance", as: nil)
        #expect(wrongMethod.status == 405 && wrongMethod.code == "405")
        let unknownFamily = await sandbox.call("GET", "/api/v5/public/instruments?instType=OPTION&uly=DOGE-USD", as: nil)
        #expect(unknownFamily.code == "0" && unknownFamily.data.isEmpty)
        let noType = await sandbox.call("GET", "/api/v5/public/instruments", as: nil)
        #expect(noType.code == "50014")
    }
}
