#!/usr/bin/env python3
"""Attack test of the sandbox: hostile requests against a real `pm serve`, each refused with the right HTTP status and
OKX error code, none changing the ledger, while a bystander client keeps being served.

Usage: attacks.py PM_BINARY [--keep]

  PM_BINARY  the `pm` executable (e.g. .build/debug/pm); it must know `pm serve --idle-timeout` (if not:
             swift build --product pm)
  --keep     keep the work directory (database, admin token, server log) and print its path

The script starts `pm serve --idle-timeout 2` on a free loopback port with a fresh database in a temporary directory,
creates through the admin endpoints account A (trade key and a read-only key), account B and a bystander account C,
each with USDT, and places one resting order of A (the "victim order", a limit buy far below the market). The server
is killed at exit, also on an exception or a signal. Standard library only; about 30 s on a 2-core machine.

Bystander: a thread that, for the whole run, alternates a signed GET /api/v5/account/balance (account C) and a public
GET /api/v5/public/time on one keep-alive connection, about 50 requests a second, recording every latency and every
failure (any transport error, any HTTP status but 200, any code but "0"). Required: zero failures over the whole run,
and p99 < 500 ms while the slow clients hang (attack 10). Its count, p50, p99 and max are reported overall and per
phase.

Ledger fingerprint, taken before and after every attack: read directly from SQLite (read-only connection, one
transaction): count and max id of "order", fill and bill; every order row (id, owner, clOrdId, state, filled size,
price, size, update time); every balance row; every position row; the counts of accounts and API keys. Plus
GET /api/v5/account/balance of A and B through the API (uTime fields dropped). Every attack must leave both unchanged,
except attack 1, which must add exactly the orders it acknowledged (and cancels them, so balances stay equal).

Attacks (expected answers are the codes the server implements, Sources/Sandbox/Auth/Authenticator.swift and
Sources/Sandbox/API/SandboxAPI.swift; authentication failures are HTTP 401 as on OKX):
   1 replay          a signed POST /api/v5/trade/order is accepted (200, sCode 0); the byte-identical request sent
                     again on a new connection is refused 401/50113 ("already received"); 8 identical copies of
                     another signed order sent concurrently: exactly one accepted, 7 refused 401/50113; a replayed
                     signed cancel and a replayed signed GET are refused 401/50113. Exactly one order stored per
                     signed request; both are cancelled afterwards.
   2 timestamps      timestamp now-31 s, now-1 h, now+31 s (window 30 s): 401/50102; not ISO 8601: 401/50112.
   3 forged sign     signed with a wrong secret, one character of a valid signature changed, the body changed after
                     signing (sz 1 -> 100), a signature of GET used for POST: 401/50113; empty sign header: 401/50106.
   4 credentials     wrong passphrase 401/50105; unknown key 401/50111; each header missing: key 50103, passphrase
                     50104, sign 50106, timestamp 50107; no header at all 50103. Admin endpoint (a deposit to A)
                     without the admin token or with a wrong one: 401/50113.
   5 read-only key   A's read-only key can read (200/0) but placing an order, cancelling the victim order and
                     setting leverage are refused 401/50120; the victim order stays live.
   6 cross-account   B reads A's order by ordId and by clOrdId: 200/51603 with empty data; B cancels it by ordId,
                     by clOrdId and in a batch: 200, code 1, sCode 51400; A's order is in none of B's lists (pending,
                     fills); the order is still live for A, via the API and in the database.
   7 oversized       a 2 MiB POST /api/v5/trade/order, signed and unsigned, and a 2 MiB chunked body: 413/50006;
                     a 100 KB header value: a 4xx or the connection closed within idle-timeout + 3 s; server alive.
   8 deep JSON       100,000 '[' (and 100,000 '{"a":') signed to /api/v5/trade/order, to /trade/batch-orders, and
                     unsigned to the public /api/v5/public/position-builder: 400/50002 (the parser stops at 64
                     levels); server alive.
   9 malformed HTTP  on raw sockets, as the first request of a connection: garbage bytes, Content-Length abc / -1 /
                     duplicated / 10^23, a bad chunk size, Content-Length with Transfer-Encoding (smuggling), HTTP/9.9,
                     NUL bytes in the request line; and garbage as the second request of a keep-alive connection.
                     Each must be answered with a 4xx (no 5xx) or its connection closed within idle-timeout + 3 s.
                     Content-Length + Transfer-Encoding as the second request of a connection: exactly one 4xx answer
                     and the connection closed (the request smuggled in the body is never answered). Server alive.
  10 slow clients    200 sockets sending a request head that never ends, one byte per 0.5 s; 20 sending a head with
                     Content-Length: 1000 and 10 body bytes, then nothing ("stalled body"); 10 sending one more body
                     byte every 0.5 s ("trickling body", reported only). Required: all partial-head and stalled-body
                     sockets closed by the server within 10 s (it should be ~2 s = --idle-timeout), and the bystander
                     zero failures and p99 < 500 ms meanwhile. Close times are measured and reported.
  11 many conns      500 idle TCP connections opened at once and held 3 s: a fresh client is still answered, the
                     bystander has zero failures; how many the server closed by itself is reported; then closed.
Final: the server process is still alive and answers; zero bystander failures overall.

Output: a table (attack, check, expected, got, PASS/FAIL/info), then one JSON line with the figures. Exit status 0
only if every check passes.
"""
import base64, datetime, hashlib, hmac, http.client, json, math, os, random, resource, selectors, shutil, signal, socket
import sqlite3, subprocess, sys, tempfile, threading, time

IDLE_TIMEOUT = 2.0
WINDOW = 30
MARGIN = 3.0                # seconds beyond the idle timeout a hostile connection may live
SLOW_CLOSE_LIMIT = 10.0     # partial-head sockets must be closed by then
P99_LIMIT_MS = 500.0
INST = "BTC-USDT-SWAP"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def iso_ts(offset=0.0):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=offset)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def okx_sign(secret, ts, method, path, body=b""):
    message = ts.encode() + method.encode() + path.encode() + body
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def encode(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def auth_headers(key, method, path, body=b"", ts=None, secret=None, passphrase=None, sign=None, drop=()):
    ts = ts if ts is not None else iso_ts()
    headers = {
        "OK-ACCESS-KEY": key["apiKey"],
        "OK-ACCESS-SIGN": sign if sign is not None else okx_sign(secret or key["secretKey"], ts, method, path, body),
        "OK-ACCESS-TIMESTAMP": ts,
        "OK-ACCESS-PASSPHRASE": passphrase if passphrase is not None else key["passphrase"],
        "Content-Type": "application/json",
    }
    for name in drop:
        headers.pop(name, None)
    return headers


def request(port, method, path, body=None, headers=None, timeout=10):
    """One request on a fresh connection: (HTTP status, parsed JSON or None)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        try:
            return response.status, json.loads(data)
        except ValueError:
            return response.status, None
    finally:
        connection.close()


def signed(port, key, method, path, obj=None, **options):
    body = encode(obj) if obj is not None else b""
    return request(port, method, path, body if obj is not None else None, auth_headers(key, method, path, body, **options))


def raw_request(port, method, path, headers, body=b"", close=True):
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"] + [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def parse_response(buffer):
    """(status, JSON or None, complete) of the first response in `buffer`, or None without a complete head."""
    head, sep, rest = buffer.partition(b"\r\n\r\n")
    if not sep:
        return None
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return (0, None, True)
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                length = int(value.strip())
            except ValueError:
                length = 0
    if len(rest) < length:
        return (status, None, False)
    try:
        data = json.loads(rest[:length]) if length else None
    except ValueError:
        data = None
    return (status, data, True)


def raw_exchange(port, data, timeout=5.0, send_in_thread=False, prelude=None):
    """Sends raw bytes on a new connection (after `prelude`, a complete request whose response is read first) and
    waits for one response. Returns (outcome, status, json, seconds): outcome is 'response', 'closed' (EOF or reset
    before any response) or 'timeout' (neither answer nor close within `timeout`)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    started = time.time()
    sender = None
    try:
        if prelude is not None:
            sock.sendall(prelude)
            buffer = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return ("closed", None, None, time.time() - started)
                buffer += chunk
                parsed = parse_response(buffer)
                if parsed and parsed[2]:
                    break
            started = time.time()

        def send():
            try:
                sock.sendall(data)
            except OSError:
                pass  # the server may answer (and close) before reading everything
        if send_in_thread:
            sender = threading.Thread(target=send, daemon=True)
            sender.start()
        else:
            send()
        buffer = b""
        deadline = started + timeout
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                return ("timeout", None, None, time.time() - started)
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                return ("timeout", None, None, time.time() - started)
            except OSError:
                chunk = b""
            if not chunk:
                parsed = parse_response(buffer)
                if parsed:
                    return ("response", parsed[0], parsed[1], time.time() - started)
                return ("closed", None, None, time.time() - started)
            buffer += chunk
            parsed = parse_response(buffer)
            if parsed and parsed[2]:
                return ("response", parsed[0], parsed[1], time.time() - started)
    finally:
        sock.close()
        if sender is not None:
            sender.join(timeout=2)


def raw_collect(port, data, prelude, timeout=5.0):
    """Sends `prelude` (one complete request, its answer read) then `data` on the same connection and reads everything
    until the server closes or `timeout`: (statuses of the responses found, 'closed' or 'timeout', seconds)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        sock.sendall(prelude)
        buffer = b""
        while not (parse_response(buffer) or (0, 0, False))[2]:
            chunk = sock.recv(65536)
            if not chunk:
                return ([], "closed", 0.0)
            buffer += chunk
        started = time.time()
        sock.sendall(data)
        buffer = b""
        end = "closed"
        while True:
            remaining = started + timeout - time.time()
            if remaining <= 0:
                end = "timeout"
                break
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                end = "timeout"
                break
            except OSError:
                break
            if not chunk:
                break
            buffer += chunk
        statuses = []
        while buffer:
            parsed = parse_response(buffer)
            if not parsed:
                break
            statuses.append(parsed[0])
            head, _, rest = buffer.partition(b"\r\n\r\n")
            length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n")[1:] if l.lower().startswith(b"content-length:")), 0)
            buffer = rest[length:]
        return (statuses, end, time.time() - started)
    finally:
        sock.close()


def got_of(status, data, item=False):
    code = data.get("code") if isinstance(data, dict) else "-"
    text = f"{status}/{code}"
    if item and isinstance(data, dict) and data.get("data"):
        text += f"/{data['data'][0].get('sCode')}"
    return text


# ----- the server -----

class Server:
    def __init__(self, pm, work):
        self.pm, self.work = pm, work
        self.db = os.path.join(work, "sandbox.sqlite")
        self.log = open(os.path.join(work, "serve.log"), "ab")
        self.port = free_port()
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [self.pm, "serve", "--db", self.db, "--port", str(self.port), "--idle-timeout", str(IDLE_TIMEOUT),
             "--timestamp-window", str(WINDOW)], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"pm serve exited with {self.process.returncode}; see {self.log.name}")
            try:
                if request(self.port, "GET", "/api/v5/public/time", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("pm serve did not start")

    def alive(self):
        if self.process is None or self.process.poll() is not None:
            return False
        try:
            status, data = request(self.port, "GET", "/api/v5/public/time", timeout=5)
            return status == 200 and data.get("code") == "0"
        except OSError:
            return False

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# ----- the bystander -----

class Bystander(threading.Thread):
    def __init__(self, port, key):
        super().__init__(daemon=True)
        self.port, self.key = port, key
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.records = []   # (start, latency seconds, ok, what, error)

    def run(self):
        connection = None
        turn = 0
        while not self.stop.is_set():
            turn += 1
            what = "balance" if turn % 2 else "time"
            path = "/api/v5/account/balance" if what == "balance" else "/api/v5/public/time"
            headers = auth_headers(self.key, "GET", path) if what == "balance" else {}
            start = time.time()
            t0 = time.perf_counter()
            error = ""
            try:
                if connection is None:
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                data = json.loads(response.read())
                ok = response.status == 200 and data.get("code") == "0"
                if not ok:
                    error = f"{response.status} {data.get('code')} {data.get('msg')}"
            except Exception as failure:  # any transport or parse error is a failure of the server to serve
                ok = False
                error = f"{type(failure).__name__}: {failure}"
                if connection is not None:
                    connection.close()
                connection = None
            latency = time.perf_counter() - t0
            with self.lock:
                self.records.append((start, latency, ok, what, error))
            time.sleep(0.02)
        if connection is not None:
            connection.close()

    def stats(self, t0=None, t1=None):
        with self.lock:
            records = [r for r in self.records if (t0 is None or r[0] >= t0) and (t1 is None or r[0] <= t1)]
        latencies = sorted(r[1] * 1000 for r in records)
        failures = [r for r in records if not r[2]]
        n = len(latencies)

        def pct(p):
            if not n:
                return None
            return round(latencies[min(n - 1, max(0, math.ceil(p * n) - 1))], 2)  # nearest rank
        return {"count": n, "failures": len(failures), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                "max_ms": round(latencies[-1], 2) if n else None,
                "first_failures": [f"{r[3]}: {r[4]}" for r in failures[:5]]}


# ----- the ledger -----

def ledger(db):
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    connection.isolation_level = None
    try:
        connection.execute("BEGIN")
        fp = {}
        for table, key in (('"order"', "ordId"), ("fill", "tradeId"), ("bill", "billId")):
            fp[table.strip('"') + ".count/max"] = tuple(connection.execute(f"SELECT COUNT(*), MAX({key}) FROM {table}").fetchone())
        fp["orders"] = {row[0]: tuple(row[1:]) for row in connection.execute(
            'SELECT ordId, uid, clOrdId, state, accFillSz, px, sz, uTime FROM "order"')}
        fp["balances"] = tuple(connection.execute("SELECT uid, ccy, cashBal FROM balance ORDER BY uid, ccy"))
        fp["positions"] = tuple(connection.execute("SELECT uid, instId, pos, avgPx FROM position ORDER BY uid, instId"))
        fp["accounts/keys"] = (connection.execute("SELECT COUNT(*) FROM account").fetchone()[0],
                               connection.execute('SELECT COUNT(*) FROM "apiKey"').fetchone()[0])
        connection.execute("COMMIT")
        return fp
    finally:
        connection.close()


def strip_times(value):
    if isinstance(value, dict):
        return {k: strip_times(v) for k, v in value.items() if k != "uTime"}
    if isinstance(value, list):
        return [strip_times(v) for v in value]
    return value


def diff(before, after):
    return [k for k in before if before[k] != after.get(k)]


# ----- the run -----

class Attacks:
    def __init__(self, server, accounts, bystander):
        self.server, self.port, self.db = server, server.port, server.db
        self.A, self.B, self.RO = accounts["A"], accounts["B"], accounts["A-read"]
        self.bystander = bystander
        self.rows = []
        self.figures = {}
        self.phases = {}
        self.victim = None  # (ordId, clOrdId) of A's resting order
        self.attack = ""

    def check(self, what, expected, got, ok=None):
        ok = (expected == got) if ok is None else ok
        self.rows.append((self.attack, what, str(expected), str(got), "PASS" if ok else "FAIL"))
        return ok

    def info(self, what, got):
        self.rows.append((self.attack, what, "(report)", str(got), "info"))

    def api_balances(self):
        out = {}
        for name, key in (("A", self.A), ("B", self.B)):
            status, data = signed(self.port, key, "GET", "/api/v5/account/balance")
            out[name] = strip_times(data.get("data")) if status == 200 and data.get("code") == "0" else f"{status} {data}"
        return out

    def fingerprints(self):
        return ledger(self.db), self.api_balances()

    def ledger_unchanged(self, before):
        db_after, api_after = self.fingerprints()
        changed = diff(before[0], db_after)
        self.check("ledger (SQLite) unchanged", "no change", "no change" if not changed else f"changed: {changed}")
        self.check("balances of A and B (API) unchanged", "no change",
                   "no change" if api_after == before[1] else f"A/B differ: {api_after}")

    def alive(self):
        return self.check("server alive (public/time 200/0)", True, self.server.alive())

    def run_attack(self, name, function):
        self.attack = name
        t0 = time.time()
        try:
            function()
        except Exception as error:  # a crash of an attack is a failed check, and the run goes on
            self.check("attack ran without exception", "no exception", f"{type(error).__name__}: {error}")
        self.phases[name] = (t0, time.time())

    def order_body(self, cl, px="10000", sz="1"):
        return {"instId": INST, "tdMode": "cross", "side": "buy", "ordType": "limit", "px": px, "sz": sz, "clOrdId": cl}

    # 0. setup: A's victim order
    def place_victim(self):
        status, data = signed(self.port, self.A, "POST", "/api/v5/trade/order", self.order_body("atkvictim"))
        assert status == 200 and data["code"] == "0", (status, data)
        self.victim = (data["data"][0]["ordId"], "atkvictim")

    # 1. replay
    def a1_replay(self):
        before = self.fingerprints()
        path = "/api/v5/trade/order"
        body = encode(self.order_body("atkreplay1"))
        wire = raw_request(self.port, "POST", path, auth_headers(self.A, "POST", path, body), body)
        outcome, status, data, _ = raw_exchange(self.port, wire)
        self.check("signed order accepted", "200/0/0", got_of(status, data, item=True))
        first = data["data"][0]["ordId"] if data and data.get("code") == "0" else None
        outcome, status, data, _ = raw_exchange(self.port, wire)
        self.check("byte-identical request again refused", "401/50113", got_of(status, data))

        # Eight identical copies at once.
        body2 = encode(self.order_body("atkreplay2"))
        wire2 = raw_request(self.port, "POST", path, auth_headers(self.A, "POST", path, body2), body2)
        barrier = threading.Barrier(8)
        answers = []

        def copy():
            barrier.wait()
            answers.append(raw_exchange(self.port, wire2))
        threads = [threading.Thread(target=copy) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(got_of(a[1], a[2], item=a[2] is not None and a[2].get("code") == "0") for a in answers)
        self.check("8 concurrent copies: one accepted, 7 refused", sorted(["200/0/0"] + ["401/50113"] * 7), codes)
        second = next((a[2]["data"][0]["ordId"] for a in answers if a[2] and a[2].get("code") == "0"), None)

        after = ledger(self.db)
        new = sorted(set(after["orders"]) - set(before[0]["orders"]))
        expected_new = sorted(int(x) for x in (first, second) if x)
        self.check("exactly the acknowledged orders stored (one per signed request)", expected_new, new)
        stored_cl = sorted(after["orders"][o][1] for o in new)
        self.check("their clOrdIds", ["atkreplay1", "atkreplay2"], stored_cl)
        self.check("order count +2, nothing else new", (before[0]["order.count/max"][0] + 2, max(new) if new else None),
                   after["order.count/max"])

        # Cancel both; a replayed cancel and a replayed GET are refused too.
        cancel_wire = None
        for ord_id in (first, second):
            if not ord_id:
                continue
            cancel_body = encode({"instId": INST, "ordId": ord_id})
            cpath = "/api/v5/trade/cancel-order"
            cancel_wire = raw_request(self.port, "POST", cpath, auth_headers(self.A, "POST", cpath, cancel_body), cancel_body)
            outcome, status, data, _ = raw_exchange(self.port, cancel_wire)
            self.check(f"cancel of {ord_id} accepted", "200/0/0", got_of(status, data, item=True))
        if cancel_wire:
            outcome, status, data, _ = raw_exchange(self.port, cancel_wire)
            self.check("replayed cancel refused", "401/50113", got_of(status, data))
        gpath = "/api/v5/account/balance"
        get_wire = raw_request(self.port, "GET", gpath, auth_headers(self.A, "GET", gpath))
        first_get = raw_exchange(self.port, get_wire)
        again = raw_exchange(self.port, get_wire)
        self.check("signed GET, then the same bytes again", "200/0 then 401/50113",
                   f"{got_of(first_get[1], first_get[2])} then {got_of(again[1], again[2])}")

        final = ledger(self.db)
        self.check("both orders canceled in the database", ["canceled", "canceled"], [final["orders"][o][2] for o in new])
        others_changed = [k for k in diff(before[0], final) if k not in ("orders", "order.count/max")]
        old_rows_changed = [o for o in before[0]["orders"] if before[0]["orders"][o] != final["orders"].get(o)]
        self.check("no fill, bill, balance, position or other order changed", "no change",
                   "no change" if not others_changed and not old_rows_changed else f"changed: {others_changed} {old_rows_changed}")
        api_after = self.api_balances()
        self.check("balances of A and B (API) unchanged", "no change",
                   "no change" if api_after == before[1] else f"A/B differ: {api_after}")

    # 2. timestamps
    def a2_timestamps(self):
        before = self.fingerprints()
        path = "/api/v5/trade/order"
        for label, offset, expected in (("now - 31 s", -31, "401/50102"), ("now - 1 h", -3600, "401/50102"),
                                        ("now + 31 s", 31, "401/50102")):
            status, data = signed(self.port, self.A, "POST", path, self.order_body("atkts"), ts=iso_ts(offset))
            self.check(f"timestamp {label}", expected, got_of(status, data))
        for label, ts in (("'2026-01-01 00:00:00'", "2026-01-01 00:00:00"), ("unix ms", str(int(time.time() * 1000)))):
            status, data = signed(self.port, self.A, "POST", path, self.order_body("atkts"), ts=ts)
            self.check(f"timestamp {label} (not ISO 8601)", "401/50112", got_of(status, data))
        self.ledger_unchanged(before)

    # 3. forged signatures
    def a3_forged(self):
        before = self.fingerprints()
        path = "/api/v5/trade/order"
        body = encode(self.order_body("atkforge"))
        status, data = request(self.port, "POST", path, body, auth_headers(self.A, "POST", path, body, secret="0" * 32))
        self.check("signed with a wrong secret", "401/50113", got_of(status, data))
        ts = iso_ts()
        good = okx_sign(self.A["secretKey"], ts, "POST", path, body)
        flipped = ("B" if good[0] != "B" else "C") + good[1:]
        status, data = request(self.port, "POST", path, body, auth_headers(self.A, "POST", path, body, ts=ts, sign=flipped))
        self.check("one character of a valid signature changed", "401/50113", got_of(status, data))
        tampered = encode(self.order_body("atkforge", sz="100"))
        status, data = request(self.port, "POST", path, tampered, auth_headers(self.A, "POST", path, body))
        self.check("body changed after signing (sz 1 -> 100)", "401/50113", got_of(status, data))
        ts = iso_ts()
        get_sign = okx_sign(self.A["secretKey"], ts, "GET", path, b"")
        status, data = request(self.port, "POST", path, body, auth_headers(self.A, "POST", path, body, ts=ts, sign=get_sign))
        self.check("signature of a GET used for a POST", "401/50113", got_of(status, data))
        status, data = request(self.port, "POST", path, body, auth_headers(self.A, "POST", path, body, sign=""))
        self.check("empty OK-ACCESS-SIGN", "401/50106", got_of(status, data))
        self.ledger_unchanged(before)

    # 4. credentials and headers
    def a4_credentials(self):
        before = self.fingerprints()
        path = "/api/v5/trade/order"
        body = encode(self.order_body("atkcred"))
        status, data = request(self.port, "POST", path, body, auth_headers(self.A, "POST", path, body, passphrase="Wrong-pass1!"))
        self.check("wrong passphrase", "401/50105", got_of(status, data))
        status, data = request(self.port, "POST", path, body, auth_headers(self.B, "POST", path, body, passphrase=self.A["passphrase"]))
        self.check("B's key with A's passphrase", "401/50105", got_of(status, data))
        unknown = dict(self.A, apiKey="00000000-0000-0000-0000-000000000000")
        status, data = request(self.port, "POST", path, body, auth_headers(unknown, "POST", path, body))
        self.check("unknown key", "401/50111", got_of(status, data))
        for header, code in (("OK-ACCESS-KEY", "50103"), ("OK-ACCESS-PASSPHRASE", "50104"), ("OK-ACCESS-SIGN", "50106"),
                             ("OK-ACCESS-TIMESTAMP", "50107")):
            status, data = request(self.port, "POST", path, body, auth_headers(self.A, "POST", path, body, drop=(header,)))
            self.check(f"missing {header}", f"401/{code}", got_of(status, data))
        status, data = request(self.port, "POST", path, body, {"Content-Type": "application/json"})
        self.check("no authentication header at all", "401/50103", got_of(status, data))
        deposit = encode({"uid": self.A["uid"], "ccy": "USDT", "amt": "1000000"})
        status, data = request(self.port, "POST", "/api/v5/sandbox/deposit", deposit, {"Content-Type": "application/json"})
        self.check("admin deposit without the admin token", "401/50113", got_of(status, data))
        status, data = request(self.port, "POST", "/api/v5/sandbox/deposit", deposit,
                               {"Content-Type": "application/json", "X-Sandbox-Admin-Token": "0" * 48})
        self.check("admin deposit with a wrong admin token", "401/50113", got_of(status, data))
        status, data = request(self.port, "POST", "/api/v5/sandbox/account/create", encode({"label": "x"}),
                               {"Content-Type": "application/json", "X-Sandbox-Admin-Token": ""})
        self.check("admin account creation with an empty token", "401/50113", got_of(status, data))
        self.ledger_unchanged(before)

    # 5. read-only key
    def a5_read_only(self):
        before = self.fingerprints()
        status, data = signed(self.port, self.RO, "GET", "/api/v5/account/balance")
        self.check("read-only key reads its balance", "200/0", got_of(status, data))
        status, data = signed(self.port, self.RO, "POST", "/api/v5/trade/order", self.order_body("atkro"))
        self.check("read-only key places an order", "401/50120", got_of(status, data))
        status, data = signed(self.port, self.RO, "POST", "/api/v5/trade/cancel-order", {"instId": INST, "ordId": self.victim[0]})
        self.check("read-only key cancels the victim order", "401/50120", got_of(status, data))
        status, data = signed(self.port, self.RO, "POST", "/api/v5/trade/batch-orders", [self.order_body("atkro2")])
        self.check("read-only key places a batch", "401/50120", got_of(status, data))
        status, data = signed(self.port, self.RO, "POST", "/api/v5/account/set-leverage",
                              {"instId": INST, "lever": "50", "mgnMode": "cross"})
        self.check("read-only key sets leverage", "401/50120", got_of(status, data))
        status, data = signed(self.port, self.A, "GET", f"/api/v5/trade/order?instId={INST}&ordId={self.victim[0]}")
        state = data["data"][0]["state"] if status == 200 and data.get("code") == "0" else got_of(status, data)
        self.check("victim order still live", "live", state)
        self.ledger_unchanged(before)

    # 6. cross-account
    def a6_cross_account(self):
        before = self.fingerprints()
        ord_id, cl = self.victim
        status, data = signed(self.port, self.B, "GET", f"/api/v5/trade/order?instId={INST}&ordId={ord_id}")
        self.check("B reads A's order by ordId", "200/51603 data=[]", f"{got_of(status, data)} data={json.dumps(data.get('data'))}")
        status, data = signed(self.port, self.B, "GET", f"/api/v5/trade/order?instId={INST}&clOrdId={cl}")
        self.check("B reads A's order by clOrdId", "200/51603 data=[]", f"{got_of(status, data)} data={json.dumps(data.get('data'))}")
        status, data = signed(self.port, self.B, "POST", "/api/v5/trade/cancel-order", {"instId": INST, "ordId": ord_id})
        self.check("B cancels A's order by ordId", "200/1/51400", got_of(status, data, item=True))
        status, data = signed(self.port, self.B, "POST", "/api/v5/trade/cancel-order", {"instId": INST, "clOrdId": cl})
        self.check("B cancels A's order by clOrdId", "200/1/51400", got_of(status, data, item=True))
        status, data = signed(self.port, self.B, "POST", "/api/v5/trade/cancel-batch-orders", [{"instId": INST, "ordId": ord_id}])
        self.check("B cancels A's order in a batch", "200/1/51400", got_of(status, data, item=True))
        status, data = signed(self.port, self.B, "GET", "/api/v5/trade/orders-pending")
        listed = [o["ordId"] for o in data.get("data", [])] if status == 200 else None
        self.check("A's order not in B's pending orders", "200/0 without it",
                   f"{got_of(status, data)} {'with it' if listed is None or ord_id in listed else 'without it'}")
        status, data = signed(self.port, self.B, "GET", f"/api/v5/trade/fills?ordId={ord_id}")
        self.check("B's fills of A's ordId", "200/0 data=[]", f"{got_of(status, data)} data={json.dumps(data.get('data'))}")
        status, data = signed(self.port, self.A, "GET", f"/api/v5/trade/order?instId={INST}&ordId={ord_id}")
        state = data["data"][0]["state"] if status == 200 and data.get("code") == "0" else got_of(status, data)
        self.check("A's order still live (API)", "live", state)
        self.check("A's order still live (database)", "live", ledger(self.db)["orders"].get(int(ord_id), (None,) * 3)[2])
        self.ledger_unchanged(before)

    # 7. oversized
    def a7_oversized(self):
        before = self.fingerprints()
        path = "/api/v5/trade/order"
        big = b'{"instId":"' + b"x" * (2 << 20) + b'"}'
        wire = raw_request(self.port, "POST", path, auth_headers(self.A, "POST", path, big), big)
        outcome, status, data, _ = raw_exchange(self.port, wire, timeout=15, send_in_thread=True)
        self.check("2 MiB body, signed", "413/50006", got_of(status, data) if outcome == "response" else outcome)
        wire = raw_request(self.port, "POST", path, {"Content-Type": "application/json"}, big)
        outcome, status, data, _ = raw_exchange(self.port, wire, timeout=15, send_in_thread=True)
        self.check("2 MiB body, no authentication", "413/50006", got_of(status, data) if outcome == "response" else outcome)
        chunks = b"".join(b"10000\r\n" + b"y" * 0x10000 + b"\r\n" for _ in range(32)) + b"0\r\n\r\n"
        head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
        outcome, status, data, _ = raw_exchange(self.port, head + chunks, timeout=15, send_in_thread=True)
        self.check("2 MiB chunked body", "413/50006", got_of(status, data) if outcome == "response" else outcome)
        huge = f"GET /api/v5/public/time HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {'h' * 100_000}\r\n\r\n".encode()
        outcome, status, data, seconds = raw_exchange(self.port, huge, timeout=IDLE_TIMEOUT + MARGIN, send_in_thread=True)
        got = f"{status}" if outcome == "response" else f"{outcome} after {seconds:.1f} s"
        self.check(f"100 KB header value: 4xx or closed within {IDLE_TIMEOUT + MARGIN:.0f} s", "4xx or closed", got,
                   ok=(outcome == "closed") or (outcome == "response" and 400 <= status < 500))
        huge2 = f"GET /api/v5/public/time HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {'h' * 100_000}\r\n\r\n".encode()
        prelude = b"GET /api/v5/public/time HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        outcome, status, data, seconds = raw_exchange(self.port, huge2, timeout=IDLE_TIMEOUT + MARGIN, prelude=prelude)
        got = f"{status}" if outcome == "response" else f"{outcome} after {seconds:.1f} s"
        self.check("100 KB header as 2nd request of a connection: 4xx or closed", "4xx or closed", got,
                   ok=(outcome == "closed") or (outcome == "response" and 400 <= status < 500))
        self.alive()
        self.ledger_unchanged(before)

    # 8. deep JSON
    def a8_deep_json(self):
        before = self.fingerprints()
        for label, body in (("100,000 '['", b"[" * 100_000), ("100,000 '{\"a\":'", b'{"a":' * 100_000)):
            for path in ("/api/v5/trade/order", "/api/v5/trade/batch-orders"):
                status, data = request(self.port, "POST", path, body, auth_headers(self.A, "POST", path, body), timeout=15)
                self.check(f"{label} signed to {path.rsplit('/', 1)[1]}", "400/50002", got_of(status, data))
            status, data = request(self.port, "POST", "/api/v5/public/position-builder", body,
                                   {"Content-Type": "application/json"}, timeout=15)
            self.check(f"{label} to public position-builder", "400/50002", got_of(status, data))
        self.alive()
        self.ledger_unchanged(before)

    # 9. malformed HTTP
    def a9_malformed(self):
        before = self.fingerprints()
        rng = random.Random(9)
        host = b"Host: 127.0.0.1\r\n"
        smuggled = b"0\r\n\r\nGET /api/v5/sandbox/state HTTP/1.1\r\n" + host + b"\r\n"
        probes = [
            ("garbage bytes", bytes(rng.randrange(256) for _ in range(512)) + b"\r\n\r\n", None),
            ("Content-Length: abc", b"POST /api/v5/trade/order HTTP/1.1\r\n" + host + b"Content-Length: abc\r\n\r\n{}", None),
            ("Content-Length: -1", b"POST /api/v5/trade/order HTTP/1.1\r\n" + host + b"Content-Length: -1\r\n\r\n{}", None),
            ("two different Content-Length", b"POST /api/v5/trade/order HTTP/1.1\r\n" + host
             + b"Content-Length: 2\r\nContent-Length: 5\r\n\r\n{}", None),
            ("Content-Length: 10^23", b"POST /api/v5/trade/order HTTP/1.1\r\n" + host
             + b"Content-Length: 100000000000000000000000\r\n\r\n{}", None),
            ("bad chunk size", b"POST /api/v5/trade/order HTTP/1.1\r\n" + host
             + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", None),
            ("Content-Length + Transfer-Encoding (smuggling)", b"POST /api/v5/public/time HTTP/1.1\r\n" + host
             + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n" % len(smuggled) + smuggled, None),
            ("HTTP/9.9", b"GET /api/v5/public/time HTTP/9.9\r\n" + host + b"\r\n", None),
            ("NUL bytes in the request line", b"GET /api/v5/\x00\x00public/time HTTP/1.1\r\n" + host + b"\r\n", None),
            ("garbage as 2nd request of a keep-alive connection", bytes(rng.randrange(256) for _ in range(512)) + b"\r\n\r\n",
             b"GET /api/v5/public/time HTTP/1.1\r\n" + host + b"\r\n"),
        ]
        results = [None] * len(probes)

        def run(i, data, prelude):
            try:
                results[i] = raw_exchange(self.port, data, timeout=IDLE_TIMEOUT + MARGIN, prelude=prelude)
            except OSError as error:
                results[i] = ("closed", None, None, 0.0) if isinstance(error, ConnectionError) else ("error " + str(error), None, None, 0.0)
        threads = [threading.Thread(target=run, args=(i, p[1], p[2])) for i, p in enumerate(probes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for (label, _, _), (outcome, status, data, seconds) in zip(probes, results):
            if outcome == "response":
                got = f"{status}" + (f"/{data.get('code')}" if isinstance(data, dict) else "")
                ok = 400 <= status < 500
            else:
                got = f"{outcome} after {seconds:.1f} s"
                ok = outcome == "closed"
            self.check(f"{label}: 4xx or closed within {IDLE_TIMEOUT + MARGIN:.0f} s", "4xx or closed", got, ok=ok)
        smuggle = (b"POST /api/v5/public/time HTTP/1.1\r\n" + host + b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % len(smuggled) + smuggled)
        statuses, end, seconds = raw_collect(self.port, smuggle, b"GET /api/v5/public/time HTTP/1.1\r\n" + host + b"\r\n",
                                             timeout=IDLE_TIMEOUT + MARGIN)
        self.check("CL + TE smuggling as 2nd request: one 4xx, the smuggled request unanswered", "[4xx], closed",
                   f"{statuses}, {end}", ok=len(statuses) == 1 and 400 <= statuses[0] < 500 and end == "closed")
        self.alive()
        self.ledger_unchanged(before)

    # 10. slow clients
    def a10_slow(self):
        before = self.fingerprints()
        t_phase = time.time()
        selector = selectors.DefaultSelector()
        head = b"GET /api/v5/public/time HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Slow: "
        body_head = (b"POST /api/v5/trade/order HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n")
        slots = []

        def open_slot(kind):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            slot = {"kind": kind, "sock": sock, "opened": time.time(), "closed": None, "sent": 0, "received": b"",
                    "last_sent": time.time()}
            if kind == "head":
                sock.sendall(head[:1])
                slot["sent"] = 1
            else:
                sock.sendall(body_head + b'{"instId":')  # the head and 10 body bytes
                slot["last_sent"] = time.time()
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ, slot)
            slots.append(slot)

        for _ in range(200):
            open_slot("head")
        for _ in range(20):
            open_slot("stalled")
        for _ in range(10):
            open_slot("trickle")
        opened_in = time.time() - t_phase

        def close_slot(slot, now):
            if slot["closed"] is None:
                slot["closed"] = now
                selector.unregister(slot["sock"])

        deadline = time.time() + SLOW_CLOSE_LIMIT
        minimum = time.time() + IDLE_TIMEOUT + 2.5   # long enough to see the trickling sockets outlive the timeout
        next_send = time.time() + 0.5
        while True:
            now = time.time()
            if now >= next_send:
                next_send += 0.5
                for slot in slots:
                    if slot["closed"] is not None or slot["kind"] == "stalled":
                        continue
                    byte = head[slot["sent"]:slot["sent"] + 1] if slot["kind"] == "head" and slot["sent"] < len(head) else b"a"
                    try:
                        slot["sock"].send(byte)
                        slot["sent"] += 1
                        slot["last_sent"] = now
                    except BlockingIOError:
                        pass
                    except OSError:
                        close_slot(slot, now)
            for key, _ in selector.select(timeout=0.05):
                slot = key.data
                try:
                    chunk = slot["sock"].recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if chunk:
                    slot["received"] += chunk
                else:
                    close_slot(slot, time.time())
            watched = [s for s in slots if s["kind"] in ("head", "stalled")]
            if (all(s["closed"] is not None for s in watched) and now >= minimum) or now >= deadline:
                break
        t_end = time.time()
        for slot in slots:
            slot["sock"].close()
        selector.close()

        def summary(kind, since):
            group = [s for s in slots if s["kind"] == kind]
            times = sorted(s["closed"] - s[since] for s in group if s["closed"] is not None)
            answered = sum(1 for s in group if s["received"])
            return {"sockets": len(group), "closed_by_server": len(times),
                    "close_s_min": round(times[0], 2) if times else None,
                    "close_s_median": round(times[len(times) // 2], 2) if times else None,
                    "close_s_max": round(times[-1], 2) if times else None,
                    "answered": answered,
                    "first_answer": next((s["received"][:60].decode(errors="replace") for s in group if s["received"]), ""),
                    "observed_s": round(t_end - t_phase, 2)}
        heads, stalled, trickle = summary("head", "opened"), summary("stalled", "last_sent"), summary("trickle", "opened")
        by = self.bystander.stats(t_phase, t_end)
        self.figures["slowloris"] = {"partial_head": heads, "stalled_body": stalled, "trickling_body": trickle,
                                     "bystander": {k: by[k] for k in ("count", "failures", "p50_ms", "p99_ms", "max_ms")},
                                     "opened_in_s": round(opened_in, 2)}
        limit = SLOW_CLOSE_LIMIT
        self.check(f"200 partial-head sockets closed by the server within {limit:.0f} s of connecting", "200 closed",
                   f"{heads['closed_by_server']} closed" + (f", max {heads['close_s_max']} s" if heads["close_s_max"] else "")
                   + f" (watched {heads['observed_s']} s)",
                   ok=heads["closed_by_server"] == 200 and heads["close_s_max"] is not None and heads["close_s_max"] < limit)
        self.check(f"20 stalled-body sockets closed within {limit:.0f} s of their last byte", "20 closed",
                   f"{stalled['closed_by_server']} closed" + (f", max {stalled['close_s_max']} s" if stalled["close_s_max"] else ""),
                   ok=stalled["closed_by_server"] == 20 and stalled["close_s_max"] is not None and stalled["close_s_max"] < limit)
        self.info("10 trickling-body sockets (1 byte / 0.5 s)",
                  f"{trickle['sockets'] - trickle['closed_by_server']} still open after {trickle['observed_s']} s")
        self.check("bystander during slow clients: failures", 0, by["failures"])
        self.check(f"bystander during slow clients: p99 < {P99_LIMIT_MS:.0f} ms", f"< {P99_LIMIT_MS:.0f}",
                   f"{by['p99_ms']} ms (n={by['count']}, max {by['max_ms']} ms)",
                   ok=by["p99_ms"] is not None and by["p99_ms"] < P99_LIMIT_MS and by["count"] > 0)
        self.alive()
        self.ledger_unchanged(before)

    # 11. many connections
    def a11_many(self):
        before = self.fingerprints()
        t_phase = time.time()
        socks = []
        failures = 0
        for _ in range(500):
            try:
                socks.append(socket.create_connection(("127.0.0.1", self.port), timeout=5))
            except OSError:
                failures += 1
        opened_in = time.time() - t_phase
        self.check("500 connections accepted", "500", f"{len(socks)} in {opened_in:.2f} s", ok=len(socks) == 500)
        t_held = time.time()
        status, data = request(self.port, "GET", "/api/v5/public/time")
        self.check("a fresh client answered while 500 are held", "200/0", got_of(status, data))
        status, data = signed(self.port, self.B, "GET", "/api/v5/account/balance")
        self.check("a fresh signed client answered while 500 are held", "200/0", got_of(status, data))
        time.sleep(max(0.0, 3.0 - (time.time() - t_held)))
        closed = 0
        selector = selectors.DefaultSelector()
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        for key, _ in selector.select(timeout=0.2):
            try:
                if not key.fileobj.recv(1024):
                    closed += 1
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        selector.close()
        t_end = time.time()
        for sock in socks:
            sock.close()
        by = self.bystander.stats(t_phase, t_end)
        self.figures["many_connections"] = {"opened": len(socks), "connect_failures": failures, "opened_in_s": round(opened_in, 2),
                                            "held_s": round(t_end - t_held, 2), "closed_by_server_while_held": closed,
                                            "bystander": {k: by[k] for k in ("count", "failures", "p50_ms", "p99_ms", "max_ms")}}
        self.info(f"idle connections the server closed itself within {t_end - t_held:.1f} s", f"{closed} of {len(socks)}")
        self.check("bystander while 500 connections are held: failures", 0, by["failures"])
        self.info("bystander while 500 connections are held", f"n={by['count']} p50 {by['p50_ms']} p99 {by['p99_ms']} max {by['max_ms']} ms")
        self.alive()
        self.ledger_unchanged(before)


def create_accounts(port, token):
    admin = {"X-Sandbox-Admin-Token": token, "Content-Type": "application/json"}
    accounts = {}
    for name in ("A", "B", "C"):
        status, data = request(port, "POST", "/api/v5/sandbox/account/create",
                               encode({"label": f"attack-{name}", "deposits": [{"ccy": "USDT", "amt": "100000"}]}), admin)
        assert status == 200 and data["code"] == "0", (status, data)
        accounts[name] = data["data"][0]
    status, data = request(port, "POST", "/api/v5/sandbox/key/create", encode({"uid": accounts["A"]["uid"], "perm": "read"}), admin)
    assert status == 200 and data["code"] == "0", (status, data)
    accounts["A-read"] = dict(data["data"][0], uid=accounts["A"]["uid"])
    return accounts


def print_table(rows):
    widths = [16, 62, 24, 40, 4]
    header = ("attack", "check", "expected", "got", "pass")

    def cut(text, width):
        text = str(text).replace("\n", " ")
        return text if len(text) <= width else text[:width - 1] + "…"
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cut(v, w).ljust(w) for v, w in zip(row, widths)))


def main():
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)
    pm = os.path.abspath(argv[0])
    keep = "--keep" in argv[1:]
    unknown = [a for a in argv[1:] if a != "--keep"]
    if unknown:
        raise SystemExit(f"attacks.py: unknown argument(s) {unknown}\n\n{__doc__}")
    helptext = subprocess.run([pm, "serve", "--help"], capture_output=True, text=True, timeout=60).stdout
    if "--idle-timeout" not in helptext:
        raise SystemExit(f"{pm} serve has no --idle-timeout: rebuild it (swift build --product pm)")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))

    started = time.time()
    work = tempfile.mkdtemp(prefix="pm-attacks-")
    server = Server(pm, work)

    def on_signal(number, frame):
        raise SystemExit(f"signal {number}")
    signal.signal(signal.SIGTERM, on_signal)
    bystander = None
    passed = False
    try:
        server.start()
        token = open(server.db + ".admin-token").read().strip()
        accounts = create_accounts(server.port, token)
        bystander = Bystander(server.port, accounts["C"])
        bystander.start()
        attacks = Attacks(server, accounts, bystander)
        attacks.place_victim()
        time.sleep(1.0)  # a quiet baseline for the bystander
        attacks.phases["baseline"] = (started, time.time())
        for name, function in (("1 replay", attacks.a1_replay), ("2 timestamps", attacks.a2_timestamps),
                               ("3 forged sign", attacks.a3_forged), ("4 credentials", attacks.a4_credentials),
                               ("5 read-only key", attacks.a5_read_only), ("6 cross-account", attacks.a6_cross_account),
                               ("7 oversized", attacks.a7_oversized), ("8 deep JSON", attacks.a8_deep_json),
                               ("9 malformed HTTP", attacks.a9_malformed), ("10 slow clients", attacks.a10_slow),
                               ("11 many conns", attacks.a11_many)):
            attacks.run_attack(name, function)
            print(f"{name}: done at {time.time() - started:.1f} s", flush=True)
        attacks.attack = "final"
        time.sleep(0.3)
        bystander.stop.set()
        bystander.join(timeout=15)
        attacks.check("server process running", "running", "running" if server.process.poll() is None else
                      f"exited {server.process.returncode}")
        attacks.alive()
        overall = bystander.stats()
        attacks.check("bystander failures over the whole run", 0, overall["failures"])
        if overall["failures"]:
            attacks.info("first bystander failures", "; ".join(overall["first_failures"]))
        attacks.check("bystander requests made", "> 0", overall["count"], ok=overall["count"] > 0)
        status, data = signed(server.port, accounts["A"], "POST", "/api/v5/trade/cancel-order",
                              {"instId": INST, "ordId": attacks.victim[0]})
        attacks.check("cleanup: A cancels the victim order", "200/0/0", got_of(status, data, item=True))
        print()
        print_table(attacks.rows)
        failed = [r for r in attacks.rows if r[4] == "FAIL"]
        count = sum(1 for r in attacks.rows if r[4] != "info")
        phases = {name: {k: v for k, v in bystander.stats(t0, t1).items() if k != "first_failures"}
                  for name, (t0, t1) in attacks.phases.items()}
        elapsed = time.time() - started
        print()
        print(f"{count - len(failed)} of {count} checks passed, {len(failed)} failed; elapsed {elapsed:.1f} s")
        for row in failed:
            print(f"FAIL  [{row[0]}] {row[1]}: expected {row[2]}, got {row[3]}")
        slow = attacks.figures.get("slowloris", {})
        figures = {
            "passed": count - len(failed), "failed": len(failed), "elapsed_s": round(elapsed, 1),
            "bystander": {k: overall[k] for k in ("count", "failures", "p50_ms", "p99_ms", "max_ms")},
            "slowloris_close_s_max": slow.get("partial_head", {}).get("close_s_max"),
            "slowloris_closed": slow.get("partial_head", {}).get("closed_by_server"),
            "stalled_body_close_s_max": slow.get("stalled_body", {}).get("close_s_max"),
            "slowloris": slow, "many_connections": attacks.figures.get("many_connections"),
            "bystander_by_phase": phases,
        }
        print(json.dumps(figures, separators=(",", ":")))
        passed = not failed
    finally:
        if bystander is not None:
            bystander.stop.set()
        server.stop()
        if keep:
            print(f"work directory kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
