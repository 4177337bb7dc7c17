"""python-okx 0.4.4 (`AccountAPI`, `TradeAPI`, `PublicAPI`) against `pm serve`, with only `domain` changed.

python-okx never raises on an OKX error: every call returns the parsed JSON envelope, so the tests read
`code`, `sCode` and `sMsg` themselves.
"""
import okx.Account as Account
import okx.PublicData as PublicData
import okx.Trade as Trade
import pytest
from pytest import approx

PRECHECK = "/api/v5/account/set-account-switch-precheck"


class Client:
    def __init__(self, sandbox, account, flag="0"):
        credentials = (account["apiKey"], account["secretKey"], account["passphrase"], False, flag)
        self.account = account
        self.acc = Account.AccountAPI(*credentials, domain=sandbox.url)
        self.trade = Trade.TradeAPI(*credentials, domain=sandbox.url)


def ok(envelope):
    assert envelope["code"] == "0", envelope
    return envelope["data"]


def balance_row(client, ccy):
    rows = [r for r in ok(client.acc.get_account_balance())[0]["details"] if r["ccy"] == ccy]
    return rows[0] if rows else None


@pytest.fixture(scope="module")
def public(sandbox):
    return PublicData.PublicAPI(flag="0", domain=sandbox.url)


@pytest.fixture(scope="module")
def option_id(public):
    """A BTC-USD call, near the money, of the latest listed expiry."""
    rows = ok(public.get_instruments(instType="OPTION", uly="BTC-USD"))
    assert rows, "no BTC-USD options listed"
    last = max(int(r["expTime"]) for r in rows)
    calls = [r for r in rows if int(r["expTime"]) == last and r["optType"] == "C"]
    index = float(ok(public.get_mark_price(instType="SWAP", instId="BTC-USDT-SWAP"))[0]["markPx"])
    return min(calls, key=lambda r: abs(float(r["stk"]) - index))["instId"]


@pytest.fixture
def client(sandbox):
    return Client(sandbox, sandbox.create_account_cli())


def test_public_api(public):
    swaps = ok(public.get_instruments(instType="SWAP"))
    row = next(r for r in swaps if r["instId"] == "BTC-USDT-SWAP")
    assert (row["uly"], row["settleCcy"], row["ctVal"]) == ("BTC-USDT", "USDT", "0.01")
    marks = ok(public.get_mark_price(instType="SWAP", instId="BTC-USDT-SWAP"))
    assert len(marks) == 1 and float(marks[0]["markPx"]) > 0


def test_get_account_balance_and_positions(client):
    data = ok(client.acc.get_account_balance())
    details = {r["ccy"]: r for r in data[0]["details"]}
    assert float(details["USDT"]["eq"]) == approx(200000)
    assert float(details["BTC"]["cashBal"]) == approx(3)
    assert float(details["ETH"]["availBal"]) == approx(30)
    only = ok(client.acc.get_account_balance(ccy="BTC,ETH"))[0]["details"]
    assert sorted(r["ccy"] for r in only) == ["BTC", "ETH"]
    assert ok(client.acc.get_positions()) == []


def test_place_swap_market_order_opens_a_position(client):
    placed = ok(client.trade.place_order(instId="BTC-USDT-SWAP", tdMode="cross", side="buy", ordType="market", sz="2"))
    assert placed[0]["sCode"] == "0" and placed[0]["ordId"]
    order = ok(client.trade.get_order(instId="BTC-USDT-SWAP", ordId=placed[0]["ordId"]))[0]
    assert (order["state"], order["accFillSz"]) == ("filled", "2")
    positions = ok(client.acc.get_positions(instType="SWAP"))
    assert [(p["instId"], p["pos"], p["posSide"]) for p in positions] == [("BTC-USDT-SWAP", "2", "net")]
    assert float(positions[0]["avgPx"]) == approx(float(order["avgPx"]))
    fills = ok(client.trade.get_fills(instType="SWAP"))
    assert [f["ordId"] for f in fills] == [placed[0]["ordId"]]
    assert float(fills[0]["fee"]) < 0  # OKX sign convention: a charged fee is negative
    assert float(balance_row(client, "USDT")["cashBal"]) == approx(200000 + float(fills[0]["fee"]), abs=1e-6)


def test_spot_limit_order_rests_and_cancels(client):
    placed = ok(client.trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit", sz="0.1", px="40000"))
    ord_id = placed[0]["ordId"]
    pending = ok(client.trade.get_order_list(instType="SPOT"))
    assert [(o["ordId"], o["state"], o["px"]) for o in pending] == [(ord_id, "live", "40000")]
    assert float(balance_row(client, "USDT")["frozenBal"]) == approx(4000)

    canceled = ok(client.trade.cancel_order(instId="BTC-USDT", ordId=ord_id))  # sends clOrdId "" too
    assert canceled[0]["sCode"] == "0" and canceled[0]["ordId"] == ord_id
    assert ok(client.trade.get_order(instId="BTC-USDT", ordId=ord_id))[0]["state"] == "canceled"
    assert ok(client.trade.get_order_list(instType="SPOT")) == []
    assert float(balance_row(client, "USDT")["frozenBal"]) == approx(0)
    again = client.trade.cancel_order(instId="BTC-USDT", ordId=ord_id)
    assert again["code"] == "1" and again["data"][0]["sCode"] in ("51400", "51401", "51402")


def test_spot_market_buy_defaults_to_quote_size(client):
    """python-okx sends tgtCcy "" on every order. OKX's default for a spot market buy is quote_ccy: sz is
    the amount of USDT to spend (docs/methodology/06-sandbox-api.md §1: `tgtCcy: ""` falls back to OKX's default)."""
    response = client.trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="market", sz="100")
    item = response["data"][0]
    assert response["code"] == "0", f"code {response['code']}, sCode {item['sCode']}: {item['sMsg']}"
    spent = 200000 - float(balance_row(client, "USDT")["cashBal"])
    assert 99 <= spent <= 100
    assert 0 < float(balance_row(client, "BTC")["cashBal"]) - 3 < 0.002


def test_errors_are_json_envelopes(client):
    bad = client.trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit", sz="abc", px="40000")
    assert bad["code"] == "1"
    assert bad["data"][0]["sCode"] == "51000" and "sz" in bad["data"][0]["sMsg"]
    unknown = client.trade.get_order(instId="BTC-USDT", ordId="987654321")
    assert unknown["code"] == "51603" and unknown["data"] == []
    nope = client.trade.place_order(instId="NOPE-USDT", tdMode="cash", side="buy", ordType="market", sz="1")
    assert nope["code"] == "1" and nope["data"][0]["sCode"] == "51001"
    missing = client.acc._request_with_params("GET", PRECHECK, {})
    assert missing["code"] == "50014" and "acctLv" in missing["msg"]
    wrong = Account.AccountAPI(client.account["apiKey"], client.account["secretKey"], "wrong", False, "0",
                               domain=client.acc.domain).get_account_balance()
    assert wrong["code"] == "50105" and wrong["data"] == []
    not_found = client.acc._request_with_params("GET", "/api/v5/account/no-such-endpoint", {})
    assert not_found["code"] != "0" and not_found["data"] == []


def test_default_flag_sends_simulated_trading_header(sandbox):
    account = sandbox.create_account_admin()
    acc = Account.AccountAPI(account["apiKey"], account["secretKey"], account["passphrase"], False, domain=sandbox.url)
    sent = []
    acc.event_hooks = {"request": [lambda request: sent.append(request.headers.get("x-simulated-trading"))], "response": []}
    config = ok(acc.get_account_config())
    assert sent == ["1"]
    assert config[0]["uid"] == account["uid"] and config[0]["posMode"] == "net_mode"


def test_position_builder(client, option_id):
    data = ok(client.acc.position_builder(
        acctLv="4", inclRealPosAndEq=False,
        simPos=[{"instId": "BTC-USDT-SWAP", "pos": "10"}, {"instId": option_id, "pos": "-5"}],
        simAsset=[{"ccy": "USDT", "amt": "100000"}]))
    result = data[0]
    mmr = result["riskUnitData"][0]["mmr"]
    assert isinstance(mmr, str) and float(mmr) > 0
    assert result["riskUnitData"][0]["riskUnit"] == "BTC"
    assert result["paramsId"]
    assert float(result["totalMmr"]) >= float(mmr)
    # a larger short option position needs more margin
    bigger = ok(client.acc.position_builder(
        acctLv="4", inclRealPosAndEq=False,
        simPos=[{"instId": "BTC-USDT-SWAP", "pos": "10"}, {"instId": option_id, "pos": "-50"}],
        simAsset=[{"ccy": "USDT", "amt": "100000"}]))
    assert float(bigger[0]["riskUnitData"][0]["mmr"]) > float(mmr)
    bad = client.acc.position_builder(simPos=[{"instId": "NOPE-USDT-SWAP", "pos": "1"}])
    assert bad["code"] != "0" and "NOPE-USDT-SWAP" in bad["msg"]


def test_account_level_needs_the_acknowledgement(sandbox, client):
    before = ok(client.acc._request_with_params("GET", PRECHECK, {"acctLv": "3"}))[0]
    assert before["allowed"] is False and before["from"] == "3" and before["to"] == "3"
    for side in ("before", "after"):
        assert float(before[side]["adjEq"]) > 0 and before[side]["acctLv"] == "3"

    refused = client.acc.set_account_level(4)
    assert refused["code"] == "51070" and refused["data"] == []
    assert ok(client.acc.get_account_config())[0]["acctLv"] == "3"

    sandbox.acknowledge(client.account["uid"])
    switched = ok(client.acc.set_account_level(4))
    assert switched[0]["acctLv"] == "4"
    assert ok(client.acc.get_account_config())[0]["acctLv"] == "4"

    back = ok(client.acc._request_with_params("GET", PRECHECK, {"acctLv": "3"}))[0]
    assert back["allowed"] is True and (back["from"], back["to"]) == ("4", "3")
    assert (back["before"]["acctLv"], back["after"]["acctLv"]) == ("4", "3")
    for side in ("before", "after"):
        for figure in ("adjEq", "availEq", "totalMmr", "totalImr"):
            float(back[side][figure])  # a plain decimal string
    assert float(back["before"]["adjEq"]) > 0
