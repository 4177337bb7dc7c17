import Foundation
import MarginDefaults
import MarginEngine
import MarginTestSupport
import Testing

/// The shipped catalog, market snapshots and parameter set (issue: shipped data;
/// docs/methodology/01-instruments-market.md §1.1–1.2).
@Suite struct ShippedDataTests {
    // MARK: - Catalog coverage

    struct CoinExpectation: Sendable, CustomTestStringConvertible {
        var coin: String
        var tier: RiskTier
        /// BTC and ETH also have USDC-margined contracts and options.
        var hasUSDCAndOptions: Bool
        var testDescription: String { coin }
    }

    static let coins: [CoinExpectation] = [
        CoinExpectation(coin: "BTC", tier: .tier1, hasUSDCAndOptions: true),
        CoinExpectation(coin: "ETH", tier: .tier1, hasUSDCAndOptions: true),
        CoinExpectation(coin: "SOL", tier: .tier2, hasUSDCAndOptions: false),
        CoinExpectation(coin: "LTC", tier: .tier2, hasUSDCAndOptions: false),
        CoinExpectation(coin: "AVAX", tier: .tier3, hasUSDCAndOptions: false),
    ]

    @Test(
        "the catalog covers spot, linear and inverse perpetuals and futures (and USDC, options for tier 1)",
        arguments: coins)
    func catalogCoverage(_ expected: CoinExpectation) throws {
        let catalog = try ShippedData.catalog()
        let coin = expected.coin

        let spot = catalog.instrument("\(coin)-USDT")
        #expect(spot?.kind == .spot, "\(coin)-USDT spot")

        let linearPerp = catalog.instrument("\(coin)-USDT-SWAP")
        #expect(linearPerp?.kind == .perpetual, "\(coin)-USDT-SWAP")
        #expect(linearPerp?.margining == .linear)
        #expect(linearPerp?.settleCurrency == "USDT")

        let inversePerp = catalog.instrument("\(coin)-USD-SWAP")
        #expect(inversePerp?.kind == .perpetual, "\(coin)-USD-SWAP")
        #expect(inversePerp?.margining == .inverse)
        #expect(inversePerp?.settleCurrency == coin)

        let ofCoin = catalog.instruments.filter { $0.underlying == coin }
        let futures = ofCoin.filter { $0.kind == .future }
        #expect(
            futures.contains { $0.quoteCurrency == "USDT" && $0.margining == .linear && $0.settleCurrency == "USDT" },
            "\(coin): a USDT-margined future")
        #expect(
            futures.contains { $0.quoteCurrency == "USD" && $0.margining == .inverse && $0.settleCurrency == coin },
            "\(coin): an inverse future")

        let usdcPerp = catalog.instrument("\(coin)-USDC-SWAP")
        let usdcFutures = futures.filter { $0.quoteCurrency == "USDC" }
        let options = ofCoin.filter { $0.kind == .option }
        if expected.hasUSDCAndOptions {
            #expect(usdcPerp?.kind == .perpetual, "\(coin)-USDC-SWAP")
            #expect(usdcPerp?.margining == .linear)
            #expect(usdcPerp?.settleCurrency == "USDC")
            #expect(!usdcFutures.isEmpty, "\(coin): USDC-margined futures")
            #expect(usdcFutures.allSatisfy { $0.margining == .linear && $0.settleCurrency == "USDC" })
            #expect(!options.isEmpty, "\(coin): options")
            #expect(options.contains { $0.id.optionKind == .call } && options.contains { $0.id.optionKind == .put })
        }

        let parameters = try ShippedData.parameters()
        #expect(parameters.tier(of: coin) == expected.tier, "\(coin) tier")
    }

    // MARK: - Options are exactly the Deribit chains' instruments

    /// The repository root, from this file's path (`Tests/MarginDefaultsTests/ShippedDataTests.swift`).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

    /// Maps a Deribit option name to the OKX id: `BTC-24APR26-88000-C` → `BTC-USD-260424-88000-C`,
    /// `BTC-7FEB26-69000-P` → `BTC-USD-260207-69000-P`. Nil when the name does not have that form.
    static func okxOptionID(fromDeribit name: String) -> String? {
        let parts = name.split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, ["C", "P"].contains(parts[3]), !parts[0].isEmpty, !parts[2].isEmpty,
            parts[2].allSatisfy(\.isNumber)
        else { return nil }
        let date = Array(parts[1])
        guard date.count == 6 || date.count == 7 else { return nil }
        let dayDigits = String(date[0..<(date.count - 5)])
        let monthText = String(date[(date.count - 5)..<(date.count - 2)])
        let yearDigits = String(date[(date.count - 2)...])
        guard let day = Int(dayDigits), (1...31).contains(day), dayDigits.allSatisfy(\.isNumber),
            let monthIndex = months.firstIndex(of: monthText),
            yearDigits.allSatisfy(\.isNumber)
        else { return nil }
        let month = monthIndex + 1
        let yymmdd = yearDigits + (month < 10 ? "0" : "") + String(month) + (day < 10 ? "0" : "") + String(day)
        return "\(parts[0])-USD-\(yymmdd)-\(parts[2])-\(parts[3])"
    }

    /// Splits one CSV line into fields (RFC 4180 quoting).
    static func csvFields(_ line: Substring) -> [String] {
        var fields: [String] = []
        var field = ""
        var quoted = false
        var iterator = line.makeIterator()
        while let character = iterator.next() {
            if quoted {
                if character == "\"" {
                    quoted = false
                } else {
                    field.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "," {
                fields.append(field)
                field = ""
            } else {
                field.append(character)
            }
        }
        fields.append(field)
        return fields
    }

    /// The `instrument_name` column of every committed Deribit option chain CSV.
    static func deribitChainInstrumentNames() throws -> (files: [String], names: [String]) {
        let directory = repositoryRoot.appendingPathComponent("data/upstream/options")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("deribit_btc_eth_option_chain_") && $0.hasSuffix(".csv") }
            .sorted()
        var names: [String] = []
        for file in files {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            let lines = text.split(whereSeparator: \.isNewline).filter { !$0.isEmpty }
            guard let header = lines.first else { continue }
            let columns = csvFields(header)
            let column = try #require(columns.firstIndex(of: "instrument_name"), "\(file) has no instrument_name column")
            for line in lines.dropFirst() {
                let fields = csvFields(line)
                names.append(fields[column])
            }
        }
        return (files, names)
    }

    @Test func deribitNameMapping() {
        #expect(Self.okxOptionID(fromDeribit: "BTC-24APR26-88000-C") == "BTC-USD-260424-88000-C")
        #expect(Self.okxOptionID(fromDeribit: "BTC-7FEB26-69000-P") == "BTC-USD-260207-69000-P")
        #expect(Self.okxOptionID(fromDeribit: "ETH-25DEC26-2000-C") == "ETH-USD-261225-2000-C")
        #expect(Self.okxOptionID(fromDeribit: "BTC-PERPETUAL") == nil)
        #expect(Self.okxOptionID(fromDeribit: "BTC-27MAR26") == nil)
    }

    @Test("the catalog's options are exactly the instruments of the two Deribit chains")
    func optionsMatchDeribitChains() throws {
        let (files, names) = try Self.deribitChainInstrumentNames()
        #expect(files.count == 2, "expected two committed option chains, found \(files)")
        #expect(!names.isEmpty)

        var chainIDs = Set<String>()
        var unmapped: [String] = []
        for name in names {
            if let id = Self.okxOptionID(fromDeribit: name) { chainIDs.insert(id) } else { unmapped.append(name) }
        }
        #expect(unmapped.isEmpty, "Deribit names that did not map: \(unmapped.prefix(10))")

        let catalog = try ShippedData.catalog()
        let catalogOptions = Set(catalog.instruments.filter { $0.kind == .option }.map(\.id.rawValue))
        let missing = chainIDs.subtracting(catalogOptions).sorted()
        let extra = catalogOptions.subtracting(chainIDs).sorted()
        #expect(missing.isEmpty, "\(missing.count) chain instruments missing from the catalog, e.g. \(missing.prefix(5))")
        #expect(extra.isEmpty, "\(extra.count) catalog options not in either chain, e.g. \(extra.prefix(5))")
        #expect(catalogOptions.count == chainIDs.count)

        // The example.
        #expect(names.contains("BTC-24APR26-88000-C"))
        let example = try #require(Self.okxOptionID(fromDeribit: "BTC-24APR26-88000-C"))
        #expect(example == "BTC-USD-260424-88000-C")
        let instrument = try #require(catalog.instrument(example))
        #expect(instrument.kind == .option)
        #expect(instrument.id.strikeUSD == 88000)
        #expect(instrument.id.optionKind == .call)
        #expect(instrument.expiry == UnixMillis.utc(year: 2026, month: 4, day: 24, hour: 8))
    }

    // MARK: - Market snapshots

    struct SnapshotExpectation: Sendable, CustomTestStringConvertible {
        var name: String
        var iso8601: String
        var testDescription: String { name }
    }

    static let snapshots: [SnapshotExpectation] = [
        SnapshotExpectation(name: "calm-2025-12-30", iso8601: "2025-12-30T17:31:15.944Z"),
        SnapshotExpectation(name: "selloff-2026-02-05", iso8601: "2026-02-05T21:29:37.885Z"),
    ]

    @Test("the shipped snapshot names are the two expected ones") func snapshotNames() {
        #expect(ShippedData.marketNames.sorted() == Self.snapshots.map(\.name).sorted())
        #expect(ShippedData.marketNames.contains(ShippedData.defaultMarketName))
    }

    @Test("a shipped snapshot loads, is consistent with the catalog and prices every option", arguments: snapshots)
    func snapshot(_ expected: SnapshotExpectation) throws {
        let market = try ShippedData.market(named: expected.name)
        let catalog = try ShippedData.catalog()
        #expect(market.valuationTime.iso8601 == expected.iso8601)

        let notInCatalog = market.marks.keys.filter { catalog.instrument($0) == nil }.sorted()
        #expect(notInCatalog.isEmpty, "marks not in the catalog: \(notInCatalog.prefix(10))")

        var optionCount = 0
        var failures: [String] = []
        for id in market.marks.keys.sorted() {
            guard let instrument = catalog.instrument(id), instrument.kind == .option else { continue }
            optionCount += 1
            guard let expiry = instrument.expiry, expiry > market.valuationTime else {
                failures.append("\(id): expiry not after ts")
                continue
            }
            do {
                let resolved = try market.market(for: instrument, path: id)
                guard let option = resolved.option else {
                    failures.append("\(id): no option market")
                    continue
                }
                if !(option.forwardUSD.isFinite && option.forwardUSD > 0) { failures.append("\(id): forward \(option.forwardUSD)") }
                if !(option.volatility.isFinite && option.volatility > 0) { failures.append("\(id): volatility \(option.volatility)") }
                if !(resolved.markPrice.isFinite && resolved.markPrice >= 0) { failures.append("\(id): markPrice \(resolved.markPrice)") }
            } catch {
                failures.append("\(id): \(error)")
            }
        }
        #expect(optionCount > 0, "\(expected.name) holds option marks")
        #expect(failures.isEmpty, "\(failures.count) options failed, e.g. \(failures.prefix(10))")

        #expect(market.source.contains("Deribit"))
        for key in ["SOL-USD", "LTC-USD", "AVAX-USD", "USDT-USD", "USDC-USD"] {
            #expect(market.representative.contains(key), "representative list of \(expected.name) lacks \(key)")
        }
    }

    // MARK: - Unknown names

    @Test func unknownShippedNamesThrow() {
        #expect(throws: ShippedData.LoadError.self) { try ShippedData.market(named: "nope") }
        #expect(throws: ShippedData.LoadError.self) { try ShippedData.parameters(id: "nope") }
    }
}
