import ArgumentParser

@main
struct PM: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pm",
        abstract: "Portfolio margin engine: what-if margin for any crypto derivatives portfolio.",
        discussion: """
            Shipped data: the OKX-schema instrument catalog, market snapshots built from real Deribit chains \
            (calm-2025-12-30, the default, and selloff-2026-02-05), and the parameter sets okx-2025-01 (margin model \
            okx-pm, the default) and derive-pm2 (Derive PM2; see docs/models.md).
            """,
        subcommands: [
            Build.self, Compare.self, Precheck.self, Liquidate.self, Serve.self, Account.self, SandboxControl.self, Verify.self,
            Market.self,
            BacktestCommand.self,
        ])
}
