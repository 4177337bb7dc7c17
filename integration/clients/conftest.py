"""Shared fixtures of the client tests: the running sandbox (started by integration/clients/run), accounts made
with `pm account create` or the admin endpoint, and the admin endpoint itself.

Environment (set by integration/clients/run):
  SANDBOX_URL  base URL of `pm serve`, e.g. http://127.0.0.1:18080
  SANDBOX_DB   its database: a SQLite file or a postgres:// URL
  SANDBOX_FILES  the prefix of its key and admin-token files (default SANDBOX_DB; the token is in SANDBOX_FILES + '.admin-token')
  PM_BIN       the pm binary (for `pm account create`)
"""
import base64
import datetime
import hashlib
import hmac
import json
import os
import subprocess
import urllib.error
import urllib.request

import pytest

DEPOSITS = {"USDT": "200000", "BTC": "3", "ETH": "30"}


def _env(name):
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run the client tests through integration/clients/run", returncode=2)
    return value


class Sandbox:
    def __init__(self, url, db, pm_bin, files=None):
        self.url = url.rstrip("/")
        self.db = db
        self.files = files or db
        self.pm_bin = pm_bin
        with open(self.files + ".admin-token") as handle:
            self.admin_token = handle.read().strip()

    # --- raw HTTP -----------------------------------------------------------------------------------------
    def http(self, method, path, body=None, headers=None):
        """One request; returns (HTTP status, parsed JSON body). Never raises on HTTP errors."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def admin(self, method, path, body=None):
        """An admin (sandbox control) call; returns the envelope, whatever its code."""
        headers = {"X-Sandbox-Admin-Token": self.admin_token, "Content-Type": "application/json"}
        return self.http(method, path, body, headers)[1]

    def signed(self, account, method, path, body=None):
        """A private request signed like OKX clients do (used to load a key created by another process)."""
        timestamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        raw = b"" if body is None else json.dumps(body).encode()
        prehash = (timestamp + method + path).encode() + raw
        sign = base64.b64encode(hmac.new(account["secretKey"].encode(), prehash, hashlib.sha256).digest()).decode()
        headers = {
            "OK-ACCESS-KEY": account["apiKey"], "OK-ACCESS-SIGN": sign, "OK-ACCESS-TIMESTAMP": timestamp,
            "OK-ACCESS-PASSPHRASE": account["passphrase"], "Content-Type": "application/json",
        }
        return self.http(method, path, raw if body is not None else None, headers)

    # --- accounts -----------------------------------------------------------------------------------------
    def create_account_cli(self, deposits=None, use_now=True):
        """`pm account create --db … --deposit CCY=AMT … --format json` against the running server's database.

        With use_now (the default) the new key is used once right away, so the server loads the account at
        once: see test_ccxt.py::test_cli_account_created_while_serving_does_not_break_trading for why."""
        args = [self.pm_bin, "account", "create", "--db", self.db, "--files", self.files, "--format", "json"]
        for ccy, amount in (deposits or DEPOSITS).items():
            args += ["--deposit", f"{ccy}={amount}"]
        out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=60).stdout
        account = json.loads(out)
        assert set(account) >= {"uid", "apiKey", "secretKey", "passphrase"}, out
        if use_now:
            status, envelope = self.signed(account, "GET", "/api/v5/account/config")
            assert (status, envelope["code"]) == (200, "0"), envelope
        return account

    def create_account_admin(self, deposits=None):
        """`POST /api/v5/sandbox/account/create` with deposits."""
        body = {"label": "clients", "deposits": [{"ccy": c, "amt": a} for c, a in (deposits or DEPOSITS).items()]}
        envelope = self.admin("POST", "/api/v5/sandbox/account/create", body)
        assert envelope["code"] == "0", f"admin account/create failed: {envelope}"
        return envelope["data"][0]

    def acknowledge(self, uid):
        envelope = self.admin("POST", "/api/v5/sandbox/acknowledge", {"uid": uid})
        assert envelope["code"] == "0", f"admin acknowledge failed: {envelope}"


@pytest.fixture(scope="session")
def sandbox():
    return Sandbox(_env("SANDBOX_URL"), _env("SANDBOX_DB"), _env("PM_BIN"), os.environ.get("SANDBOX_FILES"))
