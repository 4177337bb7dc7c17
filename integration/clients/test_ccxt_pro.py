"""ccxt.pro (unmodified, okx class) against the sandbox's WebSocket API (docs/methodology/06-sandbox-api.md §7).

The market is moved through the admin shock endpoint on SOL only, so the other client tests (BTC, ETH) are
not disturbed.
"""
import asyncio
import base64
import hashlib
import hmac
import json
import time

import aiohttp
import ccxt.pro as ccxtpro
import pytest

SYMBOL = "SOL/USDT:USDT"


def pro_client(sandbox, account):
    exchange = ccxtpro.okx({"apiKey": account["apiKey"], "secret": account["secretKey"], "password": account["passphrase"]})
    exchange.urls["api"]["rest"] = sandbox.url
    exchange.urls["api"]["ws"] = sandbox.url.replace("http://", "ws://") + "/ws/v5"
    return exchange


def shock_sol(sandbox, move):
    envelope = sandbox.admin("POST", "/api/v5/sandbox/market/shock", {"moves": {"SOL": str(move)}})
    assert envelope["code"] == "0", envelope


async def next_update(coroutine, timeout=15):
    return await asyncio.wait_for(coroutine, timeout)


def test_tickers_and_mark_prices_move(sandbox):
    account = sandbox.create_account_admin()

    async def run():
        exchange = pro_client(sandbox, account)
        try:
            await exchange.load_markets()
            first = await next_update(exchange.watch_ticker(SYMBOL))
            mark_first = await next_update(exchange.watch_mark_price(SYMBOL))
            assert first["symbol"] == SYMBOL and first["bid"] < first["ask"]
            waiting = asyncio.ensure_future(exchange.watch_ticker(SYMBOL))
            await asyncio.sleep(0.3)
            shock_sol(sandbox, 0.02)
            moved = await next_update(waiting)
            assert moved["last"] > first["last"] * 1.015, (first["last"], moved["last"])
            waiting_mark = asyncio.ensure_future(exchange.watch_mark_price(SYMBOL))
            await asyncio.sleep(0.3)
            shock_sol(sandbox, -0.01)
            mark_moved = await next_update(waiting_mark)
            assert mark_moved["markPrice"] != mark_first["markPrice"]
        finally:
            await exchange.close()

    asyncio.run(run())


def test_orders_positions_and_balance_arrive_over_websocket(sandbox):
    account = sandbox.create_account_admin()

    async def run():
        exchange = pro_client(sandbox, account)
        try:
            await exchange.load_markets()
            balance = await next_update(exchange.watch_balance())
            assert balance["USDT"]["total"] == pytest.approx(200000)
            orders_future = asyncio.ensure_future(exchange.watch_orders())
            positions_first = await next_update(exchange.watch_positions())
            assert all(p["contracts"] in (0, None) for p in positions_first)
            positions_future = asyncio.ensure_future(exchange.watch_positions())
            balance_future = asyncio.ensure_future(exchange.watch_balance())
            await asyncio.sleep(0.3)
            placed = await exchange.create_order(SYMBOL, "market", "buy", 3)
            orders = await next_update(orders_future)
            assert placed["id"] in [order["id"] for order in orders]
            order = next(order for order in orders if order["id"] == placed["id"])
            assert order["status"] == "closed" and order["filled"] == pytest.approx(3)
            positions = await next_update(positions_future)
            sol = [p for p in positions if p["symbol"] == SYMBOL]
            assert sol and sol[0]["contracts"] == pytest.approx(3) and sol[0]["side"] == "long"
            after = await next_update(balance_future)
            assert after["USDT"]["total"] < 200000, "the taker fee was paid in USDT"
        finally:
            await exchange.close()

    asyncio.run(run())


def test_liquidation_warning_for_an_account_pushed_below_the_warning_level(sandbox):
    account = sandbox.create_account_admin({"USDT": "2000"})
    status, envelope = sandbox.signed(account, "POST", "/api/v5/account/set-leverage",
                                      {"lever": "20", "mgnMode": "cross", "instId": "SOL-USDT-SWAP"})
    assert envelope["code"] == "0", envelope
    # SOL-USDT-SWAP: 1 SOL per contract, about 125 USDT. 250 contracts ~ 31,000 USDT of notional.
    status, envelope = sandbox.signed(account, "POST", "/api/v5/trade/order",
                                      {"instId": "SOL-USDT-SWAP", "tdMode": "cross", "side": "buy", "ordType": "market", "sz": "250"})
    assert envelope["code"] == "0", envelope

    async def run():
        ws_url = sandbox.url.replace("http://", "ws://") + "/ws/v5/private"
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(ws_url) as ws:
                timestamp = str(int(time.time()))
                sign = base64.b64encode(hmac.new(account["secretKey"].encode(),
                                                 (timestamp + "GET/users/self/verify").encode(), hashlib.sha256).digest()).decode()
                await ws.send_str(json.dumps({"op": "login", "args": [{"apiKey": account["apiKey"], "passphrase": account["passphrase"],
                                                                       "timestamp": timestamp, "sign": sign}]}))
                login = json.loads((await ws.receive(timeout=10)).data)
                assert login["event"] == "login" and login["code"] == "0", login
                await ws.send_str(json.dumps({"op": "subscribe", "args": [{"channel": "liquidation-warning", "instType": "ANY"}]}))
                ack = json.loads((await ws.receive(timeout=10)).data)
                assert ack["event"] == "subscribe", ack
                shock_sol(sandbox, -0.04)
                deadline = time.time() + 15
                while time.time() < deadline:
                    message = json.loads((await ws.receive(timeout=15)).data)
                    if message.get("arg", {}).get("channel") == "liquidation-warning":
                        row = message["data"][0]
                        assert row["instId"] == "SOL-USDT-SWAP"
                        assert 1 < float(row["mgnRatio"]) <= 3, row
                        return
                pytest.fail("no liquidation-warning push")

    asyncio.run(run())
    # Put SOL back where it was for the other tests.
    shock_sol(sandbox, 1 / 0.96 - 1)
