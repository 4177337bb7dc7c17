"""ccxt 4.5.90 (`ccxt.okx`, sync) against `pm serve`, with only `urls['api']['rest']` changed.

Every test that trades uses an account of its own (test money USDT=200000, BTC=3, ETH=30), so balances
and positions can be asserted exactly. The market is static (integration/clients/run), so the book does not
move between a ticker read and an order.
"""
import re

import ccxt
import pytest
from pytest import approx

from conftest import DEPOSITS

SPOT = "BTC/USDT"
SWAP = "BTC/USDT:USDT"


# --- helpers ------------------------------------------------------------------------------------------------

def make_exchange(sandbox, account, markets=None, cls=ccxt.okx, **overrides):
    config = {"apiKey": account["apiKey"], "secret": account["secretKey"], "password": account["passphrase"]}
    config.update(overrides)
    exchange = cls(config)
    exchange.urls["api"]["rest"] = sandbox.url
    if markets is not None:
        exchange.set_markets(markets)
    return exchange


def cash(exchange, ccy):
    """`cashBal` of one currency from /account/balance (ccxt's `total` is `eq`, which includes upl)."""
    balance = exchange.fetch_balance()
    for row in balance["info"]["data"][0]["details"]:
        if row["ccy"] == ccy:
            return float(row["cashBal"])
    return 0.0


def positions_by_symbol(exchange, symbols=None):
    return {p["symbol"]: p for p in exchange.fetch_positions(symbols) if p["contracts"]}


def round_to_tick(price, tick):
    return round(round(price / tick) * tick, 10)


@pytest.fixture(scope="module")
def markets(sandbox):
    account = sandbox.create_account_cli()
    exchange = make_exchange(sandbox, account)
    exchange.load_markets()
    return exchange.markets


@pytest.fixture(scope="module")
def inst(sandbox, markets):
    """The instruments traded: BTC spot and USDT perpetual, and a BTC-USD inverse future and a BTC option
    (a call of the latest listed expiry, strike nearest the index)."""
    futures = sorted(
        (m for m in markets.values() if m["type"] == "future" and m["base"] == "BTC" and m["quote"] == "USD"
         and m["settle"] == "BTC" and m["active"]),
        key=lambda m: m["expiry"])
    assert futures, "no BTC-USD inverse future loaded"
    options = [m for m in markets.values() if m["type"] == "option" and m["base"] == "BTC" and m["active"]]
    assert options, "no BTC option loaded"
    last_expiry = max(m["expiry"] for m in options)
    public = ccxt.okx()
    public.urls["api"]["rest"] = sandbox.url
    public.set_markets(markets)
    index = public.fetch_ticker(SPOT)["last"]
    calls = [m for m in options if m["expiry"] == last_expiry and m["optionType"] == "call"]
    option = min(calls, key=lambda m: abs(m["strike"] - index))
    return {"spot": SPOT, "swap": SWAP, "future": futures[-1]["symbol"], "option": option["symbol"]}


@pytest.fixture
def fresh(sandbox, markets):
    """A new account (admin endpoint) and a ccxt client for it."""
    account = sandbox.create_account_admin()
    return make_exchange(sandbox, account, markets), account


# --- markets and balances -------------------------------------------------------------------------------------

def test_load_markets_has_all_four_types(sandbox):
    account = sandbox.create_account_cli()
    exchange = make_exchange(sandbox, account)
    markets = exchange.load_markets()
    types = {m["type"] for m in markets.values()}
    assert {"spot", "swap", "future", "option"} <= types

    spot = markets[SPOT]
    assert (spot["type"], spot["id"], spot["base"], spot["quote"]) == ("spot", "BTC-USDT", "BTC", "USDT")
    swap = markets[SWAP]
    assert (swap["type"], swap["id"], swap["settle"], swap["linear"]) == ("swap", "BTC-USDT-SWAP", "USDT", True)
    assert swap["contractSize"] > 0

    futures = [s for s, m in markets.items() if m["type"] == "future"]
    btc_usd_futures = [s for s in futures if re.fullmatch(r"BTC/USD:BTC-\d{6}", s)]
    assert btc_usd_futures, f"no BTC-USD inverse future among {futures[:10]}"
    future = markets[btc_usd_futures[0]]
    assert future["inverse"] is True and future["expiry"] and re.fullmatch(r"BTC-USD-\d{6}", future["id"])

    options = [s for s, m in markets.items() if m["type"] == "option" and m["base"] == "BTC"]
    assert options, "no BTC option"
    option = markets[options[0]]
    assert re.fullmatch(r"BTC/USD:BTC-\d{6}-\d+-[CP]", option["symbol"]), option["symbol"]
    assert option["strike"] > 0 and option["optionType"] in ("call", "put") and option["expiry"]
    # a derivative symbol never collides with the spot one
    assert len({m["id"] for m in markets.values()}) == len(markets)


def test_fetch_balance_equals_deposit(sandbox, markets):
    account = sandbox.create_account_cli()
    exchange = make_exchange(sandbox, account, markets)
    balance = exchange.fetch_balance()
    for ccy, amount in DEPOSITS.items():
        assert balance[ccy]["total"] == approx(float(amount), abs=1e-9), ccy
        assert balance[ccy]["free"] == approx(float(amount), abs=1e-9), ccy
        assert balance[ccy]["used"] == approx(0, abs=1e-9), ccy
    assert exchange.fetch_positions() == []
    assert exchange.fetch_open_orders() == []


# --- spot ---------------------------------------------------------------------------------------------------------

def test_spot_market_buy_moves_balances(fresh):
    exchange, _ = fresh
    ask = exchange.fetch_ticker(SPOT)["ask"]
    placed = exchange.create_order(SPOT, "market", "buy", 0.5)
    assert placed["id"]
    order = exchange.fetch_order(placed["id"], SPOT)
    assert order["status"] == "closed"
    assert order["filled"] == approx(0.5) and order["remaining"] == approx(0)
    assert order["average"] == approx(ask, rel=1e-12)
    fee = order["fee"]
    assert fee["currency"] == "BTC" and 0 < fee["cost"] < 0.5 * 0.01
    balance = exchange.fetch_balance()
    assert balance["BTC"]["total"] == approx(3 + 0.5 - fee["cost"], abs=1e-9)
    assert balance["USDT"]["total"] == approx(200000 - 0.5 * order["average"], abs=1e-6)


def test_spot_market_sell_moves_balances(fresh):
    exchange, _ = fresh
    bid = exchange.fetch_ticker(SPOT)["bid"]
    order = exchange.fetch_order(exchange.create_order(SPOT, "market", "sell", 1)["id"], SPOT)
    assert (order["status"], order["side"], order["filled"]) == ("closed", "sell", 1)
    assert order["average"] == approx(bid, rel=1e-12)
    assert order["fee"]["currency"] == "USDT" and order["fee"]["cost"] > 0
    balance = exchange.fetch_balance()
    assert balance["BTC"]["total"] == approx(2, abs=1e-9)
    assert balance["USDT"]["total"] == approx(200000 + bid - order["fee"]["cost"], abs=1e-6)


def test_spot_limit_rests_freezes_and_cancels(fresh):
    exchange, _ = fresh
    bid = exchange.fetch_ticker(SPOT)["bid"]
    price = round_to_tick(bid * 0.5, 0.1)
    placed = exchange.create_order(SPOT, "limit", "buy", 0.1, price)
    order = exchange.fetch_order(placed["id"], SPOT)
    assert (order["status"], order["filled"], order["remaining"], order["price"]) == ("open", 0, 0.1, approx(price))
    assert placed["id"] in [o["id"] for o in exchange.fetch_open_orders(SPOT)]
    assert placed["id"] in [o["id"] for o in exchange.fetch_open_orders()]
    balance = exchange.fetch_balance()
    assert balance["USDT"]["used"] == approx(price * 0.1, abs=1e-6)
    assert balance["USDT"]["free"] == approx(200000 - price * 0.1, abs=1e-6)

    canceled = exchange.cancel_order(placed["id"], SPOT)
    assert canceled["id"] == placed["id"]
    assert exchange.fetch_order(placed["id"], SPOT)["status"] == "canceled"
    assert placed["id"] not in [o["id"] for o in exchange.fetch_open_orders(SPOT)]
    balance = exchange.fetch_balance()
    assert balance["USDT"]["used"] == approx(0, abs=1e-9)
    assert balance["USDT"]["free"] == approx(200000, abs=1e-9)


def test_spot_marketable_limit_fills_at_the_book(fresh):
    exchange, _ = fresh
    ask = exchange.fetch_ticker(SPOT)["ask"]
    limit = round_to_tick(ask * 1.01, 0.1)
    order = exchange.fetch_order(exchange.create_order(SPOT, "limit", "buy", 0.1, limit)["id"], SPOT)
    assert order["status"] == "closed" and order["filled"] == approx(0.1)
    assert order["average"] == approx(ask, rel=1e-12)  # filled at the ask, not at the worse limit


# --- perpetual swap -----------------------------------------------------------------------------------------------

def test_swap_market_orders_open_and_close_a_position(fresh):
    exchange, _ = fresh
    ticker = exchange.fetch_ticker(SWAP)
    buy = exchange.fetch_order(exchange.create_order(SWAP, "market", "buy", 2)["id"], SWAP)
    assert buy["status"] == "closed" and buy["filled"] == approx(2) and buy["average"] == approx(ticker["ask"])
    assert buy["fee"]["currency"] == "USDT" and buy["fee"]["cost"] > 0

    position = positions_by_symbol(exchange)[SWAP]
    assert position["contracts"] == approx(2) and position["side"] == "long"
    assert position["contractSize"] == approx(0.01) and position["hedged"] is False
    assert position["entryPrice"] == approx(buy["average"])
    assert position["marginMode"] == "cross"
    assert cash(exchange, "USDT") == approx(200000 - buy["fee"]["cost"], abs=1e-6)

    sell = exchange.fetch_order(exchange.create_order(SWAP, "market", "sell", 2)["id"], SWAP)
    assert sell["status"] == "closed" and sell["average"] == approx(ticker["bid"])
    assert SWAP not in positions_by_symbol(exchange)
    realized = (sell["average"] - buy["average"]) * 2 * 0.01
    assert cash(exchange, "USDT") == approx(200000 - buy["fee"]["cost"] - sell["fee"]["cost"] + realized, abs=1e-6)

    exchange.create_order(SWAP, "market", "sell", 1)
    position = positions_by_symbol(exchange)[SWAP]
    assert position["contracts"] == approx(1) and position["side"] == "short"


def test_swap_limit_rests_and_cancels(fresh):
    exchange, _ = fresh
    price = round_to_tick(exchange.fetch_ticker(SWAP)["bid"] * 0.8, 0.1)
    placed = exchange.create_order(SWAP, "limit", "buy", 1, price)
    assert exchange.fetch_order(placed["id"], SWAP)["status"] == "open"
    assert [o["id"] for o in exchange.fetch_open_orders(SWAP)] == [placed["id"]]
    assert exchange.cancel_order(placed["id"], SWAP)["id"] == placed["id"]
    order = exchange.fetch_order(placed["id"], SWAP)
    assert order["status"] == "canceled" and order["filled"] == approx(0)
    assert exchange.fetch_open_orders(SWAP) == []
    assert positions_by_symbol(exchange) == {}


def test_fetch_my_trades_has_the_market_fill(fresh):
    exchange, _ = fresh
    order = exchange.fetch_order(exchange.create_order(SWAP, "market", "buy", 2)["id"], SWAP)
    trades = [t for t in exchange.fetch_my_trades(SWAP) if t["order"] == order["id"]]
    assert len(trades) == 1
    trade = trades[0]
    assert trade["symbol"] == SWAP and trade["side"] == "buy"
    assert trade["price"] == approx(order["average"]) and trade["amount"] == approx(2)
    assert trade["fee"]["currency"] == "USDT" and trade["fee"]["cost"] == approx(order["fee"]["cost"])
    assert trade["takerOrMaker"] == "taker"

    spot = exchange.fetch_order(exchange.create_order(SPOT, "market", "buy", 0.01)["id"], SPOT)
    spot_trades = exchange.fetch_my_trades(SPOT)
    assert [t["order"] for t in spot_trades] == [spot["id"]]
    assert spot_trades[0]["price"] == approx(spot["average"]) and spot_trades[0]["fee"]["currency"] == "BTC"


def test_set_leverage_changes_position_margin(fresh):
    exchange, _ = fresh
    response = exchange.set_leverage(5, SWAP)
    assert response["code"] == "0" and response["data"][0]["lever"] == "5"
    leverage = exchange.fetch_leverage(SWAP)
    assert leverage["longLeverage"] == 5 and leverage["shortLeverage"] == 5
    exchange.create_order(SWAP, "market", "buy", 2)
    position = positions_by_symbol(exchange)[SWAP]
    assert position["leverage"] == approx(5)
    assert position["initialMargin"] == approx(position["notional"] / 5, rel=1e-6)


# --- futures and options ----------------------------------------------------------------------------------------------

def test_future_market_and_limit(fresh, inst):
    exchange, _ = fresh
    symbol = inst["future"]
    ticker = exchange.fetch_ticker(symbol)
    order = exchange.fetch_order(exchange.create_order(symbol, "market", "buy", 3)["id"], symbol)
    assert order["status"] == "closed" and order["filled"] == approx(3) and order["average"] == approx(ticker["ask"])
    assert order["fee"]["currency"] == "BTC" and order["fee"]["cost"] > 0
    position = positions_by_symbol(exchange)[symbol]
    assert position["contracts"] == approx(3) and position["side"] == "long"
    assert position["entryPrice"] == approx(order["average"], rel=1e-9)
    assert cash(exchange, "BTC") == approx(3 - order["fee"]["cost"], abs=1e-10)

    price = round_to_tick(ticker["bid"] * 0.8, exchange.market(symbol)["precision"]["price"])
    placed = exchange.create_order(symbol, "limit", "buy", 1, price)
    assert placed["id"] in [o["id"] for o in exchange.fetch_open_orders(symbol)]
    exchange.cancel_order(placed["id"], symbol)
    assert exchange.fetch_order(placed["id"], symbol)["status"] == "canceled"
    assert exchange.fetch_open_orders(symbol) == []
    assert positions_by_symbol(exchange)[symbol]["contracts"] == approx(3)  # the cancel changed nothing


def test_option_market_and_limit(fresh, inst):
    exchange, _ = fresh
    symbol = inst["option"]
    market = exchange.market(symbol)
    ticker = exchange.fetch_ticker(symbol)
    assert 0 < ticker["bid"] < ticker["ask"]
    order = exchange.fetch_order(exchange.create_order(symbol, "market", "buy", 2)["id"], symbol)
    assert order["status"] == "closed" and order["filled"] == approx(2) and order["average"] == approx(ticker["ask"])
    assert order["fee"]["currency"] == "BTC" and order["fee"]["cost"] > 0
    position = positions_by_symbol(exchange)[symbol]
    assert position["contracts"] == approx(2) and position["side"] == "long"
    premium = order["average"] * 2 * market["contractSize"]
    assert cash(exchange, "BTC") == approx(3 - premium - order["fee"]["cost"], abs=1e-10)

    price = round_to_tick(ticker["bid"] * 0.5, market["precision"]["price"])
    placed = exchange.create_order(symbol, "limit", "buy", 1, price)
    assert exchange.fetch_order(placed["id"], symbol)["status"] == "open"
    exchange.cancel_order(placed["id"], symbol)
    assert exchange.fetch_order(placed["id"], symbol)["status"] == "canceled"


def test_fetch_positions_filters_by_symbol(fresh, inst):
    exchange, _ = fresh
    exchange.create_order(SWAP, "market", "buy", 2)
    exchange.create_order(inst["future"], "market", "sell", 1)
    every = positions_by_symbol(exchange)
    assert set(every) == {SWAP, inst["future"]}
    assert every[inst["future"]]["side"] == "short"
    only = exchange.fetch_positions([SWAP])
    assert [p["symbol"] for p in only] == [SWAP]


# --- market data -------------------------------------------------------------------------------------------------

def test_fetch_ticker_and_tickers(fresh, inst):
    exchange, _ = fresh
    for symbol in (SPOT, SWAP, inst["future"], inst["option"]):
        ticker = exchange.fetch_ticker(symbol)
        assert ticker["symbol"] == symbol
        assert 0 < ticker["bid"] < ticker["ask"], symbol
        assert ticker["bid"] <= ticker["last"] <= ticker["ask"], symbol
    tickers = exchange.fetch_tickers([SWAP, "ETH/USDT:USDT"])
    assert set(tickers) == {SWAP, "ETH/USDT:USDT"}
    assert tickers["ETH/USDT:USDT"]["bid"] < tickers["ETH/USDT:USDT"]["ask"] < tickers[SWAP]["bid"]
    spot = exchange.fetch_tickers()
    assert SPOT in spot and all(exchange.market(s)["type"] == "spot" for s in spot)


def test_fetch_order_book(fresh):
    exchange, _ = fresh
    book = exchange.fetch_order_book(SWAP, 5)
    ticker = exchange.fetch_ticker(SWAP)
    assert len(book["bids"]) == 5 and len(book["asks"]) == 5
    assert book["bids"][0][0] < book["asks"][0][0]
    assert book["bids"][0][0] == approx(ticker["bid"]) and book["asks"][0][0] == approx(ticker["ask"])
    assert [b[0] for b in book["bids"]] == sorted((b[0] for b in book["bids"]), reverse=True)
    assert [a[0] for a in book["asks"]] == sorted(a[0] for a in book["asks"])
    assert len(exchange.fetch_order_book(SWAP)["bids"]) == 100  # ccxt's default sz=100


def test_fetch_mark_price_and_funding_rate(fresh):
    exchange, _ = fresh
    mark = exchange.fetch_mark_price(SWAP)
    ticker = exchange.fetch_ticker(SWAP)
    assert mark["symbol"] == SWAP and mark["markPrice"] > 0
    assert mark["markPrice"] == approx(float(ticker["info"]["markPx"]))
    funding = exchange.fetch_funding_rate(SWAP)
    assert funding["symbol"] == SWAP
    assert -0.0075 <= funding["fundingRate"] <= 0.0075
    assert funding["interval"] == "8h"
    assert funding["fundingTimestamp"] > 0


# --- errors ccxt must raise ------------------------------------------------------------------------------------------

def test_insufficient_funds(fresh):
    exchange, _ = fresh
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.create_order(SPOT, "market", "buy", 1000)
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.create_order(SWAP, "market", "buy", 1000000)
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.create_order(SPOT, "market", "sell", 4)  # only 3 BTC
    assert exchange.fetch_positions() == [] and exchange.fetch_open_orders() == []
    assert exchange.fetch_balance()["USDT"]["total"] == approx(200000)


def test_bad_symbol_from_the_server(fresh):
    exchange, _ = fresh
    with pytest.raises(ccxt.BadSymbol):
        exchange.public_get_market_ticker({"instId": "NOPE-USDT-SWAP"})
    with pytest.raises(ccxt.BadSymbol):
        exchange.private_post_trade_order({"instId": "NOPE-USDT-SWAP", "tdMode": "cross", "side": "buy",
                                          "ordType": "market", "sz": "1"})


def test_order_not_found(sandbox, fresh, markets):
    exchange, _ = fresh
    with pytest.raises(ccxt.OrderNotFound):
        exchange.fetch_order("987654321", SPOT)
    with pytest.raises(ccxt.OrderNotFound):
        exchange.cancel_order("987654321", SPOT)
    # an order of another account is invisible
    other = make_exchange(sandbox, sandbox.create_account_admin(), markets)
    placed = other.create_order(SPOT, "limit", "buy", 0.01, 1000)
    with pytest.raises(ccxt.OrderNotFound):
        exchange.fetch_order(placed["id"], SPOT)
    with pytest.raises(ccxt.OrderNotFound):
        exchange.cancel_order(placed["id"], SPOT)
    assert other.fetch_order(placed["id"], SPOT)["status"] == "open"


def test_authentication_errors(sandbox, markets):
    account = sandbox.create_account_admin()
    assert make_exchange(sandbox, account, markets).fetch_balance()["USDT"]["total"] == approx(200000)
    wrong_secret = make_exchange(sandbox, account, markets, secret="0" * len(account["secretKey"]))
    with pytest.raises(ccxt.AuthenticationError, match='"code":"50113"'):
        wrong_secret.fetch_balance()
    wrong_passphrase = make_exchange(sandbox, account, markets, password=account["passphrase"] + "x")
    with pytest.raises(ccxt.AuthenticationError, match='"code":"50105"'):
        wrong_passphrase.fetch_balance()
    unknown_key = make_exchange(sandbox, account, markets, apiKey="00000000-0000-0000-0000-000000000000")
    with pytest.raises(ccxt.AuthenticationError, match='"code":"50111"'):
        unknown_key.create_order(SPOT, "market", "buy", 0.01)


class StaleOkx(ccxt.okx):
    """Signs with OK-ACCESS-TIMESTAMP 120 s in the past."""
    skew_ms = 120_000

    def milliseconds(self):
        return super().milliseconds() - self.skew_ms


def test_invalid_nonce_for_a_stale_timestamp(sandbox, markets):
    account = sandbox.create_account_admin()
    stale = make_exchange(sandbox, account, markets, cls=StaleOkx)
    with pytest.raises(ccxt.InvalidNonce, match='"code":"50102"'):
        stale.fetch_balance()
    stale.skew_ms = 0  # the same client with a current timestamp is accepted
    assert stale.fetch_balance()["USDT"]["total"] == approx(200000)


# --- portfolio margin through implicit endpoints ---------------------------------------------------------------------

def test_portfolio_margin_switch(sandbox, fresh, inst):
    exchange, account = fresh
    option_id = exchange.market(inst["option"])["id"]

    precheck = exchange.private_get_account_set_account_switch_precheck({"acctLv": "4"})
    assert precheck["code"] == "0"
    check = precheck["data"][0]
    assert check["allowed"] is False
    assert any("acknowledg" in reason for reason in check["reasons"]), check["reasons"]
    assert (check["before"]["acctLv"], check["after"]["acctLv"]) == ("3", "4")
    assert float(check["before"]["adjEq"]) > 0

    built = exchange.private_post_account_position_builder({
        "acctLv": "4", "inclRealPosAndEq": False,
        "simPos": [{"instId": "BTC-USDT-SWAP", "pos": "10"}, {"instId": option_id, "pos": "-5"}],
        "simAsset": [{"ccy": "USDT", "amt": "100000"}],
    })
    assert built["code"] == "0"
    unit = built["data"][0]["riskUnitData"][0]
    assert unit["riskUnit"] == "BTC" and float(unit["mmr"]) > 0 and float(unit["imr"]) >= float(unit["mmr"])

    with pytest.raises(ccxt.ExchangeError) as refused:
        exchange.private_post_account_set_account_level({"acctLv": "4"})
    assert "51070" in str(refused.value)
    assert exchange.private_get_account_config()["data"][0]["acctLv"] == "3"

    sandbox.acknowledge(account["uid"])
    assert exchange.private_get_account_set_account_switch_precheck({"acctLv": "4"})["data"][0]["allowed"] is True
    switched = exchange.private_post_account_set_account_level({"acctLv": "4"})
    assert switched["code"] == "0" and switched["data"][0]["acctLv"] == "4"
    assert exchange.private_get_account_config()["data"][0]["acctLv"] == "4"

    # trading goes on under portfolio margin
    exchange.create_order(SWAP, "market", "buy", 2)
    assert positions_by_symbol(exchange)[SWAP]["contracts"] == approx(2)
    assert float(exchange.private_get_account_balance()["data"][0]["mmr"]) > 0


# --- sandbox control ---------------------------------------------------------------------------------------------------

def test_cli_account_created_while_serving_does_not_break_trading(sandbox, fresh):
    """`pm account create` on the database of a running server, then any trade of another account.

    The server must keep working when a second process adds an account (the CLI's documented use)."""
    exchange, _ = fresh
    exchange.fetch_balance()
    newcomer = sandbox.create_account_cli({"USDT": "1000"}, use_now=False)  # its key is not used yet
    try:
        order = exchange.create_order(SWAP, "market", "buy", 1)
        assert order["id"]
        assert positions_by_symbol(exchange)[SWAP]["contracts"] == approx(1)
    finally:
        sandbox.signed(newcomer, "GET", "/api/v5/account/config")  # let the server load it in any case
