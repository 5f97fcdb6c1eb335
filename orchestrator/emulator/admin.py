"""The admin API under `/_emulator/`: the HTTP face of `Emulator`'s Python admin methods."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from orchestrator.emulator.server import Server


def routes(server: Server) -> list[web.RouteDef]:
    async def reset(request: web.Request) -> web.Response:
        server.reset()
        return web.json_response({})

    async def state(request: web.Request) -> web.Response:
        return web.json_response(server.dump())

    async def requests(request: web.Request) -> web.Response:
        return web.json_response({"requests": server.log.entries})

    async def counts(request: web.Request) -> web.Response:
        return web.json_response({"counts": dict(server.log.counts)})

    async def skip(request: web.Request) -> web.Response:
        try:
            server.skip(float(json.loads(await request.read() or b"{}")["seconds"]))
        except (ValueError, TypeError, KeyError) as exc:
            message = f"expected {{\"seconds\": N}} with N >= 0: {exc}"
            return web.json_response({"error": {"code": 400, "message": message}}, status=400)
        return web.json_response({})

    async def get_faults(request: web.Request) -> web.Response:
        return web.json_response(server.cloud.faults.to_json())

    async def set_faults(request: web.Request) -> web.Response:
        try:
            changes = json.loads(await request.read() or b"{}")
            faults = server.set_faults(changes)
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": {"code": 400, "message": str(exc)}}, status=400)
        return web.json_response(faults.to_json())

    return [
        web.post("/_emulator/reset", reset),
        web.post("/_emulator/skip", skip),
        web.get("/_emulator/state", state),
        web.get("/_emulator/requests", requests),
        web.get("/_emulator/requests/counts", counts),
        web.get("/_emulator/faults", get_faults),
        web.post("/_emulator/faults", set_faults),
    ]
