#!/usr/bin/env python3
"""Chaos test of the sandbox: a mixed load from several threads, SIGKILL at random instants, restart, and after every
restart (and at the end) the ledger checked directly in SQLite and through the API.

Usage: chaos.py PM_BINARY [--kills N] [--seed S] [--min-load SECONDS] [--max-load SECONDS] [--keep] [--verbose]

Load (per run, seeded): limit orders that rest, marketable orders that fill (perpetuals, inverse perpetuals, futures,
spot, options), cancels, admin market steps and shocks that move time (interest, funding, expiries), deposits, and
crashes large enough to liquidate the over-levered accounts (classic 50x, portfolio-margin with futures, and
portfolio-margin with a spot loan, so position liquidation, collateral sale with penalty and deficit cover all run).

Checks (any violation makes the exit status non-zero):
  orders   every order acknowledged (sCode "0" with an ordId) is stored exactly once, under its ordId; every order
           refused with an answer is not stored at all; no stored client order was never sent; an acknowledged
           cancel is stored as canceled; order state agrees with the sum of its fills
  fills    trade ids and bill ids are unique; every fill has its bills (two for spot, one otherwise); every fill a
           client has read is stored unchanged
  ledger   for every account and currency the balance equals the exact sum of its bills, and each bill's `bal` is
           the running sum in billId order
  cash     per currency: Σ account balances + insurance fund + house == Σ deposits (bill type 1) − withdrawals
           (none exist), exactly (Decimal); every deposit acknowledged is stored exactly once and no deposit is
           stored that was not sent
  time     no position or open order in an instrument expired at the simulator's stored market time; the
           exchange's market time equals the simulator's (a tick is one transaction)
  API      after each restart: acknowledged orders, balances, positions, open orders, fills, insurance fund and
           house as the API reports them equal the database
Standard library only.
"""
import base64, datetime, decimal, hashlib, hmac, http.client, json, os, random, shutil, signal, socket, sqlite3, subprocess
import sys, tempfile, threading, time, urllib.parse

D = decimal.Decimal
decimal.getcontext().prec = 80  # exact for the ledger's 18 fractional digits and any realistic magnitude


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]



def sum_by_currency(rows):
    """{ccy: Σ balance} over rows (ccy, balance) of several partitions, as decimal text."""
    sums = {}
    for ccy, balance in rows:
        sums[ccy] = sums.get(ccy, D(0)) + D(balance)
    return {ccy: str(total) for ccy, total in sums.items()}

class InDoubt(Exception):
    """No answer: the request may or may not have been applied."""


class Http:
    """One keep-alive connection per thread; any transport error is InDoubt."""

    def __init__(self, port):
        self.port = port
        self.connection = None

    def request(self, method, path, body=None, headers=None, timeout=15):
        text = json.dumps(body, separators=(",", ":")) if body is not None else ""
        try:
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            self.connection.request(method, path, body=text.encode() if body is not None else None, headers=headers or {})
            response = self.connection.getresponse()
            data = response.read()
        except Exception as error:
            if self.connection is not None:
                self.connection.close()
            self.connection = None
            raise InDoubt(str(error))
        try:
            return json.loads(data)
        except ValueError:
            raise InDoubt(f"not JSON: {data[:100]!r}")

    def close(self):
        if self.connection is not None:
            self.connection.close()
        self.connection = None


class Client:
    """Signs OKX v5 private requests; `admin` uses the sandbox admin token."""

    def __init__(self, port, key=None, token=None):
        self.http = Http(port)
        self.key = key
        self.token = token

    def call(self, method, path, body=None):
        ts = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        text = json.dumps(body, separators=(",", ":")) if body is not None else ""
        sign = base64.b64encode(hmac.new(self.key["secretKey"].encode(), (ts + method + path + text).encode(), hashlib.sha256).digest()).decode()
        return self.http.request(method, path, body, {
            "OK-ACCESS-KEY": self.key["apiKey"], "OK-ACCESS-SIGN": sign, "OK-ACCESS-TIMESTAMP": ts,
            "OK-ACCESS-PASSPHRASE": self.key["passphrase"], "Content-Type": "application/json"})

    def admin(self, method, path, body=None):
        return self.http.request(method, path, body, {"X-Sandbox-Admin-Token": self.token, "Content-Type": "application/json"})

    def public(self, path):
        return self.http.request("GET", path)


def expiry_ms(inst_id):
    """OKX expiry (08:00 UTC of YYMMDD) of a future or option id, None for spot and perpetuals."""
    parts = inst_id.split("-")
    if len(parts) >= 3 and len(parts[2]) == 6 and parts[2].isdigit():
        d = parts[2]
        moment = datetime.datetime(2000 + int(d[:2]), int(d[2:4]), int(d[4:]), 8, tzinfo=datetime.timezone.utc)
        return int(moment.timestamp() * 1000)
    return None


class Run:
    """Everything the clients learned, guarded by one lock, and the checks."""

    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.acked = {}        # clOrdId -> (uid, ordId, instId)
        self.refused = {}      # clOrdId -> (uid, sCode)
        self.doubt = set()     # clOrdIds sent without an answer
        self.cancelled = {}    # ordId -> uid (acknowledged cancels)
        self.deposits = []     # (uid, ccy, amount text, state) state: acked | doubt
        self.seen_fills = {}   # tradeId -> (ordId, fillPx, fillSz, fee)
        self.resting = {}      # uid -> list of (instId, ordId) acknowledged limit orders that may rest
        self.liquidated_reports = 0
        self.counter = 0
        self.violations = []
        self.ticks = 0

    def next_id(self, prefix):
        with self.lock:
            self.counter += 1
            return f"{prefix}{self.counter}"

    def fail(self, message):
        with self.lock:
            self.violations.append(message)
        if self.args.verbose:
            print("VIOLATION:", message, flush=True)

    # ----- the database, read in one snapshot -----

    def check_database(self, db, when):
        connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
        connection.isolation_level = None
        problems = []
        try:
            connection.execute("BEGIN")
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            orders = {row[0]: row for row in connection.execute(
                'SELECT ordId, uid, clOrdId, instId, state, sz, accFillSz, category, ordType FROM "order"')}
            fills = connection.execute("SELECT tradeId, ordId, uid, instId, fillPx, fillSz, fee, category FROM fill").fetchall()
            bills = connection.execute("SELECT billId, uid, ccy, balChg, bal, type, ordId, subType FROM bill ORDER BY billId").fetchall()
            balances = connection.execute("SELECT uid, ccy, cashBal FROM balance").fetchall()
            # The fund and the house have a row per partition and currency (one partition on SQLite): summed.
            fund = sum_by_currency(connection.execute("SELECT ccy, balance FROM insuranceFund").fetchall())
            house = (sum_by_currency(connection.execute("SELECT ccy, balance FROM house").fetchall())
                     if "house" in tables else None)
            positions = connection.execute("SELECT uid, instId, pos FROM position").fetchall()
            settings = dict(connection.execute("SELECT key, value FROM setting").fetchall())
            connection.execute("COMMIT")
        finally:
            connection.close()

        # Orders: acknowledged exactly once, refused never, nothing unknown.
        by_client = {}
        for row in orders.values():
            if row[2]:
                by_client.setdefault(row[2], []).append(row)
        with self.lock:
            acked, refused, doubt, cancelled = dict(self.acked), dict(self.refused), set(self.doubt), dict(self.cancelled)
            deposits, seen = list(self.deposits), dict(self.seen_fills)
        for cl, (uid, ord_id, inst) in acked.items():
            rows = by_client.get(cl, [])
            if len(rows) != 1 or rows[0][0] != int(ord_id) or rows[0][1] != uid or rows[0][3] != inst:
                problems.append(f"acknowledged order {cl} (ordId {ord_id}) stored {len(rows)} times: {rows[:2]}")
        for cl, (uid, code) in refused.items():
            if cl in by_client:
                problems.append(f"order {cl} refused with sCode {code} was stored: {by_client[cl][:1]}")
        for cl, rows in by_client.items():
            if cl not in acked and cl not in refused and cl not in doubt:
                problems.append(f"stored order {cl} was never sent: {rows[:1]}")
            if len(rows) > 1:
                problems.append(f"clOrdId {cl} stored {len(rows)} times")
        for ord_id, uid in cancelled.items():
            row = orders.get(int(ord_id))
            if row is None or row[4] != "canceled":
                problems.append(f"acknowledged cancel of {ord_id} not stored as canceled: {row}")

        # Fills: per order they add up; each has its bills; what clients read is unchanged.
        filled = {}
        for trade_id, ord_id, uid, inst, px, sz, fee, category in fills:
            filled[ord_id] = filled.get(ord_id, D(0)) + D(sz)
            if ord_id not in orders:
                problems.append(f"fill {trade_id} of unknown order {ord_id}")
        for ord_id, row in orders.items():
            acc, size, state = D(row[6]), D(row[5]), row[4]
            if filled.get(ord_id, D(0)) != acc:
                problems.append(f"order {ord_id} accFillSz {acc} != sum of its fills {filled.get(ord_id, D(0))}")
            if (state == "filled" and acc != size) or (state == "live" and acc != 0) or \
                    (state == "partially_filled" and not 0 < acc < size) or acc > size:
                problems.append(f"order {ord_id} state {state} with accFillSz {acc} of sz {size}")
        trade_bills = {}
        for bill_id, uid, ccy, change, bal, kind, ord_id, sub in bills:
            if kind in ("2", "5") and ord_id:
                trade_bills[int(ord_id)] = trade_bills.get(int(ord_id), 0) + 1
        fills_per_order = {}
        for f in fills:
            fills_per_order[f[1]] = fills_per_order.get(f[1], 0) + 1
        for ord_id, count in fills_per_order.items():
            inst = orders[ord_id][3] if ord_id in orders else ""
            expected = count * (2 if inst.count("-") == 1 else 1)
            if trade_bills.get(ord_id, 0) != expected:
                problems.append(f"order {ord_id} ({inst}): {count} fills but {trade_bills.get(ord_id, 0)} trade bills (expected {expected})")
        for ord_id in trade_bills:
            if ord_id not in fills_per_order:
                problems.append(f"trade bills for order {ord_id} without a fill")
        stored_fills = {f[0]: f for f in fills}
        for trade_id, (ord_id, px, sz, fee) in seen.items():
            f = stored_fills.get(trade_id)
            if f is None or (f[1], f[4], f[5], f[6]) != (ord_id, px, sz, fee):
                problems.append(f"fill {trade_id} read by a client is {f}, was {(ord_id, px, sz, fee)}")
        if len({b[0] for b in bills}) != len(bills) or len(stored_fills) != len(fills):
            problems.append("duplicate bill or trade ids")

        # Ledger: balance == Σ bills, and each bal is the running sum.
        running = {}
        for bill_id, uid, ccy, change, bal, kind, ord_id, sub in bills:
            key = (uid, ccy)
            running[key] = running.get(key, D(0)) + D(change)
            if D(bal) != running[key]:
                problems.append(f"bill {bill_id} of {uid} {ccy}: bal {bal} != running sum {running[key]}")
        stored = {(uid, ccy): D(cash) for uid, ccy, cash in balances}
        for key in set(stored) | set(running):
            if stored.get(key, D(0)) != running.get(key, D(0)):
                problems.append(f"{key[0]} {key[1]}: balance {stored.get(key)} != sum of bills {running.get(key)}")

        # Cash: Σ balances + fund + house == Σ deposits, per currency.
        external = {}
        for bill_id, uid, ccy, change, bal, kind, ord_id, sub in bills:
            if kind == "1":
                external[ccy] = external.get(ccy, D(0)) + D(change)
        if house is None:
            problems.append("the database has no house ledger (table house): conservation cannot hold")
            house = {}
        currencies = set(external) | {k[1] for k in stored} | set(fund) | set(house)
        for ccy in sorted(currencies):
            held = sum((v for (u, c), v in stored.items() if c == ccy), D(0))
            total = held + D(fund.get(ccy, "0")) + D(house.get(ccy, "0"))
            if total != external.get(ccy, D(0)):
                problems.append(f"cash not conserved in {ccy}: balances {held} + fund {fund.get(ccy, '0')} + house "
                                f"{house.get(ccy, '0')} = {total} != deposits {external.get(ccy, D(0))} (difference {total - external.get(ccy, D(0))})")
        stored_deposits = {}
        for bill_id, uid, ccy, change, bal, kind, ord_id, sub in bills:
            if kind == "1":
                stored_deposits.setdefault((uid, ccy, D(change)), []).append(bill_id)
        sent = {}
        for uid, ccy, amount, state in deposits:
            sent.setdefault((uid, ccy, D(amount)), []).append(state)
        for key, states in sent.items():
            count = len(stored_deposits.get(key, []))
            acked_count = states.count("acked")
            if count < acked_count or count > len(states):
                problems.append(f"deposit {key}: sent {len(states)} ({acked_count} acknowledged), stored {count}")
        known_uids = {d[0] for d in deposits}
        for key, ids in stored_deposits.items():
            if key[0] in known_uids and key not in sent:
                problems.append(f"deposit {key} stored (bills {ids}) but never sent")

        # Time: nothing left in an expired instrument; one market clock.
        sim_time = int(settings.get("sim.time", "0"))
        if "sim.time" in settings and settings.get("marketTime") != settings["sim.time"]:
            problems.append(f"market time {settings.get('marketTime')} != simulator time {settings['sim.time']}: a tick was half applied")
        for uid, inst, pos in positions:
            e = expiry_ms(inst)
            if e is not None and e <= sim_time:
                problems.append(f"{uid} still holds {pos} {inst}, expired at {e} <= market time {sim_time}")
            if D(pos) == 0:
                problems.append(f"{uid} has a zero position row in {inst}")
        for row in orders.values():
            e = expiry_ms(row[3])
            if row[4] in ("live", "partially_filled") and e is not None and e <= sim_time:
                problems.append(f"order {row[0]} in {row[3]} still open after its expiry")

        for p in problems:
            self.fail(f"[{when}] {p}")
        return {"orders": orders, "fills": fills, "bills": bills, "balances": stored, "fund": fund, "house": house,
                "positions": positions, "settings": settings}

    # ----- the API against a quiescent server -----

    def check_api(self, port, token, accounts, snapshot, when, sample):
        admin = Client(port, token=token)
        problems = []
        state = admin.admin("GET", "/api/v5/sandbox/state")["data"][0]
        for name, stored in (("insuranceFund", snapshot["fund"]), ("house", snapshot["house"])):
            api = {k: D(v) for k, v in state.get(name, {}).items()}
            db = {k: D(v) for k, v in stored.items()}
            if api != db:
                problems.append(f"{name} via the API {api} != database {db}")
        orders = snapshot["orders"]
        for name, account in accounts.items():
            client = Client(port, account["key"])
            uid = account["uid"]
            details = client.call("GET", "/api/v5/account/balance")["data"][0]["details"]
            api = {d["ccy"]: D(d["cashBal"]) for d in details}
            for (u, ccy), value in snapshot["balances"].items():
                if u == uid and api.get(ccy, D(0)) != value and (value != 0 or ccy in api):
                    problems.append(f"{name} {ccy}: cashBal via the API {api.get(ccy)} != database {value}")
            api_positions = {p["instId"]: D(p["pos"]) for p in client.call("GET", "/api/v5/account/positions")["data"]}
            db_positions = {inst: D(pos) for u, inst, pos in snapshot["positions"] if u == uid}
            if api_positions != db_positions:
                problems.append(f"{name} positions via the API {api_positions} != database {db_positions}")
            pending = {int(o["ordId"]) for o in client.call("GET", "/api/v5/trade/orders-pending?limit=100")["data"]}
            db_open = {o[0] for o in orders.values() if o[1] == uid and o[4] in ("live", "partially_filled")}
            if len(db_open) <= 100 and pending != db_open:
                problems.append(f"{name} open orders via the API {sorted(pending)[:5]}… != database {sorted(db_open)[:5]}…")
            stored_fills = {f[0]: f for f in snapshot["fills"]}
            for f in client.call("GET", "/api/v5/trade/fills?limit=100")["data"]:
                s = stored_fills.get(int(f["tradeId"]))
                if s is None or (s[1], D(s[4]), D(s[5])) != (int(f["ordId"]), D(f["fillPx"]), D(f["fillSz"])):
                    problems.append(f"{name} fill {f['tradeId']} via the API {f['ordId']} {f['fillPx']}×{f['fillSz']} != database {s}")
            with self.lock:
                mine = [(cl, v) for cl, v in self.acked.items() if v[0] == uid]
            for cl, (u, ord_id, inst) in (mine if sample is None else random.Random(len(mine)).sample(mine, min(sample, len(mine)))):
                answer = client.call("GET", f"/api/v5/trade/order?instId={inst}&ordId={ord_id}")
                if answer.get("code") != "0" or answer["data"][0]["ordId"] != ord_id or answer["data"][0]["clOrdId"] != cl:
                    problems.append(f"acknowledged order {cl} ({ord_id}) via the API: {answer.get('code')} {answer.get('msg')}")
                else:
                    row = orders.get(int(ord_id))
                    if row is not None and answer["data"][0]["state"] != row[4]:
                        problems.append(f"order {ord_id} state via the API {answer['data'][0]['state']} != database {row[4]}")
            client.http.close()
        admin.http.close()
        for p in problems:
            self.fail(f"[{when}] {p}")


# ----- the load -----

PERPS = ["BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP", "ETH-USDC-SWAP"]
FUTURES = ["BTC-USDT-260102", "BTC-USD-260109", "ETH-USDT-260130"]
SPOT = ["BTC-USDT", "ETH-USDT", "ETH-USDC"]


class Trader(threading.Thread):
    def __init__(self, run, port, name, account, options, rng, stop):
        super().__init__(daemon=True)
        self.run_state, self.name_, self.account, self.options, self.rng, self.stop = run, name, account, options, rng, stop
        self.client = Client(port, account["key"])
        self.books = {}

    def book(self, inst):
        data = self.client.public(f"/api/v5/market/books?instId={inst}")
        if data.get("code") != "0" or not data["data"]:
            return None
        book = data["data"][0]
        return D(book["bids"][0][0]), D(book["asks"][0][0])

    def place(self, body):
        run = self.run_state
        cl = run.next_id(self.name_)
        body = dict(body, clOrdId=cl)
        with run.lock:
            run.doubt.add(cl)
        try:
            answer = self.client.call("POST", "/api/v5/trade/order", body)
        except InDoubt:
            return None
        item = (answer.get("data") or [{}])[0]
        with run.lock:
            run.doubt.discard(cl)
            if answer.get("code") == "0" and item.get("sCode") == "0" and item.get("ordId"):
                run.acked[cl] = (self.account["uid"], item["ordId"], body["instId"])
            else:
                run.refused[cl] = (self.account["uid"], item.get("sCode", answer.get("code")))
        return item.get("ordId") if item.get("sCode") == "0" else None

    def tick_size(self, price):
        return D(1) if price > 1000 else D("0.01")

    def rest(self):
        inst = self.rng.choice(PERPS + FUTURES)
        top = self.book(inst)
        if top is None:
            return
        bid, ask = top
        side = self.rng.choice(["buy", "sell"])
        away = D(str(round(self.rng.uniform(0.002, 0.03), 4)))
        tick = D("0.1") if inst.startswith("BTC") else D("0.01")
        px = (bid * (1 - away) if side == "buy" else ask * (1 + away)).quantize(tick, rounding=decimal.ROUND_DOWN)
        ord_id = self.place({"instId": inst, "tdMode": "cross", "side": side, "ordType": self.rng.choice(["limit", "post_only"]),
                             "px": str(px), "sz": str(self.rng.randint(1, 5))})
        if ord_id:
            with self.run_state.lock:
                self.run_state.resting.setdefault(self.account["uid"], []).append((inst, ord_id))

    def take(self):
        inst = self.rng.choice(PERPS + FUTURES)
        side = self.rng.choice(["buy", "sell"])
        if self.rng.random() < 0.5:
            self.place({"instId": inst, "tdMode": "cross", "side": side, "ordType": "market", "sz": str(self.rng.randint(1, 4))})
        else:
            top = self.book(inst)
            if top is None:
                return
            tick = D("0.1") if inst.startswith("BTC") else D("0.01")
            px = (top[1] * D("1.002") if side == "buy" else top[0] * D("0.998")).quantize(tick, rounding=decimal.ROUND_DOWN)
            self.place({"instId": inst, "tdMode": "cross", "side": side, "ordType": self.rng.choice(["limit", "ioc", "fok"]),
                        "px": str(px), "sz": str(self.rng.randint(1, 4))})

    def spot(self):
        inst = self.rng.choice(SPOT)
        side = self.rng.choice(["buy", "sell"])
        size = "0.01" if inst.startswith("BTC") else "0.2"
        self.place({"instId": inst, "tdMode": "cash", "side": side, "ordType": "market", "sz": size, "tgtCcy": "base_ccy"})

    def option(self):
        if not self.options:
            return
        inst = self.rng.choice(self.options)
        self.place({"instId": inst, "tdMode": "cross", "side": self.rng.choice(["buy", "sell"]), "ordType": "market", "sz": "1"})

    def cancel(self):
        run = self.run_state
        with run.lock:
            mine = run.resting.get(self.account["uid"], [])
            if not mine:
                return
            inst, ord_id = mine.pop(self.rng.randrange(len(mine)))
        try:
            answer = self.client.call("POST", "/api/v5/trade/cancel-order", {"instId": inst, "ordId": ord_id})
        except InDoubt:
            return
        if answer.get("code") == "0" and answer["data"][0].get("sCode") == "0":
            with run.lock:
                run.cancelled[ord_id] = self.account["uid"]

    def flatten(self):
        for p in self.client.call("GET", "/api/v5/account/positions")["data"]:
            pos = D(p["pos"])
            if abs(pos) > 20 and not p["instId"].count("-") == 4:
                self.place({"instId": p["instId"], "tdMode": "cross", "side": "sell" if pos > 0 else "buy", "ordType": "market",
                            "sz": str(abs(pos) - 5), "reduceOnly": True})

    def observe(self):
        answer = self.client.call("GET", "/api/v5/trade/fills?limit=20")
        with self.run_state.lock:
            for f in answer.get("data", []):
                self.run_state.seen_fills[int(f["tradeId"])] = (int(f["ordId"]), f["fillPx"], f["fillSz"], f["fee"])

    def run(self):
        actions = [(self.rest, 30), (self.take, 25), (self.cancel, 15), (self.spot, 10), (self.option, 6), (self.flatten, 4),
                   (self.observe, 10)]
        functions, weights = zip(*actions)
        while not self.stop.is_set():
            try:
                self.rng.choices(functions, weights)[0]()
            except InDoubt:
                time.sleep(0.02)
            except Exception as error:  # an answer we did not expect is a finding, not a crash of the test
                if not self.stop.is_set():
                    self.run_state.fail(f"{self.name_}: unexpected {type(error).__name__}: {error}")
                    time.sleep(0.05)
        self.client.http.close()


class Market(threading.Thread):
    """Steps, small shocks that move time, and crashes after (re)levering the victims."""

    def __init__(self, run, port, token, victims, rng, stop, factors):
        super().__init__(daemon=True)
        self.run_state, self.rng, self.stop, self.factors = run, rng, stop, factors
        self.admin = Client(port, token=token)
        self.victims = {name: (account, Client(port, account["key"])) for name, account in victims.items()}

    def shock(self, moves, advance):
        answer = self.admin.admin("POST", "/api/v5/sandbox/market/shock", {"moves": {k: str(v) for k, v in moves.items()},
                                                                       "advanceSeconds": str(advance)})
        if answer.get("code") != "0":
            self.run_state.fail(f"shock {moves} refused: {answer.get('code')} {answer.get('msg')}")
            return
        for coin, move in moves.items():
            self.factors[coin] = self.factors.get(coin, 1.0) * (1 + move)
        report = answer["data"][0]
        with self.run_state.lock:
            self.run_state.ticks += 1
            self.run_state.liquidated_reports += len(report.get("liquidated", []))

    def deposit(self, account, ccy, amount):
        run = self.run_state
        with run.lock:
            run.counter += 1
            # A unique amount identifies the deposit in the ledger.
            entry = [account["uid"], ccy, str(D(amount) + D(run.counter) / D(10 ** 6)), "doubt"]
            run.deposits.append(entry)
        answer = self.admin.admin("POST", "/api/v5/sandbox/deposit", {"uid": account["uid"], "ccy": ccy, "amt": entry[2]})
        with run.lock:
            if answer.get("code") == "0":
                entry[3] = "acked"
            else:
                run.deposits.remove(entry)
                run.fail(f"deposit refused: {answer}")

    def lever(self):
        """Opens (again) the positions of the over-levered accounts, topping their cash up: the largest size the
        pre-trade check accepts, found by shrinking from 50 times the equity."""
        for name, (account, client) in self.victims.items():
            positions = client.call("GET", "/api/v5/account/positions")["data"]
            details = {d["ccy"]: d for d in client.call("GET", "/api/v5/account/balance")["data"][0]["details"]}
            usdt = D(details.get("USDT", {}).get("cashBal", "0"))
            if name == "spotloan":
                if usdt < 0:
                    continue  # still borrowing: not liquidated yet
                if usdt < 12000:
                    self.deposit(account, "USDT", "12000")
                inst, unit = "ETH-USDT", D(3000)
            else:
                if positions:
                    continue
                if usdt < 3000:
                    self.deposit(account, "USDT", "3000" if name == "classic50x" else "12000")
                inst, unit = "BTC-USDT-SWAP", D(885)
            equity = max(usdt, D(3000))
            size = equity * 50 / unit
            for _ in range(12):
                sz = size.quantize(D("0.01") if inst == "ETH-USDT" else D(1), rounding=decimal.ROUND_DOWN)
                if sz <= 0:
                    break
                body = {"instId": inst, "tdMode": "cross", "side": "buy", "ordType": "market", "sz": str(sz)}
                if inst == "ETH-USDT":
                    body["tgtCcy"] = "base_ccy"
                if self.place(client, account, body):
                    break
                size *= D("0.75")

    def place(self, client, account, body):
        run = self.run_state
        cl = run.next_id("v")
        body = dict(body, clOrdId=cl)
        with run.lock:
            run.doubt.add(cl)
        answer = client.call("POST", "/api/v5/trade/order", body)
        item = (answer.get("data") or [{}])[0]
        with run.lock:
            run.doubt.discard(cl)
            if answer.get("code") == "0" and item.get("sCode") == "0" and item.get("ordId"):
                run.acked[cl] = (account["uid"], item["ordId"], body["instId"])
                return item
            run.refused[cl] = (account["uid"], item.get("sCode", answer.get("code")))
        return None

    def run(self):
        while not self.stop.is_set():
            try:
                roll = self.rng.random()
                if roll < 0.35:
                    answer = self.admin.admin("POST", "/api/v5/sandbox/market/step", {})
                    if answer.get("code") != "0":
                        self.run_state.fail(f"step refused: {answer}")
                    with self.run_state.lock:
                        self.run_state.ticks += 1
                        for report in answer.get("data", []):
                            self.run_state.liquidated_reports += len(report.get("liquidated", []))
                elif roll < 0.85:
                    # Small moves, pulled back toward the start, and up to two hours of market time.
                    moves = {}
                    for coin in ("BTC", "ETH"):
                        drift = (1.0 - self.factors.get(coin, 1.0)) * 0.3
                        moves[coin] = round(max(-0.05, min(0.05, drift + self.rng.uniform(-0.015, 0.015))), 6)
                    self.shock(moves, self.rng.choice([0, 0, 60, 600, 3600, 7200]))
                else:
                    self.lever()
                    coin = self.rng.choice(["BTC", "ETH"])
                    self.shock({coin: -round(self.rng.uniform(0.06, 0.12), 4)}, 0)
                time.sleep(self.rng.uniform(0.0, 0.05))
            except InDoubt:
                time.sleep(0.02)
            except Exception as error:
                if not self.stop.is_set():
                    self.run_state.fail(f"market: unexpected {type(error).__name__}: {error}")
                    time.sleep(0.05)
        self.admin.http.close()
        for _, client in self.victims.values():
            client.http.close()


# ----- the server -----

class Server:
    def __init__(self, pm, db, log, seed):
        self.pm, self.db, self.log, self.seed = pm, db, log, seed
        self.process = None
        self.port = None

    def start(self):
        self.port = free_port()
        # Random market mode so `step` moves prices; the server never ticks by itself (one tick a day), so between
        # our requests it is quiescent and the API can be compared with the database.
        self.process = subprocess.Popen(
            [self.pm, "serve", "--db", self.db, "--port", str(self.port), "--market-mode", "random", "--seed", str(self.seed),
             "--tick", "86400", "--step", "30", "--rate-limit", "5000"], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        probe = Http(self.port)
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"pm serve exited with {self.process.returncode}; see {self.log.name}")
            try:
                if probe.request("GET", "/api/v5/public/time", timeout=2).get("code") == "0":
                    probe.close()
                    return
            except InDoubt:
                time.sleep(0.1)
        raise SystemExit("pm serve did not start")

    def kill(self):
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()


def setup(run, server, token):
    admin = Client(server.port, token=token)
    accounts = {}

    def create(name, deposits):
        answer = admin.admin("POST", "/api/v5/sandbox/account/create",
                             {"label": name, "deposits": [{"ccy": c, "amt": a} for c, a in deposits]})
        assert answer.get("code") == "0", answer
        created = answer["data"][0]
        account = {"uid": created["uid"], "key": created}
        with run.lock:
            for c, a in deposits:
                run.deposits.append([created["uid"], c, a, "acked"])
        accounts[name] = account
        return account

    def to_pm(account):
        assert admin.admin("POST", "/api/v5/sandbox/acknowledge", {"uid": account["uid"]}).get("code") == "0"
        answer = Client(server.port, account["key"]).call("POST", "/api/v5/account/set-account-level", {"acctLv": "4"})
        assert answer.get("code") == "0", answer

    for name in ("pmA", "pmB"):
        to_pm(create(name, [("USDT", "400000"), ("USDC", "100000"), ("BTC", "4"), ("ETH", "40")]))
    for name in ("classicA", "classicB"):
        create(name, [("USDT", "300000"), ("USDC", "100000"), ("BTC", "3"), ("ETH", "30")])
    classic = create("classic50x", [("USDT", "3000")])
    answer = Client(server.port, classic["key"]).call("POST", "/api/v5/account/set-leverage",
                                                      {"instId": "BTC-USDT-SWAP", "lever": "50", "mgnMode": "cross"})
    assert answer.get("code") == "0", answer
    to_pm(create("pmlever", [("USDT", "12000")]))
    loan = create("spotloan", [("USDT", "12000")])
    to_pm(loan)
    assert Client(server.port, loan["key"]).call("POST", "/api/v5/account/set-auto-loan", {"autoLoan": True}).get("code") == "0"
    admin.http.close()
    return accounts


def pick_options(port, rng):
    """Options near the money with the nearest expiries (some expire during the run)."""
    chosen = []
    client = Client(port)
    for family, spot in (("BTC-USD", 88000), ("ETH-USD", 3000)):
        data = client.public(f"/api/v5/public/instruments?instType=OPTION&instFamily={family}")["data"]
        ids = sorted((i["instId"] for i in data), key=lambda i: (i.split("-")[2], abs(float(i.split("-")[3]) - spot)))
        expiries = sorted({i.split("-")[2] for i in ids})[:3]
        for expiry in expiries:
            near = [i for i in ids if i.split("-")[2] == expiry][:6]
            chosen += rng.sample(near, min(2, len(near)))
    client.http.close()
    return chosen


def main():
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)

    def option(name, default, kind):
        return kind(argv[argv.index(name) + 1]) if name in argv else default
    pm = os.path.abspath(argv[0])
    args = type("Args", (), {})()
    args.kills = option("--kills", 20, int)
    args.seed = option("--seed", random.SystemRandom().randrange(1, 2 ** 31), int)
    args.min_load = option("--min-load", 0.3, float)
    args.max_load = option("--max-load", 3.0, float)
    args.verbose = "--verbose" in argv
    args.keep = "--keep" in argv
    print(f"chaos: seed {args.seed}, {args.kills} kills (reproduce the load with --seed {args.seed})", flush=True)
    started = time.time()
    rng = random.Random(args.seed)
    run = Run(args)
    work = tempfile.mkdtemp(prefix="pm-chaos-")
    db = os.path.join(work, "sandbox.sqlite")
    log = open(os.path.join(work, "serve.log"), "ab")
    server = Server(pm, db, log, args.seed)
    server.start()
    token = open(db + ".admin-token").read().strip()
    accounts = setup(run, server, token)
    options = pick_options(server.port, rng)
    traders = ["pmA", "pmB", "classicA", "classicB"]
    victims = {name: accounts[name] for name in ("classic50x", "pmlever", "spotloan")}
    factors = {}
    kills = 0
    for epoch in range(args.kills + 1):
        stop = threading.Event()
        threads = [Trader(run, server.port, name, accounts[name], options, random.Random(rng.random()), stop) for name in traders]
        threads.append(Market(run, server.port, token, victims, random.Random(rng.random()), stop, factors))
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(args.min_load, args.max_load))
        if epoch < args.kills:
            server.kill()  # at an arbitrary instant of the load
            kills += 1
        else:
            stop.set()
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        if epoch == args.kills:
            break
        run.check_database(db, f"kill {kills}, before restart")
        server.start()
        snapshot = run.check_database(db, f"kill {kills}, after restart")
        run.check_api(server.port, token, accounts, snapshot, f"kill {kills}, after restart", sample=30)
        for coin in ("BTC", "ETH"):
            factors[coin] = float(snapshot["settings"].get(f"sim.factor.{coin}", "1"))
        with run.lock:
            print(f"kill {kills}: {len(run.acked)} orders acknowledged, {len(snapshot['fills'])} fills, "
                  f"{len(run.violations)} violations", flush=True)
    # The end: every acknowledged order through the API, then the database after a clean stop.
    snapshot = run.check_database(db, "end")
    run.check_api(server.port, token, accounts, snapshot, "end", sample=None)
    server.stop()
    snapshot = run.check_database(db, "end, stopped")
    liquidation_fills = sum(1 for f in snapshot["fills"] if f[7] != "normal")
    collateral = sum(1 for b in snapshot["bills"] if b[5] == "5" and b[7] == "1001")
    deficits = sum(1 for b in snapshot["bills"] if b[5] == "102")
    settlements = sum(1 for b in snapshot["bills"] if b[5] == "3")
    funding = sum(1 for b in snapshot["bills"] if b[5] == "8")
    interest = sum(1 for b in snapshot["bills"] if b[5] == "7")
    elapsed = time.time() - started
    print(f"chaos: seed {args.seed}; {kills} SIGKILLs; {len(run.acked)} orders acknowledged ({len(run.refused)} refused, "
          f"{len(run.doubt)} without an answer), {len(run.cancelled)} cancels acknowledged; {len(snapshot['fills'])} fills, "
          f"{len(snapshot['bills'])} bills; {run.ticks} market ticks; liquidations: {run.liquidated_reports} reported, "
          f"{liquidation_fills} liquidation fills, {collateral} collateral sales, {deficits} deficit covers; "
          f"{settlements} expiry settlements, {funding} funding and {interest} interest bills; elapsed {elapsed:.1f} s")
    if not liquidation_fills or not collateral or not deficits:
        run.fail("the load did not exercise every liquidation path (fills, collateral sale, deficit cover)")
    if len(run.acked) < 20 * max(1, kills):
        run.fail(f"only {len(run.acked)} orders were acknowledged; the load did not run")
    if run.violations:
        print(f"FAILED: {len(run.violations)} violations (work directory {work}):")
        for v in run.violations[:40]:
            print("  " + v)
        sys.exit(1)
    print("OK: every acknowledged order and fill present exactly once, every balance the sum of its bills, cash conserved")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"work directory kept: {work}")


if __name__ == "__main__":
    main()
