"""Failover of `pm serve` nodes over one PostgreSQL ledger (docs/deploy.md, "one serving node per database").

Node A serves and takes an order. A is paused (SIGSTOP), its connection to PostgreSQL left open. Node B is started
again and again, the way a supervisor restarts a standby, and is refused until A's lease has expired; then it takes
the ledger and serves the same account (loaded from the ledger on its key's first use). A is resumed (SIGCONT): an
order sent to it must not be acknowledged, and must not be in the ledger, since A lost its lease. Prints the
failover time: from the pause to B answering /ready.

Usage: failover.py PM_BIN   with PM_TEST_POSTGRES_URL naming a PostgreSQL server (scripts/postgres start)."""
import os, shutil, signal, subprocess, sys, tempfile, time, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opslib import kill_process, Client, InDoubt, create_account, free_port, wait_ready  # noqa: E402


def check(condition, message):
    if not condition:
        raise SystemExit(f"failover: FAILED: {message}")


def psql(url, sql):
    return subprocess.run(["psql", url, "-Atqc", sql], check=True, capture_output=True, text=True).stdout.strip()


class Node:
    """`pm serve --db postgres://…` on a free port, sharing the key and admin-token files with the other node."""

    def __init__(self, pm, url, files, log_path):
        self.port = free_port()
        log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [pm, "serve", "--db", url, "--files", files, "--port", str(self.port), "--market-mode", "static"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def ready(self, timeout):
        """True once /ready answers 200; False if the process exits first (refused: the lease is held)."""
        return wait_ready(self.process, self.port, timeout)

    def stop(self):
        kill_process(self.process)


def order(clOrdId):
    return {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "limit", "px": "1000", "sz": "1",
            "clOrdId": clOrdId}


def main():
    pm = sys.argv[1]
    server = os.environ.get("PM_TEST_POSTGRES_URL")
    check(server, "PM_TEST_POSTGRES_URL is not set (scripts/postgres start prints it)")
    name = "pm_failover_" + uuid.uuid4().hex[:12]
    psql(server, f"CREATE DATABASE {name}")
    url = server.rsplit("/", 1)[0] + "/" + name
    work = tempfile.mkdtemp(prefix="pm-failover-")
    files = os.path.join(work, "sandbox")
    nodes = []
    try:
        a = Node(pm, url, files, os.path.join(work, "a.log"))
        nodes.append(a)
        check(a.ready(120), "node A did not start")
        token = open(files + ".admin-token").read().strip()
        key = create_account(Client(a.port, token=token), "failover", [("USDT", "100000")])
        status, answer = Client(a.port, key=key).call("POST", "/api/v5/trade/order", order("a1"))
        check(answer.get("code") == "0", f"node A refused an order: {answer}")

        # A second node is refused while A holds the lease.
        early = Node(pm, url, files, os.path.join(work, "b.log"))
        nodes.append(early)
        check(not early.ready(60), "a second node served while node A held the lease")

        paused_at = time.time()
        a.process.send_signal(signal.SIGSTOP)
        attempts = 0
        while True:
            attempts += 1
            b = Node(pm, url, files, os.path.join(work, "b.log"))
            if b.ready(120):
                break
            check(time.time() - paused_at < 60, "node B could not take the ledger within 60 s of node A's pause")
            time.sleep(0.5)
        nodes.append(b)
        failover = time.time() - paused_at
        status, answer = Client(b.port, key=key).call("POST", "/api/v5/trade/order", order("b1"))
        check(answer.get("code") == "0", f"node B refused an order of the same account: {answer}")

        a.process.send_signal(signal.SIGCONT)
        try:
            status, answer = Client(a.port, key=key).call("POST", "/api/v5/trade/order", order("a2"))
            check(answer.get("code") != "0", f"node A acknowledged an order after losing the lease: {answer}")
            refused = f"{status} code {answer.get('code')}"
        except InDoubt as error:
            refused = f"no answer ({error})"
        stored = psql(url, """SELECT string_agg("clOrdId", ',' ORDER BY "ordId") FROM "order" """)
        check(stored == "a1,b1", f"the ledger holds orders {stored!r}, expected a1,b1")
        print(f"failover: node B served {failover:.1f} s after node A's pause ({attempts} starts; lease 10 s); "
              f"node A, resumed, answered {refused} and stored nothing; ledger orders: {stored}")
    finally:
        for node in nodes:
            node.stop()
        psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
