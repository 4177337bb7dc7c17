#!/usr/bin/env python3
"""The README's "Margin backtest" figures: pm backtest on every shipped crash path (replay) and on the long hourly
series (--windows), default parameters, one generated population; prints the tables as Markdown.

    scripts/backtest_figures.py --pm .build/release/pm --out DIR [--accounts 10000] [--windows-accounts N] [--seed 1]
    scripts/backtest_figures.py --tabulate DIR        # the tables again from the reports already in DIR

Each run writes DIR/<name>/backtest.json and index.html (pm backtest --report). Runtime is the report's measured
runtimeSeconds (pm's own clock: opening, replay, coverage); peak memory is the process's maximum resident set.
"""
import argparse
import glob
import json
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def runs_to_make(windows_accounts, accounts):
    """(name, arguments, accounts) for every shipped crash path and long series, in date order."""
    made = []
    for event in sorted(glob.glob(os.path.join(ROOT, "data", "crash_paths", "*", ""))):
        files = sorted(glob.glob(os.path.join(event, "*.csv")))
        name = os.path.basename(os.path.dirname(event))
        made.append((name, [arg for f in files for arg in ("--path", f)], accounts))
    for series in sorted(glob.glob(os.path.join(ROOT, "data", "long_series", "*_1h_*.csv"))):
        name = os.path.splitext(os.path.basename(series))[0]
        made.append((name, ["--windows", "--path", series], windows_accounts))
    return made


def run(pm, out, seed, made):
    for name, arguments, accounts in made:
        report = os.path.join(out, name)
        command = [pm, "backtest", *arguments, "--accounts", str(accounts), "--seed", str(seed), "--report", report,
                   "--format", "json", "--quiet"]
        print(f"{name}: {accounts} accounts …", file=sys.stderr, flush=True)
        started = time.monotonic()
        with open(os.devnull, "w") as sink:
            child = subprocess.Popen(command, stdout=sink)
            _, status, usage = os.wait4(child.pid, 0)
            child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            sys.exit(f"{name}: pm backtest failed ({child.returncode})")
        with open(os.path.join(report, "process.json"), "w") as handle:
            json.dump({"wallSeconds": round(time.monotonic() - started, 1), "peakMB": round(usage.ru_maxrss / 1024),
                       "loadAverage": os.getloadavg()}, handle)


def usd(value):
    return f"{value / 1e6:,.2f} M" if abs(value) >= 1e6 else f"{value:,.0f}"


def coverage_text(coverage):
    value = coverage["coverage"]
    return "" if value is None else f"{value * 100:.3f} %"


def binding_text(coverage, limit=3):
    parts = [f"{row['component']} {row['breaches']:,}" for row in coverage["byBinding"][:limit]]
    return ", ".join(parts)


def tabulate(out):
    reports = []
    for directory in sorted(glob.glob(os.path.join(out, "*", ""))):
        path = os.path.join(directory, "backtest.json")
        if os.path.exists(path):
            with open(path) as handle:
                report = json.load(handle)
            process = {}
            if os.path.exists(os.path.join(directory, "process.json")):
                with open(os.path.join(directory, "process.json")) as handle:
                    process = json.load(handle)
            reports.append((os.path.basename(os.path.dirname(directory)), report, process))
    print("| path | steps | accounts | runtime | worst 1 h fall | mode | observations | breaches | coverage | worst shortfall USD | binding (breaches) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, report, process in reports:
        falls = ", ".join(f"{m['coin']} {m['worstFall'] * 100:+.1f} %" for m in report["horizonMoves"])
        steps = report["path"]["steps"]
        memory = f", {process['peakMB']:,} MB" if process else ""
        for index, run in enumerate(report["runs"]):
            head = [name, f"{steps:,}" + (" windows" if report["mode"] == "windows" else ""),
                    f"{report['population']['accounts']:,}", f"{report['runtimeSeconds']:.0f} s{memory}", falls] if index == 0 else [""] * 5
            c = run["coverage"]
            print("| " + " | ".join(head + [run["mode"], f"{c['observations']:,}", f"{c['breaches']:,}", coverage_text(c),
                                              usd(c["worstShortfallUSD"]), binding_text(c)]) + " |")
    print()
    print("| path | mode | liquidated (partial / full) | margin calls | bad debt = fund draw USD | fund income USD | fund end USD | left ≤ trigger |")
    print("|---|---|---|---|---|---|---|---|")
    for name, report, _ in reports:
        if report["mode"] != "replay":
            continue
        for index, run in enumerate(report["runs"]):
            o = run["outcomes"]
            print("| " + " | ".join([name if index == 0 else "", run["mode"],
                                     f"{o['liquidatedAccounts']:,} ({o['partiallyLiquidated']:,} / {o['fullyLiquidated']:,})",
                                     f"{o['marginCalls']:,}", usd(o["badDebtUSD"]), usd(o["insuranceFundIncomeUSD"]),
                                     usd(o["insuranceFundEndUSD"]), str(o["accountStepsLeftAtOrBelowTrigger"])]) + " |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pm", default=os.path.join(ROOT, ".build", "release", "pm"))
    parser.add_argument("--out")
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--windows-accounts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tabulate", metavar="DIR")
    arguments = parser.parse_args()
    if arguments.tabulate:
        tabulate(arguments.tabulate)
        return
    if not arguments.out:
        parser.error("--out DIR (or --tabulate DIR)")
    run(arguments.pm, arguments.out, arguments.seed, runs_to_make(arguments.windows_accounts, arguments.accounts))
    tabulate(arguments.out)


if __name__ == "__main__":
    main()
