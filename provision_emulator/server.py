"""The HTTP server: each API under `/{api}`, the admin API under `/_emulator/`.

`Server` lives on one asyncio event loop and owns all state. `Emulator` runs a `Server` on a
background thread for in-process use (tests, the CLI's default), and `serve` runs one in the
foreground (`provision emulator`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from google_facts import discovery
from google_facts.quotas import DEFAULTS as DEFAULT_QUOTAS
from google_facts.routing import Match, Router
from provision_emulator import admin, generic, persistence, pipeline, schemas
from provision_emulator import faults as faultlib
from provision_emulator.access import Access
from provision_emulator.apis import all_rules
from provision_emulator.call import Call, Raw
from provision_emulator.clock import ScaledClock, VirtualClock, for_scale
from provision_emulator.cloud import Cloud, Config
from provision_emulator.errors import ApiError
from provision_emulator.faults import Faults
from provision_emulator.requestlog import RequestLog
from provision_emulator.runtime import messages

LOG = logging.getLogger(__name__)
RUNTIME = "/_runtime/"  # where the Apigee runtime's requests arrive (Server.runtime)
MAX_BODY = 256 * 1024 * 1024  # storage uploads go through here too
# The clock session of a request's sender, when it holds a token of the virtual clock.
CLOCK_HEADER = "X-Provision-Clock"

T = TypeVar("T")


class Server:
    def __init__(
        self, config: Config, state_file: str | Path | None = None, start: float | None = None
    ) -> None:
        rules = all_rules()
        self.routers = {api: Router(_served(api, rule)) for api, rule in rules.items()}
        self.service_paths = {api: discovery.document(api).get("servicePath", "") for api in rules}
        self.cloud = Cloud(rules, config, for_scale(config.time_scale, start))
        self.log = RequestLog()
        self.state_file = Path(state_file) if state_file else None
        self._runner: web.AppRunner | None = None
        self.url = ""

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self, host: str, port: int) -> None:
        if self.state_file is not None:
            data = persistence.load(self.state_file)
            if data is not None:
                self.cloud.load(data)
        app = web.Application(client_max_size=MAX_BODY)
        app.add_routes(admin.routes(self))
        app.router.add_route("*", RUNTIME + "{tail:.*}", self.runtime)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        # handler_cancellation: a request whose client went away stops waiting; a clock
        # session's presence request ending is how a dead client's tokens are let go.
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=1.0, handler_cancellation=True
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}"

    async def close(self) -> None:
        self.save()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def save(self) -> None:
        """Write the cloud to the state file, if it has one. Called before a change is
        answered: the client records what it was answered (an operation's name, a resource
        made) only after, so the saved cloud is never behind a ledger, however the process
        that holds both ends."""
        if self.state_file is not None:
            self.cloud.advance(self.cloud.now())
            persistence.save(self.state_file, self.cloud.to_json())
        self.cloud.changed = False

    # --- admin ----------------------------------------------------------------------------

    def reset(self) -> None:
        self.cloud.clear()
        self.log.clear()
        self.cloud.changed = True
        self.save()

    def dump(self) -> dict[str, Any]:
        self.cloud.advance(self.cloud.now())
        return self.cloud.to_json()

    def skip(self, simulated: float) -> None:
        if not simulated >= 0:
            raise ValueError(f"can only skip ahead, not {simulated!r} seconds")
        self.cloud.skip(simulated)
        self.save()

    def set_faults(self, changes: Mapping[str, Any]) -> Faults:
        self.cloud.faults = self.cloud.faults.updated(dict(changes))
        return self.cloud.faults

    def set_access(self, access: Access) -> Access:
        self.cloud.access = access
        return access

    # --- the Apigee runtime -------------------------------------------------------------------

    async def runtime(self, request: web.Request) -> web.Response:
        """A request to an Apigee environment group's hostname, as the organization's runtime
        receives it: the hostname in the Host header, the path below `/_runtime`. Answered
        as runtime/messages.py works it out; not an API call, so not in the request log."""
        path = "/" + request.match_info["tail"]
        if request.query_string:
            path += "?" + request.query_string
        self.cloud.advance(self.cloud.now())
        answer = messages.handle(self.cloud, messages.Request(
            request.method, request.host, path, {k: v for k, v in request.headers.items()
                                                 if k.lower() != "host"}))
        if self.cloud.changed:
            self.save()
        return _json(answer.body, answer.status)

    # --- API requests ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.Response:
        api, _, rest = request.rel_url.raw_path.lstrip("/").partition("/")
        match = self._route(api, request.method, rest)
        if match is None and api not in self.routers:
            api, match = self._route_at_root(request.method,
                                             request.rel_url.raw_path.lstrip("/"))
        if match is None:
            error = ApiError(
                404, f"The requested URL {request.rel_url.path} was not found.", reason="notFound"
            )
            return _json(error.body(), 404)
        method = match.method
        now = self.cloud.now()
        entry = self.log.open(
            now, api, method.id, request.method, request.rel_url.path, method.mutating,
            request.headers.get("User-Agent", ""),
        )
        headers: dict[str, str] = {}
        try:
            body = await self._answer(request, match, entry["seq"], now)
            status = 200
        except ApiError as exc:
            body, status, headers = exc.body(), exc.code, exc.headers
        except Exception as exc:  # a bug in a rule: answer it as Google's 500, and say where
            LOG.exception("%s failed", method.id)
            error = ApiError(500, f"Emulator error in {method.id}: {exc!r}", reason="backendError")
            body, status = error.body(), 500
        if self.cloud.changed:
            self.save()
        if isinstance(body, Raw):
            entry["status"] = body.status
            return web.Response(
                body=body.body,
                status=body.status,
                headers=body.headers,
                content_type=body.content_type,
            )
        entry["status"] = status
        return _json(body, status, headers)

    def _route_at_root(self, http_method: str, path: str) -> tuple[str, Match | None]:
        """A path sent without the `/API/` mount (gcloud's Apigee commands keep only the
        scheme and host of their endpoint override): the one API whose routes take it."""
        found = [(api, m) for api, router in self.routers.items()
                 if (m := router.match(http_method, path)) is not None]
        return found[0] if len(found) == 1 else ("", None)

    def _route(self, api: str, http_method: str, rest: str) -> Match | None:
        router = self.routers.get(api)
        if router is None:
            return None
        for prefix, meaning in self.cloud.rules[api].path_aliases.items():
            if rest.startswith(prefix):
                rest = meaning + rest[len(prefix) :]
                break
        # GAPIC clients send servicePath ("compute/v1/") below the endpoint; discovery clients
        # given the same endpoint send paths relative to it, without servicePath.
        return router.match(http_method, rest) or router.match(
            http_method, self.service_paths[api] + rest
        )

    async def _let_time_pass(self, api: str, path: str, now: float) -> float:
        """On the virtual clock, a client that takes no part in it (gcloud, a test's own calls)
        polls an operation with plain reads and real sleeps, which cannot move the clock. When
        no participant is working, such a read waits for the operation to end, as a long poll
        would: the time it would have slept. (The resources of an API's `polled_collections`,
        a Cloud DNS change, are polled as operations.) Reads of other resources answer at once,
        as they are."""
        clock = self.cloud.clock
        if not isinstance(clock, VirtualClock) or clock.busy():
            return now
        op = self.cloud.ops.get(api, path)
        if op is None:
            pending = self.cloud.ops.pending(api, path)
            polled = self.cloud.rules[api].polled_collections
            op = pending if pending is not None and pending.collection in polled else None
        if op is None or op.done:
            return now
        # At most a long poll: an operation that ends on an event (a job's execution) has no
        # end to wait for.
        await clock.park(min(op.end, now + self.cloud.scaled(self.cloud.config.long_poll)))
        return self.cloud.now()

    async def _answer(self, request: web.Request, match: Match, seq: int, now: float) -> Any:
        cloud = self.cloud
        method = match.method
        session = request.headers.get(CLOCK_HEADER)
        path = pipeline.resource_path(method, match)
        draw = cloud.draw_key(method.id, path)
        delay = faultlib.latency(cloud.faults, cloud.config.seed, draw)
        if delay:
            await cloud.clock.park(now + cloud.scaled(delay), session)
            now = cloud.now()
        injected = faultlib.request_error(cloud.faults, cloud.config.seed, draw, method.id)
        if injected is not None:
            raise injected
        query = {k: request.rel_url.query.getall(k) for k in request.rel_url.query}
        int_enums = "enum-encoding=int" in (query.get("$alt") or [""])[0]
        pipeline.check_parameters(method, match, query)
        raw = await request.read()
        content_type = request.headers.get("Content-Type", "")
        if session is None and request.method == "GET":
            now = await self._let_time_pass(method.api, path, now)
        call = Call(
            method=method,
            path=path,
            params=match.params,
            verb=match.verb,
            query=query,
            body=pipeline.parse_body(method, match, raw, int_enums, content_type),
            raw=raw,
            content_type=content_type,
            upload=match.upload,
            project=pipeline.project_of(cloud, match, path),
            int_enums=int_enums,
            seq=seq,
            draw=draw,
            now=now,
            clock_session=session,
        )
        pipeline.guard(cloud, call)
        cloud.quotas.charge(cloud, method, pipeline.consumer(call))
        echoed = faultlib.echoed(cloud.faults, method.id, call.body)
        if echoed is not None:
            raise echoed
        cloud.advance(now)
        result = await generic.dispatch(cloud, call)
        if int_enums and cloud.rules[method.api].numeric_enums and not isinstance(result, Raw):
            result = schemas.to_numbers(method.api, method.response, result)
        return result


def _served(api: str, rules: Any) -> list[discovery.Method]:
    """The API's methods (those its REST reference adds included), and those of its other
    versions that its rules handle."""
    methods = [*discovery.methods(api), *rules.documented_methods]
    for version, ids in rules.other_versions.items():
        methods += [m for m in discovery.methods(api, version) if m.id in ids]
    return methods


def _json(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(body), status=status, headers=headers, content_type="application/json"
    )


def _config(
    time_scale: float | None,
    seed: int,
    faults: Faults | Mapping[str, Any] | None,
    projects: Iterable[str] | None,
    enforce_services: bool,
    durations: Mapping[str, float] | None,
    access: Access | Mapping[str, Any] | None = None,
    quotas: Mapping[str, int] | bool | None = None,
) -> Config:
    if faults is None:
        faults = Faults()
    elif not isinstance(faults, Faults):
        faults = Faults().updated(dict(faults))
    return Config(
        time_scale=time_scale,
        seed=seed,
        projects=frozenset(projects) if projects is not None else None,
        enforce_services=enforce_services,
        durations=dict(durations or {}),
        faults=faults,
        access=access if isinstance(access, Access) else Access.from_json(access or {}),
        quotas=dict(DEFAULT_QUOTAS if quotas is True else quotas or {}),
    )


class Emulator:
    """An in-process emulator on a background thread.

        with Emulator() as emu:
            client = compute_v1.NetworksClient(
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": f"{emu.url}/compute"},
            )

    time_scale: None (the default) runs on a VirtualClock: simulated time moves by events, as
        soon as every participant waits (see clock.py), so `orchestrator.load(plan,
        emulator=emu)` and clients speaking the clock protocol never lose simulated time to CPU
        load. A number runs on the wall clock at that scale instead (0.001 makes a 30-minute
        operation 1.8 s), for clients that do not speak the protocol.
    start: the virtual clock's first moment (Unix seconds; default now): fixed, two runs
        give the same timestamps and the ids derived from them.
    state_file: load the cloud from it at start, write it after changes and at stop.
    seed: makes injected faults and generated ids repeatable.
    faults: a `Faults` or a dict of its fields.
    projects: the only project ids that exist (default: every well-formed id exists).
    enforce_services: answer 403 SERVICE_DISABLED for APIs not enabled with serviceusage.
    durations: simulated seconds per "api.collection" (or "api"), over operations.DURATIONS.
    access: who the caller is and which roles it holds (an `Access`, or a dict of its JSON
        form); default the owner of everything.
    quotas: per-minute rate quotas to enforce per project (quotas.py): True for Google's
        defaults, or requests a minute by group ({"compute.write": 100}); default none.

    The admin methods are safe to call from any thread: they run on the server's loop.
    """

    def __init__(
        self,
        time_scale: float | None = None,
        state_file: str | Path | None = None,
        seed: int = 0,
        *,
        start: float | None = None,
        faults: Faults | Mapping[str, Any] | None = None,
        projects: Iterable[str] | None = None,
        enforce_services: bool = False,
        durations: Mapping[str, float] | None = None,
        access: Access | Mapping[str, Any] | None = None,
        quotas: Mapping[str, int] | bool | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        config = _config(time_scale, seed, faults, projects, enforce_services, durations, access,
                         quotas)
        self._server = Server(config, state_file, start)
        self._host, self._port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return self._server.url

    @property
    def clock(self) -> VirtualClock | ScaledClock:
        """The cloud's clock, which an in-process engine shares when it is virtual."""
        return self._server.cloud.clock

    def start(self) -> Emulator:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._server.start(self._host, self._port))
            except BaseException as exc:  # reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            self._loop = loop
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._server.close())
            loop.close()

        self._thread = threading.Thread(target=run, name="provision-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            raise failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop = None
        self._thread = None

    def __enter__(self) -> Emulator:
        return self.start() if self._loop is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_loop(self, fn: Callable[[], T]) -> T:
        if self._loop is None:
            return fn()

        async def call() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result()

    def reset(self) -> None:
        """Forget every resource, operation, policy and logged request; restore the faults."""
        self._on_loop(self._server.reset)

    def dump(self) -> dict[str, Any]:
        """The whole cloud, as the state file holds it."""
        return self._on_loop(self._server.dump)

    def requests(self) -> list[dict[str, Any]]:
        """The request log: seq, time, api, method id, HTTP method, path, status, mutating."""
        return self._on_loop(lambda: [dict(e) for e in self._server.log.entries])

    def request_counts(self) -> dict[str, int]:
        """Requests per discovery method id."""
        return self._on_loop(lambda: dict(self._server.log.counts))

    def skip(self, seconds: float) -> None:
        """Move the clock `seconds` simulated seconds ahead at once: operations, certificate
        provisioning, deployments and BGP sessions that end meanwhile are over. Tests use it to
        reach a later state without waiting for it."""
        self._on_loop(lambda: self._server.skip(seconds))

    def set_access(self, access: Access | Mapping[str, Any]) -> Access:
        """Who the caller is and what it may do (see access.py); `reset` restores the one
        the emulator started with."""
        given = access if isinstance(access, Access) else Access.from_json(access)
        return self._on_loop(lambda: self._server.set_access(given))

    def set_faults(self, faults: Faults | None = None, **changes: Any) -> Faults:
        """Replace the fault configuration (`faults`) or change some of its fields."""
        if faults is not None:
            return self._on_loop(lambda: self._server.set_faults(faults.to_json() | changes))
        return self._on_loop(lambda: self._server.set_faults(changes))

    @property
    def faults(self) -> Faults:
        return self._on_loop(lambda: self._server.cloud.faults)

    def add_request_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call `listener(entry)` as each request arrives, before it is answered (on the
        server's thread: keep it short). Kept across `reset`. `entry` is the log's own: its
        "status" is None until the request is answered, then set, so a listener may keep an
        entry to act at the first arrival after it was answered."""
        self._on_loop(lambda: self._server.log.listeners.append(listener))

    def remove_request_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        self._on_loop(lambda: self._server.log.listeners.remove(listener))


def serve(
    port: int,
    state_file: str | Path | None = None,
    time_scale: float | None = None,
    host: str = "127.0.0.1",
    ready: Callable[[str], None] | None = None,
    **options: Any,
) -> None:
    """Serve in the foreground until SIGINT/SIGTERM, keeping the cloud in `state_file`.
    `ready(url)` is told once it serves (by default, the URL is printed); `options` are
    Emulator's keyword options (seed, faults, projects, ...)."""
    config = _config(
        time_scale,
        options.get("seed", 0),
        options.get("faults"),
        options.get("projects"),
        options.get("enforce_services", False),
        options.get("durations"),
        options.get("access"),
    )
    server = Server(config, state_file)

    async def main() -> None:
        await server.start(host, port)
        if ready is not None:
            ready(server.url)
        else:
            print(f"provision emulator serving on {server.url}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await server.close()

    asyncio.run(main())
