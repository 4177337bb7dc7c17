#!/usr/bin/env python3
"""SIGTERM drains `pm serve` (README, "Operating pm serve"; docs/reliability.md).

Usage: drain.py PM_BINARY [--rounds N] [--threads T] [--seconds S]

Each round starts `pm serve` on the same database (a restart after the first), lets T threads place signed orders
as fast as they can, each on its own keep-alive connection, and meanwhile sends one order whose body is held back
half-way (a request in flight). After S seconds it sends SIGTERM, checks that a new connection is refused (the
listener is closed), then sends the rest of the held body. Then:
  - the held request is answered and accepted (code 0): an in-flight request finishes after SIGTERM;
  - pm serve exits with status 0;
  - the database (opened directly with sqlite3) holds every order acknowledged with code 0, under its ordId and
    clOrdId; an order answered by a refusal is not stored; one answered with a connection error is "in doubt",
    allowed either way; no stored order of ours was never sent.
Standard library only.
"""
import json, os, shutil, signal, socket, sqlite3, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opslib import Client, InDoubt, Server, create_account, sign_headers  # noqa: E402

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL:", message, flush=True)


class Ledger:
    """What the clients learned, by clOrdId."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}      # clOrdId -> ordId
        self.refused = {}    # clOrdId -> sCode
        self.doubt = set()   # clOrdIds without an answer
        self.after_sigterm = 0
        self.counter = 0

    def next_id(self, prefix):
        with self.lock:
            self.counter += 1
            return f"{prefix}{self.counter}"


def order(clOrdId):
    return {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "limit", "px": "10000", "sz": "1",
            "clOrdId": clOrdId}


def trader(port, key, ledger, prefix, stop, sigterm):
    client = Client(port, key)
    failures_in_a_row = 0
    while not stop.is_set() and failures_in_a_row < 3:
        clOrdId = ledger.next_id(prefix)
        try:
            status, answer = client.call("POST", "/api/v5/trade/order", order(clOrdId))
        except InDoubt:
            with ledger.lock:
                ledger.doubt.add(clOrdId)
            failures_in_a_row += 1
            if sigterm.is_set():
                time.sleep(0.05)
            continue
        failures_in_a_row = 0
        item = (answer.get("data") or [{}])[0]
        with ledger.lock:
            if answer.get("code") == "0" and item.get("sCode") == "0" and item.get("ordId"):
                ledger.acked[clOrdId] = item["ordId"]
                if sigterm.is_set():
                    ledger.after_sigterm += 1
            else:
                ledger.refused[clOrdId] = item.get("sCode") or answer.get("code")
    client.http.close()


def held_request(port, key, clOrdId):
    """Sends a signed order's head and half its body; returns the socket and the rest of the body."""
    path = "/api/v5/trade/order"
    text = json.dumps(order(clOrdId), separators=(",", ":"))
    headers = sign_headers(key, "POST", path, text)
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(text)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    half = len(text) // 2
    sock.sendall(head.encode() + text[:half].encode())
    return sock, text[half:].encode()


def read_response(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise InDoubt("closed before the response head")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise InDoubt("closed mid-body")
        body += chunk
    return int(head.split(b" ")[1]), json.loads(body[:length])


def connection_refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return False
    except ConnectionRefusedError:
        return True


def main():
    argv = sys.argv[1:]
    if not argv or argv[0].startswith("-"):
        raise SystemExit(__doc__)

    def option(name, default, kind):
        return kind(argv[argv.index(name) + 1]) if name in argv else default
    pm = os.path.abspath(argv[0])
    rounds, threads, seconds = option("--rounds", 3, int), option("--threads", 6, int), option("--seconds", 1.5, float)
    work = tempfile.mkdtemp(prefix="pm-ops-drain-")
    server = Server(pm, work, "drain", "--market-mode", "static", "--rate-limit", "100000")
    ledger = Ledger()
    keys = []
    try:
        for round_number in range(1, rounds + 1):
            server.start()
            if not keys:
                admin = Client(server.port, token=server.token)
                keys = [create_account(admin, f"drain{i}", [("USDT", "10000000")]) for i in range(threads)]
                admin.http.close()
            stop, sigterm = threading.Event(), threading.Event()
            workers = [threading.Thread(target=trader, args=(server.port, keys[i], ledger, f"r{round_number}t{i}x", stop, sigterm))
                       for i in range(threads)]
            for worker in workers:
                worker.start()
            time.sleep(seconds / 2)
            held_id = ledger.next_id(f"r{round_number}held")
            sock, rest = held_request(server.port, keys[0], held_id)
            time.sleep(seconds / 2)
            acked_before = len(ledger.acked)
            sigterm.set()
            server.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            # The listener is closed: a new connection is refused while the held request is still in flight.
            refused = connection_refused(server.port)
            check(refused, f"round {round_number}: a new connection was accepted after SIGTERM")
            try:
                sock.sendall(rest)
                status, answer = read_response(sock)
                item = (answer.get("data") or [{}])[0]
                check(status == 200 and answer.get("code") == "0" and item.get("sCode") == "0",
                      f"round {round_number}: the request in flight at SIGTERM was answered {status} {answer}")
                if answer.get("code") == "0":
                    with ledger.lock:
                        ledger.acked[held_id] = item["ordId"]
            except (InDoubt, OSError) as error:
                check(False, f"round {round_number}: the request in flight at SIGTERM got no answer: {error}")
                with ledger.lock:
                    ledger.doubt.add(held_id)
            finally:
                sock.close()
            try:
                code = server.process.wait(timeout=60)
            except Exception:
                server.kill()
                code = None
            stop.set()
            for worker in workers:
                worker.join()
            check(code == 0, f"round {round_number}: pm serve exited with {code} after SIGTERM, expected 0")
            print(f"round {round_number}: {acked_before} orders acknowledged before SIGTERM, {len(ledger.acked)} in all so far; "
                  f"{ledger.after_sigterm} acknowledged after it; {len(ledger.doubt)} in doubt; exit status {code}; "
                  f"new connection refused: {refused}", flush=True)
        verify(server.db, ledger)
    finally:
        server.kill()
    if failures:
        print(f"integration/ops/drain.py: {len(failures)} check(s) failed; logs in {work}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print(f"integration/ops/drain.py: {rounds} SIGTERMs under load: exit status 0, every acknowledged order stored "
          f"({len(ledger.acked)} acknowledged, {len(ledger.refused)} refused, {len(ledger.doubt)} in doubt)")


def verify(db_path, ledger):
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        stored = {row[1]: str(row[0]) for row in db.execute('SELECT ordId, clOrdId FROM "order" WHERE clOrdId != \'\'')}
    check(len(ledger.acked) > 0, "some orders were acknowledged")
    missing = [c for c, o in ledger.acked.items() if stored.get(c) != o]
    check(not missing, f"{len(missing)} acknowledged order(s) not stored under their ordId, e.g. {missing[:5]}")
    stored_refused = [c for c in ledger.refused if c in stored]
    check(not stored_refused, f"{len(stored_refused)} refused order(s) stored, e.g. {stored_refused[:5]}")
    sent = set(ledger.acked) | set(ledger.refused) | ledger.doubt
    never_sent = [c for c in stored if c not in sent]
    check(not never_sent, f"{len(never_sent)} stored order(s) were never sent, e.g. {never_sent[:5]}")
    stored_doubt = sum(1 for c in ledger.doubt if c in stored)
    print(f"in doubt: {len(ledger.doubt)}, of which stored {stored_doubt}", flush=True)


if __name__ == "__main__":
    main()
