#!/usr/bin/env python3
"""SIGKILL the sandbox in the middle of a stream of orders, restart it, and check that every acknowledged
order is there and that the ledger balances (each balance equals the sum of its bills, exactly).

Usage: kill_restart.py PM_BINARY [--rounds N]. Standard library only.
"""
import base64, datetime, decimal, hashlib, hmac, json, os, signal, socket, sqlite3, subprocess, sys, tempfile, threading, time
import urllib.request, urllib.error


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v5/public/time", timeout=2).read()
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit("server did not start")


def start(pm, db, port, log):
    return subprocess.Popen([pm, "serve", "--db", db, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)


class Client:
    def __init__(self, port, key):
        self.base = f"http://127.0.0.1:{port}"
        self.key = key

    def call(self, method, path, body=None):
        ts = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        text = json.dumps(body, separators=(",", ":")) if body is not None else ""
        prehash = ts + method + path + text
        sign = base64.b64encode(hmac.new(self.key["secretKey"].encode(), prehash.encode(), hashlib.sha256).digest()).decode()
        request = urllib.request.Request(self.base + path, data=text.encode() if body is not None else None, method=method, headers={
            "OK-ACCESS-KEY": self.key["apiKey"], "OK-ACCESS-SIGN": sign, "OK-ACCESS-TIMESTAMP": ts,
            "OK-ACCESS-PASSPHRASE": self.key["passphrase"], "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def ledger_balances(db):
    connection = sqlite3.connect(db)
    sums = {}
    for uid, ccy, change in connection.execute('SELECT uid, ccy, balChg FROM bill'):
        sums[(uid, ccy)] = sums.get((uid, ccy), decimal.Decimal(0)) + decimal.Decimal(change)
    problems = []
    for uid, ccy, balance in connection.execute("SELECT uid, ccy, cashBal FROM balance"):
        if decimal.Decimal(balance) != sums.get((uid, ccy), decimal.Decimal(0)):
            problems.append(f"{uid} {ccy}: balance {balance} != sum of bills {sums.get((uid, ccy))}")
    connection.close()
    return problems


def main():
    pm = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    work = tempfile.mkdtemp(prefix="pm-crash-")
    db = os.path.join(work, "sandbox.sqlite")
    log = open(os.path.join(work, "serve.log"), "ab")
    created = subprocess.run([pm, "account", "create", "--db", db, "--deposit", "USDT=1000000", "--deposit", "BTC=10",
                              "--format", "json"], capture_output=True, text=True, check=True)
    key = json.loads(created.stdout)
    acknowledged = []
    failures = []
    for round_number in range(rounds):
        port = free_port()
        server = start(pm, db, port, log)
        wait_ready(port)
        client = Client(port, key)
        stop = threading.Event()

        def stream():
            side = "buy"
            while not stop.is_set():
                body = {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": side, "ordType": "market", "sz": "1",
                        "clOrdId": f"r{round_number}n{len(acknowledged)}"}
                side = "sell" if side == "buy" else "buy"
                try:
                    answer = client.call("POST", "/api/v5/trade/order", body)
                except Exception:
                    return  # the server died mid-request: that order was never acknowledged
                item = answer["data"][0]
                if answer["code"] == "0" and item["sCode"] == "0":
                    acknowledged.append(item["ordId"])
        worker = threading.Thread(target=stream)
        worker.start()
        time.sleep(1.0 + 0.37 * round_number)
        os.kill(server.pid, signal.SIGKILL)  # at an arbitrary instant of the stream
        server.wait()
        stop.set()
        worker.join()
        # Restart on the same database: every acknowledged order must be there, the ledger must balance.
        port = free_port()
        server = start(pm, db, port, log)
        wait_ready(port)
        client = Client(port, key)
        missing = [o for o in acknowledged if client.call("GET", f"/api/v5/trade/order?instId=BTC-USDT-SWAP&ordId={o}")["code"] != "0"]
        if missing:
            failures.append(f"round {round_number}: {len(missing)} acknowledged orders missing after restart: {missing[:5]}")
        server.send_signal(signal.SIGTERM)
        server.wait()
        problems = ledger_balances(db)
        failures += [f"round {round_number}: {p}" for p in problems]
        print(f"round {round_number}: {len(acknowledged)} acknowledged orders so far, all present: {not missing}, ledger balances: {not problems}")
    if len(acknowledged) < 20:
        failures.append(f"only {len(acknowledged)} orders were acknowledged; the stream did not run")
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"OK: {rounds} SIGKILLs, {len(acknowledged)} acknowledged orders all present, ledger balances")


if __name__ == "__main__":
    main()
