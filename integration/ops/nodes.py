"""Three `pm serve` nodes over one PostgreSQL ledger, with real processes (issue 17; docs/deploy.md, "Several nodes").

Node A starts alone (`--partitions auto`) and takes all 16 partitions; B and C join and each node settles on its
share (6, 5, 5). The market moves (random, seeded, a tick every 0.5 s, an hour of market time a tick): one node drives
it, every node applies every tick. Client threads trade through every node: each request goes to a random node, which
serves the account or forwards it to the account's node. Requests that get no answer are sent again with the same
clOrdId, which must be acknowledged or refused with 51016, never placed twice (a forwarded write whose node did not
answer, 50004, is in doubt the same way). Meanwhile:

  1. kill: B is killed (SIGKILL) and started again a second later, as a supervisor would. Its partitions' leases
     expire; the nodes alive take them over. Failover time: from the kill to every partition having a live owner
     again, and to the first order for one of B's accounts acknowledged through A.
  2. pause: C is paused (SIGSTOP) past its lease; the others take its partitions. Resumed (SIGCONT), C fences itself
     (its next renewal finds the leases taken) and commits nothing more: an order sent straight to it for one of its
     former accounts is refused, or forwarded to the account's new node. C is then killed and started again.

Then, with the load stopped, from the ledger: every acknowledged order stored exactly once (its ordId, its
account), every stored order acknowledged or in doubt; fills of stored orders only; every balance equal to its bills;
cash conserved per partition and currency (balances + fund + house = deposits); no funding paid twice; every
partition at the newest ticks; the same market through every node; ccxt (if installed) served through every node for
accounts of the other nodes; and a node stopped with SIGTERM hands its partitions over once it has drained.

Prints the failover times and the orders per second. Usage: nodes.py PM_BIN [--seconds 60] with PM_TEST_POSTGRES_URL
naming a PostgreSQL server (scripts/postgres start)."""
import argparse, collections, os, random, shutil, signal, subprocess, sys, tempfile, threading, time, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opslib import kill_process, Client, InDoubt, create_account, free_port, wait_ready  # noqa: E402

PROBLEMS = []


def check(condition, message):
    if not condition:
        PROBLEMS.append(message)
        print(f"nodes: PROBLEM: {message}", flush=True)


def psql(url, sql):
    out = subprocess.run(["psql", url, "-XAtq", "-F", "\t", "-c", sql], check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


class Node:
    """`pm serve --partitions auto` on a free port, sharing the key and admin-token files with the other nodes."""

    def __init__(self, pm, url, files, work, name):
        self.name, self.port = name, free_port()
        self.log_path = os.path.join(work, f"{name}.log")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [pm, "serve", "--db", url, "--files", files, "--port", str(self.port), "--partitions", "auto",
             "--market-mode", "random", "--seed", "5", "--tick", "0.5", "--step", "3600", "--rate-limit", "1e9"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        if not wait_ready(self.process, self.port, 120):
            raise SystemExit(f"nodes: {name} exited while starting:\n{open(self.log_path).read()[-3000:]}")

    @property
    def pid(self):
        return str(self.process.pid)

    def kill(self):
        kill_process(self.process)


def owners(url):
    """partition -> pid of its live owner (node ids are HOST/PID/RANDOM)."""
    rows = psql(url, 'SELECT "partition", "owner" FROM lease WHERE "expiresAt" > clock_timestamp()')
    return {int(p): owner.split("/")[1] for p, owner in rows}


def wait_spread(url, nodes, timeout):
    """Seconds until the 16 partitions have live owners, all of them `nodes`, within one of each other."""
    start = time.time()
    pids = {node.pid for node in nodes}
    while time.time() - start < timeout:
        held = owners(url)
        counts = collections.Counter(held.values())
        if len(held) == 16 and set(counts) == pids and max(counts.values()) - min(counts.values()) <= 1:
            return time.time() - start
        time.sleep(0.2)
    raise SystemExit(f"nodes: the partitions did not spread over {sorted(pids)} within {timeout} s: {owners(url)}")


class Load:
    """Client threads: orders through random live nodes; what was acknowledged, refused and left in doubt."""

    def __init__(self, accounts, threads):
        self.accounts, self.threads = accounts, threads
        self.nodes = []
        self.lock = threading.Lock()
        self.acked = {}            # clOrdId -> (uid, ordId)
        self.doubt = set()         # clOrdIds sent without an answer and not settled by a retry
        self.retried = collections.Counter()
        self.codes = collections.Counter()
        self.latencies = []
        self.resting = collections.defaultdict(list)  # uid -> [ordId]
        self.stop = threading.Event()
        self.samples = {}          # code -> one message

    def node(self):
        with self.lock:
            return random.choice(self.nodes)

    def send(self, node, account, body):
        client = Client(node.port, key=account)
        try:
            status, answer = client.call("POST", "/api/v5/trade/order", body)
        finally:
            client.http.close()
        data = answer.get("data") or [{}]
        if data[0].get("sCode") != "0":
            with self.lock:
                self.samples.setdefault(data[0].get("sCode") or answer.get("code"), (data[0].get("sMsg") or answer.get("msg")))
        return answer.get("code"), data[0].get("sCode"), data[0].get("ordId")

    def place(self, worker, number):
        account = random.choice(self.accounts)
        clOrdId = f"n{worker}x{number}"
        market = random.random() < 0.25
        body = {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": random.choice(["buy", "sell"]) if market else "buy",
                "ordType": "market" if market else "limit", "sz": "1", "clOrdId": clOrdId}
        if not market:
            body["px"] = "1000"
        started = time.time()
        try:
            code, scode, ordId = self.send(self.node(), account, body)
            if (scode or code) == "50004":
                raise InDoubt("50004: a forwarded write got no answer")
        except InDoubt:
            with self.lock:
                self.doubt.add(clOrdId)
            # The same order again, through another node: placed once at most.
            time.sleep(0.5)
            try:
                code, scode, ordId = self.send(self.node(), account, body)
            except InDoubt:
                return
            if (scode or code) == "50004":
                return
            with self.lock:
                self.retried[scode or code] += 1
                if scode == "0":
                    self.doubt.discard(clOrdId)
                    self.acked[clOrdId] = (account["uid"], ordId)
            return
        with self.lock:
            self.codes[scode or code] += 1
            if scode == "0":
                self.acked[clOrdId] = (account["uid"], ordId)
                self.latencies.append(time.time() - started)
                if not market:
                    self.resting[account["uid"]].append(ordId)

    def cancel(self):
        account = random.choice(self.accounts)
        with self.lock:
            if not self.resting[account["uid"]]:
                return
            ordId = self.resting[account["uid"]].pop()
        client = Client(self.node().port, key=account)
        try:
            _, answer = client.call("POST", "/api/v5/trade/cancel-order", {"instId": "BTC-USDT-SWAP", "ordId": ordId})
            with self.lock:
                self.codes["cancel " + str((answer.get("data") or [{}])[0].get("sCode") or answer.get("code"))] += 1
        except InDoubt:
            pass
        finally:
            client.http.close()

    def worker(self, index):
        number = 0
        while not self.stop.is_set():
            number += 1
            if random.random() < 0.2:
                self.cancel()
            else:
                self.place(index, number)

    def start(self):
        self.workers = [threading.Thread(target=self.worker, args=(i,), daemon=True) for i in range(self.threads)]
        for thread in self.workers:
            thread.start()

    def finish(self):
        self.stop.set()
        for thread in self.workers:
            thread.join(timeout=60)


def order_for(account, clOrdId):
    return {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "limit", "px": "1000", "sz": "1",
            "clOrdId": clOrdId}


def partition_of(uid):
    hash_ = 2166136261
    for byte in uid.encode():
        hash_ = ((hash_ ^ byte) * 16777619) % 4294967296
    return hash_ % 16


def failover_after_kill(url, load, pm, files, work, nodes, victim, through):
    """Kills `victim`, restarts it a second later; returns (seconds until its partitions are owned again, seconds until
    an order for one of its accounts is acknowledged through `through`) and the restarted node."""
    held = {p for p, pid in owners(url).items() if pid == victim.pid}
    mine = [a for a in load.accounts if partition_of(a["uid"]) in held]
    check(mine, f"no account in {victim.name}'s partitions {sorted(held)}")
    killed = time.time()
    victim.kill()
    print(f"nodes: {victim.name} (pid {victim.pid}, partitions {sorted(held)}) killed at "
          f"{time.strftime('%H:%M:%S', time.gmtime(killed))}.{int(killed % 1 * 10)}", flush=True)
    with load.lock:
        load.nodes = [n for n in nodes if n is not victim]
    time.sleep(1)
    restarted = Node(pm, url, files, work, victim.name + "2")
    owned_at = served_at = None

    def watch():
        nonlocal owned_at
        while time.time() - killed < 90 and owned_at is None:
            current = owners(url)
            if all(p in current and current[p] != victim.pid for p in held):
                owned_at = time.time() - killed
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    attempt = 0
    while time.time() - killed < 90 and served_at is None and mine:
        attempt += 1
        try:
            code, scode, _ = load.send(through, mine[0], order_for(mine[0], f"f{victim.name}{attempt}"))
            if scode == "0":
                served_at = time.time() - killed
        except InDoubt:
            pass
        time.sleep(0.1)
    watcher.join(timeout=90)
    check(owned_at is not None and served_at is not None, f"{victim.name}'s partitions not served again within 90 s")
    return owned_at, served_at, restarted


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pm")
    parser.add_argument("--seconds", type=float, default=60, help="length of the load (the kill and the pause fit in 60)")
    args = parser.parse_args()
    server = os.environ.get("PM_TEST_POSTGRES_URL")
    if not server:
        raise SystemExit("nodes: PM_TEST_POSTGRES_URL is not set (scripts/postgres start prints it)")
    random.seed(17)
    name = "pm_nodes_" + uuid.uuid4().hex[:12]
    psql(server, f"CREATE DATABASE {name}")
    url = server.rsplit("/", 1)[0] + "/" + name
    work = tempfile.mkdtemp(prefix="pm-nodes-")
    files = os.path.join(work, "sandbox")
    nodes = []
    try:
        a = Node(args.pm, url, files, work, "a")
        nodes.append(a)
        wait_spread(url, [a], 30)
        token = open(files + ".admin-token").read().strip()
        admin = Client(a.port, token=token)
        accounts = [create_account(admin, f"n{i}", [("USDT", "1000000")]) for i in range(24)]
        b = Node(args.pm, url, files, work, "b")
        c = Node(args.pm, url, files, work, "c")
        nodes += [b, c]
        print(f"nodes: 3 nodes settled on 6/5/5 partitions {wait_spread(url, nodes, 60):.1f} s after the third joined",
              flush=True)
        load = Load(accounts, threads=8)
        load.nodes = list(nodes)
        started = time.time()
        load.start()
        time.sleep(5)

        owned, served, b2 = failover_after_kill(url, load, args.pm, files, work, nodes, b, a)
        nodes.append(b2)
        print(f"nodes: B killed: its partitions owned again after {owned:.1f} s, an order for its account "
              f"acknowledged through A after {served:.1f} s (lease 10 s)", flush=True)
        with load.lock:
            load.nodes = [a, b2, c]
        wait_spread(url, [a, b2, c], 60)

        # Pause C past its lease; resumed, it must acknowledge nothing.
        held = {p for p, pid in owners(url).items() if pid == c.pid}
        victims = [acct for acct in accounts if partition_of(acct["uid"]) in held]
        with load.lock:
            load.nodes = [a, b2]
        paused = time.time()
        c.process.send_signal(signal.SIGSTOP)
        taken = None
        while time.time() - paused < 40:
            current = owners(url)
            if all(p in current and current[p] != c.pid for p in held):
                taken = time.time() - paused
                break
            time.sleep(0.2)
        check(taken is not None, "C's partitions were not taken over within 40 s of its pause")
        time.sleep(max(0.0, 14 - (time.time() - paused)))
        c.process.send_signal(signal.SIGCONT)
        # Resumed, C fences itself (its leases were taken): it commits nothing more. An order sent to it is refused, or,
        # if C had already let the account's partition go, forwarded to the partition's new node.
        fenced = "fencedC1"
        fenced_log = time.time() + 30
        while "refuses writes until restarted" not in open(c.log_path, errors="replace").read() and time.time() < fenced_log:
            time.sleep(0.1)
        check(time.time() < fenced_log, "C, resumed, did not fence itself")
        check(c.pid not in owners(url).values(), "C, resumed, still holds a partition")
        try:
            code, scode, ordId = load.send(c, victims[0], order_for(victims[0], fenced))
            if scode == "0":
                load.acked[fenced] = (victims[0]["uid"], ordId)  # served by the new owner: stored once, as any
            elif scode == "50004":
                load.doubt.add(fenced)
        except InDoubt:
            load.doubt.add(fenced)
        print(f"nodes: C paused: its partitions taken over after {taken or -1:.1f} s; resumed, it fenced itself and held nothing",
              flush=True)
        c.kill()
        c2 = Node(args.pm, url, files, work, "c2")
        nodes.append(c2)
        with load.lock:
            load.nodes = [a, b2, c2]
        wait_spread(url, [a, b2, c2], 60)
        time.sleep(max(0.0, args.seconds - (time.time() - started)))
        load.finish()
        elapsed = time.time() - started
        # The same market through every node: two answers at the same market time give the same mark.
        same = False
        for _ in range(20):
            marks = [Client(n.port).public("/api/v5/public/mark-price?instType=SWAP&instId=BTC-USDT-SWAP")[1]["data"][0]
                     for n in (a, b2, c2)]
            if len({m["ts"] for m in marks}) == 1:
                check(len({m["markPx"] for m in marks}) == 1, f"different marks at one market time: {marks}")
                same = True
                break
            time.sleep(0.05)
        check(same, "the nodes never showed the same market time")

        if ccxt_available():
            ccxt_through_every_node([a, b2, c2], accounts, url)

        # A graceful stop hands the node's partitions over at once, not after its leases expire.
        held = {p for p, pid in owners(url).items() if pid == c2.pid}
        stopping = time.time()
        c2.process.terminate()
        with load.lock:
            load.nodes = [a, b2]
        handed = wait_spread(url, [a, b2], 30)
        print(f"nodes: c2 stopped with SIGTERM: its partitions {sorted(held)} held by the others {handed:.1f} s after the "
              f"signal", flush=True)
        # It hands them over once it has drained (seconds when nothing holds it up; up to the idle timeout otherwise).
        check(handed < 40, "a graceful stop did not hand its partitions over within 40 s")
        check(c2.process.wait(timeout=60) == 0, "c2 did not exit 0 on SIGTERM")
        time.sleep(2)

        verify_ledger(url, load)
        latencies = sorted(load.latencies)
        p99 = latencies[int(0.99 * (len(latencies) - 1))] * 1000 if latencies else 0
        print(f"nodes: {len(load.acked)} orders acknowledged in {elapsed:.0f} s through 3 nodes with a kill and a pause "
              f"({len(load.acked) / elapsed:.0f}/s, p99 {p99:.0f} ms); answers {dict(load.codes)}; "
              f"{len(load.doubt)} in doubt; retries answered {dict(load.retried)}; messages {load.samples}", flush=True)
    finally:
        for node in nodes:
            node.kill()
        if PROBLEMS:
            for node in nodes:
                print(f"---- {node.name} log (last lines)\n{open(node.log_path).read()[-2500:]}")
        if os.environ.get("PM_NODES_KEEP"):
            print(f"nodes: logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
        try:
            psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        except subprocess.CalledProcessError:
            pass
    if PROBLEMS:
        raise SystemExit(f"nodes: FAILED: {len(PROBLEMS)} problem(s)")
    print("nodes: passed")


def ccxt_available():
    try:
        import ccxt  # noqa: F401
        return True
    except ImportError:
        print("nodes: ccxt is not installed here: the ccxt part did not run")
        return False


def ccxt_through_every_node(nodes, accounts, url):
    """Through every node, ccxt trades an account that another node serves (forwarded)."""
    import ccxt
    current = owners(url)
    for node in nodes:
        account = next(acct for acct in accounts if current.get(partition_of(acct["uid"])) not in (None, node.pid))
        exchange = ccxt.okx({"apiKey": account["apiKey"], "secret": account["secretKey"], "password": account["passphrase"]})
        exchange.urls["api"]["rest"] = f"http://127.0.0.1:{node.port}"
        exchange.load_markets()
        balance = exchange.fetch_balance()
        check(balance["total"].get("USDT", 0) > 0, f"ccxt through {node.name}: no USDT balance")
        order = exchange.create_order("BTC/USDT:USDT", "limit", "buy", 1, 1000, {"clOrdId": f"ccxt{node.name}"})
        fetched = exchange.fetch_order(order["id"], "BTC/USDT:USDT")
        check(fetched["status"] == "open", f"ccxt through {node.name}: order {fetched['status']}")
        exchange.cancel_order(order["id"], "BTC/USDT:USDT")
        try:
            exchange.create_order("BTC/USDT:USDT", "limit", "buy", 1, 1000, {"clOrdId": f"ccxt{node.name}"})
            check(False, f"ccxt through {node.name}: a repeated clOrdId was placed again")
        except ccxt.InvalidOrder:
            pass
    print("nodes: ccxt placed, read and cancelled through every node, for accounts of other nodes", flush=True)


def verify_ledger(url, load):
    stored = collections.defaultdict(list)
    for clOrdId, uid, ordId in psql(url, """SELECT "clOrdId", "uid", "ordId" FROM "order" WHERE "clOrdId" LIKE 'n%' OR "clOrdId" LIKE 'fenced%'"""):
        stored[clOrdId].append((uid, ordId))
    for clOrdId, (uid, ordId) in load.acked.items():
        check(stored.get(clOrdId) == [(uid, ordId)], f"acknowledged {clOrdId} ({uid}, {ordId}) stored as {stored.get(clOrdId)}")
    for clOrdId, rows in stored.items():
        check(len(rows) == 1, f"{clOrdId} stored {len(rows)} times")
        check(clOrdId in load.acked or clOrdId in load.doubt, f"{clOrdId} stored but refused")
    check(not psql(url, 'SELECT f."ordId" FROM fill f LEFT JOIN "order" o USING ("ordId") WHERE o."ordId" IS NULL'),
          "a fill of no stored order")
    unbalanced = psql(url, """
        SELECT b."uid", b."ccy" FROM balance b LEFT JOIN (SELECT "uid", "ccy", sum("balChg"::numeric) AS s FROM bill
            GROUP BY 1, 2) t USING ("uid", "ccy") WHERE b."cashBal"::numeric <> COALESCE(t.s, 0)""")
    check(not unbalanced, f"balances differing from their bills: {unbalanced[:5]}")
    off = psql(url, """
        WITH money AS (
            SELECT a."partition", b."ccy", b."cashBal"::numeric AS amount FROM balance b JOIN account a USING ("uid")
            UNION ALL SELECT "partition", "ccy", "balance"::numeric FROM "insuranceFund"
            UNION ALL SELECT "partition", "ccy", "balance"::numeric FROM house
            UNION ALL SELECT a."partition", l."ccy", -l."balChg"::numeric FROM bill l JOIN account a USING ("uid") WHERE l."type" = '1')
        SELECT "partition", "ccy", sum(amount) FROM money GROUP BY 1, 2 HAVING sum(amount) <> 0""")
    check(not off, f"cash not conserved (partition, currency, difference): {off}")
    twice = psql(url, """SELECT "uid", "instId", "px", "notes", count(*) FROM bill WHERE "type" = '8'
                         GROUP BY 1, 2, 3, 4 HAVING count(*) > 1""")
    check(not twice, f"funding paid twice: {twice[:5]}")
    funding = int(psql(url, """SELECT count(*) FROM bill WHERE "type" = '8'""")[0][0])
    newest = int(psql(url, 'SELECT COALESCE(max("seq"), 0) FROM market_tick')[0][0])
    ticks = {key: int(value) for key, value in psql(url, "SELECT key, value FROM setting WHERE key LIKE 'tick.%'")}
    check(len(ticks) == 16 and all(newest - 20 <= t <= newest for t in ticks.values()),
          f"partitions' ticks {sorted(ticks.values())} against the newest {newest}")
    check(funding > 0, "no funding was paid (the market did not cross a funding time)")
    print(f"nodes: ledger checked: {len(load.acked)} acknowledged orders stored once, balances = bills, cash conserved "
          f"in every partition, {funding} funding bills none twice, {newest} market ticks", flush=True)


if __name__ == "__main__":
    main()
