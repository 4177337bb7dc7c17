import ArgumentParser
import Foundation
import GRDB
import MarginEngine
import MarginStore
import Sandbox

/// The benchmark's accounts: one group made through the API, then cloned in SQL.
enum Population {
    /// A signed-request maker for one account.
    struct User {
        var apiKey, secret, passphrase: String

        func signed(_ method: String, _ target: String, body: String = "", now: Int64) -> APIRequest {
            let formatter = ISO8601DateFormatter()
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            let stamp = formatter.string(from: Date(timeIntervalSince1970: Double(now) / 1000))
            let headers = [
                "ok-access-key": apiKey, "ok-access-passphrase": passphrase, "ok-access-timestamp": stamp,
                "ok-access-sign": okxSignature(
                    secret: secret, timestamp: stamp, method: method, requestPath: target, body: Array(body.utf8)),
            ]
            return APIRequest(method: method, target: target, body: Array(body.utf8), headers: headers, remoteIsLoopback: true)
        }
    }

    /// One account of the group: deposits, whether it is portfolio-margined, and its market orders.
    struct Template {
        var deposit: Int
        var portfolioMargin: Bool
        var orders: [(instId: String, side: String, size: String)]
    }

    /// 25 accounts: USDT collateral and a perpetual each; 8 with 2–4 options; 6 classic; 2 fragile (PM, a BTC
    /// perpetual long on thin equity: a −8 % BTC shock liquidates them, smaller moves do not).
    static let templates: [Template] = {
        var group: [Template] = []
        let call = "BTC-USD-260327-100000-C"
        let put = "BTC-USD-260327-80000-P"
        let far = "BTC-USD-260626-120000-C"
        let ethCall = "ETH-USD-260327-3500-C"
        let ethPut = "ETH-USD-260327-2500-P"
        let ethFar = "ETH-USD-260626-4000-C"
        for size in ["10", "20", "5", "40", "15"] {
            group.append(Template(deposit: 60_000, portfolioMargin: true, orders: [("BTC-USDT-SWAP", "buy", size)]))
        }
        for size in ["30", "60", "10", "20"] {
            group.append(Template(deposit: 60_000, portfolioMargin: true, orders: [("ETH-USDT-SWAP", "sell", size)]))
        }
        group.append(
            Template(
                deposit: 150_000, portfolioMargin: true,
                orders: [("BTC-USD-SWAP", "sell", "100"), (call, "sell", "10"), (put, "buy", "10")]))
        group.append(
            Template(
                deposit: 150_000, portfolioMargin: true,
                orders: [("BTC-USD-SWAP", "buy", "50"), (call, "buy", "20"), (put, "sell", "5"), (far, "sell", "5")]))
        group.append(
            Template(
                deposit: 150_000, portfolioMargin: true,
                orders: [("BTC-USDT-SWAP", "sell", "10"), (call, "sell", "5"), (far, "buy", "5"), (put, "buy", "5")]))
        group.append(
            Template(
                deposit: 150_000, portfolioMargin: true, orders: [("BTC-USDT-SWAP", "buy", "5"), (put, "sell", "10"), (far, "buy", "10")]))
        group.append(
            Template(
                deposit: 150_000, portfolioMargin: true,
                orders: [("ETH-USDT-SWAP", "buy", "20"), (ethCall, "sell", "20"), (ethPut, "buy", "20")]))
        group.append(
            Template(
                deposit: 150_000, portfolioMargin: true,
                orders: [("ETH-USDT-SWAP", "sell", "10"), (ethCall, "buy", "10"), (ethFar, "sell", "10"), (ethPut, "sell", "5")]))
        group.append(Template(deposit: 150_000, portfolioMargin: true, orders: [("ETH-USDT-SWAP", "buy", "30"), (ethPut, "buy", "30")]))
        group.append(
            Template(
                deposit: 150_000, portfolioMargin: true,
                orders: [("ETH-USDT-SWAP", "sell", "5"), (ethCall, "sell", "10"), (ethFar, "buy", "10")]))
        for size in ["5", "10", "20"] {
            group.append(Template(deposit: 20_000, portfolioMargin: false, orders: [("BTC-USDT-SWAP", "buy", size)]))
        }
        for size in ["10", "30", "50"] {
            group.append(Template(deposit: 20_000, portfolioMargin: false, orders: [("ETH-USDT-SWAP", "sell", size)]))
        }
        for _ in 0..<2 { group.append(Template(deposit: 10_100, portfolioMargin: true, orders: [("BTC-USDT-SWAP", "buy", "70")])) }
        precondition(group.count == ExchangeBench.groupSize)
        return group
    }()

    /// Makes the group on a new database at `path` through the API; returns the first account's signer.
    static func group(
        path: String, secrets: SecretBox, catalog: InstrumentCatalog, parameters: MarginParameters, market: MarketSnapshot,
        clock: BenchClock
    ) async throws -> User {
        try? FileManager.default.removeItem(atPath: path)
        let database = try AppDatabase(path: path)
        let exchange = try Exchange(
            database: database, secrets: secrets, catalog: catalog, parameters: parameters, market: market, clock: { clock.now })
        let api = SandboxAPI(exchange: exchange, adminToken: "bench", rateLimitPerSecond: 1e9, clock: { clock.now })
        var first: User?
        for template in templates {
            let created = try await exchange.createAccount(deposits: [("USDT", ExactDecimal(template.deposit))])
            let user = User(apiKey: created.apiKey, secret: created.secretKey, passphrase: created.passphrase)
            first = first ?? user
            func call(_ method: String, _ target: String, _ body: String) async throws {
                clock.advance(1)
                let response = await api.handle(user.signed(method, target, body: body, now: clock.now))
                guard response.envelope[member: "code"]?.scalarText == "0" else {
                    throw ValidationError("\(method) \(target) \(body) failed: \(JSONWriter.serialize(response.envelope))")
                }
            }
            if template.portfolioMargin {
                try await exchange.acknowledgePortfolioMargin(uid: created.uid)
                try await call("POST", "/api/v5/account/set-account-level", #"{"acctLv":"4"}"#)
            }
            for order in template.orders {
                try await call(
                    "POST", "/api/v5/trade/order",
                    #"{"instId":"\#(order.instId)","tdMode":"cross","side":"\#(order.side)","ordType":"market","sz":"\#(order.size)"}"#)
            }
        }
        guard let first else { throw ValidationError("no account made") }
        return first
    }

    /// Clones every account row of the database `groups − 1` times (uids and keys suffixed, order, trade and
    /// bill ids shifted), and scales the insurance fund and the house exactly, so that balances + fund +
    /// house = deposits holds for the whole population.
    static func clone(path: String, groups: Int) throws {
        guard groups > 1 else { return }
        // The group's exchange may still be closing its connections (checkpointing what its WAL holds): wait.
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        let queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.write { db in
            let ordStride = (try Int64.fetchOne(db, sql: #"SELECT MAX(ordId) FROM "order""#) ?? 0) + 1
            let tradeStride = (try Int64.fetchOne(db, sql: "SELECT MAX(tradeId) FROM fill") ?? 0) + 1
            let billStride = (try Int64.fetchOne(db, sql: "SELECT MAX(billId) FROM bill") ?? 0) + 1
            try db.execute(sql: "CREATE TEMP TABLE copy(n INTEGER PRIMARY KEY)")
            try db.execute(
                sql: """
                    WITH RECURSIVE numbers(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM numbers WHERE n < ?)
                    INSERT INTO copy SELECT n FROM numbers
                    """, arguments: [groups - 1])
            let suffix = "'-' || copy.n"
            try db.execute(
                sql: "INSERT INTO account SELECT uid || \(suffix), acctLv, acknowledged, autoLoan, label, createdAt FROM account, copy")
            try db.execute(
                sql: """
                    INSERT INTO apiKey SELECT apiKey || \(suffix), uid || \(suffix), secretCipher, passphraseHash, permissions, label, createdAt
                    FROM apiKey, copy
                    """)
            try db.execute(sql: "INSERT INTO balance SELECT uid || \(suffix), ccy, cashBal FROM balance, copy")
            try db.execute(sql: "INSERT INTO position SELECT uid || \(suffix), instId, pos, avgPx, lever, cTime, uTime FROM position, copy")
            try db.execute(
                sql: """
                    INSERT INTO "order" SELECT ordId + copy.n * \(ordStride), uid || \(suffix), clOrdId, instId, tdMode, side, ordType, px, sz, tgtCcy,
                    reduceOnly, state, accFillSz, avgPx, fee, feeCcy, category, tag, cTime, uTime FROM "order", copy
                    """)
            try db.execute(
                sql: """
                    INSERT INTO fill SELECT tradeId + copy.n * \(tradeStride), ordId + copy.n * \(ordStride), uid || \(suffix), clOrdId, instId, side,
                    fillPx, fillSz, fee, feeCcy, pnl, execType, category, ts FROM fill, copy
                    """)
            try db.execute(
                sql: """
                    INSERT INTO bill SELECT billId + copy.n * \(billStride), uid || \(suffix), ccy, balChg, bal, type, subType, instId,
                    CASE WHEN ordId = '' THEN '' ELSE CAST(CAST(ordId AS INTEGER) + copy.n * \(ordStride) AS TEXT) END, pnl, fee, sz, px, notes, ts
                    FROM bill, copy
                    """)
            try db.execute(sql: "INSERT INTO interest SELECT uid || \(suffix), ccy, pending, accrued FROM interest, copy")
            try db.execute(
                sql: """
                    INSERT INTO setting SELECT substr(key, 1, instr(key, ':')) || substr(substr(key, instr(key, ':') + 1), 1, instr(substr(key, instr(key, ':') + 1), ':') - 1)
                    || \(suffix) || substr(substr(key, instr(key, ':') + 1), instr(substr(key, instr(key, ':') + 1), ':')), value
                    FROM setting, copy WHERE key LIKE 'lever:%' OR key LIKE 'siu:%'
                    """)
            for table in ["insuranceFund", "house"] {
                for row in try Row.fetchAll(db, sql: "SELECT ccy, balance FROM \(table)") {
                    let ccy: String = row["ccy"]
                    let balance = ExactDecimal(row["balance"] as String) ?? .zero
                    try db.execute(
                        sql: "UPDATE \(table) SET balance = ? WHERE ccy = ?",
                        arguments: [balance.multiplied(by: ExactDecimal(groups)).description, ccy])
                }
            }
        }
    }
}
