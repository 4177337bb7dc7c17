#!/usr/bin/env python3
"""The MR1 grid of `pm bench --grid-out` computed the way a quant would in Python, side by side.

(b) QuantLib's `blackFormula` in a Python loop: 22 prices per position (base + 7 spot moves x 3 vols).
(c) NumPy/SciPy: the same Black-76 vectorised over a (positions x 21) array.

Both must reproduce the engine's 21 cells (relative 1e-9 of the largest cell) or the script fails.
It then merges the engine's figures (the JSON line of `pm bench`) with its own timings and prints one
JSON line; the ratios are Python seconds / engine seconds on the same grid.
"""
import argparse
import json
import math
import statistics
import sys
import time

import numpy as np
import QuantLib as ql
from scipy.special import ndtr


def load_rows(grid):
    rows = grid["rows"]
    arrays = {
        key: np.array([float(row[key]) for row in rows])
        for key in ("forward", "strike", "years", "discount", "index", "size", "baseVolatility")
    }
    arrays["call"] = np.array([bool(row["call"]) for row in rows])
    arrays["moves"] = np.array([[float(m) for m in row["moves"]] for row in rows])  # (n, 7)
    arrays["vols"] = np.array([[float(v) for v in row["volatilities"]] for row in rows])  # (n, 3)
    return rows, arrays


def black76_numpy(call, forward, strike, vol, years, discount):
    """Undiscounted-then-discounted Black-76, elementwise; `call` broadcasts against the rest."""
    std = vol * np.sqrt(years)
    d1 = np.log(forward / strike) / std + 0.5 * std
    d2 = d1 - std
    call_value = forward * ndtr(d1) - strike * ndtr(d2)
    put_value = strike * ndtr(-d2) - forward * ndtr(-d1)
    return discount * np.where(call, call_value, put_value)


def grid_numpy(a):
    col = lambda key: a[key][:, None]
    base = black76_numpy(a["call"], a["forward"], a["strike"], a["baseVolatility"], a["years"], a["discount"])
    # (n, 3, 7): state-major like the engine (index = state * 7 + move).
    shifted = (col("forward") + a["moves"] * col("index"))[:, None, :]
    vols = a["vols"][:, :, None]
    values = black76_numpy(
        a["call"][:, None, None], shifted, a["strike"][:, None, None], vols,
        a["years"][:, None, None], a["discount"][:, None, None])
    pnl = a["size"][:, None, None] * (values - base[:, None, None])
    return pnl.reshape(len(base), 21).sum(axis=0)


def grid_quantlib(rows):
    cells = [0.0] * 21
    for row in rows:
        kind = ql.Option.Call if row["call"] else ql.Option.Put
        forward, strike = float(row["forward"]), float(row["strike"])
        years, discount, index = float(row["years"]), float(row["discount"]), float(row["index"])
        size = float(row["size"])
        root = math.sqrt(years)
        base = ql.blackFormula(kind, strike, forward, float(row["baseVolatility"]) * root, discount)
        for state, vol in enumerate(row["volatilities"]):
            std = float(vol) * root
            for move, shift in enumerate(row["moves"]):
                value = ql.blackFormula(kind, strike, forward + float(shift) * index, std, discount)
                cells[state * 7 + move] += size * (value - base)
    return cells


def median_seconds(function, repeats):
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", required=True, help="the file written by pm bench --grid-out")
    parser.add_argument("--engine", required=True, help="the JSON line printed by pm bench")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    with open(args.grid) as handle:
        grid = json.load(handle)
    with open(args.engine) as handle:
        engine = json.loads(handle.read().strip().splitlines()[-1])
    rows, arrays = load_rows(grid)
    expected = np.array([float(cell) for cell in grid["engineCells"]])

    numpy_cells = grid_numpy(arrays)
    quantlib_cells = np.array(grid_quantlib(rows))
    scale = max(1.0, float(np.max(np.abs(expected))))
    for name, cells in (("NumPy/SciPy", numpy_cells), ("QuantLib", quantlib_cells)):
        error = float(np.max(np.abs(cells - expected))) / scale
        print(f"{name} grid vs engine: max difference {error:.2e} of the largest cell", file=sys.stderr)
        if not error <= 1e-9:
            print(f"FAIL: {name} disagrees with the engine's grid", file=sys.stderr)
            return 1

    numpy_seconds = median_seconds(lambda: grid_numpy(arrays), 20 if args.quick else 100)
    quantlib_seconds = median_seconds(lambda: grid_quantlib(rows), 3 if args.quick else 10)
    per_cell = float(engine["gridPerCellSeconds"])
    cold = float(engine["gridVectorsColdSeconds"])
    warm = float(engine["gridVectorsWarmSeconds"])
    print(
        f"MR1 grid of {len(rows)} options: NumPy/SciPy {numpy_seconds * 1e6:.0f} µs, QuantLib loop {quantlib_seconds * 1e3:.1f} ms; "
        f"engine {per_cell * 1e6:.0f} µs per cell, {cold * 1e6:.0f} µs vectors cold, {warm * 1e6:.1f} µs vectors warm",
        file=sys.stderr)

    def ratio(python_seconds, engine_seconds):
        return round(python_seconds / engine_seconds, 1)

    result = dict(engine)
    result.update({
        "gridNumpySeconds": numpy_seconds,
        "gridQuantLibSeconds": quantlib_seconds,
        # Headline: the engine's production path, scenario vectors from the market update.
        "vsNumpy": ratio(numpy_seconds, warm),
        "vsQuantLib": ratio(quantlib_seconds, warm),
        # The same, pricing each distinct option first (nothing precomputed).
        "vsNumpyCold": ratio(numpy_seconds, cold),
        "vsQuantLibCold": ratio(quantlib_seconds, cold),
        # Like for like: the engine pricing every cell of every position, as the Python code does.
        "vsNumpyPerCell": ratio(numpy_seconds, per_cell),
        "vsQuantLibPerCell": ratio(quantlib_seconds, per_cell),
    })
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
