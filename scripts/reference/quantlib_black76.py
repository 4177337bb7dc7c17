#!/usr/bin/env python3
"""Generate Black-76 reference vectors with QuantLib.

Writes a JSON file of prices and Greeks for a European option on a forward,
computed by QuantLib's Python bindings, for comparison with the Swift
implementation in the MarginEngine tests.

Usage (from the repository root):

    python scripts/reference/quantlib_black76.py [--out PATH] [--check]

Without --check the file is (re)written. With --check the file is regenerated
in memory and compared byte-for-byte with PATH; the script exits 1 and prints
the first differences if they differ.

All numbers are emitted as strings produced by Python's repr(float) (the
shortest string that round-trips), so the Swift side can parse them exactly.
"""

import argparse
import difflib
import json
import math
import os
import sys

import QuantLib as ql

DEFAULT_OUT = "Tests/MarginEngineTests/Resources/quantlib-black76.json"

OPTION_TYPES = [("call", ql.Option.Call), ("put", ql.Option.Put)]
FORWARDS = [100.0, 2978.35, 88539.0]
STRIKE_RATIOS = [0.5, 0.8, 0.95, 1.0, 1.05, 1.25, 2.0]
VOLATILITIES = [0.05, 0.2, 0.6, 1.2, 3.0]
TIMES = [1.0 / 8760.0, 1.0 / 365.0, 30.0 / 365.0, 0.5, 1.0, 3.0]
RATES = [0.0, 0.05]

# Implied volatility is only emitted when the price is meaningfully above zero.
IMPLIED_MIN_PRICE_FRACTION = 1e-12
# value() from BlackCalculator must agree with blackFormula to within
# max(VALUE_CONSISTENCY_RTOL * |price|, VALUE_CONSISTENCY_ATOL_FRACTION * F).
# The absolute floor is needed because BlackCalculator computes
# D*(F*alpha + K*beta), which cancels catastrophically for deep out-of-the-money
# options (observed differences reach ~1.1e-16*F, e.g. blackFormula 8.86e-87
# vs BlackCalculator 0.0), whereas blackFormula keeps full relative accuracy.
VALUE_CONSISTENCY_RTOL = 1e-12
VALUE_CONSISTENCY_ATOL_FRACTION = 1e-15

CONVENTIONS = (
    "Black-76 European option on a forward F with strike K, volatility sigma "
    "(annualised, 1.00 = 100%), time to expiry T in years and discount factor "
    "D = exp(-r*T), r continuously compounded; stdDev = sigma*sqrt(T). "
    "price is per 1 unit of underlying, in the forward's currency, and "
    "includes discounting by D. deltaForward = dV/dF, gammaForward = "
    "d2V/dF2. vega = dV/dsigma per 1.00 of volatility (QuantLib "
    "BlackCalculator::vega(T)). theta = dV/dt per year with F fixed "
    "(QuantLib BlackCalculator::theta(spot=F, T), i.e. r*V - "
    "0.5*sigma^2*F^2*gamma); thetaPerDay = theta/365. itmCashProbability = "
    "QuantLib BlackCalculator::itmCashProbability() = N(d2), undiscounted, "
    "for BOTH calls and puts (QuantLib does not flip it for puts; a put's "
    "exercise probability is 1 - this value). impliedVolatility = "
    "blackFormulaImpliedStdDev(price)/sqrt(T) with QuantLib's default "
    "solver accuracy, present only when the solver succeeds and "
    "price > 1e-12*F. Inputs (strike = F*ratio, T, D) are listed exactly as "
    "used. All numbers are decimal strings from Python repr(float)."
)


def num(x):
    """Format a float as its shortest round-trip decimal string."""
    x = float(x)
    if not math.isfinite(x):
        raise ValueError(f"non-finite value {x!r}")
    return repr(x)


def compute_case(type_name, option_type, forward, ratio, sigma, t, rate):
    strike = forward * ratio
    discount = math.exp(-rate * t)
    std_dev = sigma * math.sqrt(t)

    price = ql.blackFormula(option_type, strike, forward, std_dev, discount)

    payoff = ql.PlainVanillaPayoff(option_type, strike)
    calc = ql.BlackCalculator(payoff, forward, std_dev, discount)
    value = calc.value()
    scale = max(abs(price), abs(value))
    tolerance = max(
        VALUE_CONSISTENCY_RTOL * scale, VALUE_CONSISTENCY_ATOL_FRACTION * forward
    )
    if abs(value - price) > tolerance:
        raise AssertionError(
            f"BlackCalculator.value() {value!r} != blackFormula {price!r} "
            f"for {type_name} F={forward!r} K={strike!r} sigma={sigma!r} "
            f"T={t!r} D={discount!r}"
        )

    case = {
        "type": type_name,
        "forward": num(forward),
        "strike": num(strike),
        "volatility": num(sigma),
        "timeToExpiryYears": num(t),
        "discountFactor": num(discount),
        "price": num(price),
        "deltaForward": num(calc.deltaForward()),
        "gammaForward": num(calc.gammaForward()),
        "vega": num(calc.vega(t)),
        "theta": num(calc.theta(forward, t)),
        "thetaPerDay": num(calc.thetaPerDay(forward, t)),
        "itmCashProbability": num(calc.itmCashProbability()),
    }

    if price > IMPLIED_MIN_PRICE_FRACTION * forward:
        try:
            implied_std_dev = ql.blackFormulaImpliedStdDev(
                option_type, strike, forward, price, discount
            )
        except RuntimeError:
            implied_std_dev = None
        if implied_std_dev is not None and math.isfinite(implied_std_dev):
            case["impliedVolatility"] = num(implied_std_dev / math.sqrt(t))

    return case


def generate():
    cases = []
    for type_name, option_type in OPTION_TYPES:
        for forward in FORWARDS:
            for ratio in STRIKE_RATIOS:
                for sigma in VOLATILITIES:
                    for t in TIMES:
                        for rate in RATES:
                            cases.append(
                                compute_case(
                                    type_name, option_type, forward, ratio,
                                    sigma, t, rate,
                                )
                            )
    return {
        "generator": (
            f"QuantLib {ql.__version__} via "
            "scripts/reference/quantlib_black76.py"
        ),
        "conventions": CONVENTIONS,
        "cases": cases,
    }


def render(document):
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default=DEFAULT_OUT,
        help=f"output JSON path (default: {DEFAULT_OUT})",
    )
    parser.add_argument(
        "--check", action="store_true",
        help="do not write; exit 1 if the file differs from a fresh run",
    )
    args = parser.parse_args(argv)

    text = render(generate())

    if args.check:
        try:
            with open(args.out, "r", encoding="utf-8", newline="") as f:
                existing = f.read()
        except FileNotFoundError:
            print(f"{args.out}: missing", file=sys.stderr)
            return 1
        if existing == text:
            print(f"{args.out}: up to date")
            return 0
        diff = difflib.unified_diff(
            existing.splitlines(keepends=True),
            text.splitlines(keepends=True),
            fromfile=f"{args.out} (committed)",
            tofile=f"{args.out} (regenerated)",
            n=2,
        )
        lines = list(diff)
        limit = 60
        sys.stderr.writelines(lines[:limit])
        if len(lines) > limit:
            print(f"... ({len(lines) - limit} more diff lines)", file=sys.stderr)
        print(f"{args.out}: differs from regenerated output", file=sys.stderr)
        return 1

    directory = os.path.dirname(args.out)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {len(text.encode('utf-8'))} bytes to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
