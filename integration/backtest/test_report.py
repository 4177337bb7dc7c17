"""pm backtest from the outside: its HTML report in headless Chromium, checked against the report's own JSON;
determinism across processes; the refusal of a malformed path. `integration/backtest/run` sets PM_BIN and WORK.
"""
import json
import os
import re
import subprocess

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

PM = os.environ["PM_BIN"]
WORK = os.environ["WORK"]
SHOTS = os.environ.get("SCREENSHOTS", "")
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EVENT = os.path.join(ROOT, "data", "crash_paths", "2020-03-12_black_thursday")
PATHS = ["--path", os.path.join(EVENT, "btc_usdt_binance_spot_1h.csv"), "--path", os.path.join(EVENT, "eth_usdt_binance_spot_1h.csv")]
ACCOUNTS = ["--accounts", "80", "--seed", "3"]


def backtest(*arguments):
    return subprocess.run([PM, "backtest", *arguments], capture_output=True, text=True, timeout=900)


def numbers(report):
    """The report without its one run-dependent field (the measured runtime)."""
    report = dict(report)
    report.pop("runtimeSeconds")
    return report


@pytest.fixture(scope="module")
def report():
    directory = os.path.join(WORK, "report")
    done = backtest(*PATHS, *ACCOUNTS, "--report", directory, "--format", "json")
    assert done.returncode == 0, done.stderr
    # Not a terminal: no progress on stderr.
    assert done.stderr == "", done.stderr
    printed = json.loads(done.stdout)
    with open(os.path.join(directory, "backtest.json")) as handle:
        written = json.load(handle)
    assert numbers(printed) == numbers(written)
    return {"dir": directory, "json": written, "html": open(os.path.join(directory, "index.html")).read()}


@pytest.fixture(scope="module")
def driver():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1366,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    drv = webdriver.Chrome(service=Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")), options=options)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def page(report, driver):
    driver.get("file://" + os.path.join(report["dir"], "index.html"))
    return driver


def shot(driver, name):
    if not SHOTS:
        return
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1366, min(height + 120, 9000))
    driver.save_screenshot(os.path.join(SHOTS, name + ".png"))
    driver.set_window_size(1366, 900)


def cells(driver, table_id):
    rows = driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")
    return [[cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def text(value, key=""):
    """A JSON value as the page prints it: USD with separators and cents, coverage as a percentage."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if key.endswith("USD"):
            return f"{value:,.2f}"
        if key in ("coverage", "imrCoverage"):
            return f"{value * 100:.4f} %"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return ""
    return str(value) if not isinstance(value, float) else repr(value)


def test_the_page_is_self_contained(report, page):
    html = report["html"]
    # Nothing to fetch: no external script, style, image, font or frame, and a policy that forbids any.
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:)?//""", html)
    assert "@import" not in html and "url(" not in html.replace("data:", "")
    assert "default-src 'none'" in html
    # The browser loaded the file and nothing else.
    assert page.execute_script("return performance.getEntriesByType('resource').length") == 0
    errors = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    shot(page, "backtest-report")


def test_charts_share_one_time_axis(report, page):
    series = report["json"]["series"]
    assert page.find_element(By.TAG_NAME, "body").get_attribute("data-charts") == "4"
    for coin in report["json"]["path"]["coins"]:
        d = page.find_element(By.CSS_SELECTOR, f"#chart-price path[data-series='{coin}']").get_attribute("d")
        assert d.count("L") + d.count("M") == series["points"], coin
    median = page.find_element(By.CSS_SELECTOR, "#chart-ratio path[data-series='median']").get_attribute("d")
    fund = page.find_element(By.CSS_SELECTOR, "#chart-liquidations path[data-series='fund']").get_attribute("d")
    assert median.startswith("M") and fund.startswith("M")
    bars = page.find_elements(By.CSS_SELECTOR, "#chart-liquidations rect")
    assert len(bars) == sum(1 for value in series["runs"][0]["liquidations"] if value > 0)
    # One cursor: hovering a chart names the instant and every chart's values there.
    chart = page.find_element(By.ID, "chart-breaches")
    ActionChains(page).move_to_element(chart).perform()
    hover = page.find_element(By.ID, "hover").text
    assert any(time in hover for time in series["time"]), hover
    assert "breaches" in hover and "liquidations" in hover


def test_choosing_a_run_redraws_its_series(report, page):
    median = lambda: page.find_element(By.CSS_SELECTOR, "#chart-ratio path[data-series='median']").get_attribute("d")
    bars = lambda: len(page.find_elements(By.CSS_SELECTOR, "#chart-breaches rect"))
    select = Select(page.find_element(By.ID, "run-select"))
    labels = [option.text for option in select.options]
    assert labels == [run["label"] for run in report["json"]["runs"]]
    first = (median(), bars())
    select.select_by_index(1)
    second = (median(), bars())
    assert second != first
    assert second[1] == sum(1 for value in report["json"]["series"]["runs"][1]["breaches"] if value > 0)
    select.select_by_index(0)
    assert (median(), bars()) == first


def test_tables_hold_the_json_numbers(report, page):
    runs = report["json"]["runs"]
    outcomes = cells(page, "outcomes-table")
    assert len(outcomes) == len(runs)
    for row, run in zip(outcomes, runs):
        keys = ["liquidatedAccounts", "partiallyLiquidated", "fullyLiquidated", "marginCalls", "badDebtUSD", "insuranceFundDrawUSD",
                "insuranceFundIncomeUSD", "insuranceFundEndUSD", "insuranceFundLowestUSD", "lowestMarginRatio"]
        assert row == [run["label"], str(run["accountsOpened"])] + [text(run["outcomes"][key], key) for key in keys]
    coverage = cells(page, "coverage-table")
    for row, run in zip(coverage, runs):
        keys = ["observations", "breaches", "coverage", "meets99", "meets99_7", "imrCoverage", "worstShortfallUSD", "totalShortfallUSD",
                "skippedWindows"]
        assert row == [run["label"]] + [text(run["coverage"][key], key) for key in keys]
    for index, run in enumerate(runs):
        worst = run["coverage"]["worst"]
        if not worst:
            continue
        first = cells(page, f"worst-{index}")[0]
        assert first == [text(worst[0][key], key) for key in ("account", "kind", "pathStart", "lossUSD", "mmrUSD", "shortfallUSD", "binding")]
        binding = cells(page, f"binding-{index}")
        assert sum(int(count) for _, count in binding) == run["coverage"]["breaches"]


def test_a_second_process_gives_the_same_numbers(report):
    again = backtest(*PATHS, *ACCOUNTS, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert numbers(json.loads(again.stdout)) == numbers(report["json"])


def test_a_malformed_path_is_refused_at_its_line_and_column():
    bad = os.path.join(WORK, "btc_bad_1h.csv")
    with open(os.path.join(EVENT, "btc_usdt_binance_spot_1h.csv")) as source:
        lines = source.read().splitlines()
    cells_ = lines[40].split(",")
    cells_[4] = "12x34"
    lines[40] = ",".join(cells_)
    with open(bad, "w") as target:
        target.write("\n".join(lines) + "\n")
    done = backtest("--path", bad, *ACCOUNTS, "--format", "json")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.strip() == f'pm: error: {bad}:41:5: close "12x34" is not a finite price above zero'
