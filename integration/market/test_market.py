"""End-to-end tests of issue 19 against `pm serve` processes on loopback (no other network):

- `pm market snapshot --from URL` builds a snapshot and a catalog from a running `pm serve` (an OKX v5-compatible
  upstream), and `pm build`, `pm serve --snapshot` and the web page's endpoints accept them;
- `pm serve --market-mode follow URL` follows a `--market-mode random` leader: its marks equal the leader's at the same market
  time and lag it by at most one tick; funding and liquidation happen on its own accounts; it freezes (and says so at
  /api/v5/system/status) when the leader stops, and follows again when it is back;
- `pm build --account URL` margins an account that traded on a `pm serve`, signed with its key from the environment,
  and agrees with that server's own position builder for the same request.

Run through integration/market/run (PM_BIN names the pm binary). Standard library only.
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

PM = os.environ.get("PM_BIN", ".build/debug/pm")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class Server:
    """A `pm serve` process on a free loopback port, stopped (SIGTERM, then SIGKILL) by stop()."""

    def __init__(self, directory, name, *args, port=None):
        self.directory, self.name, self.args = directory, name, list(args)
        self.port = port or free_port()
        self.db = os.path.join(directory, name + ".sqlite")
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(directory, name + ".log")
        self.process = None

    def start(self, timeout=60):
        with open(self.log, "a") as log:
            self.process = subprocess.Popen([PM, "serve", "--db", self.db, "--port", str(self.port), *self.args],
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.name} exited: {open(self.log).read()[-2000:]}")
            try:
                if get(self.url + "/api/v5/public/time", timeout=2)["code"] == "0":
                    return self
            except Exception:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} did not answer within {timeout} s")

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def get(self, path):
        return get(self.url + path)

    def data(self, path):
        body = self.get(path)
        assert body["code"] == "0", f"{path}: {body}"
        return body["data"]

    def admin(self, path, body):
        token = open(self.db + ".admin-token").read().strip()
        request = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"X-Sandbox-Admin-Token": token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())

    def signed(self, account, method, path, body=None):
        timestamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        raw = b"" if body is None else json.dumps(body).encode()
        sign = base64.b64encode(hmac.new(account["secretKey"].encode(), (timestamp + method + path).encode() + raw,
                                         hashlib.sha256).digest()).decode()
        headers = {"OK-ACCESS-KEY": account["apiKey"], "OK-ACCESS-SIGN": sign, "OK-ACCESS-TIMESTAMP": timestamp,
                   "OK-ACCESS-PASSPHRASE": account["passphrase"], "Content-Type": "application/json"}
        request = urllib.request.Request(self.url + path, data=raw if body is not None else None, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read())

    def account(self, *deposits):
        out = subprocess.run([PM, "account", "create", "--db", self.db, "--format", "json",
                              *[arg for deposit in deposits for arg in ("--deposit", deposit)]],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)


def marks(server, inst_type, family=None):
    query = f"/api/v5/public/mark-price?instType={inst_type}" + (f"&instFamily={family}" if family else "")
    rows = server.data(query)
    return {row["instId"]: row["markPx"] for row in rows}, (int(rows[0]["ts"]) if rows else None)


def market_view(server):
    """(ts, {instId: markPx} for swaps, futures and BTC options, {index: idxPx}) as one server shows them at one
    market time: read again when the server ticked between the requests."""
    for _ in range(10):
        swaps, ts = marks(server, "SWAP")
        futures, _ = marks(server, "FUTURES")
        options, _ = marks(server, "OPTION", "BTC-USD")
        indices = {row["instId"]: row["idxPx"] for row in server.data("/api/v5/market/index-tickers?quoteCcy=USD")}
        if marks(server, "SWAP")[1] == ts:
            return ts, {**swaps, **futures, **options}, indices
    raise AssertionError(f"{server.name} ticked during every read")


def run_pm(*args, env=None, check=True):
    result = subprocess.run([PM, *args], capture_output=True, text=True, env=env, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"pm {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


class MarketTests(unittest.TestCase):
    """Snapshots, following and accounts, each against fresh servers in one temporary directory."""

    @classmethod
    def setUpClass(cls):
        cls.directory = tempfile.mkdtemp(prefix="pm-market-test-")
        cls.servers = []

    @classmethod
    def tearDownClass(cls):
        for server in cls.servers:
            server.stop()
        shutil.rmtree(cls.directory, ignore_errors=True)

    def serve(self, name, *args):
        server = Server(self.directory, name, *args)
        self.servers.append(server)
        return server.start()

    def path(self, name):
        return os.path.join(self.directory, name)

    # --- pm market snapshot -------------------------------------------------------------------------------------
    def test_snapshot_from_pm_serve_is_accepted_by_build_serve_and_the_web_page(self):
        upstream = self.serve("snapshot-upstream", "--market-mode", "static")
        snapshot, catalog = self.path("snap.json"), self.path("snap.instruments.json")
        result = run_pm("market", "snapshot", "--from", upstream.url, "-o", snapshot)
        self.assertIn("wrote", result.stdout)
        self.assertTrue(os.path.exists(catalog), "the catalog is written beside the snapshot")
        document = json.load(open(snapshot))
        upstream_ts, upstream_marks, upstream_indices = market_view(upstream)
        self.assertEqual(int(document["ts"]), upstream_ts)
        written = {mark["instId"]: mark for mark in document["marks"]}
        for inst_id, mark in upstream_marks.items():
            self.assertEqual(float(written[inst_id]["markPx"]), float(mark), inst_id)
        for pair in ("USDT-USD", "USDC-USD", "BTC-USD"):
            self.assertEqual(float(document["indices"][pair]), float(upstream_indices[pair]), pair)
        options = [mark for mark in document["marks"] if mark["instId"].endswith(("-C", "-P"))]
        self.assertTrue(options and all("markVol" in mark and "fwdPx" in mark for mark in options),
                        "every option carries opt-summary's markVol and fwdPx")
        self.assertTrue(all("fundingRate" in written[i] for i in written if i.endswith("-SWAP")), "perpetuals carry fundingRate")
        self.assertIn("rates.USD", result.stderr, "the field OKX does not publish is named")

        # pm build margins a portfolio at that market.
        build = run_pm("build", os.path.join(ROOT, "examples/btc-hedged.json"), "--snapshot", snapshot, "--catalog", catalog,
                       "--format", "json")
        self.assertEqual(json.loads(build.stdout)["marketTs"], document["ts"])

        # pm serve --snapshot serves it, and the web page's endpoints answer from it.
        served = self.serve("snapshot-served", "--snapshot", snapshot, "--catalog", catalog)
        served_ts, served_marks, _ = market_view(served)
        self.assertEqual(served_ts, upstream_ts)
        self.assertEqual(served_marks["BTC-USDT-SWAP"], upstream_marks["BTC-USDT-SWAP"])
        with urllib.request.urlopen(served.url + "/", timeout=10) as page:
            self.assertIn(b"<html", page.read().lower())
        request = urllib.request.Request(served.url + "/api/v5/public/position-builder", method="POST",
                                         data=open(os.path.join(ROOT, "examples/btc-hedged.json"), "rb").read(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=20) as response:
            answer = json.loads(response.read())
        self.assertEqual(answer["code"], "0", answer)
        self.assertEqual(answer["data"][0]["marketTs"], document["ts"])

    def test_snapshot_keeps_only_the_coins_asked_for(self):
        upstream = self.serve("coins-upstream", "--market-mode", "static")
        snapshot = self.path("eth.json")
        run_pm("market", "snapshot", "--from", upstream.url, "--coins", "ETH", "-o", snapshot)
        catalog = json.load(open(self.path("eth.instruments.json")))["data"]
        self.assertTrue(catalog)
        self.assertTrue(all(entry["instId"].startswith("ETH-") for entry in catalog))
        self.assertTrue(all(mark["instId"].startswith("ETH-") for mark in json.load(open(snapshot))["marks"]))

    def test_snapshot_from_nowhere_fails_naming_the_endpoint(self):
        result = run_pm("market", "snapshot", "--from", f"http://127.0.0.1:{free_port()}", "-o", self.path("none.json"),
                        "--timeout", "2", check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("/api/v5/public/instruments", result.stderr)
        self.assertIn("nothing usable", result.stderr)
        self.assertFalse(os.path.exists(self.path("none.json")))

    # --- pm serve --market-mode follow --------------------------------------------------------------------------
    def test_follower_marks_equal_the_leaders_within_one_tick(self):
        step_ms = 7_200_000  # two market hours per leader tick, so funding (00:00 UTC) comes within a few ticks
        leader = self.serve("leader", "--market-mode", "random", "--seed", "7", "--tick", "3", "--step", "7200")
        follower = self.serve("follower", "--market-mode", "follow", leader.url, "--tick", "0.3")

        # An account on the follower with a levered BTC perpetual: it pays or receives funding, and a crash
        # on the leader liquidates it on the follower.
        trader = follower.account("USDT=3000")
        order = follower.signed(trader, "POST", "/api/v5/trade/order",
                                {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "30"})
        self.assertEqual(order["code"], "0", order)

        # A poll of the follower is several requests, so a leader tick between them leaves some instruments at
        # the previous tick: every follower price is the leader's at the follower's time or one tick before.
        leader_history, compared, exact, lags = {}, 0, 0, []
        deadline = time.time() + 24
        while time.time() < deadline:
            leader_ts, leader_marks, leader_indices = market_view(leader)
            leader_history[leader_ts] = (leader_marks, leader_indices)
            follower_ts, follower_marks, follower_indices = market_view(follower)
            lags.append(leader_ts - follower_ts)
            now, before = leader_history.get(follower_ts), leader_history.get(follower_ts - step_ms)
            if now and before:
                for inst_id, mark in follower_marks.items():
                    self.assertIn(mark, (now[0][inst_id], before[0][inst_id]), f"{inst_id} at {follower_ts}")
                for pair, price in follower_indices.items():
                    self.assertIn(price, (now[1][pair], before[1][pair]), f"{pair} at {follower_ts}")
                compared += 1
                exact += (follower_marks, follower_indices) == now
            time.sleep(0.25)
        self.assertGreater(compared, 15, "enough samples compared at equal market times")
        self.assertGreater(exact, compared // 2, "most polls see one leader tick whole")
        self.assertLessEqual(max(lags), step_ms, f"the follower lags by at most one tick: {sorted(set(lags))}")
        self.assertGreater(len(leader_history), 5, "the leader moved")

        bills = follower.signed(trader, "GET", "/api/v5/account/bills?type=8")
        self.assertTrue(bills["data"], "funding was paid on the follower as the followed market crossed 00:00 UTC")

        # The follower refuses to move on its own.
        refused = follower.admin("/api/v5/sandbox/market/shock", {"moves": {"BTC": "-0.5"}})
        self.assertNotEqual(refused["code"], "0")
        self.assertIn("follows", refused["msg"])

        # A crash on the leader reaches the follower within a tick and liquidates the levered account there.
        shocked = leader.admin("/api/v5/sandbox/market/shock", {"moves": {"BTC": "-0.6"}})
        self.assertEqual(shocked["code"], "0", shocked)
        crash_ts = int(shocked["data"][0]["marketTs"])
        for _ in range(60):
            follower_ts, follower_marks, _ = market_view(follower)
            if follower_ts > crash_ts:  # the leader's next tick, which carries the crash
                break
            time.sleep(0.25)
        self.assertGreater(follower_ts, crash_ts)
        self.assertLess(float(follower_marks["BTC-USDT-SWAP"]), 0.5 * float(leader_marks["BTC-USDT-SWAP"]))
        positions = follower.signed(trader, "GET", "/api/v5/account/positions")["data"]
        size = sum(float(p["pos"]) for p in positions if p["instId"] == "BTC-USDT-SWAP")
        self.assertLess(size, 30, f"the follower liquidated the levered long after the leader's crash: {positions}")

        # The leader stops: the follower freezes, keeps its prices and says so.
        frozen_ts, frozen_marks, _ = market_view(follower)
        leader.stop()
        status = []
        for _ in range(40):
            status = follower.data("/api/v5/system/status")
            if status:
                break
            time.sleep(0.25)
        self.assertEqual(len(status), 1, "an ongoing disruption is published")
        self.assertEqual(status[0]["state"], "ongoing")
        self.assertIn(leader.url, status[0]["title"])
        time.sleep(1.5)
        self.assertEqual(market_view(follower)[:2], (frozen_ts, frozen_marks), "no price is invented while frozen")
        self.assertIn("frozen", open(follower.log).read())

        # The leader is back (same database, same path): the follower follows again.
        leader.start()
        for _ in range(60):
            if not follower.data("/api/v5/system/status"):
                break
            time.sleep(0.25)
        self.assertEqual(follower.data("/api/v5/system/status"), [])
        self.assertEqual(follower.data("/api/v5/system/status?state=completed")[0]["state"], "completed")
        for _ in range(40):
            leader_ts, leader_marks, _ = market_view(leader)
            follower_ts, follower_marks, _ = market_view(follower)
            if follower_ts == leader_ts:
                break
            time.sleep(0.25)
        # After the crash some far out-of-the-money options are worth 0 on the leader: the engine accepts no zero
        # mark, so the follower leaves them out (and logs it) rather than invent one.
        priced = {inst_id: mark for inst_id, mark in leader_marks.items() if float(mark) > 0}
        self.assertEqual((follower_ts, follower_marks), (leader_ts, priced))
        if len(priced) < len(leader_marks):
            self.assertIn("left out of the followed market", open(follower.log).read())

    # --- pm build --account ---------------------------------------------------------------------------------------
    def test_build_margins_a_traded_account_with_the_request_on_top(self):
        exchange = self.serve("account-exchange", "--market-mode", "static")
        account = exchange.account("USDT=50000", "BTC=1")
        for order in ({"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "sell", "ordType": "market", "sz": "40"},
                      {"instId": "ETH-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "20"}):
            placed = exchange.signed(account, "POST", "/api/v5/trade/order", order)
            self.assertEqual(placed["code"], "0", placed)
        request = {"simPos": [{"instId": "BTC-USDT-SWAP", "pos": "10"}], "simAsset": [{"ccy": "USDT", "amt": "1000"}]}
        request_path = self.path("request.json")
        json.dump(request, open(request_path, "w"))
        env = {**os.environ, "PM_OKX_KEY": account["apiKey"], "PM_OKX_SECRET": account["secretKey"],
               "PM_OKX_PASSPHRASE": account["passphrase"]}
        result = run_pm("build", request_path, "--account", exchange.url, "--format", "json", env=env)
        for secret in (account["secretKey"], account["passphrase"]):
            self.assertNotIn(secret, result.stdout + result.stderr, "credentials are never echoed")
        mine = json.loads(result.stdout)
        theirs = exchange.signed(account, "POST", "/api/v5/account/position-builder", request)
        self.assertEqual(theirs["code"], "0", theirs)
        theirs = theirs["data"][0]
        for field in ("eq", "adjEq", "totalMmr", "totalImr", "upl"):
            self.assertAlmostEqual(float(mine[field]), float(theirs[field]), delta=1e-6 * max(1, abs(float(theirs[field]))),
                                   msg=field)
        self.assertEqual(sorted(u["riskUnit"] for u in mine["riskUnitData"]), ["BTC", "ETH"])

        # The same account without the request's additions is a different portfolio: the additions count.
        json.dump({"inclRealPosAndEq": False, **request}, open(request_path, "w"))
        only_simulated = json.loads(run_pm("build", request_path, "--account", exchange.url, "--format", "json", env=env).stdout)
        self.assertNotEqual(only_simulated["totalMmr"], mine["totalMmr"])

        # A wrong secret is refused by the server, named by its code, and not printed.
        wrong = {**env, "PM_OKX_SECRET": "WRONGSECRET0000"}
        failed = run_pm("build", request_path, "--account", exchange.url, env=wrong, check=False)
        self.assertNotEqual(failed.returncode, 0)
        self.assertIn("50113", failed.stderr)
        self.assertNotIn("WRONGSECRET0000", failed.stderr)
        # Missing credentials name the option and the variable, nothing else.
        bare = {k: v for k, v in os.environ.items() if not k.startswith("PM_OKX_")}
        missing = run_pm("build", request_path, "--account", exchange.url, env=bare, check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("PM_OKX_KEY", missing.stderr)


if __name__ == "__main__":
    runner = unittest.TextTestRunner(verbosity=2)
    outcome = runner.run(unittest.defaultTestLoader.loadTestsFromTestCase(MarketTests))
    failed = len(outcome.failures) + len(outcome.errors)
    print(f"{outcome.testsRun - failed} passed, {failed} failed")
    sys.exit(1 if failed or outcome.testsRun == 0 else 0)
