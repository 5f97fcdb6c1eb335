"""The admin API under `/_emulator/`: the HTTP face of `Emulator`'s Python admin methods."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from provision_emulator.access import Access
from provision_emulator.clock import VirtualClock

if TYPE_CHECKING:
    from provision_emulator.server import Server


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

    async def get_access(request: web.Request) -> web.Response:
        return web.json_response(server.cloud.access.to_json())

    async def set_access(request: web.Request) -> web.Response:
        try:
            given = Access.from_json(json.loads(await request.read() or b"{}"))
        except (ValueError, TypeError, AttributeError) as exc:
            return web.json_response({"error": {"code": 400, "message": str(exc)}}, status=400)
        return web.json_response(server.set_access(given).to_json())

    def bad(message: str) -> web.Response:
        return web.json_response({"error": {"code": 400, "message": message}}, status=400)

    def virtual() -> VirtualClock | None:
        clock = server.cloud.clock
        return clock if isinstance(clock, VirtualClock) else None

    async def fields(request: web.Request) -> dict[str, Any]:
        data = json.loads(await request.read() or b"{}")
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        return data

    async def clock(request: web.Request) -> web.Response:
        return web.json_response(server.cloud.clock.describe())

    async def clock_session(request: web.Request) -> web.StreamResponse:
        """A client's session of the virtual clock, for as long as this request stays open:
        the first line names it; when the connection closes (the client ended, or was killed),
        the session's tokens and waiters go."""
        clk = virtual()
        if clk is None:
            return bad("this emulator's clock is scaled to the wall clock: it has no sessions")
        name = clk.session("remote-")
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        try:
            await response.prepare(request)
            await response.write(json.dumps({"session": name, "now": clk.now()}).encode() + b"\n")
            await asyncio.Event().wait()
        finally:
            clk.drop(name)
        return response

    async def clock_tokens(request: web.Request) -> web.Response:
        clk = virtual()
        if clk is None:
            return bad("this emulator's clock is scaled to the wall clock: it has no tokens")
        try:
            session = str((await fields(request))["session"])
            hold = request.match_info["verb"] == "hold"
            now = clk.hold(session) if hold else clk.release(session)
        except (ValueError, TypeError, KeyError, RuntimeError) as exc:
            return bad(f'expected {{"session": ID}}: {exc}')
        return web.json_response({"now": now})

    async def clock_sleep(request: web.Request) -> web.Response:
        """A long poll that answers when the clock reaches `until`; a `session` gives one of its
        tokens back meanwhile."""
        try:
            data = await fields(request)
            until = float(data["until"])
            session, name = data.get("session"), data.get("name")
        except (ValueError, TypeError, KeyError) as exc:
            return bad(f'expected {{"until": T, "session": ID or null, "name": N}}: {exc}')
        clk = server.cloud.clock
        await clk.park(until, str(session) if session else None, str(name) if name else None)
        return web.json_response({"now": clk.now()})

    async def clock_wake(request: web.Request) -> web.Response:
        """Cut a named sleep short."""
        clk = virtual()
        if clk is None:
            return bad("this emulator's clock is scaled to the wall clock: its sleeps are real")
        try:
            clk.wake(str((await fields(request))["name"]))
        except (ValueError, TypeError, KeyError) as exc:
            return bad(f'expected {{"name": N}}: {exc}')
        return web.json_response({"now": clk.now()})

    return [
        web.get("/_emulator/clock", clock),
        web.post("/_emulator/clock/session", clock_session),
        web.post("/_emulator/clock/{verb:hold|release}", clock_tokens),
        web.post("/_emulator/clock/sleep", clock_sleep),
        web.post("/_emulator/clock/wake", clock_wake),
        web.post("/_emulator/reset", reset),
        web.post("/_emulator/skip", skip),
        web.get("/_emulator/state", state),
        web.get("/_emulator/requests", requests),
        web.get("/_emulator/requests/counts", counts),
        web.get("/_emulator/faults", get_faults),
        web.post("/_emulator/faults", set_faults),
        web.get("/_emulator/access", get_access),
        web.post("/_emulator/access", set_access),
    ]
