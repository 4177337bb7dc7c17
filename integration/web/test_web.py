"""Selenium tests of the web Position Builder (served by `pm serve` at PM_URL).

The tests run in file order and share one browser: they build a hedged BTC portfolio by clicking and
typing, then check it against the public position-builder API. `integration/web/run` starts the server and
sets PM_URL, PM_DB and (optionally) SCREENSHOTS.
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE = os.environ.get("PM_URL", "http://127.0.0.1:18100").rstrip("/")
SHOTS = os.environ.get("SCREENSHOTS", "")
DESKTOP = (1366, 900)
PHONE = (390, 844)
_shot_no = [0]


# ---------- helpers ----------
def http(method, path, body=None, headers=None):
    data = None if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    req = urllib.request.Request(BASE + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return res.status, json.load(res)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def api(endpoint, body):
    status, answer = http("POST", "/api/v5/public/" + endpoint, body)
    assert answer["code"] == "0", answer
    return answer["data"][0]


def instruments(inst_type, uly):
    status, answer = http("GET", f"/api/v5/public/instruments?instType={inst_type}&uly={uly}")
    assert answer["code"] == "0", answer
    return answer["data"]


def shot(driver, name, full=True):
    """Saves a screenshot of the whole page (and the viewport when full is False) when SCREENSHOTS is set."""
    if not SHOTS:
        return
    os.makedirs(SHOTS, exist_ok=True)
    _shot_no[0] += 1
    path = os.path.join(SHOTS, f"{_shot_no[0]:02d}-{name}.png")
    if not full:
        driver.save_screenshot(path)
        return
    # Whole page: grow the window to the page's height, take the shot, restore the window and scroll.
    size = driver.get_window_size()
    scroll = driver.execute_script("return window.scrollY")
    extra = size["height"] - driver.execute_script("return window.innerHeight")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(size["width"], min(height + extra, 8000))
    try:
        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(path)
    finally:
        driver.set_window_size(size["width"], size["height"])
        driver.execute_script("window.scrollTo(0, arguments[0])", scroll)


def wait(driver, condition, timeout=15, message=""):
    # The page re-renders results as it recomputes: an element read mid-render is retried, not an error.
    return WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: condition(d), message)


def css(driver, selector):
    return driver.find_element(By.CSS_SELECTOR, selector)


def ready(driver):
    return driver.execute_script("return document.body.dataset.state") == "ready"


def total_mmr(driver):
    return css(driver, "#total-mmr").get_attribute("data-value")


def wait_total_mmr(driver, expected, message):
    try:
        wait(driver, lambda d: ready(d) and total_mmr(d) == expected)
    except Exception:
        pytest.fail(f"{message}: page shows {total_mmr(driver)!r} (state {driver.execute_script('return document.body.dataset.state')}), API says {expected!r}")


def click(driver, element):
    """Scrolls `element` to the middle of the window (clear of the sticky bar) and clicks it."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def type_into(element, text):
    element.clear()
    element.send_keys(text)


def last_row(driver, table):
    return driver.find_elements(By.CSS_SELECTOR, f"#{table} tr")[-1]


def error_next_to(element):
    """The .field-error shown in the same table cell as an input (None when there is none)."""
    found = element.find_elements(By.XPATH, "./ancestor::td[1]//div[contains(concat(' ', @class, ' '), ' field-error ')]")
    return found[0] if found else None


def page_not_blank(driver):
    assert css(driver, "#summary").is_displayed()
    assert css(driver, "#total-mmr").text not in ("", "—")
    assert len(driver.execute_script("return document.body.innerText")) > 500


# ---------- fixtures ----------
@pytest.fixture(scope="module")
def driver():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={DESKTOP[0]},{DESKTOP[1]}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    drv = webdriver.Chrome(service=service, options=options)
    drv.set_window_size(*DESKTOP)
    yield drv
    drv.quit()


@pytest.fixture(scope="module")
def portfolio():
    """The instruments the tests pick, chosen from the catalog the server serves."""
    status, index = http("GET", "/api/v5/market/index-tickers?instId=BTC-USD")
    btc = float(index["data"][0]["idxPx"])
    ts = int(index["data"][0]["ts"])
    options = [o for o in instruments("OPTION", "BTC-USD") if int(o["expTime"]) - ts > 25 * 86400_000]
    first_exp = min(int(o["expTime"]) for o in options)
    call = min((o for o in options if int(o["expTime"]) == first_exp and o["optType"] == "C"), key=lambda o: abs(float(o["stk"]) - btc))
    futures = sorted(instruments("FUTURES", "BTC-USD"), key=lambda f: int(f["expTime"]))
    future = futures[min(2, len(futures) - 1)]
    return {"option": call, "future": future}


# ---------- tests ----------
def test_root_serves_the_page_and_its_modules():
    """GET / serves the page, whose script is the ES module /web/main.js; every module it imports, directly or
    not, is served with a JavaScript MIME type (a browser refuses a module served as anything else)."""
    with urllib.request.urlopen(urllib.request.Request(BASE + "/"), timeout=10) as res:
        text = res.read().decode()
    assert "Position Builder" in text and '<script type="module" src="/web/main.js"></script>' in text
    pending, served = ["/web/main.js"], set()
    while pending:
        path = pending.pop()
        if path in served:
            continue
        served.add(path)
        with urllib.request.urlopen(urllib.request.Request(BASE + path), timeout=10) as res:
            assert res.headers.get_content_type() == "text/javascript", (path, res.headers["Content-Type"])
            source = res.read().decode()
        pending += ["/web/" + name for name in re.findall(r"^import \{[^}]*\} from '\./([\w-]+\.js)';$", source, re.M)]
    assert len(served) >= 10, served


def test_page_loads_catalog(driver):
    driver.get(BASE + "/index.html")
    wait(driver, lambda d: d.execute_script("return document.body.dataset.state") in ("ready", "error"), message="page never finished loading")
    assert ready(driver), css(driver, "#global-error").text
    assert css(driver, "#status").text == "Up to date"
    assert "market" in css(driver, "#market-info").text
    shot(driver, "desktop-empty")


def test_build_hedged_portfolio_matches_api(driver, portfolio):
    option, future = portfolio["option"], portfolio["future"]
    # 1. Short 100 BTC-USDT-SWAP: the default picker is perpetual / BTC / USDT-margined.
    css(driver, "#add-position").click()
    row = last_row(driver, "positions-body")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-kind")).select_by_value("perpetual")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-coin")).select_by_value("BTC")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-quote")).select_by_value("USDT")
    type_into(row.find_element(By.CSS_SELECTOR, ".pos-size"), "-100")
    assert row.find_element(By.CSS_SELECTOR, ".inst-id").text == "BTC-USDT-SWAP"

    # 2. Long 50 BTC calls: option -> BTC -> USD -> expiry -> strike -> call.
    css(driver, "#add-position").click()
    row = last_row(driver, "positions-body")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-kind")).select_by_value("option")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-coin")).select_by_value("BTC")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-quote")).select_by_value("USD")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-exp")).select_by_value(option["instId"].split("-")[2])
    Select(row.find_element(By.CSS_SELECTOR, ".pick-strike")).select_by_value(option["stk"])
    Select(row.find_element(By.CSS_SELECTOR, ".pick-type")).select_by_value("C")
    type_into(row.find_element(By.CSS_SELECTOR, ".pos-size"), "50")
    assert row.find_element(By.CSS_SELECTOR, ".inst-id").text == option["instId"]

    # 3. Long 20 coin-margined BTC futures with an entry price.
    css(driver, "#add-position").click()
    row = last_row(driver, "positions-body")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-kind")).select_by_value("future")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-coin")).select_by_value("BTC")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-quote")).select_by_value("USD")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-exp")).select_by_value(future["instId"].split("-")[2])
    assert not row.find_element(By.CSS_SELECTOR, ".pick-strike").is_displayed()
    type_into(row.find_element(By.CSS_SELECTOR, ".pos-size"), "20")
    type_into(row.find_element(By.CSS_SELECTOR, ".pos-px"), "90000")
    assert row.find_element(By.CSS_SELECTOR, ".inst-id").text == future["instId"]

    # Balances: 1 BTC and 10,000 USDT.
    for ccy, amt in (("BTC", "1"), ("USDT", "10000")):
        css(driver, "#add-balance").click()
        row = last_row(driver, "balances-body")
        type_into(row.find_element(By.CSS_SELECTOR, ".bal-ccy"), ccy)
        type_into(row.find_element(By.CSS_SELECTOR, ".bal-amt"), amt)

    body = {
        "acctLv": "4", "greeksType": "BS",
        "simPos": [
            {"instId": "BTC-USDT-SWAP", "pos": "-100"},
            {"instId": option["instId"], "pos": "50"},
            {"instId": future["instId"], "pos": "20", "avgPx": "90000"},
        ],
        "simAsset": [{"ccy": "BTC", "amt": "1"}, {"ccy": "USDT", "amt": "10000"}],
    }
    expected = api("position-builder", body)
    wait_total_mmr(driver, expected["totalMmr"], "displayed total MMR differs from the API's")
    assert css(driver, "#total-mmr").text == f"{float(expected['totalMmr']):,.2f}"
    assert css(driver, "#total-imr").get_attribute("data-value") == expected["totalImr"]
    assert json.loads(css(driver, "#request-json").get_attribute("textContent")) == body

    # PM versus classic side by side, from the compare endpoint.
    compare = api("position-builder-compare", body)
    assert css(driver, "#cmp-pm-mmr").get_attribute("data-value") == compare["portfolioMargin"]["totalMmr"]
    assert css(driver, "#cmp-classic-mmr").get_attribute("data-value") == compare["classic"]["totalMmr"]
    assert css(driver, "#cmp-diff-mmr").get_attribute("data-value") == compare["difference"]["totalMmr"]

    # The graph: an SVG with both curves and the 100 % liquidation level.
    svg = css(driver, "#graph-svg")
    assert svg.find_elements(By.CSS_SELECTOR, "path.l-mmr") and svg.find_elements(By.CSS_SELECTOR, "path.l-ratio")
    assert svg.find_elements(By.ID, "liq-line")
    assert svg.find_element(By.CSS_SELECTOR, ".liq-label").text == "100 % = liquidation"
    driver.execute_script("window.scrollTo(0, 0)")
    shot(driver, "desktop-hedged-pm")


def test_risk_unit_card_and_heat_map(driver):
    body = json.loads(css(driver, "#request-json").get_attribute("textContent"))
    unit = next(u for u in api("position-builder", body)["riskUnitData"] if u["riskUnit"] == "BTC")
    card = css(driver, '.unit-card[data-unit="BTC"]')
    assert card.find_element(By.CSS_SELECTOR, ".unit-mmr").get_attribute("data-value") == unit["mmr"]
    bars = card.find_elements(By.CSS_SELECTOR, ".mr-bar")
    assert [b.get_attribute("data-mr") for b in bars] == [f"MR{i}" for i in range(1, 10)]
    dominant = card.find_elements(By.CSS_SELECTOR, ".mr-bar.dominant")
    assert len(dominant) == 1 and dominant[0].get_attribute("data-mr") == unit["dominant"]
    liq = card.find_element(By.CSS_SELECTOR, ".liq-moves")
    assert liq.get_attribute("data-down") == unit["liqMoves"]["down"] and liq.get_attribute("data-up") == unit["liqMoves"]["up"]

    heat = css(driver, '.heatmap[data-unit="BTC"]')
    cells = heat.find_elements(By.CSS_SELECTOR, ".heat-cell")
    assert len(cells) == 21
    worst = heat.find_elements(By.CSS_SELECTOR, ".heat-cell.worst")
    assert len(worst) == 1
    assert worst[0].get_attribute("data-pnl") == unit["mr1FinalResult"]["pnl"]
    assert float(worst[0].get_attribute("data-spot")) == float(unit["mr1FinalResult"]["spotShock"])
    # Every cell carries the API's P&L, and the worst cell is visibly outlined.
    for cell in cells:
        assert cell.get_attribute("data-pnl") == unit["mr1Scenarios"][cell.get_attribute("data-vol")][cell.get_attribute("data-spot")]
    outline = driver.execute_script("const s = getComputedStyle(arguments[0]); return [s.outlineStyle, parseFloat(s.outlineWidth)]", worst[0])
    assert outline[0] != "none" and outline[1] >= 2

    # Attribution: every position plus the spot in use, with the API's marginal MMR.
    rows = {r.get_attribute("data-inst"): r for r in css(driver, "#attribution").find_elements(By.CSS_SELECTOR, "tr[data-inst]")}
    for p in unit["portfolios"]:
        assert p["instId"] in rows, p["instId"]
        assert rows[p["instId"]].find_element(By.CSS_SELECTOR, ".marginal").get_attribute("data-value") == p["marginalMmr"]
    assert any(p["instType"] == "SPOT" for p in unit["portfolios"]), "the hedged portfolio should use spot"
    assert css(driver, "#attribution").find_elements(By.CSS_SELECTOR, "tr.spot-row")
    driver.execute_script("arguments[0].scrollIntoView()", card)
    shot(driver, "desktop-unit-card", full=False)


def test_spot_row_is_sent_as_a_balance(driver):
    """The picker offers spot; a spot row is margined as a balance of its coin (simAsset)."""
    before = json.loads(css(driver, "#request-json").get_attribute("textContent"))
    click(driver, css(driver, "#add-position"))
    row = last_row(driver, "positions-body")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-kind")).select_by_value("spot")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-coin")).select_by_value("ETH")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-quote")).select_by_value("USDT")
    assert row.find_element(By.CSS_SELECTOR, ".inst-id").text == "ETH-USDT"
    type_into(row.find_element(By.CSS_SELECTOR, ".pos-size"), "-2")
    body = dict(before, simAsset=before["simAsset"] + [{"ccy": "ETH", "amt": "-2"}])
    expected = api("position-builder", body)
    wait_total_mmr(driver, expected["totalMmr"], "a borrowed-ETH spot row is not margined as a balance")
    assert json.loads(css(driver, "#request-json").get_attribute("textContent")) == body

    # Spot BTC while a BTC balance is listed: one total, asked for next to the size.
    Select(row.find_element(By.CSS_SELECTOR, ".pick-coin")).select_by_value("BTC")
    error = wait(driver, lambda d: (error_next_to(row.find_element(By.CSS_SELECTOR, ".pos-size")) or None) and
                 error_next_to(row.find_element(By.CSS_SELECTOR, ".pos-size")).text)
    assert "BTC" in error
    click(driver, row.find_element(By.CSS_SELECTOR, ".remove-row"))
    wait(driver, lambda d: ready(d) and json.loads(css(d, "#request-json").get_attribute("textContent")) == before)


def test_invalid_size_shows_error_next_to_field(driver):
    good = total_mmr(driver)
    size = css(driver, "#positions-body tr.pos-row .pos-size")
    for text, words in (("abc", "not a number"), ("0", "zero")):
        type_into(size, text)
        wait(driver, lambda d: error_next_to(size) is not None and words in error_next_to(size).text,
             message=f"no error next to the size field for {text!r}")
        error = error_next_to(size)
        assert error.is_displayed() and words in error.text, error.text
        assert size.get_attribute("aria-invalid") == "true"
        assert size.get_attribute("aria-describedby") == error.get_attribute("id")
        # The last good results stay visible, marked stale.
        wait(driver, lambda d: css(d, "#results").get_attribute("data-state") == "stale")
        assert css(driver, "#stale-banner").is_displayed()
        assert total_mmr(driver) == good
        page_not_blank(driver)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", size)
        shot(driver, f"desktop-invalid-size-{'zero' if text == '0' else text}", full=False)
    type_into(size, "-100")
    wait_total_mmr(driver, good, "results did not come back after fixing the size")
    assert error_next_to(size) is None
    assert not css(driver, "#stale-banner").is_displayed()


def test_server_error_names_the_field(driver):
    good = total_mmr(driver)
    css(driver, "#add-balance").click()
    row = last_row(driver, "balances-body")
    ccy = row.find_element(By.CSS_SELECTOR, ".bal-ccy")
    type_into(ccy, "XYZ")
    type_into(row.find_element(By.CSS_SELECTOR, ".bal-amt"), "5")
    wait(driver, lambda d: error_next_to(ccy) is not None, message="the server's message is not shown next to the currency")
    body = json.loads(css(driver, "#request-json").get_attribute("textContent"))
    assert body["simAsset"][2] == {"ccy": "XYZ", "amt": "5"}
    status, answer = http("POST", "/api/v5/public/position-builder", body)
    assert answer["code"] != "0" and answer["msg"].startswith("Parameter error: simAsset[2].ccy"), answer
    assert error_next_to(ccy).text.endswith(answer["msg"])
    assert css(driver, "#results").get_attribute("data-state") == "stale"
    assert total_mmr(driver) == good
    page_not_blank(driver)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", ccy)
    shot(driver, "desktop-server-error", full=False)
    row.find_element(By.CSS_SELECTOR, ".remove-row").click()
    wait_total_mmr(driver, good, "results did not come back after removing the bad balance")


def no_overflow(driver):
    return driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")


def test_phone_layout(driver):
    driver.set_window_size(*PHONE)
    emulated = False
    try:
        wait(driver, lambda d: d.execute_script("return window.innerWidth") <= PHONE[0])
        wait(driver, no_overflow, timeout=5, message="horizontal page overflow in a 390×844 window")
        # Then a true 390×844 phone viewport (touch, overlay scrollbars, the viewport meta tag) for the rest.
        try:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": PHONE[0], "height": PHONE[1], "deviceScaleFactor": 2, "mobile": True})
            emulated = True
        except Exception:
            pass
        wait(driver, lambda d: d.execute_script("return window.innerWidth") == PHONE[0] or not emulated)
        wait(driver, no_overflow, timeout=5, message="horizontal page overflow on a 390×844 phone")
        summary = css(driver, "#summary")
        driver.execute_script("arguments[0].scrollIntoView()", summary)
        assert summary.is_displayed()
        rect = driver.execute_script("const r = arguments[0].getBoundingClientRect(); return [r.left, r.right, window.innerWidth]", summary)
        assert rect[0] >= 0 and rect[1] <= rect[2]
        assert css(driver, "#mini-summary").is_displayed()  # the sticky bar keeps MMR in view while editing
        # Cards stack: the heat map's card sits below the summary, not beside it.
        card = css(driver, ".unit-card")
        assert driver.execute_script("return arguments[0].getBoundingClientRect().top > arguments[1].getBoundingClientRect().bottom", card, summary)
        driver.execute_script("window.scrollTo(0, 0)")
        shot(driver, "phone-top", full=False)
        driver.execute_script("arguments[0].scrollIntoView()", summary)
        shot(driver, "phone-summary", full=False)
        driver.execute_script("arguments[0].scrollIntoView()", card)
        shot(driver, "phone-unit-card", full=False)
        shot(driver, "phone-full")
        # Invalid input on a phone: the error still sits next to the field and nothing overflows.
        size = css(driver, "#positions-body tr.pos-row .pos-size")
        type_into(size, "abc")
        wait(driver, lambda d: error_next_to(size) is not None)
        assert no_overflow(driver)
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", size)
        shot(driver, "phone-invalid-size", full=False)
        good = css(driver, "#cmp-pm-mmr").get_attribute("data-value")
        type_into(size, "-100")
        wait_total_mmr(driver, good, "results did not come back on the phone")
    finally:
        if emulated:
            driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.set_window_size(*DESKTOP)


def test_switch_to_classic(driver):
    body = json.loads(css(driver, "#request-json").get_attribute("textContent"))
    pm = api("position-builder", body)["totalMmr"]
    classic = api("position-builder", {**body, "acctLv": "3"})
    assert classic["totalMmr"] != pm
    driver.find_element(By.CSS_SELECTOR, 'label[for="mode-classic"]').click()
    wait_total_mmr(driver, classic["totalMmr"], "displayed MMR is not the classic figure")
    assert css(driver, "#summary-mode").get_attribute("data-mode") == "classic"
    assert not driver.find_elements(By.CSS_SELECTOR, ".heat-cell")
    shown = {r.get_attribute("data-inst"): r.find_element(By.CSS_SELECTOR, ".marginal").get_attribute("data-value")
             for r in css(driver, "#attribution").find_elements(By.CSS_SELECTOR, "tr[data-inst]")}
    assert shown == {p["instId"]: p["mmr"] for p in classic["positions"]}
    assert "current" in css(driver, "#compare thead th:nth-child(3)").get_attribute("class")
    driver.execute_script("window.scrollTo(0, 0)")
    shot(driver, "desktop-classic")
    driver.find_element(By.CSS_SELECTOR, 'label[for="mode-pm"]').click()
    wait_total_mmr(driver, pm, "back to portfolio margin")


def signed(method, path, key, body=""):
    ts = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    sign = base64.b64encode(hmac.new(key["secretKey"].encode(), (ts + method + path + body).encode(), hashlib.sha256).digest()).decode()
    return http(method, path, body or None, {"OK-ACCESS-KEY": key["apiKey"], "OK-ACCESS-SIGN": sign, "OK-ACCESS-TIMESTAMP": ts,
                                             "OK-ACCESS-PASSPHRASE": key["passphrase"]})[1]


def test_load_my_account(driver):
    db = os.environ.get("PM_DB")
    assert db and os.path.exists(db + ".admin-token"), "PM_DB is not set: run through integration/web/run"
    token = open(db + ".admin-token").read().strip()
    status, created = http("POST", "/api/v5/sandbox/account/create",
                           {"label": "web-test", "deposits": [{"ccy": "USDT", "amt": "50000"}, {"ccy": "BTC", "amt": "1"}]},
                           {"X-Sandbox-Admin-Token": token})
    assert created["code"] == "0", created
    key = created["data"][0]
    order = signed("POST", "/api/v5/trade/order", key, json.dumps(
        {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "sell", "ordType": "market", "sz": "3"}))
    assert order["code"] == "0", order
    positions = signed("GET", "/api/v5/account/positions", key)["data"]
    details = signed("GET", "/api/v5/account/balance", key)["data"][0]["details"]
    level = signed("GET", "/api/v5/account/config", key)["data"][0]["acctLv"]

    css(driver, "#account-panel summary").click()
    type_into(css(driver, "#acct-key"), key["apiKey"])
    type_into(css(driver, "#acct-secret"), key["secretKey"])
    type_into(css(driver, "#acct-pass"), key["passphrase"])
    css(driver, "#acct-load").click()
    wait(driver, lambda d: css(d, "#acct-status").get_attribute("data-kind") in ("ok", "error"))
    assert css(driver, "#acct-status").get_attribute("data-kind") == "ok", css(driver, "#acct-status").text
    shown = [(r.find_element(By.CSS_SELECTOR, ".inst-id").text, r.find_element(By.CSS_SELECTOR, ".pos-size").get_attribute("value"))
             for r in driver.find_elements(By.CSS_SELECTOR, "#positions-body tr.pos-row")]
    assert shown == [(p["instId"], p["pos"]) for p in positions]
    balances = {r.find_element(By.CSS_SELECTOR, ".bal-ccy").get_attribute("value"): r.find_element(By.CSS_SELECTOR, ".bal-amt").get_attribute("value")
                for r in driver.find_elements(By.CSS_SELECTOR, "#balances-body tr.bal-row")}
    assert balances == {d["ccy"]: d["cashBal"] for d in details if float(d["cashBal"]) != 0}
    body = {
        "acctLv": level, "greeksType": "BS",
        "simPos": [{"instId": p["instId"], "pos": p["pos"], "avgPx": p["avgPx"], **({"lever": p["lever"]} if p["lever"] else {})} for p in positions],
        "simAsset": [{"ccy": c, "amt": a} for c, a in balances.items()],
    }
    wait_total_mmr(driver, api("position-builder", body)["totalMmr"], "the loaded account's MMR differs from the API's")
    driver.execute_script("window.scrollTo(0, 0)")
    shot(driver, "desktop-loaded-account")


def test_derive_model_choice(driver, portfolio):
    """The model select: Derive PM2 figures, cards and the models side by side; an unmappable instrument is
    refused next to its row; back to okx-pm."""
    option = portfolio["option"]
    css(driver, "#clear-all").click()
    css(driver, "#add-position").click()
    row = last_row(driver, "positions-body")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-kind")).select_by_value("perpetual")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-coin")).select_by_value("BTC")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-quote")).select_by_value("USDC")
    type_into(row.find_element(By.CSS_SELECTOR, ".pos-size"), "-5000")
    assert row.find_element(By.CSS_SELECTOR, ".inst-id").text == "BTC-USDC-SWAP"
    css(driver, "#add-position").click()
    row = last_row(driver, "positions-body")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-kind")).select_by_value("option")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-coin")).select_by_value("BTC")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-quote")).select_by_value("USD")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-exp")).select_by_value(option["instId"].split("-")[2])
    Select(row.find_element(By.CSS_SELECTOR, ".pick-strike")).select_by_value(option["stk"])
    Select(row.find_element(By.CSS_SELECTOR, ".pick-type")).select_by_value("C")
    type_into(row.find_element(By.CSS_SELECTOR, ".pos-size"), "-100")
    css(driver, "#add-balance").click()
    row = last_row(driver, "balances-body")
    type_into(row.find_element(By.CSS_SELECTOR, ".bal-ccy"), "USDC")
    type_into(row.find_element(By.CSS_SELECTOR, ".bal-amt"), "60000")
    Select(css(driver, "#model")).select_by_value("derive-pm2")

    body = {"greeksType": "BS", "paramsId": "derive-pm2",
            "simPos": [{"instId": "BTC-USDC-SWAP", "pos": "-5000"}, {"instId": option["instId"], "pos": "-100"}],
            "simAsset": [{"ccy": "USDC", "amt": "60000"}]}
    expected = api("position-builder", body)
    assert expected["model"] == "derive-pm2"
    wait_total_mmr(driver, expected["totalMmr"], "displayed MMR is not Derive PM2's")
    assert json.loads(css(driver, "#request-json").get_attribute("textContent")) == body
    assert css(driver, "#summary-mode").get_attribute("data-mode") == "derive"
    cards = driver.find_elements(By.CSS_SELECTOR, ".unit-card.derive")
    assert [c.get_attribute("data-unit") for c in cards] == [u["riskUnit"] for u in expected["riskUnitData"]]
    assert css(driver, "#compare-h").text == "Margin models side by side"
    compare = api("position-builder-compare", body)
    shown = {td.get_attribute("data-model"): td.get_attribute("data-value")
             for td in driver.find_elements(By.CSS_SELECTOR, '#compare td[data-key="totalMmr"]')}
    assert shown == {m["model"]: m["totalMmr"] for m in compare["models"]}
    driver.execute_script("window.scrollTo(0, 0)")
    shot(driver, "desktop-derive-pm2")

    # A USDT-margined perpetual has no Derive counterpart: refused next to its row.
    good = total_mmr(driver)
    css(driver, "#add-position").click()
    row = last_row(driver, "positions-body")
    Select(row.find_element(By.CSS_SELECTOR, ".pick-quote")).select_by_value("USDT")
    type_into(row.find_element(By.CSS_SELECTOR, ".pos-size"), "1")
    kind = row.find_element(By.CSS_SELECTOR, ".pick-kind")
    wait(driver, lambda d: error_next_to(kind) is not None, message="the refusal is not shown next to the instrument")
    assert "BTC-USDT-SWAP" in error_next_to(kind).text and "derive-pm2" in error_next_to(kind).text
    row.find_element(By.CSS_SELECTOR, ".remove-row").click()
    wait_total_mmr(driver, good, "results did not come back after removing the USDT perpetual")

    Select(css(driver, "#model")).select_by_value("okx-pm")
    wait(driver, lambda d: "paramsId" not in json.loads(css(d, "#request-json").get_attribute("textContent")))
    sent = json.loads(css(driver, "#request-json").get_attribute("textContent"))
    assert sent["simPos"] == body["simPos"] and sent["acctLv"] in ("3", "4")
    wait_total_mmr(driver, api("position-builder", sent)["totalMmr"], "back to okx-pm")
    assert css(driver, "#compare-h").text == "Portfolio margin vs classic"


def test_no_javascript_errors(driver):
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE" and entry.get("source") != "network"]
    assert not errors, errors
