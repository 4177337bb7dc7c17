#!/usr/bin/env python3
"""Load generator for `pm serve`: N clients, each with its own account and API key, loop "place a signed
limit order far from the market (it rests and passes the pre-trade margin check), then cancel it".

Python standard library only. Each client owns one raw HTTP/1.1 keep-alive connection. The hot loop runs in
one of two drivers. `swift` (the default when --driver-bin names the binary) is `pm-load` (Sources/LoadDriver):
one process serving every client from one poll() loop, fed a JSON config on stdin, answering one JSON report on
stdout in the shape `worker()` returns; about 45-55 µs of CPU per request, most of it the kernel's loopback TCP
and wakeups. `python` is `worker()` below (asyncio.Protocol, hand-built requests, minimal response parsing),
clients spread over --workers processes; about 150-185 µs per request. On a small machine that CPU is taken
from the server being measured, so the client CPU time is reported next to the server's. With --batch K
(2-20, Swift driver) each request carries K orders through `batch-orders` and cancels them through
`cancel-batch-orders`; every order is still margin-checked, stored and counted on its own, and takes its
request's latency.

Reports: sustained place/s, cancel/s and both together; p50/p99/max latency per operation; errors by code
(every non-"0" code and every 5xx is a failure); server RSS every 5 s from /proc/<pid>/status with the
growth from the first to the last minute; server and client CPU. The last line printed is one JSON object.

Correctness (always checked, and the only thing --ci fails on): every acknowledged order is cancelled
exactly once (each cancel answers sCode 0 with the order's own ordId; a second cancel of a sample is refused
with 51400; the database holds exactly the acknowledged orders, all `canceled`, no fills and no bills but
the deposits), no 5xx, no error code, and the server is alive at the end.

Usage (normally through integration/load/run):
  loadgen.py --url http://127.0.0.1:PORT --db DB --pid PID --clients N --seconds S [--workers W] [--ci]
             [--driver swift|python] [--driver-bin PATH/pm-load] [--batch K]
"""
import argparse
import asyncio
import base64
import collections
import hashlib
import hmac
import json
import math
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

INSTRUMENT = "BTC-USDT-SWAP"
DEPOSIT_USDT = "1000000"
BUCKETS_PER_E = 200  # latency histogram: log-spaced buckets, 0.5 % wide
SERIES_SECONDS = 5


# --- control-plane helpers (urllib; not on the hot path) -------------------------------------------------

def http_json(url, method="GET", body=None, headers=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def create_accounts(url, token, count):
    accounts = []
    for _ in range(count):
        status, envelope = http_json(url + "/api/v5/sandbox/account/create", "POST",
                                     {"label": "load", "deposits": [{"ccy": "USDT", "amt": DEPOSIT_USDT}]},
                                     {"X-Sandbox-Admin-Token": token, "Content-Type": "application/json"})
        if status != 200 or envelope.get("code") != "0":
            raise SystemExit(f"loadgen: account creation failed: HTTP {status} {envelope}")
        accounts.append(envelope["data"][0])
    return accounts


def far_price(url):
    """A buy price at about half the mark, on the tick: rests, never fills, needs little margin."""
    _, instrument = http_json(url + f"/api/v5/public/instruments?instType=SWAP&instId={INSTRUMENT}")
    _, ticker = http_json(url + f"/api/v5/market/ticker?instId={INSTRUMENT}")
    tick = float(instrument["data"][0]["tickSz"])
    lot = instrument["data"][0]["lotSz"]
    mark = float(ticker["data"][0]["markPx"])
    decimals = max(0, -int(math.floor(math.log10(tick))))
    return f"{math.floor(mark * 0.5 / tick) * tick:.{decimals}f}", lot


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return None


def machine_busy():
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values), idle


# --- the hot path: one keep-alive connection per client ---------------------------------------------------

class Connection(asyncio.Protocol):
    """HTTP/1.1 client connection with one request in flight: responses parsed by Content-Length."""

    def __init__(self):
        self.transport = None
        self.buffer = bytearray()
        self.waiter = None
        self.closed = None

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.buffer += data
        if self.waiter is None:
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        at = head.find(b"\r\ncontent-length:")
        if at < 0:
            waiter, self.waiter = self.waiter, None
            waiter.set_exception(ConnectionError("response without Content-Length: " + head[:200].decode(errors="replace")))
            return
        line_end = head.find(b"\r\n", at + 17)
        length = int(head[at + 17:line_end if line_end >= 0 else len(head)])
        total = end + 4 + length
        if len(self.buffer) < total:
            return
        status = int(head[9:12])
        body = bytes(self.buffer[end + 4:total])
        del self.buffer[:total]
        waiter, self.waiter = self.waiter, None
        waiter.set_result((status, body))

    def connection_lost(self, exc):
        self.closed = exc or ConnectionError("connection closed by the server")
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(self.closed)
            self.waiter = None

    def request(self, data):
        if self.closed is not None:
            raise self.closed
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter


class Timestamps:
    """OKX ISO-8601 millisecond timestamps, formatting the seconds part once per second."""

    def __init__(self):
        self.second = None
        self.prefix = ""

    def now(self):
        t = time.time()
        second = int(t)
        if second != self.second:
            self.second = second
            self.prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self.prefix}.{int((t - second) * 1000):03d}Z"


class Stats:
    def __init__(self, start):
        self.start = start
        self.histograms = {"place": collections.Counter(), "cancel": collections.Counter()}
        self.maximum = {"place": 0.0, "cancel": 0.0}
        self.ok = {"place": 0, "cancel": 0}
        self.errors = collections.Counter()
        self.series = collections.Counter()  # (op, 5 s slot) -> successful operations
        self.samples = collections.defaultdict(list)  # error code -> first messages

    def record(self, op, started, ended):
        micros = (ended - started) / 1000.0
        self.histograms[op][int(math.log(max(micros, 1.0)) * BUCKETS_PER_E)] += 1
        if micros > self.maximum[op]:
            self.maximum[op] = micros

    def error(self, key, message):
        self.errors[key] += 1
        if len(self.samples[key]) < 3:
            self.samples[key].append(message[:300])


async def run_client(index, account, host, port, price, lot, end_at, stats, timestamps, results):
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(Connection, host, port)
    key = account["apiKey"].encode()
    passphrase = account["passphrase"].encode()
    secret = account["secretKey"].encode()
    host_header = f"{host}:{port}".encode()
    clock = time.perf_counter_ns

    def build(path, body):
        ts = timestamps.now()
        prehash = (ts + "POST" + path).encode() + body
        sign = base64.b64encode(hmac.new(secret, prehash, hashlib.sha256).digest())
        return b"".join((
            b"POST ", path.encode(), b" HTTP/1.1\r\nHost: ", host_header,
            b"\r\nContent-Type: application/json\r\nOK-ACCESS-KEY: ", key,
            b"\r\nOK-ACCESS-PASSPHRASE: ", passphrase, b"\r\nOK-ACCESS-TIMESTAMP: ", ts.encode(),
            b"\r\nOK-ACCESS-SIGN: ", sign, b"\r\nContent-Length: ", str(len(body)).encode(), b"\r\n\r\n", body))

    acked = []
    cancelled = 0
    sequence = 0
    place_prefix = b'{"instId":"' + INSTRUMENT.encode() + b'","tdMode":"cross","side":"buy","ordType":"limit","px":"' + \
        price.encode() + b'","sz":"' + lot.encode() + b'","clOrdId":"'

    async def send(operation, path, body):
        """One signed POST: (first data item, start, end) when it answered code 0 and sCode 0, else None (an error
        is recorded)."""
        started = clock()
        status, answer = await connection.request(build(path, body))
        ended = clock()
        envelope = json.loads(answer)
        item = envelope["data"][0] if envelope.get("data") else {}
        if status >= 500 or envelope.get("code") != "0" or item.get("sCode") != "0":
            stats.error(f"{operation}:HTTP{status}:{envelope.get('code')}/{item.get('sCode', '-')}",
                        item.get("sMsg") or envelope.get("msg", ""))
            return None
        return item, started, ended

    try:
        while time.time() < end_at:
            sequence += 1
            client_order = f"L{index}n{sequence}".encode()
            answered = await send("place", "/api/v5/trade/order", place_prefix + client_order + b'"}')
            if answered is None:
                continue
            item, started, ended = answered
            stats.record("place", started, ended)
            stats.ok["place"] += 1
            stats.series[("place", int((time.time() - stats.start) // SERIES_SECONDS))] += 1
            ordId = item["ordId"]
            acked.append(ordId)
            if item.get("clOrdId") != client_order.decode():
                stats.error("place:clOrdId-mismatch", f"{item}")
            body = b'{"instId":"' + INSTRUMENT.encode() + b'","ordId":"' + ordId.encode() + b'"}'
            answered = await send("cancel", "/api/v5/trade/cancel-order", body)
            if answered is None:
                continue
            item, started, ended = answered
            if item.get("ordId") != ordId:
                stats.error("cancel:ordId-mismatch", f"cancelled {item.get('ordId')} instead of {ordId}")
                continue
            stats.record("cancel", started, ended)
            stats.ok["cancel"] += 1
            cancelled += 1
            stats.series[("cancel", int((time.time() - stats.start) // SERIES_SECONDS))] += 1
    except (ConnectionError, OSError) as error:
        stats.error("transport", f"client {index}: {error!r}")
    finally:
        if connection.transport is not None:
            connection.transport.close()
    results[index] = {"uid": account["uid"], "acked": acked, "cancelled": cancelled}


def worker(slice_, host, port, price, lot, start_at, end_at, grace, queue):
    async def main():
        stats = Stats(start_at)
        timestamps = Timestamps()
        results = {}
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu_before = os.times()
        tasks = [asyncio.ensure_future(run_client(i, a, host, port, price, lot, end_at, stats, timestamps, results))
                 for i, a in slice_]
        done, pending = await asyncio.wait(tasks, timeout=max(1.0, end_at - time.time()) + grace)
        for task in pending:
            task.cancel()
            stats.error("timeout", f"a client was still waiting for an answer {grace} s after the end")
        for task in done:
            if task.exception() is not None:
                stats.error("client-crash", repr(task.exception()))
        cpu_after = os.times()
        return {
            "histograms": {k: dict(v) for k, v in stats.histograms.items()}, "maximum": stats.maximum,
            "ok": stats.ok, "errors": dict(stats.errors), "samples": dict(stats.samples), "series": dict(stats.series),
            "results": results,
            "cpu": (cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system),
        }
    queue.put(asyncio.run(main()))


def run_swift_driver(binary, accounts, host, port, price, lot, start_at, end_at, grace, batch):
    """Starts `pm-load` with the whole run's config on stdin; its report is read later by `swift_report()`, so
    that the main process samples the server while the driver runs."""
    config = {"host": host, "port": port, "instId": INSTRUMENT, "price": price, "size": lot,
              "startAt": start_at, "endAt": end_at, "grace": grace, "batch": batch,
              "clients": [{"index": i, "uid": a["uid"], "apiKey": a["apiKey"], "secretKey": a["secretKey"],
                           "passphrase": a["passphrase"]} for i, a in enumerate(accounts)]}
    with tempfile.TemporaryFile() as stdin:  # a file, not a pipe: communicate() later must not touch stdin
        stdin.write(json.dumps(config).encode())
        stdin.seek(0)
        return subprocess.Popen([binary], stdin=stdin, stdout=subprocess.PIPE)


def swift_report(process, end_at, grace):
    """The driver's one JSON report, or an empty report with a "driver" error when it failed or hung."""
    try:
        out, _ = process.communicate(timeout=max(1.0, end_at - time.time()) + grace + 30)
        if process.returncode == 0:
            return json.loads(out)
        problem = f"pm-load exited with status {process.returncode}"
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        problem = f"pm-load did not report within {grace:g} s + 30 s after the end"
    except ValueError as error:
        problem = f"pm-load wrote no JSON report: {error}"
    return {"histograms": {"place": {}, "cancel": {}}, "maximum": {"place": 0.0, "cancel": 0.0}, "ok": {},
            "errors": {"driver": 1}, "samples": {"driver": [problem]}, "series": {}, "results": {}, "cpu": 0.0}


def series_items(series):
    """Series counts keyed ("place", slot): the Python worker's keys already are; pm-load writes "place:slot"."""
    for key, count in series.items():
        if isinstance(key, str):
            op, slot = key.rsplit(":", 1)
            key = (op, int(slot))
        yield key, count


# --- reporting -----------------------------------------------------------------------------------------------

def percentile(histogram, fraction):
    total = sum(histogram.values())
    if total == 0:
        return None
    target = fraction * total
    seen = 0
    for bucket in sorted(histogram):
        seen += histogram[bucket]
        if seen >= target:
            return math.exp((bucket + 0.5) / BUCKETS_PER_E) / 1000.0  # ms
    return None


def rounded(value, places=3):
    return None if value is None else round(value, places)


class PostgresReader:
    """The few reads check_database makes, through psql (no Python driver needed) on a postgres:// database."""

    def __init__(self, url):
        self.url = url

    def rows(self, sql):
        out = subprocess.run(["psql", self.url, "-XqtA", "-F", "\t", "-c", sql], check=True, capture_output=True,
                             text=True, timeout=120).stdout
        return [line.split("\t") for line in out.splitlines() if line]


def check_database(db, accounts, acked_by_uid):
    """Every acknowledged order is in the database, cancelled; nothing else; no fills; only deposit bills."""
    if db.startswith(("postgres://", "postgresql://")):
        reader = PostgresReader(db)
        orders, fills, bills, balances = {}, {}, {}, {}
        for uid, ordId, state in reader.rows('SELECT "uid", "ordId", "state" FROM "order"'):
            orders.setdefault(uid, []).append((ordId, state))
        for uid, count in reader.rows('SELECT "uid", COUNT(*) FROM fill GROUP BY "uid"'):
            fills[uid] = int(count)
        for uid, count in reader.rows('SELECT "uid", COUNT(*) FROM bill GROUP BY "uid"'):
            bills[uid] = int(count)
        for uid, cash in reader.rows("""SELECT "uid", "cashBal" FROM balance WHERE "ccy" = 'USDT'"""):
            balances[uid] = (cash,)
        return check_rows(accounts, acked_by_uid, lambda uid: orders.get(uid, []), lambda uid: fills.get(uid, 0),
                          lambda uid: bills.get(uid, 0), lambda uid: balances.get(uid))
    connection = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return check_rows(
            accounts, acked_by_uid,
            lambda uid: connection.execute('SELECT ordId, state FROM "order" WHERE uid = ?', (uid,)).fetchall(),
            lambda uid: connection.execute('SELECT COUNT(*) FROM "fill" WHERE uid = ?', (uid,)).fetchone()[0],
            lambda uid: connection.execute('SELECT COUNT(*) FROM "bill" WHERE uid = ?', (uid,)).fetchone()[0],
            lambda uid: connection.execute("SELECT cashBal FROM balance WHERE uid = ? AND ccy = 'USDT'", (uid,)).fetchone())
    finally:
        connection.close()


def check_rows(accounts, acked_by_uid, orders_of, fills_of, bills_of, balance_of):
    problems = []
    if True:
        for account in accounts:
            uid = account["uid"]
            acked = set(acked_by_uid.get(uid, []))
            rows = orders_of(uid)
            stored = {str(ordId): state for ordId, state in rows}
            if set(stored) != acked:
                problems.append(f"{uid}: {len(set(stored) - acked)} stored orders never acknowledged, "
                                f"{len(acked - set(stored))} acknowledged orders missing")
            not_cancelled = [o for o, s in stored.items() if s != "canceled"]
            if not_cancelled:
                problems.append(f"{uid}: {len(not_cancelled)} orders not cancelled, e.g. {not_cancelled[:3]}")
            fills = fills_of(uid)
            bills = bills_of(uid)
            balance = balance_of(uid)
            if fills or bills != 1 or balance is None or float(balance[0]) != float(DEPOSIT_USDT):
                problems.append(f"{uid}: {fills} fills, {bills} bills, USDT {balance} (expected 0, 1, {DEPOSIT_USDT})")
    return problems


def signed_call(url, account, method, path, body=None):
    ts = Timestamps().now()
    raw = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    sign = base64.b64encode(hmac.new(account["secretKey"].encode(), (ts + method + path).encode() + raw,
                                     hashlib.sha256).digest()).decode()
    headers = {"OK-ACCESS-KEY": account["apiKey"], "OK-ACCESS-SIGN": sign, "OK-ACCESS-TIMESTAMP": ts,
               "OK-ACCESS-PASSPHRASE": account["passphrase"], "Content-Type": "application/json"}
    request = urllib.request.Request(url + path, data=raw if body is not None else None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--db", required=True, help="the server's database: a SQLite file or a postgres:// URL")
    parser.add_argument("--files", help="prefix of the server's admin-token file (default: --db)")
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=0, help="client processes (default: 1 up to 8 clients, else 2)")
    parser.add_argument("--batch", type=int, default=1,
                        help="orders per request: 1 uses order/cancel-order; 2-20 use batch-orders/cancel-batch-orders "
                             "(Swift driver only)")
    parser.add_argument("--ci", action="store_true", help="check correctness only; never fail on a time")
    parser.add_argument("--driver", choices=("swift", "python"),
                        help="client hot loop (default: swift when --driver-bin is an executable, else python)")
    parser.add_argument("--driver-bin", help="the Swift driver binary, pm-load (integration/load/run passes it)")
    args = parser.parse_args()
    if not 1 <= args.clients <= 64:
        raise SystemExit("loadgen: --clients must be 1…64")
    has_binary = bool(args.driver_bin) and os.access(args.driver_bin, os.X_OK)
    driver = args.driver or ("swift" if has_binary else "python")
    if driver == "swift" and not has_binary:
        raise SystemExit(f"loadgen: --driver swift needs --driver-bin naming pm-load (got {args.driver_bin!r})")
    if args.driver is None and driver == "python":
        print(f"loadgen: no Swift driver at {args.driver_bin!r}; using the Python driver, which costs the "
              "machine far more CPU per request", flush=True)
    if not 1 <= args.batch <= 20:
        raise SystemExit("loadgen: --batch must be 1…20 (OKX's limit per batch request)")
    if args.batch > 1 and driver != "swift":
        raise SystemExit("loadgen: --batch needs the Swift driver (pm-load)")
    workers = 1 if driver == "swift" else min(args.workers or (1 if args.clients <= 8 else 2), args.clients)
    url = args.url.rstrip("/")
    host, port = url.split("//", 1)[1].split(":")
    port = int(port)
    with open((args.files or args.db) + ".admin-token") as handle:
        token = handle.read().strip()

    accounts = create_accounts(url, token, args.clients)
    price, lot = far_price(url)
    per_request = "one order per request" if args.batch == 1 else f"{args.batch} orders per batch request"
    print(f"loadgen: {args.clients} clients ({driver} driver, {workers} process(es)), {args.seconds:g} s, "
          f"buy {lot} {INSTRUMENT} @ {price} then cancel, {per_request}; server pid {args.pid}", flush=True)

    start_at = time.time() + 1.0
    end_at = start_at + args.seconds
    grace = 30.0
    if driver == "swift":
        driver_process = run_swift_driver(args.driver_bin, accounts, host, port, price, lot, start_at, end_at, grace,
                                           args.batch)
        processes = []
    else:
        queue = multiprocessing.get_context("fork").Queue()
        slices = [[(i, accounts[i]) for i in range(w, args.clients, workers)] for w in range(workers)]
        processes = [multiprocessing.get_context("fork").Process(
            target=worker, args=(s, host, port, price, lot, start_at, end_at, grace, queue)) for s in slices]
        for process in processes:
            process.start()

    # RSS and CPU every 5 s while the clients run.
    rss = []
    time.sleep(max(0.0, start_at - time.time()))
    server_cpu_start = cpu_seconds(args.pid)
    busy_start = machine_busy()
    next_sample = start_at
    while time.time() < end_at + 0.01:
        value = rss_kb(args.pid)
        if value is None:
            break
        rss.append((round(time.time() - start_at, 1), value))
        next_sample += SERIES_SECONDS
        time.sleep(max(0.0, min(next_sample, end_at + 0.02) - time.time()))
    server_cpu = None if server_cpu_start is None or cpu_seconds(args.pid) is None else cpu_seconds(args.pid) - server_cpu_start
    busy_end = machine_busy()
    machine_total = busy_end[0] - busy_start[0]
    machine_busy_pct = 100.0 * (1 - (busy_end[1] - busy_start[1]) / machine_total) if machine_total else None

    if driver == "swift":
        reports = [swift_report(driver_process, end_at, grace)]
    else:
        reports = [queue.get() for _ in processes]
        for process in processes:
            process.join()
    final_rss = rss_kb(args.pid)
    if final_rss is not None:
        rss.append((round(time.time() - start_at, 1), final_rss))

    histograms = {"place": collections.Counter(), "cancel": collections.Counter()}
    maximum = {"place": 0.0, "cancel": 0.0}
    ok = collections.Counter()
    errors = collections.Counter()
    samples = {}
    series = collections.Counter()
    results = {}
    client_cpu = 0.0
    for report in reports:
        for op in histograms:
            histograms[op].update({int(k): v for k, v in report["histograms"][op].items()})
            maximum[op] = max(maximum[op], report["maximum"][op])
        ok.update(report["ok"])
        errors.update(report["errors"])
        for key, messages in report["samples"].items():
            samples.setdefault(key, messages)
        series.update(dict(series_items(report["series"])))
        results.update(report["results"])
        client_cpu += report["cpu"]
    both = histograms["place"] + histograms["cancel"]

    # Correctness: every acknowledged order cancelled exactly once.
    failures = []
    acked_by_uid = {r["uid"]: r["acked"] for r in results.values()}
    acked = sum(len(r["acked"]) for r in results.values())
    cancelled = sum(r["cancelled"] for r in results.values())
    if len(results) != args.clients:
        failures.append(f"{args.clients - len(results)} clients did not finish")
    if acked != cancelled:
        failures.append(f"{acked} orders acknowledged but {cancelled} cancelled")
    all_ids = [o for r in results.values() for o in r["acked"]]
    if len(set(all_ids)) != len(all_ids):
        failures.append(f"{len(all_ids) - len(set(all_ids))} ordIds acknowledged twice")
    for key, count in sorted(errors.items()):
        failures.append(f"{count} × {key}: {samples.get(key, [''])[0]}")
    alive = False
    try:
        alive = http_json(url + "/api/v5/public/time", timeout=10)[1].get("code") == "0"
    except Exception as error:  # noqa: BLE001 - any failure means the server is not answering
        failures.append(f"the server does not answer after the run: {error!r}")
    if not alive:
        failures.append("the server is not alive after the run")
    else:
        # A second cancel of an already cancelled order is refused; nothing is left open.
        for account in accounts[: min(4, len(accounts))]:
            ids = acked_by_uid.get(account["uid"], [])
            if ids:
                _, envelope = signed_call(url, account, "POST", "/api/v5/trade/cancel-order",
                                          {"instId": INSTRUMENT, "ordId": ids[len(ids) // 2]})
                item = (envelope.get("data") or [{}])[0]
                if envelope.get("code") != "1" or item.get("sCode") != "51400":
                    failures.append(f"a second cancel of {ids[len(ids) // 2]} was not refused with 51400: {envelope}")
            _, envelope = signed_call(url, account, "GET", "/api/v5/trade/orders-pending")
            if envelope.get("code") != "0" or envelope.get("data"):
                failures.append(f"{account['uid']} still has open orders: {envelope}")
        failures += check_database(args.db, accounts, acked_by_uid)

    # Figures.
    elapsed = args.seconds
    place_rate = ok["place"] / elapsed
    cancel_rate = ok["cancel"] / elapsed
    figures = {}
    for op, histogram in (("place", histograms["place"]), ("cancel", histograms["cancel"]), ("all", both)):
        figures[op] = {"p50_ms": rounded(percentile(histogram, 0.50)), "p99_ms": rounded(percentile(histogram, 0.99)),
                       "max_ms": rounded((max(maximum.values()) if op == "all" else maximum[op]) / 1000.0)}
    slots = sorted({slot for (_, slot) in series})
    rate_series = [round((series[("place", s)] + series[("cancel", s)]) / SERIES_SECONDS) for s in slots
                   if (s + 1) * SERIES_SECONDS <= elapsed]
    during = [v for t, v in rss if t <= elapsed + 0.5]
    first_minute = [v for t, v in rss if t <= 60] or during[:1]
    last_minute = [v for t, v in rss if t >= elapsed - 60 and t <= elapsed + 0.5] or during[-1:]
    rss_summary = {
        "samples_kb": [v for _, v in rss],
        "first_kb": rss[0][1] if rss else None, "last_kb": rss[-1][1] if rss else None,
        "max_kb": max((v for _, v in rss), default=None),
        "first_minute_mean_kb": round(sum(first_minute) / len(first_minute)) if first_minute else None,
        "last_minute_mean_kb": round(sum(last_minute) / len(last_minute)) if last_minute else None,
    }
    if rss_summary["first_minute_mean_kb"] and rss_summary["last_minute_mean_kb"]:
        rss_summary["growth_first_to_last_minute_kb"] = rss_summary["last_minute_mean_kb"] - rss_summary["first_minute_mean_kb"]

    print(f"\nthroughput over {elapsed:g} s: {place_rate:,.0f} place/s + {cancel_rate:,.0f} cancel/s = "
          f"{place_rate + cancel_rate:,.0f} orders/s (operations), {cancel_rate:,.0f} complete place+cancel cycles/s")
    for op in ("place", "cancel", "all"):
        f = figures[op]
        print(f"latency {op:>6}: p50 {f['p50_ms']} ms  p99 {f['p99_ms']} ms  max {f['max_ms']} ms")
    print(f"orders/s every {SERIES_SECONDS} s: {rate_series}")
    print(f"server RSS (kB) every {SERIES_SECONDS} s: {[v for _, v in rss]}")
    if "growth_first_to_last_minute_kb" in rss_summary:
        print(f"server RSS first-minute mean {rss_summary['first_minute_mean_kb']} kB, last-minute mean "
              f"{rss_summary['last_minute_mean_kb']} kB, growth {rss_summary['growth_first_to_last_minute_kb']} kB")
    print(f"CPU: server {server_cpu:.1f} s, clients {client_cpu:.1f} s over {elapsed:g} s "
          f"(machine {os.cpu_count()} CPUs, {machine_busy_pct:.0f} % busy overall during the run, "
          f"load average {os.getloadavg()[0]:.2f})" if server_cpu is not None and machine_busy_pct is not None else "CPU: n/a")
    print(f"errors: {dict(errors) if errors else 'none'}")
    print("correctness: " + ("OK — every acknowledged order cancelled exactly once, no error, server alive"
                             if not failures else "FAILED\n  " + "\n  ".join(failures)))
    summary = {
        "clients": args.clients, "seconds": elapsed, "driver": driver, "workers": workers, "batch": args.batch,
        "requests_per_s": round((place_rate + cancel_rate) / args.batch),
        "mode": "ci" if args.ci else "load",
        "place_per_s": round(place_rate), "cancel_per_s": round(cancel_rate), "orders_per_s": round(place_rate + cancel_rate),
        "cycles_per_s": round(cancel_rate), "acknowledged": acked, "cancelled": cancelled,
        "latency_ms": figures, "orders_per_s_series": rate_series, "errors": dict(errors), "rss": rss_summary,
        "server_cpu_s": rounded(server_cpu, 1), "client_cpu_s": round(client_cpu, 1),
        "machine": {"cpus": os.cpu_count(), "busy_pct": rounded(machine_busy_pct, 1)},
        "targets": {"orders_per_s_5000": place_rate + cancel_rate >= 5000,
                    "p99_under_10ms": (figures["all"]["p99_ms"] or 1e9) < 10},
        "correct": not failures, "failures": failures[:20],
    }
    print(json.dumps(summary, separators=(",", ":")))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
