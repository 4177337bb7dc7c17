import Foundation
import MarginEngine
import MarginStore
import Synchronization

/// The sandbox exchange: accounts, orders, positions and the ledger, kept in memory and in the database.
///
/// Every state change is computed on copies, written to the database in one transaction, and only then
/// applied to memory; a failed write changes nothing. The actor serialises all changes, so the ledger is
/// always consistent and every bill's `bal` is the balance after it.
public actor Exchange {
    /// Where the ledger is stored: SQLite (``AppDatabase``) or PostgreSQL.
    package let database: any LedgerStore
    package let secrets: SecretBox
    package let catalog: InstrumentCatalog
    package let parameters: MarginParameters
    /// How the store partitions accounts: the fund's and the house's rows are per partition.
    let partitions: LedgerPartitions
    /// The partitions whose accounts this exchange keeps (nil: every partition, the ledger's one node); it takes more
    /// with ``adopt(partitions:)`` and gives some up with ``release(partitions:)``.
    private let held: Mutex<Set<Int>?>
    /// Wall-clock milliseconds (record timestamps, signatures).
    let clock: @Sendable () -> Int64
    /// What the sandbox measures (``SandboxMetrics``): the exchange, its API and its transports record here.
    package let metrics: SandboxMetrics

    /// The current market; ticks replace it.
    package internal(set) var market: MarketSnapshot
    var accounts: [String: AccountState] = [:]
    var keys: [String: APIKeyRecord] = [:]
    /// The insurance fund's rows (``Book``): per partition and currency.
    var insuranceFund: [Book: ExactDecimal] = [:]
    /// What the house (the sandbox, counterparty of every trade, funding and settlement) holds, per partition and
    /// currency.
    var house: [Book: ExactDecimal] = [:]
    /// Per partition, the id its accounts' next order gets. Ids of partition p are ≡ p modulo the number of
    /// partitions, so nodes owning different partitions never hand out the same id and a partition's new owner
    /// goes on after the largest id stored; with one partition (SQLite) they count up from 1.
    var nextOrderIDs: [Int64] = [1]
    /// Trading submissions waiting for the next group commit (``submit(uid:_:)``), in arrival order.
    var queuedSubmissions: [(uid: String, requests: TradeRequests, reply: CheckedContinuation<[Result<OrderRecord, OKXError>], Never>)] = []
    var drainScheduled = false
    /// Submissions announced but not yet queued (see ``submit(uid:_:)``).
    nonisolated let announcedSubmissions = Atomic<Int>(0)
    /// The risk view: the market's scenario vectors, the account book and every account's figures.
    var risk: RiskMirror
    /// When the accounts' risk state was last recomputed by a market move (`risk-state`'s `ts`).
    var riskStateTime: Int64 = 0
    /// Accounts re-margined between two chances for requests to run during a market move (a few
    /// milliseconds of work on two cores).
    var remarginSliceAccounts = 8_192
    /// Accounts with open orders (resting fills and expiry visit only these).
    var accountsWithOpenOrders = Set<String>()
    /// Liabilities that bear interest, by currency, as the last accrual summed them (the utilisation).
    var borrowedByCurrency: [String: Double] = [:]
    /// Accounts with interest accrued and not yet capitalised.
    var accountsWithPendingInterest = Set<String>()
    /// Funding rates of the last funding, by perpetual.
    var lastFunding: [String: (rate: Double, time: Int64)] = [:]
    /// The sequence number of the last market tick applied (ticks computed earlier and arriving later are stale).
    var appliedTick: UInt64 = 0
    /// Listeners of account events (the WebSocket feed), by id.
    var listeners: [Int: @Sendable (ExchangeEvent) -> Void] = [:]
    var nextListenerID = 0

    public init(
        database: any LedgerStore, secrets: SecretBox, catalog: InstrumentCatalog, parameters: MarginParameters,
        market: MarketSnapshot, clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) },
        metrics: SandboxMetrics = SandboxMetrics(), partitions held: [Int]? = nil
    ) throws {
        self.database = database
        partitions = database.partitions
        self.held = Mutex(held.map(Set.init))
        self.metrics = metrics
        self.secrets = secrets
        self.catalog = catalog
        self.parameters = parameters
        self.market = market
        self.clock = clock
        var loader = LedgerLoader(accounts: [:], fund: [:], house: [:])
        try database.load(only: nil, partitions: held, into: &loader)
        insuranceFund = loader.fund
        house = loader.house
        nextOrderIDs = Self.orderIDs(after: loader.largestOrderID, partitions: partitions)
        var ordered = loader.takeStaged()
        // The store hands accounts over in uid order; checked in one pass, sorted only if it did not.
        if !zip(ordered, ordered.dropFirst()).allSatisfy({ $0.uid < $1.uid }) { ordered.sort { $0.uid < $1.uid } }
        // The uid-keyed dictionary is built on another thread while the mirror is built from the ordered accounts.
        let keyed = KeyedAccounts(ordered)
        var mirror = RiskMirror(catalog: catalog, market: market, parameters: parameters)
        mirror.build(ordered: ordered, workers: Self.workers) { [risks = mirror.risksByID] account in
            Self.directFigures(account, catalog: catalog, market: market, parameters: parameters, risks: risks)
        }
        accounts = keyed.result()
        risk = mirror
        riskStateTime = clock()
        for (currency, balance) in insuranceFund.byCurrency { metrics.insuranceFund(currency, balance: balance.doubleValue) }
        for (uid, account) in accounts {
            if !account.openOrders.isEmpty { accountsWithOpenOrders.insert(uid) }
            if !account.pendingInterest.values.allSatisfy(\.isZero) { accountsWithPendingInterest.insert(uid) }
        }
    }

    /// Each partition's first order id above `largest`.
    static func orderIDs(after largest: Int64, partitions: LedgerPartitions) -> [Int64] {
        let count = Int64(partitions.count)
        return (0..<count).map { partition in
            let first = largest + 1
            return first + ((partition - first % count) % count + count) % count
        }
    }

    /// The id account `uid`'s next order gets; ``takeOrderID(for:)`` hands it out.
    func nextOrderID(for uid: String) -> Int64 { nextOrderIDs[partitions.partition(of: uid)] }

    func takeOrderID(for uid: String) { nextOrderIDs[partitions.partition(of: uid)] += Int64(partitions.count) }

    /// Whether account `uid` is in a partition this exchange holds (another node serves it otherwise).
    package nonisolated func holds(_ uid: String) -> Bool {
        let partition = partitions.partition(of: uid)
        return held.withLock { $0?.contains(partition) ?? true }
    }

    /// The partitions this exchange keeps, in order (every partition when it keeps them all).
    package nonisolated var heldPartitions: [Int] { held.withLock { $0.map { $0.sorted() } ?? partitions.all } }

    /// Takes the accounts of `adopted` (partitions another node held, or that started behind), with their fund and
    /// house rows, as the store has them: the caller has moved them to this exchange's market tick first.
    package func adopt(partitions adopted: [Int]) throws {
        var loaded: [String: AccountState] = [:]
        var fund: [Book: ExactDecimal] = [:]
        var house: [Book: ExactDecimal] = [:]
        var nextOrder: Int64 = 0
        _ = try Self.load(into: &loaded, fund: &fund, house: &house, nextOrderID: &nextOrder, partitions: adopted, from: database)
        for (uid, account) in loaded {
            accounts[uid] = account
            noteIndexes(uid, account)
            refreshRisk(uid)
        }
        insuranceFund.merge(fund) { _, adopted in adopted }
        self.house.merge(house) { _, adopted in adopted }
        for (currency, balance) in insuranceFund.byCurrency { metrics.insuranceFund(currency, balance: balance.doubleValue) }
        let after = Self.orderIDs(after: nextOrder - 1, partitions: partitions)
        nextOrderIDs = zip(nextOrderIDs, after).map { max($0, $1) }
        held.withLock { $0?.formUnion(adopted) }
    }

    /// Gives up the accounts of `released` (handed to another node): from now on their requests are forwarded, and
    /// they leave memory — the risk mirror keeps their slots, emptied, for a later adoption. Whatever this exchange
    /// committed for them is in the store, where the next owner loads it.
    package func release(partitions released: [Int]) {
        let gone = Set(released)
        held.withLock { $0?.subtract(gone) }
        for uid in accounts.keys where gone.contains(partitions.partition(of: uid)) {
            accounts[uid] = nil
            accountsWithOpenOrders.remove(uid)
            accountsWithPendingInterest.remove(uid)
            if let slot = risk.slots[uid] {
                risk.book.replace(slot, lines: [], balances: [], level: .classic)
                risk.direct.remove(slot)
                risk.figures[slot] = nil
                risk.figuresGeneration[slot] = 0
            }
        }
        for key in keys.keys where keys[key].map({ gone.contains(partitions.partition(of: $0.uid)) }) == true { keys[key] = nil }
        for book in insuranceFund.keys where gone.contains(book.partition) { insuranceFund[book] = nil }
        for book in house.keys where gone.contains(book.partition) { house[book] = nil }
        for (currency, balance) in insuranceFund.byCurrency { metrics.insuranceFund(currency, balance: balance.doubleValue) }
    }

    /// Keeps the sets of accounts with open orders and with pending interest current.
    func noteIndexes(_ uid: String, _ account: AccountState) {
        if account.openOrders.isEmpty { accountsWithOpenOrders.remove(uid) } else { accountsWithOpenOrders.insert(uid) }
        if account.pendingInterest.values.allSatisfy(\.isZero) {
            accountsWithPendingInterest.remove(uid)
        } else {
            accountsWithPendingInterest.insert(uid)
        }
    }

    /// Loads every account from the store, or only account `uid` (one another process created; start-up loads
    /// every account through its own path, which keys them while the mirror is built). API keys are not loaded: the first request with a key reads
    /// it (``credentials(apiKey:)``).
    static func load(
        into accounts: inout [String: AccountState], fund: inout [Book: ExactDecimal], house: inout [Book: ExactDecimal],
        nextOrderID nextOrder: inout Int64, only uid: String? = nil, partitions: [Int]? = nil, from database: any LedgerStore
    ) throws -> [String] {
        var loader = LedgerLoader(accounts: accounts, fund: fund, house: house)
        // The loader owns the dictionaries while it fills them (no copy on write).
        accounts = [:]
        fund = [:]
        house = [:]
        try database.load(only: uid, partitions: partitions, into: &loader)
        loader.finish()
        accounts = loader.accounts
        fund = loader.fund
        house = loader.house
        nextOrder = loader.largestOrderID + 1
        return loader.order
    }

    // MARK: - Committing changes

    /// Writes a change set in one transaction, then applies it to memory. Throws (changing nothing) when the
    /// write fails. Bill and trade ids are assigned inside the transaction, after the largest stored ones, so
    /// another process adding accounts to the same database (`pm account create`) never collides with them.
    func commit(_ pending: ChangeSet) throws {
        var changes = pending
        // The run shares the exchange's accounts while it computes; released before they are changed in place
        // (a second reference would copy the whole dictionary on the first change).
        defer { changes.funding?.release() }
        var funding = FundingPostings()
        let ids = try database.write { writer in
            for (uid, account) in changes.accounts {
                let old = changes.previous[uid]
                if old?.record != account.record { try writer.save(account.record) }
                for (ccy, balance) in account.balances where old?.balances[ccy] != balance {
                    try writer.store(BalanceRecord(uid: uid, ccy: ccy, cashBal: balance.description))
                }
                for (instId, position) in account.positions where old?.positions[instId] != position {
                    try writer.store(
                        PositionRecord(
                            uid: uid, instId: instId, pos: position.pos.description, avgPx: position.avgPx.description,
                            lever: account.leverage[instId]?.description ?? "", cTime: position.cTime, uTime: position.uTime))
                }
                for instId in (old?.positions.keys).map(Array.init) ?? [] where account.positions[instId] == nil {
                    try writer.deletePosition(uid: uid, instId: instId)
                }
                let currencies = Set(account.pendingInterest.keys).union(account.accruedInterest.keys)
                for ccy in currencies
                where old?.pendingInterest[ccy] != account.pendingInterest[ccy] || old?.accruedInterest[ccy] != account.accruedInterest[ccy]
                {
                    try writer.store(
                        InterestRecord(
                            uid: uid, ccy: ccy, pending: (account.pendingInterest[ccy] ?? .zero).description,
                            accrued: (account.accruedInterest[ccy] ?? .zero).description))
                }
                for (instId, lever) in account.leverage where old?.leverage[instId] != lever {
                    try writer.store(SettingRecord(key: "lever:\(uid):\(instId)", value: lever.description))
                }
                for (ccy, amount) in account.chosenSpotInUse where old?.chosenSpotInUse[ccy] != amount {
                    try writer.store(SettingRecord(key: "siu:\(uid):\(ccy)", value: amount.description))
                }
            }
            for key in changes.keys { try writer.insert(key) }
            for order in changes.orders { try writer.store(order) }
            try writer.insert(fills: changes.fills)
            try writer.insert(bills: changes.bills)
            if let run = changes.funding {
                funding = try run.write(to: writer)
                for (book, amount) in funding.houseTotals where !amount.isZero {
                    changes.house[book] = (changes.house[book] ?? house[book] ?? .zero) + amount
                }
            }
            for (book, balance) in changes.insuranceFund {
                try writer.store(InsuranceFundRecord(partition: book.partition, ccy: book.currency, balance: balance.description))
            }
            for (book, balance) in changes.house {
                try writer.store(HouseRecord(partition: book.partition, ccy: book.currency, balance: balance.description))
            }
            for (key, value) in changes.settings { try writer.store(SettingRecord(key: key, value: value)) }
        }
        let tradeBase = ids.firstTradeID
        for index in changes.fills.indices { changes.fills[index].tradeId = tradeBase + Int64(index) }
        // Bills are not numbered here: nothing reads them back from the change set (the feed publishes orders,
        // fills and accounts), and a funding tick's million would be copied to number them.
        // A funding run's balances first, in place and by the dictionary positions the run found its accounts
        // at: nothing has changed the dictionary since (it is the same storage once the run lets go of it), and
        // a funding tick posts to nearly every account, where copying each would cost more than the write.
        changes.funding?.release()
        for moved in funding.moved {
            assert(accounts.keys[moved.index] == moved.uid, "a funding run's account moved in the dictionary")
            accounts.values[moved.index].balances[moved.currency] = moved.balance
            refreshRiskBalance(moved.uid, slot: moved.slot, currency: moved.riskCurrency, amount: moved.riskBalance)
        }
        for (uid, account) in changes.accounts {
            accounts[uid] = account
            noteIndexes(uid, account)
        }
        // A few accounts (orders) are re-margined at once; many (a funding tick) are marked and re-margined by
        // the market move that follows, over both cores, or on demand.
        let immediately = changes.accounts.count <= 256
        for uid in changes.accounts.keys { refreshRisk(uid, computing: immediately) }
        for (book, balance) in changes.insuranceFund { insuranceFund[book] = balance }
        for currency in Set(changes.insuranceFund.keys.map(\.currency)) {
            let total = insuranceFund.reduce(ExactDecimal.zero) { $1.key.currency == currency ? $0 + $1.value : $0 }
            metrics.insuranceFund(currency, balance: total.doubleValue)
        }
        for (book, balance) in changes.house { house[book] = balance }
        for key in changes.keys { keys[key.apiKey] = key }
        publish(changes, funded: funding.moved)
    }

    /// Moves cash and records the bill (its `bal` is the balance after the move). Returns the amount moved,
    /// rounded to the currency's ledger scale (zero when nothing was posted), for the counterpart to mirror.
    @discardableResult
    func post(
        _ amount: ExactDecimal, _ currency: String, to account: inout AccountState, type: BillType, subType: String,
        instId: String = "", ordId: String = "", pnl: ExactDecimal = .zero, fee: ExactDecimal = .zero, sz: String = "",
        px: String = "", notes: String = "", always: Bool = false, changes: inout ChangeSet
    ) -> ExactDecimal {
        let amount = LedgerAmount(currency, amount).amount
        guard always || !amount.isZero || !fee.isZero || !pnl.isZero else { return .zero }
        let balance = (account.balances[currency] ?? .zero) + amount
        account.balances[currency] = balance
        changes.bills.append(
            BillRecord(
                billId: 0, uid: account.uid, ccy: currency, balChg: amount.description, bal: balance.description, type: type,
                subType: subType, instId: instId, ordId: ordId, pnl: pnl.description, fee: fee.description, sz: sz, px: px, notes: notes,
                ts: clock()))
        return amount
    }

    /// The fund's or the house's row that account `uid`'s movements in `currency` go to.
    func book(_ currency: String, for uid: String) -> Book { Book(partition: partitions.partition(of: uid), currency: currency) }

    /// Credits the insurance fund (the row of account `uid`'s partition); returns the amount credited (rounded to
    /// the ledger scale).
    @discardableResult
    func fund(_ amount: ExactDecimal, _ currency: String, for uid: String, changes: inout ChangeSet) -> ExactDecimal {
        let credited = LedgerAmount(currency, amount).amount
        let book = book(currency, for: uid)
        let current = changes.insuranceFund[book] ?? insuranceFund[book] ?? .zero
        changes.insuranceFund[book] = current + credited
        return credited
    }

    /// Books the house's side of a movement it is the counterparty of: `amount` received (negative: paid). The
    /// callers pass exactly the opposite of what they posted to the account and credited to the fund, so the
    /// house also takes the rounding of those amounts to the ledger scale and no value is created or lost.
    func houseBooks(_ amount: ExactDecimal, _ currency: String, for uid: String, changes: inout ChangeSet) {
        guard !amount.isZero else { return }
        let book = book(currency, for: uid)
        changes.house[book] = (changes.house[book] ?? house[book] ?? .zero) + amount
    }

    // MARK: - Accounts and keys

    /// Creates an account (classic mode, auto-borrow off) with one read+trade key and optional deposits.
    public func createAccount(
        label: String = "", deposits: [(String, ExactDecimal)] = []
    ) throws -> (uid: String, apiKey: String, secretKey: String, passphrase: String) {
        // A uid in a partition this exchange holds (every uid when it holds them all).
        var uid = String(100_000_000 + accounts.count + 1) + SecretBox.randomToken(bytes: 2)
        for _ in 0..<100_000 where !holds(uid) { uid = String(100_000_000 + accounts.count + 1) + SecretBox.randomToken(bytes: 4) }
        guard holds(uid) else { throw OKXError(.internalError, "no account id falls in this node's partitions") }
        let now = clock()
        var account = AccountState(
            record: AccountRecord(
                uid: uid, acctLv: AccountLevel.classic.rawValue, acknowledged: false, autoLoan: false, label: label, createdAt: now),
            balances: [:], positions: [:], openOrders: [:], pendingInterest: [:], accruedInterest: [:], leverage: [:])
        var changes = ChangeSet()
        let empty = account
        for (currency, amount) in deposits {
            guard amount.units > 0 else { throw OKXError.parameter("deposit amount \(amount) \(currency) must be positive") }
            guard (try? market.indexUSD(currency)) != nil else {
                throw OKXError.parameter("no index price for deposit currency \(currency)")
            }
            post(amount, currency, to: &account, type: .deposit, subType: BillSubType.deposit, notes: "sandbox deposit", changes: &changes)
        }
        changes.touch(account, previous: empty)
        changes.previous[uid] = nil
        let key = try makeKey(uid: uid, permissions: "read,trade", label: "default")
        // The account, its deposits and its key in one transaction: all of it exists, or none.
        changes.keys.append(key.record)
        try commit(changes)
        return (uid, key.record.apiKey, key.secret, key.passphrase)
    }

    /// Creates another key for an account.
    package func createKey(uid: String, permissions: String) throws -> (apiKey: String, secretKey: String, passphrase: String) {
        guard accounts[uid] != nil else { throw OKXError(.parameterError, "Parameter error: unknown uid \(uid)") }
        let normalized = permissions.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !normalized.isEmpty, normalized.allSatisfy({ ["read", "trade"].contains($0) }) else {
            throw OKXError.parameter("perm \(permissions) must be read, trade or read,trade")
        }
        let key = try makeKey(uid: uid, permissions: normalized.sorted().joined(separator: ","), label: "extra")
        try database.write { writer in try writer.insert(key.record) }
        keys[key.record.apiKey] = key.record
        return (key.record.apiKey, key.secret, key.passphrase)
    }

    func makeKey(uid: String, permissions: String, label: String) throws -> (record: APIKeyRecord, secret: String, passphrase: String) {
        let apiKey = UUID().uuidString.lowercased()
        let secret = SecretBox.randomToken(bytes: 16)
        let passphrase = "Pm" + SecretBox.randomToken(bytes: 6) + "!"
        let record = APIKeyRecord(
            apiKey: apiKey, uid: uid, secretCipher: try secrets.seal(secret), passphraseHash: SecretBox.hashPassphrase(passphrase),
            permissions: permissions, label: label, createdAt: clock())
        return (record, secret, passphrase)
    }

    /// The key record and its decrypted secret, or nil for an unknown key. A key created by another process
    /// (`pm account create` on the same database) is loaded, with its account, on first use.
    func credentials(apiKey: String) -> (record: APIKeyRecord, secret: String)? {
        if keys[apiKey] == nil, apiKey.count <= 64, let record = try? database.apiKey(apiKey) {
            if accounts[record.uid] == nil, holds(record.uid) { try? loadAccount(record.uid) }
            keys[apiKey] = record
        }
        guard let record = keys[apiKey], let secret = try? secrets.open(record.secretCipher) else { return nil }
        return (record, secret)
    }

    /// Loads one account written by another process.
    func loadAccount(_ uid: String) throws {
        var loaded: [String: AccountState] = [:]
        var unusedFund: [Book: ExactDecimal] = [:]
        var unusedHouse: [Book: ExactDecimal] = [:]
        var order: Int64 = 0
        _ = try Self.load(into: &loaded, fund: &unusedFund, house: &unusedHouse, nextOrderID: &order, only: uid, from: database)
        let after = Self.orderIDs(after: order - 1, partitions: partitions)
        if let account = loaded[uid] {
            accounts[uid] = account
            refreshRisk(uid)
        }
        nextOrderIDs = zip(nextOrderIDs, after).map { max($0, $1) }
    }

    /// Test money.
    package func deposit(uid: String, currency: String, amount: ExactDecimal) throws {
        guard var account = accounts[uid] else { throw OKXError.parameter("unknown uid \(uid)") }
        guard amount.units > 0 else { throw OKXError.parameter("amt \(amount) must be positive") }
        guard (try? market.indexUSD(currency)) != nil else { throw OKXError.parameter("ccy \(currency) has no index price") }
        let old = account
        var changes = ChangeSet()
        post(amount, currency, to: &account, type: .deposit, subType: BillSubType.deposit, notes: "sandbox deposit", changes: &changes)
        changes.touch(account, previous: old)
        try commit(changes)
    }

    /// Records the portfolio-margin risk acknowledgement.
    public func acknowledgePortfolioMargin(uid: String) throws {
        guard var account = accounts[uid] else { throw OKXError.parameter("unknown uid \(uid)") }
        let old = account
        account.record.acknowledged = true
        var changes = ChangeSet()
        changes.touch(account, previous: old)
        try commit(changes)
    }

    public var accountIDs: [String] { accounts.keys.sorted() }
    package func account(_ uid: String) -> AccountState? { accounts[uid] }
    /// The insurance fund per currency: the sum of its rows.
    package func insuranceFundBalances() -> [String: ExactDecimal] { insuranceFund.byCurrency }
    /// The house per currency: the sum of its rows.
    package func houseBalances() -> [String: ExactDecimal] { house.byCurrency }
}
