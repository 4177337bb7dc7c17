import Foundation
import MarginEngine
import MarketFeed
import MarketFeedHTTP

/// The first market of `pm serve --market-mode follow URL`: the upstream's catalog (or the given one) and a
/// snapshot of its prices, assembled like `pm market snapshot`. Without both there is nothing to serve, so
/// an upstream that does not answer ends the command.
func followedMarket(
    url: String, coins: Set<String>?, catalog given: InstrumentCatalog?, timeout: Double
) async -> (
    client: OKXClient, catalog: InstrumentCatalog, market: MarketSnapshot
) {
    let client: OKXClient
    do { client = try OKXClient(baseURL: url, timeoutSeconds: timeout) } catch { fail("--market-mode follow \(error.description)") }
    let fetcher = MarketFetcher(client: client, progress: ProgressLine().show)
    let fetched: UpstreamAnswers
    if let given {
        fetched = await fetcher.fetchPrices(for: given)
    } else {
        fetched = await fetcher.fetchAll(coins: coins, fundingRates: false)
    }
    ProgressLine().finish()
    let assembled = MarketAssembler.assemble(
        fetched, coins: coins, source: "OKX v5 REST at \(client.baseURL), followed by pm serve", knownCatalog: given)
    if let unanswered = assembled.problems.first(where: \.unanswered) {
        fail("--market-mode follow \(client.baseURL): \(unanswered.description)")
    }
    guard assembled.isUsable, let snapshot = assembled.snapshot else {
        reportProblems(assembled.problems)
        fail("--market-mode follow \(client.baseURL): nothing usable (the reasons are above)")
    }
    if !assembled.problems.isEmpty {
        FileHandle.standardError.write(
            Data(
                "pm: following \(client.baseURL): \(assembled.problems.count) instruments or fields left out (pm market snapshot lists them)\n"
                    .utf8))
    }
    return (client, assembled.catalog, snapshot)
}
