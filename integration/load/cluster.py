"""Orders per second through N `pm serve` nodes over one PostgreSQL ledger (issue 17's figures).

Starts N nodes with `--partitions auto` (static market, rate limit out of the way) on a new database, waits until the
16 partitions have spread, creates the clients' accounts through the nodes in turn (an account made through a node
falls in that node's partitions: each client trades on its own node, no forwarding), then runs one `pm-load` per node
for the same seconds, each loop "place a resting limit order, cancel it", and sums: operations per second, p50 and p99
latency, errors, and the database's commits per second (pg_stat_database). The same numbers with N = 1 are the single-node baseline on the same database engine.

Usage: cluster.py PM_BIN --nodes N --clients C --seconds S   with PM_TEST_POSTGRES_URL naming a server; pm-load must be
beside PM_BIN (swift build [-c release] --product pm-load). Prints one JSON line last."""
import argparse, collections, json, os, shutil, subprocess, sys, tempfile, time, uuid

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "ops"))
import loadgen  # noqa: E402
from opslib import free_port, wait_ready  # noqa: E402


def psql(url, sql):
    return subprocess.run(["psql", url, "-XAtq", "-c", sql], check=True, capture_output=True, text=True).stdout.strip()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("pm")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    server = os.environ["PM_TEST_POSTGRES_URL"]
    driver = os.path.join(os.path.dirname(os.path.abspath(args.pm)), "pm-load")
    if not os.access(driver, os.X_OK):
        raise SystemExit(f"cluster: no pm-load at {driver}")
    name = "pm_cluster_" + uuid.uuid4().hex[:12]
    psql(server, f"CREATE DATABASE {name}")
    db = server.rsplit("/", 1)[0] + "/" + name
    work = tempfile.mkdtemp(prefix="pm-cluster-")
    files = os.path.join(work, "load")
    processes, ports = [], []
    try:
        for index in range(args.nodes):
            port = free_port()
            log = open(os.path.join(work, f"node{index}.log"), "ab")
            process = subprocess.Popen([args.pm, "serve", "--db", db, "--files", files, "--port", str(port), "--partitions", "auto",
                                        "--market-mode", "static", "--rate-limit", "1e9"], stdout=log, stderr=subprocess.STDOUT)
            if not wait_ready(process, port, 120):
                raise SystemExit(f"cluster: node {index} exited while starting")
            processes.append(process)
            ports.append(port)
        deadline = time.time() + 60
        while True:
            counts = collections.Counter(psql(db, """SELECT "owner" FROM lease WHERE "expiresAt" > clock_timestamp()""").split())
            if sum(counts.values()) == 16 and len(counts) == args.nodes and max(counts.values()) - min(counts.values()) <= 1:
                break
            if time.time() > deadline:
                raise SystemExit(f"cluster: partitions did not spread: {counts}")
            time.sleep(0.2)
        token = open(files + ".admin-token").read().strip()
        per_node = [[] for _ in ports]
        for client in range(args.clients):
            node = client % len(ports)
            per_node[node] += loadgen.create_accounts(f"http://127.0.0.1:{ports[node]}", token, 1)
        price, lot = loadgen.far_price(f"http://127.0.0.1:{ports[0]}")
        start_at = time.time() + 1.0
        end_at = start_at + args.seconds
        commits = "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        time.sleep(max(0.0, start_at - time.time()))
        commits_before = int(psql(db, commits))
        drivers = [loadgen.run_swift_driver(driver, accounts, "127.0.0.1", port, price, lot, start_at, end_at, 30.0, 1)
                   for accounts, port in zip(per_node, ports) if accounts]
        time.sleep(max(0.0, end_at - time.time()))
        commits_after = int(psql(db, commits))
        reports = [loadgen.swift_report(process, end_at, 30.0) for process in drivers]
        histogram = collections.Counter()
        ok = collections.Counter()
        errors = collections.Counter()
        for report in reports:
            for op in ("place", "cancel"):
                histogram.update({int(k): v for k, v in report["histograms"][op].items()})
            ok.update(report["ok"])
            errors.update(report["errors"])
        result = {"nodes": args.nodes, "clients": args.clients, "seconds": args.seconds,
                  "operationsPerSecond": round((ok["place"] + ok["cancel"]) / args.seconds),
                  "p50Milliseconds": loadgen.rounded(loadgen.percentile(histogram, 0.5)),
                  "p99Milliseconds": loadgen.rounded(loadgen.percentile(histogram, 0.99)), "errors": dict(errors),
                  "postgresCommitsPerSecond": round((commits_after - commits_before) / args.seconds)}
        print(json.dumps(result))
        if errors:
            raise SystemExit(f"cluster: errors {dict(errors)}")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)
        psql(server, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    main()
