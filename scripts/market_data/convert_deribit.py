#!/usr/bin/env python3
"""Convert the committed Deribit BTC/ETH snapshots into the engine's bundled resources.

Reads (read-only) the Deribit option chains, futures curves and perpetual prices under
--data-dir (plus MANIFEST.csv and SOURCES.md one level up) and writes, under --out-dir:

  catalog/okx-instruments.json        OKX-style GET /api/v5/public/instruments response
  market/calm-2025-12-30.json         market snapshot from the 20251230T173115Z files
  market/selloff-2026-02-05.json      market snapshot from the 20260205T212937Z files
  PROVENANCE.md                       inputs, hashes, mapping rules, representative values, counts

Everything is deterministic: no clock, no randomness, sorted output, fixed formatting.
`--check` regenerates in memory and exits 1 if any file on disk differs.

Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import json
import math
import re
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

# --------------------------------------------------------------------------------------
# Fixed configuration
# --------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO_ROOT / "data" / "upstream" / "options"
DEFAULT_OUT_DIR = REPO_ROOT / "Sources" / "MarginDefaults" / "Resources"
SCRIPT_REL = "scripts/market_data/convert_deribit.py"

COINS = ["BTC", "ETH", "SOL", "LTC", "AVAX"]
REAL_COINS = ["BTC", "ETH"]  # coins with real Deribit data
REP_COINS = ["SOL", "LTC", "AVAX"]  # coins with representative values only
TIER = {"BTC": 1, "ETH": 1, "SOL": 2, "LTC": 2, "AVAX": 3}
LEVER_BY_TIER = {1: "100", 2: "50", 3: "20"}
TICK = {"BTC": "0.1", "ETH": "0.01", "SOL": "0.01", "LTC": "0.01", "AVAX": "0.001"}
SPOT_MINSZ = {"BTC": "0.00001", "ETH": "0.0001", "SOL": "0.001", "LTC": "0.001", "AVAX": "0.001"}
USDT_CTVAL = {"BTC": "0.01", "ETH": "0.1", "SOL": "1", "LTC": "1", "AVAX": "1"}
USDC_CTVAL = {"BTC": "0.0001", "ETH": "0.001"}
OPTION_CTVAL = {"BTC": "0.01", "ETH": "0.1"}
REP_FUTURE_DATES = ["260327", "260626", "260925", "261225"]

INST_TYPE_ORDER = {"SPOT": 0, "SWAP": 1, "FUTURES": 2, "OPTION": 3}
INST_KEYS = [
    "instType", "instId", "uly", "instFamily", "baseCcy", "quoteCcy", "settleCcy", "ctVal",
    "ctMult", "ctValCcy", "ctType", "optType", "stk", "listTime", "expTime", "lever",
    "tickSz", "lotSz", "minSz", "state", "alias", "category",
]

LIST_TIME_DEFAULT = "1756684800000"  # 2025-09-01T00:00:00Z
LIST_TIME_LATE = "1767225600000"  # 2026-01-01T00:00:00Z: only seen in the 2026-02-05 data

MS_PER_YEAR = 31_536_000_000  # 365 days
PERP_PREMIUM = 1.0001  # representative perp price = index x this
REP_BETA = 1.2  # representative tier2/3 sell-off: index x (BTC move)^beta

CALM_REP_INDEX = {"SOL-USD": "124.5", "LTC-USD": "77.8", "AVAX-USD": "12.35"}

SNAPSHOTS = [
    {
        "key": "calm",
        "stamp": "20251230T173115Z",
        "out": "market/calm-2025-12-30.json",
        "USDT-USD": "0.99975",
        "USDC-USD": "0.9999",
        "label": "calm market, 2025-12-30",
    },
    {
        "key": "selloff",
        "stamp": "20260205T212937Z",
        "out": "market/selloff-2026-02-05.json",
        "USDT-USD": "0.9992",
        "USDC-USD": "0.99985",
        "label": "2026-02-05 sell-off",
    },
]

MONTHS = {m: i + 1 for i, m in enumerate(
    ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"])}
OPTION_RE = re.compile(r"^(BTC|ETH)-(\d{1,2})([A-Z]{3})(\d{2})-(\d+)-([CP])$")
FUTURE_RE = re.compile(r"^(BTC|ETH)-(\d{1,2})([A-Z]{3})(\d{2})$")

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


class ConversionError(Exception):
    pass


def fail(msg: str) -> None:
    raise ConversionError(msg)


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

def iso_to_ms(text: str) -> int:
    """ISO-8601 with offset -> Unix ms, truncating sub-millisecond digits."""
    t = dt.datetime.fromisoformat(text)
    if t.tzinfo is None:
        fail(f"timestamp without timezone: {text!r}")
    return (t - EPOCH) // dt.timedelta(milliseconds=1)


def ms_to_iso(ms: int) -> str:
    return (EPOCH + dt.timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def deribit_date(day: str, mon: str, yy: str) -> dt.date:
    if mon not in MONTHS:
        fail(f"unknown month {mon!r}")
    return dt.date(2000 + int(yy), MONTHS[mon], int(day))


def yymmdd(d: dt.date) -> str:
    return d.strftime("%y%m%d")


def yymmdd_to_date(s: str) -> dt.date:
    return dt.date(2000 + int(s[0:2]), int(s[2:4]), int(s[4:6]))


def expiry_ms(d: dt.date) -> int:
    """08:00 UTC on the expiry date, in Unix ms."""
    t = dt.datetime(d.year, d.month, d.day, 8, 0, tzinfo=dt.timezone.utc)
    return (t - EPOCH) // dt.timedelta(milliseconds=1)


def num(x: float | Decimal) -> str:
    """repr() of the float, rewritten in plain decimal if repr() uses an exponent."""
    f = float(x)
    if not math.isfinite(f):
        fail(f"non-finite number {x!r}")
    r = repr(f)
    if "e" in r or "E" in r:
        r = format(Decimal(r), "f")
        if "." not in r:
            r += ".0"
    return r


def round_to_tick(x: float, tick: str) -> float:
    q = Decimal(tick)
    if q.as_tuple().digits != (1,):
        fail(f"tick {tick} is not a power of ten")
    return float(Decimal(repr(x)).quantize(q, rounding=ROUND_HALF_EVEN))


def round_sig(x: float, sig: int) -> float:
    d = Decimal(repr(x))
    return float(d.quantize(Decimal(1).scaleb(d.adjusted() - sig + 1), rounding=ROUND_HALF_EVEN))


def median_text(values: list[str]) -> float:
    """Exact median of decimal strings (Decimal arithmetic), returned as float."""
    ds = sorted(Decimal(v) for v in values)
    if not ds:
        fail("median of empty list")
    n = len(ds)
    m = ds[n // 2] if n % 2 else (ds[n // 2 - 1] + ds[n // 2]) / 2
    return float(m)


def parse_positive(text: str) -> float | None:
    """Float value if present, finite and > 0, else None."""
    if text is None or text.strip() == "":
        return None
    try:
        v = float(text)
    except ValueError:
        return None
    if not math.isfinite(v) or v <= 0:
        return None
    return v


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            h.update(chunk)
    return h.hexdigest()


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def dump_json(obj: object) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------

def input_files(stamp: str) -> dict[str, str]:
    return {
        "chain": f"deribit_btc_eth_option_chain_{stamp}.csv",
        "curve": f"deribit_futures_curve_{stamp}.csv",
        "perp": f"deribit_perpetual_{stamp}.csv",
    }


def load_manifest(manifest: Path, sources: Path) -> dict[str, dict[str, str]]:
    if not manifest.is_file():
        fail(f"MANIFEST.csv not found at {manifest}")
    if not sources.is_file():
        fail(f"SOURCES.md not found at {sources}")
    rows = {r["file"]: r for r in read_csv(manifest)}
    return rows


def verify_inputs(data_dir: Path, manifest_rows: dict[str, dict[str, str]],
                  sources_text: str) -> list[dict[str, str]]:
    """sha256 of every input, cross-checked against MANIFEST.csv; origin from MANIFEST/SOURCES."""
    out = []
    for snap in SNAPSHOTS:
        for kind, name in input_files(snap["stamp"]).items():
            path = data_dir / name
            if not path.is_file():
                fail(f"missing input {path}")
            rel = f"options/{name}"
            row = manifest_rows.get(rel)
            if row is None:
                fail(f"{rel} has no row in MANIFEST.csv")
            digest = sha256_file(path)
            if digest != row["sha256"]:
                fail(f"sha256 mismatch for {rel}: computed {digest}, MANIFEST.csv says {row['sha256']}")
            size = path.stat().st_size
            if str(size) != row["bytes"]:
                fail(f"size mismatch for {rel}: {size} bytes, MANIFEST.csv says {row['bytes']}")
            n_rows = len(read_csv(path))
            if str(n_rows) != row["rows"]:
                fail(f"row count mismatch for {rel}: {n_rows} rows, MANIFEST.csv says {row['rows']}")
            repo = row["origin_repo"]
            commit = row["origin_commit"]
            # SOURCES.md must name the same repository and commit.
            if repo.split("/", 1)[-1] not in sources_text or commit not in sources_text:
                fail(f"SOURCES.md does not mention origin {repo} @ {commit} of {rel}")
            out.append({
                "snapshot": snap["key"], "kind": kind, "rel": rel, "name": name,
                "sha256": digest, "bytes": str(size), "rows": str(n_rows),
                "origin_repo": repo, "origin_path": row["origin_path"], "origin_commit": commit,
                "origin_blob": row["origin_blob"], "transformation": row["transformation"],
            })
    return out


def load_snapshot(data_dir: Path, snap: dict) -> dict:
    files = input_files(snap["stamp"])
    chain = read_csv(data_dir / files["chain"])
    curve = read_csv(data_dir / files["curve"])
    perp = read_csv(data_dir / files["perp"])
    if not chain:
        fail(f"empty chain {files['chain']}")
    stamps = {r["timestamp"] for r in chain}
    if len(stamps) != 1:
        fail(f"{files['chain']}: expected one timestamp, got {sorted(stamps)}")
    stamp = stamps.pop()
    ts = iso_to_ms(stamp)
    for r in curve:
        if iso_to_ms(r["timestamp"]) != ts:
            fail(f"{files['curve']}: timestamp {r['timestamp']} differs from chain {stamp}")
    for r in perp:
        if iso_to_ms(r["obs_datetime"]) != ts:
            fail(f"{files['perp']}: obs_datetime {r['obs_datetime']} differs from chain {stamp}")
    names = [r["instrument_name"] for r in chain]
    if len(names) != len(set(names)):
        fail(f"{files['chain']}: duplicate instrument_name")
    return {"snap": snap, "files": files, "chain": chain, "curve": curve, "perp": perp,
            "ts": ts, "stamp": stamp}


# --------------------------------------------------------------------------------------
# Instrument mapping
# --------------------------------------------------------------------------------------

def map_option(row: dict[str, str]) -> dict[str, str]:
    """Deribit option row -> OKX option fields (instId, coin, optType, stk, expTime)."""
    name = row["instrument_name"]
    m = OPTION_RE.match(name)
    if not m:
        fail(f"unparseable option name {name!r}")
    coin, day, mon, yy, strike, cp = m.groups()
    d = deribit_date(day, mon, yy)
    exp = iso_to_ms(row["expiry_datetime"])
    if exp != expiry_ms(d):
        fail(f"{name}: expiry_datetime {row['expiry_datetime']} is not 08:00 UTC of the name's date")
    if Decimal(row["strike"]) != Decimal(strike):
        fail(f"{name}: strike column {row['strike']} differs from name")
    if row["currency"] != coin:
        fail(f"{name}: currency column {row['currency']}")
    if {"call": "C", "put": "P"}.get(row["option_type"]) != cp:
        fail(f"{name}: option_type {row['option_type']}")
    return {"instId": f"{coin}-USD-{yymmdd(d)}-{strike}-{cp}", "coin": coin, "optType": cp,
            "stk": strike, "expTime": str(exp)}


def map_future(name: str) -> tuple[str, str]:
    """Deribit dated future name -> (coin, YYMMDD)."""
    m = FUTURE_RE.match(name)
    if not m:
        fail(f"unparseable futures name {name!r}")
    coin, day, mon, yy = m.groups()
    return coin, yymmdd(deribit_date(day, mon, yy))


def inst(**fields: str) -> dict[str, str]:
    out = {k: "" for k in INST_KEYS}
    out.update({"state": "live", "alias": "", "category": "1", "listTime": LIST_TIME_DEFAULT})
    for k, v in fields.items():
        if k not in out:
            fail(f"unknown instrument key {k}")
        out[k] = v
    for k, v in out.items():
        if not isinstance(v, str):
            fail(f"instrument key {k} is not a string: {v!r}")
    return out


def linear_terms(coin: str, quote: str) -> dict[str, str]:
    if quote == "USDT":
        ct_val, lot = USDT_CTVAL[coin], "0.01"
    elif quote == "USDC":
        ct_val, lot = USDC_CTVAL[coin], "1"
    else:
        fail(quote)
    return {"uly": f"{coin}-{quote}", "instFamily": f"{coin}-{quote}", "baseCcy": "",
            "quoteCcy": "", "settleCcy": quote, "ctVal": ct_val, "ctMult": "1",
            "ctValCcy": coin, "ctType": "linear", "lever": LEVER_BY_TIER[TIER[coin]],
            "tickSz": TICK[coin], "lotSz": lot, "minSz": lot}


def inverse_terms(coin: str) -> dict[str, str]:
    return {"uly": f"{coin}-USD", "instFamily": f"{coin}-USD", "settleCcy": coin,
            "ctVal": "100" if coin == "BTC" else "10", "ctMult": "1", "ctValCcy": "USD",
            "ctType": "inverse", "lever": LEVER_BY_TIER[TIER[coin]], "tickSz": TICK[coin],
            "lotSz": "1", "minSz": "1"}


def build_catalog(snaps: list[dict]) -> tuple[list[dict[str, str]], dict]:
    calm, sell = snaps
    insts: list[dict[str, str]] = []

    # SPOT
    for coin in COINS:
        for quote in ("USDT", "USDC"):
            insts.append(inst(instType="SPOT", instId=f"{coin}-{quote}", baseCcy=coin,
                              quoteCcy=quote, lever="10", tickSz=TICK[coin],
                              lotSz="0.00000001", minSz=SPOT_MINSZ[coin]))
    # SWAP
    for coin in COINS:
        quotes = ("USDT", "USDC") if coin in REAL_COINS else ("USDT",)
        for quote in quotes:
            insts.append(inst(instType="SWAP", instId=f"{coin}-{quote}-SWAP",
                              **linear_terms(coin, quote)))
        insts.append(inst(instType="SWAP", instId=f"{coin}-USD-SWAP", **inverse_terms(coin)))

    # FUTURES: BTC/ETH at every curve expiry of either snapshot
    curve_dates: dict[str, set[tuple[str, str]]] = {}
    for s in snaps:
        curve_dates[s["snap"]["key"]] = {map_future(r["futures_instrument_name"]) for r in s["curve"]}
    all_dates = curve_dates["calm"] | curve_dates["selloff"]
    for coin, date in sorted(all_dates):
        list_time = LIST_TIME_LATE if (coin, date) not in curve_dates["calm"] else LIST_TIME_DEFAULT
        exp = str(expiry_ms(yymmdd_to_date(date)))
        for quote in ("USDT", "USDC"):
            insts.append(inst(instType="FUTURES", instId=f"{coin}-{quote}-{date}", expTime=exp,
                              listTime=list_time, **linear_terms(coin, quote)))
        insts.append(inst(instType="FUTURES", instId=f"{coin}-USD-{date}", expTime=exp,
                          listTime=list_time, **inverse_terms(coin)))
    for coin in REP_COINS:
        for date in REP_FUTURE_DATES:
            exp = str(expiry_ms(yymmdd_to_date(date)))
            insts.append(inst(instType="FUTURES", instId=f"{coin}-USDT-{date}", expTime=exp,
                              **linear_terms(coin, "USDT")))
            insts.append(inst(instType="FUTURES", instId=f"{coin}-USD-{date}", expTime=exp,
                              **inverse_terms(coin)))

    # OPTION: union of both chains
    calm_names = {r["instrument_name"] for r in calm["chain"]}
    options: dict[str, dict[str, str]] = {}
    for s in snaps:
        for row in s["chain"]:
            o = map_option(row)
            list_time = LIST_TIME_DEFAULT if row["instrument_name"] in calm_names else LIST_TIME_LATE
            rec = inst(instType="OPTION", instId=o["instId"], uly=f"{o['coin']}-USD",
                       instFamily=f"{o['coin']}-USD", settleCcy=o["coin"],
                       ctVal=OPTION_CTVAL[o["coin"]], ctMult="1", ctValCcy=o["coin"],
                       optType=o["optType"], stk=o["stk"], expTime=o["expTime"],
                       listTime=list_time, lotSz="1", minSz="1", tickSz="0.0001")
            prev = options.get(o["instId"])
            if prev is not None and prev != rec:
                fail(f"{o['instId']}: inconsistent between snapshots")
            options[o["instId"]] = rec
    insts.extend(options.values())

    ids = [i["instId"] for i in insts]
    if len(ids) != len(set(ids)):
        fail("duplicate instId in catalog")
    insts.sort(key=lambda i: (INST_TYPE_ORDER[i["instType"]], i["instId"]))

    stats = {
        "futures_dates": sorted(all_dates),
        "late_futures": sorted(all_dates - curve_dates["calm"]),
        "options_calm_only": len(calm_names - {r["instrument_name"] for r in sell["chain"]}),
        "options_selloff_only": len({r["instrument_name"] for r in sell["chain"]} - calm_names),
        "options_both": len(calm_names & {r["instrument_name"] for r in sell["chain"]}),
    }
    return insts, stats


# --------------------------------------------------------------------------------------
# Market snapshots
# --------------------------------------------------------------------------------------

def index_medians(s: dict) -> dict[str, float]:
    out = {}
    for coin in REAL_COINS:
        vals = [r["index_price"] for r in s["chain"] if r["currency"] == coin]
        out[f"{coin}-USD"] = median_text(vals)
    return out


def basis_curve(s: dict, spot_btc: float) -> list[tuple[float, float]]:
    """[(tau_years, annualised basis)] for BTC dated futures of this snapshot, sorted by tau."""
    pts = []
    for r in s["curve"]:
        coin, date = map_future(r["futures_instrument_name"])
        if coin != "BTC":
            continue
        tau = (expiry_ms(yymmdd_to_date(date)) - s["ts"]) / MS_PER_YEAR
        if tau <= 0:
            continue
        f = float(r["snapshot_term_mark_price"])
        pts.append((tau, (f / spot_btc - 1.0) / tau))
    pts.sort()
    if not pts:
        fail("no live BTC futures in the curve")
    return pts


def interp(pts: list[tuple[float, float]], tau: float) -> float:
    if tau <= pts[0][0]:
        return pts[0][1]
    if tau >= pts[-1][0]:
        return pts[-1][1]
    for (t0, a0), (t1, a1) in zip(pts, pts[1:]):
        if t0 <= tau <= t1:
            return a0 + (a1 - a0) * (tau - t0) / (t1 - t0)
    fail("interpolation failed")
    return 0.0


def chain_notes(s: dict) -> dict:
    """Descriptive statistics of the raw chain, for PROVENANCE.md and stdout."""
    rows = s["chain"]
    ivs = [float(r["implied_volatility"]) for r in rows if parse_positive(r["implied_volatility"])]
    crossed = mark_outside = no_bid = no_ask = no_quote = 0
    for r in rows:
        b, a, m = r["bid_price"].strip(), r["ask_price"].strip(), r["mark_price"].strip()
        no_bid += b == ""
        no_ask += a == ""
        no_quote += b == "" and a == ""
        if b and a:
            if float(b) > float(a):
                crossed += 1
            if not float(b) <= float(m) <= float(a):
                mark_outside += 1
    fwd_per_expiry: dict[tuple[str, str], set[str]] = {}
    for r in rows:
        fwd_per_expiry.setdefault((r["currency"], r["expiry_datetime"]), set()).add(r["underlying"])
    idx = {}
    for coin in REAL_COINS:
        v = [float(r["index_price"]) for r in rows if r["currency"] == coin]
        idx[coin] = (min(v), max(v))
    return {
        "rows": len(rows),
        "btc_rows": sum(r["currency"] == "BTC" for r in rows),
        "eth_rows": sum(r["currency"] == "ETH" for r in rows),
        "expiries": len({r["expiry_datetime"] for r in rows}),
        "iv_min": min(ivs), "iv_max": max(ivs),
        "iv_outside": sum(1 for v in ivs if v < 0.05 or v > 5),
        "crossed": crossed, "mark_outside": mark_outside,
        "no_bid": no_bid, "no_ask": no_ask, "no_quote": no_quote,
        "multi_fwd_expiries": sum(1 for v in fwd_per_expiry.values() if len(v) > 1),
        "n_expiry_groups": len(fwd_per_expiry),
        "index_range": idx,
    }


def build_market(s: dict, catalog_ids: dict[str, dict[str, str]], indices_real: dict[str, float],
                 rep_index: dict[str, float], src_rows: list[dict[str, str]]) -> tuple[dict, dict]:
    snap = s["snap"]
    ts = s["ts"]
    usdt = float(snap["USDT-USD"])
    usdc = float(snap["USDC-USD"])
    stable = {"USDT": usdt, "USDC": usdc}

    indices: dict[str, float] = {}
    indices.update(indices_real)
    indices.update(rep_index)
    indices["USDT-USD"] = usdt
    indices["USDC-USD"] = usdc
    representative = {"USDT-USD", "USDC-USD", *rep_index.keys()}

    marks: dict[str, dict[str, str]] = {}
    counts = {"SWAP": 0, "FUTURES": 0, "OPTION": 0}

    def add(inst_id: str, px: float | None, rep: bool, **extra: float) -> None:
        if inst_id in marks:
            fail(f"duplicate mark {inst_id}")
        if inst_id not in catalog_ids:
            fail(f"mark {inst_id} has no instrument in the catalog")
        m = {"instId": inst_id} if px is None else {"instId": inst_id, "markPx": num(px)}
        for k, v in extra.items():
            m[k] = num(v)
        marks[inst_id] = m
        counts[catalog_ids[inst_id]["instType"]] += 1
        if rep:
            representative.add(inst_id)

    def add_linear_and_inverse(coin: str, suffix: str, usd: float, real: bool,
                               quotes: tuple[str, ...]) -> None:
        # Inverse (USD-margined, coin-settled): the USD price itself. Real BTC/ETH values
        # are written as given; representative ones are rounded to the tick.
        inv = usd if real else round_to_tick(usd, TICK[coin])
        add(f"{coin}-USD-{suffix}", inv, rep=not real)
        # Linear: USD price converted to the stablecoin, rounded to tickSz. Always uses a
        # representative stablecoin rate, hence representative.
        for q in quotes:
            add(f"{coin}-{q}-{suffix}", round_to_tick(usd / stable[q], TICK[coin]), rep=True)

    # Perpetuals
    perp_px = {}
    for r in s["perp"]:
        if r["instrument_name"] != f"{r['coin']}-PERPETUAL":
            fail(f"unexpected perp row {r['instrument_name']}")
        perp_px[r["coin"]] = float(r["perp_futures_mark_price"])
    for coin in REAL_COINS:
        if coin not in perp_px:
            fail(f"no perpetual price for {coin}")
        add_linear_and_inverse(coin, "SWAP", perp_px[coin], True, ("USDT", "USDC"))
    for coin in REP_COINS:
        add_linear_and_inverse(coin, "SWAP", indices[f"{coin}-USD"] * PERP_PREMIUM, False, ("USDT",))

    # Dated futures, real
    expired_futures = []
    for r in sorted(s["curve"], key=lambda r: r["futures_instrument_name"]):
        coin, date = map_future(r["futures_instrument_name"])
        if expiry_ms(yymmdd_to_date(date)) <= ts:
            expired_futures.append(r["futures_instrument_name"])
            continue
        add_linear_and_inverse(coin, date, float(r["snapshot_term_mark_price"]), True, ("USDT", "USDC"))

    # Dated futures, representative
    pts = basis_curve(s, indices["BTC-USD"])
    for coin in REP_COINS:
        spot = indices[f"{coin}-USD"]
        for date in REP_FUTURE_DATES:
            exp = expiry_ms(yymmdd_to_date(date))
            if exp <= ts:
                continue
            tau = (exp - ts) / MS_PER_YEAR
            fwd = spot * (1.0 + interp(pts, tau) * tau)
            add_linear_and_inverse(coin, date, fwd, False, ("USDT",))

    # Options
    skipped: list[tuple[str, str]] = []
    vol_only: list[str] = []
    for row in s["chain"]:
        o = map_option(row)
        name = row["instrument_name"]
        mark = parse_positive(row["mark_price"])
        vol = parse_positive(row["implied_volatility"])
        fwd = parse_positive(row["underlying"])
        bad = [c for c, v in (("implied_volatility", vol), ("underlying", fwd)) if v is None]
        if not bad and mark is None and int(o["expTime"]) > ts:
            # Deribit prints a zero mark for far out-of-the-money rows but keeps their mark IV:
            # ship the volatility and forward only, and let the engine compute markPx
            # (docs/methodology/01-instruments-market.md §1.2).
            add(o["instId"], None, rep=False, markVol=vol, fwdPx=fwd)
            vol_only.append(name)
            continue
        if mark is None:
            bad.insert(0, "mark_price")
        if bad:
            skipped.append((name, "missing/non-positive " + "+".join(bad)
                            + f" (mark_price={row['mark_price']!r})"))
            continue
        if int(o["expTime"]) <= ts:
            skipped.append((name, "expired at snapshot time"))
            continue
        add(o["instId"], mark, rep=False, markVol=vol, fwdPx=fwd)

    skipped.sort()
    for k, v in indices.items():
        if not math.isfinite(v) or v <= 0:
            fail(f"bad index {k}={v}")

    chain_src = next(r for r in src_rows if r["snapshot"] == snap["key"] and r["kind"] == "chain")
    curve_src = next(r for r in src_rows if r["snapshot"] == snap["key"] and r["kind"] == "curve")
    perp_src = next(r for r in src_rows if r["snapshot"] == snap["key"] and r["kind"] == "perp")
    repo = chain_src["origin_repo"]
    source = (
        f"Deribit public market data ({snap['label']}, collection run started "
        f"{s['stamp']}) as committed to {repo} by its GitHub-Actions collector: option chain "
        f"{chain_src['name']} (verbatim copy of {chain_src['origin_path']} @ "
        f"{chain_src['origin_commit']}), futures curve {curve_src['name']} and perpetual "
        f"{perp_src['name']} (rows of {curve_src['origin_path']} and {perp_src['origin_path']} "
        f"@ {curve_src['origin_commit']} for this snapshot). Real Deribit data: BTC-USD and "
        f"ETH-USD (median of the chain's index_price column), every option mark (markPx = "
        f"Deribit mark_price in coin per 1 coin of underlying, markVol = Deribit mark IV as a "
        f"decimal, fwdPx = Deribit underlying_price, the forward for that expiry), the inverse "
        f"dated futures (snapshot_term_mark_price, the futures price referenced by the option "
        f"rows) and the inverse perpetuals (the Deribit 1-minute candle price nearest the "
        f"snapshot, not Deribit's own mark). Deribit names are mapped to OKX-style instIds "
        f"(BTC-27MAR26-98000-C -> BTC-USD-260327-98000-C, BTC-27MAR26 -> BTC-USD-260327, "
        f"BTC-PERPETUAL -> BTC-USD-SWAP). Representative, not market data (listed in "
        f"'representative'): the USDT-USD and USDC-USD rates (fixed values); SOL, LTC and AVAX "
        f"(no data: fixed calm levels, sell-off levels scaled by the BTC move to the power "
        f"{REP_BETA}), with their perpetuals at index x {PERP_PREMIUM} and their futures at "
        f"index x (1 + a x tau) using BTC's annualised basis a interpolated from this curve; "
        f"and every linear USDT/USDC-margined mark, which is the USD price divided by the "
        f"representative stablecoin rate and rounded to tickSz. Regenerate with "
        f"python3 {SCRIPT_REL}."
    )

    market = {
        "ts": str(ts),
        "source": source,
        "representative": sorted(representative),
        "indices": {k: num(v) for k, v in indices.items()},
        "rates": {"USD": "0"},
        "marks": [marks[k] for k in sorted(marks)],
    }
    info = {"counts": counts, "skipped": skipped, "vol_only": vol_only, "expired_futures": expired_futures,
            "n_marks": len(marks), "basis": pts, "n_representative": len(representative)}
    return market, info


# --------------------------------------------------------------------------------------
# PROVENANCE.md
# --------------------------------------------------------------------------------------

def build_provenance(src_rows, meta_files, catalog, cat_stats, snaps, infos, notes,
                     rep_values) -> bytes:
    L: list[str] = []
    w = L.append
    type_counts = {t: sum(1 for i in catalog if i["instType"] == t) for t in INST_TYPE_ORDER}
    w("# Provenance of the bundled catalog and market snapshots")
    w("")
    w(f"Generated by `{SCRIPT_REL}`. Do not edit these files by hand. Regenerate from the repository root with")
    w("")
    w("```sh")
    w(f"python3 {SCRIPT_REL} --out-dir Sources/MarginDefaults/Resources")
    w("```")
    w("")
    w(f"and verify that the committed files match the inputs with `python3 {SCRIPT_REL} --check`")
    w("(exits 1 and names each differing file). The script uses only the Python 3.11 standard library,")
    w("reads no clock and sorts all output, so a rerun reproduces every byte.")
    w("")
    w("Generated files (relative to this directory):")
    w("")
    w("* `catalog/okx-instruments.json`: OKX `GET /api/v5/public/instruments` response shape.")
    for s in snaps:
        w(f"* `{s['snap']['out']}`: market snapshot, {s['snap']['label']}.")
    w("* `PROVENANCE.md`: this file.")
    w("")
    w("## Inputs")
    w("")
    w("All data comes from the public repository "
      f"`{src_rows[0]['origin_repo']}` (a thesis project; no licence file; the underlying data is "
      "Deribit public API v2 market data, subject to Deribit's terms; fine as internal test fixtures). "
      "The files are committed verbatim under `data/upstream/` (with that collection's `MANIFEST.csv` and "
      "`SOURCES.md`); paths below are relative to `data/upstream/`, as in its `MANIFEST.csv`. Each sha256 was "
      "computed by the script and checked against `MANIFEST.csv`; the script fails if they differ.")
    w("")
    w("| File | Rows | Bytes | sha256 | Origin path @ commit (blob) | Transformation |")
    w("|---|---|---|---|---|---|")
    for r in src_rows:
        w(f"| `{r['rel']}` | {r['rows']} | {r['bytes']} | `{r['sha256']}` | "
          f"`{r['origin_path']}` @ `{r['origin_commit']}` (blob `{r['origin_blob']}`) | {r['transformation']} |")
    w("")
    w("Metadata read (not data): " + ", ".join(f"`{n}` (sha256 `{h}`)" for n, h in meta_files) + ".")
    w("")
    w("## Mapping rules")
    w("")
    w("Catalog (`catalog/okx-instruments.json`): `{\"code\":\"0\",\"msg\":\"\",\"data\":[...]}`, instruments "
      "sorted by instType (SPOT, SWAP, FUTURES, OPTION) then instId. Every instrument has all of "
      + ", ".join(f"`{k}`" for k in INST_KEYS)
      + "; every value is a string (`\"\"` when not applicable), `state` `live`, `alias` `\"\"`, "
      "`category` `1`, times in Unix ms. Coins: BTC, ETH (tier 1), SOL, LTC (tier 2), AVAX (tier 3).")
    w("")
    w("* SPOT: `{COIN}-USDT` and `{COIN}-USDC` for all five coins; lever `10`, lotSz `0.00000001`, "
      "minSz BTC `0.00001`, ETH `0.0001`, others `0.001`; tickSz BTC `0.1`, ETH/SOL/LTC `0.01`, AVAX `0.001`.")
    w("* Linear perpetual SWAP: `{COIN}-USDT-SWAP` for all five, `{COIN}-USDC-SWAP` for BTC and ETH; "
      "uly = instFamily = `{COIN}-USDT`/`-USDC`, settleCcy the stablecoin, ctValCcy the coin, ctType `linear`, "
      "ctVal USDT: BTC `0.01`, ETH `0.1`, others `1`; USDC: BTC `0.0001`, ETH `0.001`; lotSz = minSz `0.01` "
      "(USDT) or `1` (USDC); lever `100`/`50`/`20` by tier; tickSz as spot.")
    w("* Inverse perpetual SWAP: `{COIN}-USD-SWAP` for all five (Deribit `BTC-PERPETUAL` -> `BTC-USD-SWAP`); "
      "uly = instFamily `{COIN}-USD`, settleCcy the coin, ctVal `100` (BTC) else `10`, ctValCcy `USD`, "
      "ctType `inverse`, lotSz = minSz `1`, lever by tier, tickSz as spot.")
    w("* FUTURES: BTC and ETH at every dated future in either Deribit futures curve (Deribit `BTC-27MAR26` -> "
      "`260327`): `{COIN}-USDT-YYMMDD` and `{COIN}-USDC-YYMMDD` with the linear perp's terms, "
      "`{COIN}-USD-YYMMDD` with the inverse perp's terms. SOL, LTC, AVAX: `-USDT-` and `-USD-` at "
      + ", ".join(REP_FUTURE_DATES) + ". expTime 08:00 UTC of the expiry date.")
    w("* OPTION: every instrument of both option chains (union); Deribit `BTC-24APR26-88000-C` -> "
      "`BTC-USD-260424-88000-C` (strike keeps its integer text); uly = instFamily `{COIN}-USD`, settleCcy "
      "the coin, ctVal `0.01` (BTC) / `0.1` (ETH), ctValCcy the coin, ctType `\"\"`, optType C/P, stk the "
      "strike, expTime from `expiry_datetime` (checked to be 08:00 UTC of the name's date), lotSz = minSz `1`, "
      "tickSz `0.0001`, lever `\"\"`.")
    w(f"* listTime: `{LIST_TIME_DEFAULT}` (2025-09-01T00:00Z) except for instruments that appear only in the "
      f"2026-02-05 data (options only in that chain; all three margin variants of futures only in that curve), "
      f"which get `{LIST_TIME_LATE}` (2026-01-01T00:00Z). These list times are conventions, not exchange data.")
    w("")
    w("Market snapshots (`market/*.json`): keys `ts`, `source`, `representative`, `indices`, `rates`, `marks` "
      "(JSON keys sorted). All numbers are strings written as Python `repr()` of the float, rewritten in plain "
      "decimal where `repr()` would use an exponent.")
    w("")
    w("* `ts`: the chain's `timestamp` column (start of the collection run), Unix ms, truncated to the ms.")
    w("* `indices`: BTC-USD and ETH-USD are the exact median of that currency's `index_price` in the chain. "
      "USDT-USD, USDC-USD, SOL-USD, LTC-USD, AVAX-USD are representative (below). `rates` is `{\"USD\": \"0\"}`.")
    w("* Perpetual marks: `{COIN}-USD-SWAP` = `perp_futures_mark_price` (USD; the source sets it to the "
      "Deribit 1-minute candle price nearest the snapshot). `{COIN}-USDT-SWAP` = that / USDT-USD, "
      "`{COIN}-USDC-SWAP` = that / USDC-USD, rounded half-even to the instrument's tickSz.")
    w("* Futures marks: inverse `{COIN}-USD-YYMMDD` = `snapshot_term_mark_price` of this snapshot's curve "
      "(expiries after `ts` only); linear as for perps.")
    w("* Option marks: every chain row: `markPx` = `mark_price` (coin per 1 coin of underlying, i.e. per "
      "option on one BTC/ETH, not per contract), `markVol` = `implied_volatility` (decimal), `fwdPx` = "
      "`underlying` (USD forward). Rows whose mark_price is 0 but whose IV and forward are positive keep "
      "`markVol` and `fwdPx` only (no `markPx`; the engine prices them with Black-76). Rows with a missing "
      "or non-positive implied_volatility or underlying, or with expiry not after `ts`, are skipped and "
      "listed below.")
    w("* Marks are sorted by instId; every mark's instId exists in the catalog (asserted).")
    w("")
    w("## Representative values (not market data)")
    w("")
    w("Each snapshot's `representative` array lists every `indices` key and mark instId whose value is not "
      "real Deribit data. Why: the Deribit source has only BTC and ETH (inverse, USD-quoted), but the engine's "
      "catalog also needs stablecoin-margined products and smaller coins. The values are plausible levels "
      "chosen to exercise the engine, not observations.")
    w("")
    w("| Key | calm 2025-12-30 | sell-off 2026-02-05 | Rule |")
    w("|---|---|---|---|")
    for k in ["USDT-USD", "USDC-USD", "SOL-USD", "LTC-USD", "AVAX-USD"]:
        rule = ("fixed; no stablecoin data for these dates (sell-off: a slight discount)"
                if k in ("USDT-USD", "USDC-USD") else
                f"calm fixed; sell-off = calm x (BTC sell-off / BTC calm index)^{REP_BETA}, 4 significant digits")
        w(f"| {k} | {rep_values['calm'][k]} | {rep_values['selloff'][k]} | {rule} |")
    w("")
    w(f"* SOL, LTC, AVAX perpetuals: USD price = index x {PERP_PREMIUM}; inverse mark = that rounded to "
      "tickSz; USDT-margined mark = that / USDT-USD rounded to tickSz.")
    w("* SOL, LTC, AVAX futures (expiries after `ts`): F = S x (1 + a x tau), tau = (expiry - ts) / "
      f"{MS_PER_YEAR} ms (365-day years), a = BTC's annualised basis (F_BTC / S_BTC - 1) / tau per BTC "
      "expiry of this snapshot's curve (S_BTC = the BTC-USD index above), interpolated linearly in tau, "
      "flat outside the curve. Inverse and linear marks as for the perpetuals.")
    w("* Every BTC/ETH linear (USDT/USDC) perp and futures mark is a real Deribit USD price divided by a "
      "representative stablecoin rate, so it is listed as representative too.")
    w("")
    for s, info in zip(snaps, infos):
        w(f"BTC annualised basis points used for the {s['snap']['key']} snapshot (tau years, a): "
          + ", ".join(f"({t:.6f}, {a:.6f})" for t, a in info["basis"]) + ".")
        w("")
    w("## Counts")
    w("")
    w("| instType | instruments |")
    w("|---|---|")
    for t in INST_TYPE_ORDER:
        w(f"| {t} | {type_counts[t]} |")
    w(f"| total | {len(catalog)} |")
    w("")
    w(f"Futures dates (coin, YYMMDD) from the curves: {len(cat_stats['futures_dates'])}; only in the "
      f"2026-02-05 curve: " + ", ".join(f"{c}-{d}" for c, d in cat_stats["late_futures"]) + ".")
    w(f"Options: {cat_stats['options_both']} in both chains, {cat_stats['options_calm_only']} only in the "
      f"2025-12-30 chain, {cat_stats['options_selloff_only']} only in the 2026-02-05 chain.")
    w("")
    w("| Snapshot | ts | chain rows | SWAP marks | FUTURES marks | OPTION marks (of which markVol only) | total marks | skipped rows | representative entries |")
    w("|---|---|---|---|---|---|---|---|---|")
    for s, info in zip(snaps, infos):
        c = info["counts"]
        w(f"| `{s['snap']['out']}` | {s['ts']} ({ms_to_iso(s['ts'])}) | {len(s['chain'])} | {c['SWAP']} | "
          f"{c['FUTURES']} | {c['OPTION']} ({len(info['vol_only'])}) | {info['n_marks']} | {len(info['skipped'])} | "
          f"{info['n_representative']} |")
    w("")
    for s, info in zip(snaps, infos):
        w(f"Skipped option rows, {s['snap']['key']} ({len(info['skipped'])}):")
        w("")
        if info["skipped"]:
            for name, why in info["skipped"]:
                w(f"* `{name}`: {why}")
        else:
            w("* none")
        w("")
    w("## Data notes (computed from the raw chains)")
    w("")
    w("| Snapshot | rows (BTC/ETH) | expiries | IV range | IV outside 0.05-5 | crossed bid>ask | "
      "mark outside [bid, ask] | no bid | no ask | neither | expiries with >1 forward | BTC index_price range | ETH index_price range |")
    w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for s in snaps:
        n = notes[s["snap"]["key"]]
        w(f"| {s['snap']['key']} | {n['rows']} ({n['btc_rows']}/{n['eth_rows']}) | {n['expiries']} | "
          f"{num(n['iv_min'])}-{num(n['iv_max'])} | {n['iv_outside']} | {n['crossed']} | {n['mark_outside']} | "
          f"{n['no_bid']} | {n['no_ask']} | {n['no_quote']} | {n['multi_fwd_expiries']} of {n['n_expiry_groups']} | "
          f"{num(n['index_range']['BTC'][0])}-{num(n['index_range']['BTC'][1])} | "
          f"{num(n['index_range']['ETH'][0])}-{num(n['index_range']['ETH'][1])} |")
    w("")
    w("* Prices, mark IV and OI come from one `get_book_summary_by_currency` call per currency; `index_price` "
      "comes from per-instrument `ticker` calls over the following minute or two (see SOURCES.md). In the "
      "sell-off the index moved during that window, so the median index can sit above the shortest forwards "
      "(negative annualised basis at the front of the curve).")
    w("* Within one expiry, rows can carry slightly different `underlying` values (the forward was read at "
      "slightly different moments); each option keeps its own `fwdPx`.")
    w("* Zero `mark_price` rows are deep out-of-the-money options on the nearest expiry; they are in the "
      "catalog but have no mark.")
    w("")
    return ("\n".join(L) + "\n").encode("utf-8")


# --------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------

def generate(data_dir: Path) -> tuple[dict[str, bytes], dict]:
    manifest = data_dir.parent / "MANIFEST.csv"
    sources = data_dir.parent / "SOURCES.md"
    manifest_rows = load_manifest(manifest, sources)
    sources_text = sources.read_text(encoding="utf-8")
    src_rows = verify_inputs(data_dir, manifest_rows, sources_text)
    meta_files = [("MANIFEST.csv", sha256_file(manifest)), ("SOURCES.md", sha256_file(sources))]

    snaps = [load_snapshot(data_dir, snap) for snap in SNAPSHOTS]
    if not snaps[0]["ts"] < snaps[1]["ts"]:
        fail("snapshots out of order")

    catalog, cat_stats = build_catalog(snaps)
    catalog_ids = {i["instId"]: i for i in catalog}

    real_idx = {s["snap"]["key"]: index_medians(s) for s in snaps}
    btc_move = real_idx["selloff"]["BTC-USD"] / real_idx["calm"]["BTC-USD"]
    rep_idx = {
        "calm": {k: float(v) for k, v in CALM_REP_INDEX.items()},
        "selloff": {k: round_sig(float(v) * btc_move ** REP_BETA, 4) for k, v in CALM_REP_INDEX.items()},
    }
    rep_values = {}
    for s in snaps:
        key = s["snap"]["key"]
        rep_values[key] = {"USDT-USD": num(float(s["snap"]["USDT-USD"])),
                           "USDC-USD": num(float(s["snap"]["USDC-USD"])),
                           **{k: num(v) for k, v in rep_idx[key].items()}}

    outputs: dict[str, bytes] = {}
    outputs["catalog/okx-instruments.json"] = dump_json({"code": "0", "msg": "", "data": catalog})

    infos = []
    notes = {}
    for s in snaps:
        key = s["snap"]["key"]
        market, info = build_market(s, catalog_ids, real_idx[key], rep_idx[key], src_rows)
        outputs[s["snap"]["out"]] = dump_json(market)
        infos.append(info)
        notes[key] = chain_notes(s)

    outputs["PROVENANCE.md"] = build_provenance(src_rows, meta_files, catalog, cat_stats, snaps,
                                                infos, notes, rep_values)
    summary = {"catalog": catalog, "snaps": snaps, "infos": infos, "notes": notes,
               "real_idx": real_idx, "rep_values": rep_values}
    return outputs, summary


def print_summary(outputs: dict[str, bytes], summary: dict) -> None:
    catalog = summary["catalog"]
    print("instruments: " + ", ".join(
        f"{t} {sum(1 for i in catalog if i['instType'] == t)}" for t in INST_TYPE_ORDER)
        + f", total {len(catalog)}")
    for s, info in zip(summary["snaps"], summary["infos"]):
        key = s["snap"]["key"]
        c = info["counts"]
        idx = summary["real_idx"][key]
        print(f"{s['snap']['out']}: ts {s['ts']} ({ms_to_iso(s['ts'])}), BTC-USD {num(idx['BTC-USD'])}, "
              f"ETH-USD {num(idx['ETH-USD'])}, marks {info['n_marks']} (SWAP {c['SWAP']}, FUTURES "
              f"{c['FUTURES']}, OPTION {c['OPTION']}), chain rows {len(s['chain'])}, "
              f"markVol only {len(info['vol_only'])}, skipped {len(info['skipped'])}, "
              f"representative {info['n_representative']}")
        for name, why in info["skipped"]:
            print(f"  skipped {name}: {why}")
        n = summary["notes"][key]
        print(f"  notes: IV {num(n['iv_min'])}..{num(n['iv_max'])} ({n['iv_outside']} outside 0.05-5), "
              f"crossed {n['crossed']}, mark outside bid/ask {n['mark_outside']}, no bid {n['no_bid']}, "
              f"no ask {n['no_ask']}, neither {n['no_quote']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                    help="directory with the Deribit CSVs; MANIFEST.csv and SOURCES.md are read from "
                         "its parent (default: %(default)s)")
    ap.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR,
                    help="resources directory to write (default: Sources/MarginDefaults/Resources)")
    ap.add_argument("--check", action="store_true",
                    help="regenerate in memory; exit 1 if any output differs from disk")
    args = ap.parse_args(argv)

    try:
        outputs, summary = generate(args.data_dir)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    if args.check:
        bad = []
        for rel in sorted(outputs):
            path = args.out_dir / rel
            if not path.is_file():
                bad.append(f"missing: {path}")
            elif path.read_bytes() != outputs[rel]:
                bad.append(f"differs: {path}")
        for b in bad:
            print(b)
        if bad:
            print(f"{len(bad)} of {len(outputs)} generated files are out of date; rerun {SCRIPT_REL}")
            return 1
        print(f"OK: all {len(outputs)} generated files are up to date")
        return 0

    for rel in sorted(outputs):
        path = args.out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(outputs[rel])
        print(f"wrote {path} ({len(outputs[rel])} bytes)")
    print_summary(outputs, summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
