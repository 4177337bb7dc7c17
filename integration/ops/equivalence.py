"""One seeded book on SQLite and on three PostgreSQL nodes gives the same accounts, fills and liquidations (issue 17).

The same script runs twice: against one `pm serve` on a SQLite file, and against three `pm serve --partitions auto`
nodes over one PostgreSQL ledger, every request through a node picked at random (forwarded when another node serves
the account). Both use the seeded random market, moved only by the script (steps of an hour, then shocks that
liquidate): after each move the script waits until every partition has applied it and the ledger is quiet. The book:
accounts with deposits, some in portfolio margin, leveraged perpetual and spot trades, resting orders, cancels.

Then, account by account (matched by creation order, since uids are random): balances, positions, orders by clOrdId
(state, filled size, average price, category), fills, and bills (type, sub-type, currency, change, instrument) must be
the same, as must the insurance fund and the house in total; and there must be liquidations. Order ids and times are
not compared (ids are numbered by partition on PostgreSQL).

Usage: equivalence.py PM_BIN   with PM_TEST_POSTGRES_URL naming a PostgreSQL server."""
import collections, decimal, os, random, shutil, sqlite3, subprocess, sys, tempfile, time, uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from opslib import Client, InDoubt, create_account, free_port, wait_ready  # noqa: E402

D = decimal.Decimal
FLAGS = ["--market-mode", "random", "--seed", "11", "--tick", "100000", "--step", "3600", "--rate-limit", "1e9"]


def psql(url, sql):
    out = subprocess.run(["psql", url, "-XAtq", "-F", "\t", "-c", sql], check=True, capture_output=True, text=True).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def serve(pm, db, files, work, name, extra=()):
    port = free_port()
    log = open(os.path.join(work, name + ".log"), "ab")
    process = subprocess.Popen([pm, "serve", "--db", db, "--files", files, "--port", str(port), *FLAGS, *extra],
                               stdout=log, stderr=subprocess.STDOUT)
    if not wait_ready(process, port, 120):
        raise SystemExit(f"equivalence: {name} exited while starting")
    return process, port


class Cluster:
    """Where the script's requests go: one SQLite node, or three PostgreSQL nodes (and how to wait for a move)."""

    def __init__(self, pm, work, postgres=None):
        self.work, self.postgres, self.processes, self.ports = work, postgres, [], []
        files = os.path.join(work, "sandbox")
        if postgres:
            for name in ("a", "b", "c"):
                process, port = serve(pm, postgres, files, work, name, ["--partitions", "auto"])
                self.processes.append(process)
                self.ports.append(port)
            deadline = time.time() + 60
            while len({o for (o,) in psql(postgres, 'SELECT "owner" FROM lease WHERE "expiresAt" > clock_timestamp()')}) != 3 \
                    or len(psql(postgres, 'SELECT 1 FROM lease WHERE "expiresAt" > clock_timestamp()')) != 16:
                if time.time() > deadline:
                    raise SystemExit("equivalence: the partitions did not spread over the three nodes")
                time.sleep(0.2)
            time.sleep(2)  # a round after the spread: nothing moves any more
        else:
            self.db = os.path.join(work, "sandbox.sqlite")
            process, port = serve(pm, self.db, self.db, work, "sqlite")
            files = self.db
            self.processes.append(process)
            self.ports.append(port)
        self.token = open(files + ".admin-token").read().strip()
        self.random = random.Random(3)
        self.answers = collections.Counter()

    def port(self):
        return self.random.choice(self.ports)

    def admin(self, path, body, port=None):
        """An admin call; with several nodes, the first that does it (the market's driver for moves)."""
        for candidate in ([port] if port else self.ports):
            status, answer = Client(candidate, token=self.token).admin("POST", path, body)
            if answer.get("code") == "0":
                return answer
        raise SystemExit(f"equivalence: {path} {body} refused everywhere: {answer}")

    def settle(self):
        """With several nodes: waits until every partition applied the newest tick and no bill is written for 1 s."""
        if not self.postgres:
            return
        deadline = time.time() + 60
        newest = int(psql(self.postgres, 'SELECT COALESCE(max("seq"), 0) FROM market_tick')[0][0])
        while True:
            ticks = [int(v) for (v,) in psql(self.postgres, "SELECT value FROM setting WHERE key LIKE 'tick.%'")]
            if len(ticks) == 16 and all(t == newest for t in ticks):
                break
            if time.time() > deadline:
                raise SystemExit(f"equivalence: partitions at {ticks}, not {newest}")
            time.sleep(0.1)
        last = None
        while True:
            now = psql(self.postgres, 'SELECT COALESCE(max("billId"), 0), count(*) FROM bill')[0]
            if now == last:
                return
            last = now
            time.sleep(1.0)

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=60)


def run_book(cluster):
    """The seeded book. Returns the accounts in creation order."""
    book = random.Random(7)
    accounts = []
    for index in range(12):
        # Portfolio margin needs 10,000 USD of equity.
        deposits = [("USDT", str(20000 if index % 4 == 1 else book.choice([3000, 5000, 8000, 20000])))]
        if index % 3 == 0:
            deposits.append(("BTC", "0.2"))
        port = cluster.port()
        account = create_account(Client(port, token=cluster.token), f"e{index}", deposits)
        account["port"] = port
        accounts.append(account)
        if index % 4 == 1:
            cluster.admin("/api/v5/sandbox/acknowledge", {"uid": account["uid"]}, port)
            status, answer = Client(cluster.port(), key=account).call("POST", "/api/v5/account/set-account-level", {"acctLv": "4"})
            assert answer.get("code") == "0", answer
    number = 0

    def order(account, body):
        nonlocal number
        number += 1
        body = dict(body, clOrdId=f"q{number}")
        status, answer = Client(cluster.port(), key=account).call("POST", "/api/v5/trade/order", body)
        cluster.answers[(answer.get("data") or [{}])[0].get("sCode") or answer.get("code")] += 1
        return answer

    for round_ in range(3):
        for account in accounts:
            instrument = book.choice(["BTC-USDT-SWAP", "BTC-USDT-SWAP", "ETH-USDT-SWAP"])
            size = str(book.choice([2, 5, 10, 20, 40]) * (1 if instrument.startswith("BTC") else 10))
            order(account, {"instId": instrument, "tdMode": "cross", "side": book.choice(["buy", "sell"]), "ordType": "market", "sz": size})
            if book.random() < 0.3:
                order(account, {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "market", "sz": "100",
                                "tgtCcy": "quote_ccy"})
            if book.random() < 0.4:
                order(account, {"instId": "BTC-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "limit", "px": "60000",
                                "sz": "1"})
        for _ in range(4):
            cluster.admin("/api/v5/sandbox/market/step", {})
            cluster.settle()
        coin = ["BTC", "ETH", "BTC"][round_]
        cluster.admin("/api/v5/sandbox/market/shock", {"moves": {coin: [-0.22, 0.3, 0.25][round_]}})
        cluster.settle()
    for account in accounts[::2]:
        status, answer = Client(cluster.port(), key=account).call("GET", "/api/v5/trade/orders-pending")
        for pending in answer.get("data", []):
            Client(cluster.port(), key=account).call("POST", "/api/v5/trade/cancel-order",
                                                     {"instId": pending["instId"], "ordId": pending["ordId"]})
    cluster.settle()
    return accounts


def snapshot(cluster, accounts):
    """Per account (by creation index): its ledger as comparable text, and the fund's and house's totals."""
    queries = {
        "balance": 'SELECT "ccy", "cashBal" FROM balance WHERE "uid" = {u} ORDER BY 1',
        "position": 'SELECT "instId", "pos", "avgPx" FROM position WHERE "uid" = {u} ORDER BY 1',
        "order": """SELECT "clOrdId", "instId", "side", "state", "accFillSz", "avgPx", "category", "fee" FROM "order"
                    WHERE "uid" = {u} ORDER BY "clOrdId", "instId", "side", "accFillSz", "avgPx\"""",
        "fill": """SELECT "clOrdId", "instId", "side", "fillPx", "fillSz", "fee", "pnl", "execType", "category" FROM fill
                   WHERE "uid" = {u} ORDER BY 1, 2, 3, 4, 5, 6""",
        "bill": """SELECT "type", "subType", "ccy", "balChg", "instId" FROM bill WHERE "uid" = {u} ORDER BY 1, 2, 3, 4, 5""",
    }
    result = {}
    if cluster.postgres:
        def rows(sql, uid):
            return [tuple(r) for r in psql(cluster.postgres, sql.format(u=f"'{uid}'"))]
        books = {table: psql(cluster.postgres, f'SELECT "ccy", sum("balance"::numeric) FROM "{table}" GROUP BY 1 ORDER BY 1')
                 for table in ("insuranceFund", "house")}
    else:
        connection = sqlite3.connect(cluster.db)

        def rows(sql, uid):
            return [tuple(str(v) for v in r) for r in connection.execute(sql.format(u="?").replace('"', '"'), (uid,))]
        books = {}
        for table in ("insuranceFund", "house"):
            sums = collections.defaultdict(D)
            for ccy, balance in connection.execute(f'SELECT ccy, balance FROM "{table}"'):
                sums[ccy] += D(balance)
            books[table] = [[ccy, str(total)] for ccy, total in sorted(sums.items())]
    for index, account in enumerate(accounts):
        result[index] = {name: rows(sql, account["uid"]) for name, sql in queries.items()}
    result["books"] = {table: [(ccy, str(D(total).normalize())) for ccy, total in values] for table, values in books.items()}
    return result


def main():
    pm = sys.argv[1]
    server = os.environ.get("PM_TEST_POSTGRES_URL")
    if not server:
        raise SystemExit("equivalence: PM_TEST_POSTGRES_URL is not set")
    work = tempfile.mkdtemp(prefix="pm-equivalence-")
    name = "pm_equivalence_" + uuid.uuid4().hex[:12]
    psql(server, f"CREATE DATABASE {name}")
    postgres = server.rsplit("/", 1)[0] + "/" + name
    snapshots = []
    try:
        for backend in ("sqlite", "postgres"):
            folder = os.path.join(work, backend)
            os.makedirs(folder)
            cluster = Cluster(pm, folder, postgres if backend == "postgres" else None)
            try:
                accounts = run_book(cluster)
                snapshots.append(snapshot(cluster, accounts))
                print(f"equivalence: {backend}: order answers {dict(cluster.answers)}", flush=True)
            finally:
                cluster.stop()
        sqlite_side, postgres_side = snapshots
        problems = []
        for key in sqlite_side:
            if sqlite_side[key] != postgres_side[key]:
                for part in sqlite_side[key]:
                    if sqlite_side[key][part] != postgres_side[key][part]:
                        problems.append(f"account {key} {part}:\n  sqlite   {sqlite_side[key][part]}\n  postgres {postgres_side[key][part]}")
        liquidations = sum(1 for key in sqlite_side if key != "books" for row in sqlite_side[key]["fill"]
                           if row[8] in ("full_liquidation", "partial_liquidation"))
        fills = sum(len(sqlite_side[key]["fill"]) for key in sqlite_side if key != "books")
        bills = sum(len(sqlite_side[key]["bill"]) for key in sqlite_side if key != "books")
        if liquidations == 0:
            problems.append("the book liquidated nothing: the comparison would not cover liquidations")
        if problems:
            raise SystemExit("equivalence: FAILED:\n" + "\n".join(problems[:10]))
        print(f"equivalence: SQLite and three PostgreSQL nodes agree on 12 accounts: {fills} fills ({liquidations} by "
              f"liquidation), {bills} bills, balances, positions, orders, insurance fund and house")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
