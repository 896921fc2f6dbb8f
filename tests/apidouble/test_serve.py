"""``serve`` under trio: reports its URL once listening, ends watches whose client left, stops on cancel."""

from __future__ import annotations

import json
from functools import partial

import httpx
import trio

from mtproxy.apidouble import ApiDouble, serve


async def test_serve_in_a_nursery(nursery: trio.Nursery) -> None:
    app = ApiDouble()
    url = await nursery.start(partial(serve, app, port=0))
    assert url.startswith("http://127.0.0.1:") and app.server_address == url.removeprefix("http://")
    async with httpx.AsyncClient(base_url=url) as http:
        created = await http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "c"}})
        assert created.status_code == 201
        assert (await http.get("/api")).json()["serverAddressByClientCIDRs"][0]["serverAddress"] == app.server_address
        async with http.stream("GET", "/api/v1/namespaces/default/configmaps", params={"watch": "1"}) as watch:
            async for line in watch.aiter_lines():
                assert json.loads(line)["type"] == "ADDED"
                break
            assert app.statistics().cluster.watches.open_streams == 1
    with trio.fail_after(5):
        while app.statistics().cluster.watches.open_streams:
            await trio.sleep(0.01)
    nursery.cancel_scope.cancel()


async def test_namespace_reaper_runs_in_the_lifespan(nursery: trio.Nursery) -> None:
    app = ApiDouble(namespace_grace_s=0)
    url = await nursery.start(partial(serve, app, port=0))
    async with httpx.AsyncClient(base_url=url) as http:
        await http.post("/api/v1/namespaces", json={"metadata": {"name": "gone"}})
        await http.post("/api/v1/namespaces/gone/configmaps", json={"metadata": {"name": "c"}})
        deleted = await http.delete("/api/v1/namespaces/gone")
        assert deleted.json()["status"]["phase"] == "Terminating"
        with trio.fail_after(5):
            while (await http.get("/api/v1/namespaces/gone")).status_code != 404:
                await trio.sleep(0.01)
        assert (await http.get("/api/v1/namespaces/gone/configmaps/c")).status_code == 404
    nursery.cancel_scope.cancel()
