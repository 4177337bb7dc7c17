#!/usr/bin/env python3
"""The metrics of `pm serve` move by exactly what happened (README, "Operating pm serve").

Usage: metrics.py PM_BINARY   (run by integration/ops/run, which provides prometheus_client)

Starts `pm serve` (static market, --rate-limit 20) on a temporary database, creates accounts through the admin API,
scrapes GET /metrics, performs a known sequence — 3 orders accepted, 2 refused (their OKX codes read from the answers),
a cancel, an unknown path, a burst of public requests past the rate limit, a WebSocket connection opened and closed,
two admin shocks that liquidate a classic and a portfolio-margin account — scrapes again, parses both scrapes with
prometheus_client's parser and checks every counter, histogram count and gauge against what the clients saw and what
the database holds. Then: the start-up banner names every endpoint; `--metrics-access off` answers 404; SIGTERM exits 0.

A client at a non-loopback address cannot be tested here (this machine sends traffic to loopback only): the rule itself
is tested on address values in Tests/SandboxTests/OperationsTests.swift; here the flag's wiring is.
"""
import base64, os, shutil, socket, sqlite3, sys, tempfile, time

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opslib import Client, Http, Server, create_account  # noqa: E402

RESTING = {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "limit", "px": "10000", "sz": "1"}
RATE_LIMIT = 20          # requests per second per key or client (burst the same)
BURST = 2 * RATE_LIMIT   # public requests sent back to back from one client: about half are refused
failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message, flush=True)


def scrape(http):
    status, body = http.raw("GET", "/metrics")
    assert status == 200, f"/metrics answered {status}: {body[:200]!r}"
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before, after, name, **labels):
    return value(after, name, **labels) - value(before, name, **labels)


def series(samples, name):
    """Every label set of sample `name` with its value."""
    return {labels: v for (n, labels), v in samples.items() if n == name}


def websocket_open(port, path):
    """A raw WebSocket handshake (RFC 6455) on a new connection; returns the open socket."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        assert chunk, "connection closed during the WebSocket handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:200]
    return sock


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    pm = os.path.abspath(sys.argv[1])
    work = tempfile.mkdtemp(prefix="pm-ops-metrics-")
    server = Server(pm, work, "metrics", "--market-mode", "static", "--rate-limit", str(RATE_LIMIT))
    off = Server(pm, work, "metrics-off", "--market-mode", "static", "--metrics-access", "off")
    try:
        server.start()
        print(f"pm serve ready on port {server.port} ({server.not_ready_answers} answers of 503 from /ready before)", flush=True)
        run(server)
        # The flag's wiring: --metrics-access off answers 404 (and says so in the banner).
        off.start()
        status, body = Http(off.port).raw("GET", "/metrics")
        check(status == 404, f"--metrics-access off: /metrics answered {status}")
        check("off (--metrics-access off)" in off.log(), "the banner of --metrics-access off says the metrics are off")
        check(off.terminate() == 0, "SIGTERM: exit status 0 (--metrics-access off server)")
        code = server.terminate()
        check(code == 0, f"SIGTERM: pm serve exited with {code}, expected 0")
    finally:
        server.kill()
        off.kill()
    if failures:
        print(f"integration/ops/metrics.py: {len(failures)} check(s) failed; logs in {work}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print("integration/ops/metrics.py: every metric moved by exactly what happened")


def run(server):
    port = server.port
    admin = Client(port, token=server.token)
    scraper = Http(port)

    # Health: /live and /ready answer 200 once ready.
    for path in ("/live", "/ready"):
        status, _ = scraper.raw("GET", path)
        check(status == 200, f"{path} answered {status} once ready")

    # The banner: one block naming every endpoint, the token file, the database and the market.
    log = server.log()
    base = f"http://127.0.0.1:{port}"
    for needle in (f"Position Builder  {base}/", f"REST API          {base}/api/v5", f"ws://127.0.0.1:{port}/ws/v5/public",
                   f"ws://127.0.0.1:{port}/ws/v5/private", f"metrics           {base}/metrics", f"readiness         {base}/ready",
                   f"admin token       {server.db}.admin-token", f"database          {server.db}", "market            static"):
        check(needle in log, f"the start-up banner names {needle!r}")

    # Accounts, and the positions the shocks will liquidate, before the first scrape.
    trader = create_account(admin, "trader", [("USDT", "1000000")])
    classic = create_account(admin, "classic50x", [("USDT", "10000")])
    portfolio = create_account(admin, "pm", [("USDT", "20000")])
    c = Client(port, classic)
    assert c.call("POST", "/api/v5/account/set-leverage", {"instId": "BTC-USDT-SWAP", "lever": "50", "mgnMode": "cross"})[1]["code"] == "0"
    assert c.call("POST", "/api/v5/trade/order", {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market",
                                                  "sz": "300"})[1]["code"] == "0"
    p = Client(port, portfolio)
    assert admin.admin("POST", "/api/v5/sandbox/acknowledge", {"uid": portfolio["uid"]})[1]["code"] == "0"
    assert p.call("POST", "/api/v5/account/set-account-level", {"acctLv": "4"})[1]["code"] == "0"
    assert p.call("POST", "/api/v5/trade/order", {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market",
                                                  "sz": "100"})[1]["code"] == "0"
    time.sleep(1.1)  # the trader's and the public buckets are full again

    before = scrape(scraper)
    requests = {}    # (route, method, status) -> count, as the clients saw them

    def saw(route, method, status):
        requests[(route, method, str(status))] = requests.get((route, method, str(status)), 0) + 1

    saw("/metrics", "GET", 200)  # the first scrape is counted once it is answered

    # 3 orders accepted, 2 refused (codes as answered), 1 cancel.
    t = Client(port, trader)
    accepted = []
    for i in range(3):
        status, answer = t.call("POST", "/api/v5/trade/order", dict(RESTING, clOrdId=f"ops{i}"))
        saw("/api/v5/trade/order", "POST", status)
        check(answer["code"] == "0", f"order {i} accepted: {answer}")
        accepted.append(answer["data"][0]["ordId"])
    refused_codes = {}
    for body in ({"instId": "NOPE-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "1"},
                 dict(RESTING, sz="10000000")):
        status, answer = t.call("POST", "/api/v5/trade/order", body)
        saw("/api/v5/trade/order", "POST", status)
        code = answer["data"][0]["sCode"]
        check(answer["code"] == "1" and code != "0", f"order refused: {answer}")
        refused_codes[code] = refused_codes.get(code, 0) + 1
    print(f"refused with codes {refused_codes}", flush=True)
    status, answer = t.call("POST", "/api/v5/trade/cancel-order", {"instId": "BTC-USDT-SWAP", "ordId": accepted[0]})
    saw("/api/v5/trade/cancel-order", "POST", status)
    check(answer["code"] == "0", f"cancel accepted: {answer}")

    # A path no route has, with a query: counted under route "other", never under its raw text.
    status, _ = scraper.raw("GET", "/api/v5/nope/secret-path?token=abc")
    saw("other", "GET", status)
    check(status == 404, f"unknown path answered {status}")

    # A burst of public requests from one client (X-Forwarded-For names the bucket) past the rate limit.
    burst = Http(port)
    refused_by_limit = 0
    for _ in range(BURST):
        status, answer = burst.json("GET", "/api/v5/public/time", headers={"X-Forwarded-For": "ops-burst"})
        saw("/api/v5/public/time", "GET", status)
        refused_by_limit += status == 429
    burst.close()
    check(refused_by_limit > 0, f"the burst of {BURST} met the rate limit of {RATE_LIMIT}")

    # A WebSocket connection: the gauge counts it while open.
    # The server counts the connection once its handler runs, which is just after the client has read the
    # 101 answer: wait (bounded) for the gauge rather than read it once.
    ws = websocket_open(port, "/ws/v5/public")
    deadline = time.time() + 10
    while True:
        during = scrape(scraper)
        saw("/metrics", "GET", 200)
        if value(during, "pm_websocket_connections", endpoint="public") == 1 or time.time() > deadline:
            break
        time.sleep(0.05)
    check(value(during, "pm_websocket_connections", endpoint="public") == 1, "one public WebSocket connection while open")
    ws.close()
    deadline = time.time() + 10
    while True:
        after_ws = scrape(scraper)
        saw("/metrics", "GET", 200)
        if value(after_ws, "pm_websocket_connections", endpoint="public") == 0 or time.time() > deadline:
            break
        time.sleep(0.1)
    check(value(after_ws, "pm_websocket_connections", endpoint="public") == 0, "no WebSocket connection once closed")

    # Two shocks: the classic 50x account is liquidated by the first, the portfolio-margin one by the second.
    remargined = 0
    for move, victim in ((-0.035, classic), (-0.12, portfolio)):
        status, answer = admin.admin("POST", "/api/v5/sandbox/market/shock", {"moves": {"BTC": str(move)}})
        saw("/api/v5/sandbox/market/shock", "POST", status)
        report = answer["data"][0]
        check(report["liquidated"] == [victim["uid"]], f"shock {move} liquidated {report['liquidated']}, expected {victim['uid']}")
        remargined += int(report["remarginedAccounts"])
    status, state = admin.admin("GET", "/api/v5/sandbox/state")
    saw("/api/v5/sandbox/state", "GET", status)
    fund_usdt = float(state["data"][0]["insuranceFund"]["USDT"])

    after = scrape(scraper)

    # --- orders, cancels, group commits
    check(delta(before, after, "pm_orders_total", result="accepted", code="0") == 3, "3 orders accepted")
    for code, count in refused_codes.items():
        check(delta(before, after, "pm_orders_total", result="refused", code=code) == count, f"{count} order(s) refused with {code}")
    moved = {labels: v - before.get(("pm_orders_total", labels), 0) for labels, v in series(after, "pm_orders_total").items()}
    check(sum(moved.values()) == 5, f"5 orders counted in all, not {moved}")
    check(delta(before, after, "pm_cancels_total", result="accepted", code="0") == 1, "1 cancel accepted")
    check(delta(before, after, "pm_group_commit_submissions_count") == 6, "6 trading submissions, each its own group")
    check(delta(before, after, "pm_group_commit_submissions_sum") == 6, "6 submissions in those groups")
    check(delta(before, after, "pm_group_commit_duration_seconds_count") == 4, "4 group commits stored something (3 orders, 1 cancel)")

    # --- HTTP requests: every counter moved by exactly what the clients saw, and nothing else moved
    for (route, method, status), count in sorted(requests.items()):
        got = delta(before, after, "pm_http_requests_total", route=route, method=method, status=status)
        check(got == count, f"{method} {route} {status}: counted {got}, sent {count}")
    total = sum(v - before.get(("pm_http_requests_total", labels), 0) for labels, v in series(after, "pm_http_requests_total").items())
    check(total == sum(requests.values()), f"{total} requests counted in all, {sum(requests.values())} sent")
    per_route = {}
    for (route, method, _), count in requests.items():
        per_route[(route, method)] = per_route.get((route, method), 0) + count
    for (route, method), count in sorted(per_route.items()):
        got = delta(before, after, "pm_http_request_duration_seconds_count", route=route, method=method)
        check(got == count, f"latency histogram of {method} {route}: {got} observations, {count} requests")
    for (name, labels) in after:
        check(not any("?" in v or "secret" in v for _, v in labels), f"a label holds a raw path or query: {name} {labels}")

    # --- the rate limit
    check(delta(before, after, "pm_rate_limit_refusals_total", scope="public") == refused_by_limit,
          f"{refused_by_limit} public requests refused by the rate limit")
    check(delta(before, after, "pm_rate_limit_refusals_total", scope="private") == 0, "no private request refused by the rate limit")

    # --- ticks
    check(delta(before, after, "pm_tick_duration_seconds_count") == 2, "2 ticks timed (the shocks)")
    check(delta(before, after, "pm_tick_remargined_accounts_count") == 2, "2 ticks counted their re-margined accounts")
    check(delta(before, after, "pm_tick_remargined_accounts_sum") == remargined, f"{remargined} accounts re-margined, as the ticks reported")

    # --- liquidations: accounts by mode; steps against what the database holds
    check(delta(before, after, "pm_liquidated_accounts_total", mode="classic") == 1, "1 classic account liquidated")
    check(delta(before, after, "pm_liquidated_accounts_total", mode="portfolio") == 1, "1 portfolio-margin account liquidated")
    with sqlite3.connect(f"file:{server.db}?mode=ro", uri=True) as db:
        classic_closes = db.execute('SELECT COUNT(*) FROM "order" WHERE uid = ? AND tag = ?', (classic["uid"], "CLASSIC")).fetchone()[0]
        classic_cover = db.execute('SELECT COUNT(*) FROM bill WHERE uid = ? AND type = ?', (classic["uid"], "102")).fetchone()[0]
        pm_tags = {row[0] for row in db.execute(
            "SELECT DISTINCT tag FROM \"order\" WHERE uid = ? AND category IN ('partial_liquidation', 'full_liquidation') AND tag != ''",
            (portfolio["uid"],))}
    steps = {labels[0][1]: v - before.get(("pm_liquidation_steps_total", labels), 0)
             for labels, v in series(after, "pm_liquidation_steps_total").items()}
    print(f"liquidation steps counted: {steps}; classic closes {classic_closes}, classic deficit covers {classic_cover}, "
          f"portfolio-margin liquidation orders tagged {sorted(pm_tags)}", flush=True)
    check(classic_closes >= 1 and steps.get("CLASSIC", 0) == classic_closes,
          f"CLASSIC steps {steps.get('CLASSIC', 0)} = positions closed {classic_closes}")
    trading = {step for step, count in steps.items() if step in ("DDH1", "DDH2", "BASIS", "GENERAL") and count > 0}
    check(pm_tags and trading == pm_tags, f"trading steps counted {sorted(trading)} = steps of the stored liquidation orders {sorted(pm_tags)}")
    check(steps.get("DEFICIT", 0) >= classic_cover, "every deficit cover of the classic account counted")

    # --- the insurance fund's gauge is the fund's balance
    gauge = value(after, "pm_insurance_fund_balance", ccy="USDT")
    check(abs(gauge - fund_usdt) <= 1e-9 * max(1.0, abs(fund_usdt)), f"insurance fund gauge {gauge} = fund {fund_usdt} USDT")


if __name__ == "__main__":
    main()
