#!/usr/bin/env python3
"""Checks the price history `pm backtest` replays (data/crash_paths, data/long_series) against its manifests.

Every file listed in data/<dir>/MANIFEST.csv (paths relative to data/, rows copied verbatim from the shared data
set's manifest) must exist with exactly the bytes, SHA-256 and row count recorded there, and every CSV under
those directories must be listed: the copies are the originals, unchanged. Exit status 1 names each mismatch.
"""
import csv
import hashlib
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data")
DIRECTORIES = ["crash_paths", "long_series"]


def main():
    problems = []
    listed = set()
    for directory in DIRECTORIES:
        manifest = os.path.join(ROOT, directory, "MANIFEST.csv")
        with open(manifest, newline="") as handle:
            for row in csv.DictReader(handle):
                path = os.path.join(ROOT, row["file"])
                listed.add(os.path.normpath(path))
                if not os.path.exists(path):
                    problems.append(f"{row['file']}: listed in {directory}/MANIFEST.csv but missing")
                    continue
                data = open(path, "rb").read()
                if len(data) != int(row["bytes"]):
                    problems.append(f"{row['file']}: {len(data)} bytes, manifest says {row['bytes']}")
                digest = hashlib.sha256(data).hexdigest()
                if digest != row["sha256"]:
                    problems.append(f"{row['file']}: sha256 {digest}, manifest says {row['sha256']}")
                rows = data.count(b"\n") - 1 + (0 if data.endswith(b"\n") else 1)
                if rows != int(row["rows"]):
                    problems.append(f"{row['file']}: {rows} rows, manifest says {row['rows']}")
        for base, _, files in os.walk(os.path.join(ROOT, directory)):
            for name in files:
                path = os.path.normpath(os.path.join(base, name))
                if name.endswith(".csv") and name != "MANIFEST.csv" and path not in listed:
                    problems.append(f"{os.path.relpath(path, ROOT)}: not listed in {directory}/MANIFEST.csv")
    for problem in problems:
        print(problem)
    print(f"{len(listed)} files checked, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
