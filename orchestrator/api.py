"""The Python API: load a plan, then plan / apply / destroy / outputs.

No global state: every `Deployment` owns its clients, ledger store and (when asked) its own
in-process emulator, so two plans can run in one process. Calls are synchronous and never
touch an event loop, so they work inside Jupyter's; the `a*` variants run them in a thread
for async code.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from orchestrator.engine.events import EventCallback
from orchestrator.engine.results import Preview, RunResult
from orchestrator.engine.runner import Engine
from orchestrator.engine.scheduler import threads_for
from orchestrator.gcp import pacing
from orchestrator.gcp.clients import ClientFactory
from orchestrator.gcp.clock import Clock, LocalBackend, SimulatedClock, WallClock
from orchestrator.gcp.clock import for_emulator as clock_for_emulator
from orchestrator.gcp.credentials import resolve_credentials
from orchestrator.gcp.operations import WAIT
from orchestrator.gcp.pacing import Pacer

STATE_DIR = Path(".provision")
EMBEDDED = "embedded"


def default_ledger_path(plan_name: str, state_dir: Path = STATE_DIR) -> Path:
    return state_dir / f"{plan_name}.ledger.json"


def ledger_location(plan: Any, state_dir: Path = STATE_DIR) -> str:
    """Where a plan's ledger lives when no ledger is given: the plan's `settings.ledger` (a path
    or gs://BUCKET/PATH/NAME.json), else .provision/PLAN.ledger.json."""
    from orchestrator.ledger import LedgerError

    setting = plan.settings.get("ledger")
    if setting is None:
        return str(default_ledger_path(plan.name, state_dir))
    if not isinstance(setting, str) or not setting:
        raise LedgerError(
            f"plan {plan.name}: settings.ledger must be a path or gs://BUCKET/PATH/NAME.json, "
            f"not {setting!r}"
        )
    return setting


class Deployment:
    """One plan bound to one ledger and one cloud (Google, or an emulator). Without a plan,
    only what needs the ledger alone works: destroy, outputs."""

    def __init__(
        self,
        plan: Any,
        *,
        ledger: str | os.PathLike[str] | None = None,
        emulator: Any = None,
        impersonate: str | None = None,
        quota_project: str | None = None,
        parallelism: int = 8,
        on_event: EventCallback | None = None,
        time_scale: float | None = None,
        state_dir: str | os.PathLike[str] = STATE_DIR,
        poll: str = WAIT,
        readiness: bool = True,
        lock_timeout: float = 0.0,
        lock_lease: float | None = None,
        targets: tuple[str, ...] = (),
        trust_endpoints: tuple[str, ...] = (),
        check_permissions: bool = True,
        quotas: Mapping[str, int] | None = None,
        shared_locks: Callable[[str], AbstractContextManager[None]] | None = None,
    ) -> None:
        from orchestrator.ledger import open_store

        if plan is None and ledger is None:
            raise ValueError("a deployment needs a plan, a ledger, or both")
        self.plan = plan
        self.state_dir = Path(state_dir)
        self.ledger_location = str(ledger or ledger_location(plan, self.state_dir))
        if lock_lease is None and os.environ.get("PROVISION_LOCK_LEASE"):
            lock_lease = float(os.environ["PROVISION_LOCK_LEASE"])
        self.lock_lease = lock_lease
        # The storage client is looked up on use: the clients are made below, once the
        # emulator (if any) is known, and a bad ledger location must fail before that starts.
        self.store = open_store(
            self.ledger_location,
            storage=lambda: self.clients.storage(),
            lock_timeout=lock_timeout,
            lease=lock_lease,
        )
        self.parallelism = parallelism
        self.targets = frozenset(targets)
        self.check_permissions = check_permissions
        self.on_event = on_event
        self.poll = poll
        self.readiness = readiness
        self.shared_locks = shared_locks
        self._workers: tuple[int, ThreadPoolExecutor] | None = None  # (size, threads)
        self._embedded: Any = None
        emulator_url = None
        if emulator == EMBEDDED:
            self._embedded = emulator = start_embedded(self.state_dir, time_scale)
        self._clock: Clock | None = None
        if emulator is None:
            self._use(WallClock())
        elif isinstance(emulator, str):
            emulator_url = emulator  # its clock is asked for on first use: see `clock`
        else:  # an in-process Emulator: its own clock, shared
            emulator_url = emulator.url
            self._use(clock_in_process(emulator))
        self._emulator_url = emulator_url
        self.clients = ClientFactory(
            credentials=resolve_credentials(
                emulator=emulator_url is not None,
                impersonate=impersonate,
                quota_project=quota_project,
                clock_session=lambda: self.clock.header(),
            ),
            emulator_url=emulator_url,
            endpoints=plan.endpoints if plan is not None else None,
            trusted=trust_endpoints,
        )
        self.pacer = Pacer(lambda: self.clock, self.clients.root, quotas)
        pacing.attach(self.clients.credentials, self.pacer)

    @property
    def clock(self) -> Clock:
        """The run's clock: Google's wall clock, or the emulator's (asked of an emulator given
        by URL the first time it is needed, so that loading a plan makes no request)."""
        if self._clock is None:
            return self._use(clock_for_emulator(self._emulator_url))
        return self._clock

    def _use(self, clock: Clock) -> Clock:
        """Make `clock` the run's: lock waits and Cloud Storage leases are timed on it too."""
        self._clock = self.store.clock = clock
        return clock

    @property
    def emulator(self) -> Any:
        """The in-process emulator, when this deployment started one."""
        return self._embedded

    def _engine(self) -> Engine:
        return Engine(
            plan=self.plan,
            store=self.store,
            clients=self.clients,
            clock=self.clock,
            parallelism=self.parallelism,
            on_event=self.on_event,
            access_secret=self._access_secret,
            poll=self.poll,
            readiness=self.readiness,
            workers=self._step_threads(),
            targets=self.targets,
            check_permissions=self.check_permissions,
            shared_locks=self.shared_locks,
        )

    def _step_threads(self) -> ThreadPoolExecutor:
        """The threads that run the steps, kept from one run to the next: each builds its own
        clients (see ClientFactory), and building them again for every run took most of a
        no-op re-apply's time."""
        size = threads_for(self.parallelism)
        if self._workers is None or self._workers[0] != size:
            if self._workers is not None:
                self._workers[1].shutdown()
            self._workers = (size, ThreadPoolExecutor(max_workers=size, thread_name_prefix="step"))
        return self._workers[1]

    def _access_secret(self, version: str) -> str:
        import base64

        from orchestrator.gcp.operations import invoke

        svc = self.clients.discovery("secretmanager")
        payload = invoke(svc, "secretmanager.projects.secrets.versions.access", name=version)
        return base64.b64decode(payload["payload"]["data"]).decode()

    def plan_changes(self) -> Preview:
        """What `apply` would do, from live reads; changes nothing."""
        return self._engine().preview()

    def apply(self, on_failure: str = "stop", approved: Preview | None = None) -> RunResult:
        """Apply the plan. on_failure="rollback" undoes this apply's changes when a step fails
        (its result is in `RunResult.rollback`). approved: a plan from `plan_changes`; if the
        ledger or the cloud would now plan otherwise, nothing is done (InvalidRequest)."""
        if on_failure not in ("stop", "rollback"):
            raise ValueError(f"on_failure must be 'stop' or 'rollback', not {on_failure!r}")
        result = self._engine().apply(approved=approved)
        if not result.ok and on_failure == "rollback":
            result.rollback = self.rollback()
        return result

    def rollback(self) -> RunResult:
        """Undo the last apply: delete what it created, restore what it updated."""
        return self._engine().rollback()

    def refresh(self) -> RunResult:
        """Update the ledger's outputs from live state; report resources deleted outside."""
        return self._engine().refresh()

    def import_resource(self, step_id: str, path: str | None = None) -> RunResult:
        """Put an existing resource under the ledger as the plan's step `step_id`."""
        return self._engine().import_resource(step_id, path)

    def move(self, old: str, new: str) -> RunResult:
        """Put the ledger's record of step `old` under step `new` (a renamed step); nothing in
        the cloud changes. A plan's `moved:` section does the same on apply."""
        return self._engine().move(old, new)

    def forget(self, step_id: str) -> RunResult:
        """Drop a step's record from the ledger, leaving its resource in the cloud."""
        return self._engine().forget(step_id)

    def destroy(self) -> RunResult:
        return self._engine().destroy()

    def verify(self, connectivity_tests: bool = True, keep_tests: bool = False,
               probe: bool = False) -> Any:
        """Whether what the ledger holds carries traffic: each request path the architecture
        builds, hop by hop, from live reads (a `verify.Report`). Changes nothing but the
        connectivity tests it asks Google for the hops Google can trace (connectivity_tests),
        which it deletes afterwards unless keep_tests. probe: also send a request through each
        API proxy target under an Apigee debug session (its data deleted unless keep_tests),
        to the environment group's hostname (on the emulator, to its Apigee runtime)."""
        from orchestrator.verify import verify

        ledger = self.store.load()
        name = self.plan.name if self.plan is not None else ledger.plan
        ingress = f"{self._emulator_url}/_runtime" if self._emulator_url else None
        return verify(name, ledger, self.clients, self.clock,
                      connectivity_tests=connectivity_tests, keep_tests=keep_tests,
                      probe=probe, ingress=ingress)

    def outputs(self) -> dict[str, dict[str, Any]]:
        ledger = self.store.load()
        return {
            sid: rec.outputs for sid, rec in ledger.resources.items() if rec.status == "present"
        }

    def ledger(self) -> Any:
        return self.store.load()

    def graph(self, fmt: str = "mermaid") -> str:
        """The plan as Mermaid, DOT or SVG text (SVG needs Graphviz's `dot`), each step
        coloured by its status in the ledger."""
        from orchestrator import graph

        if self.plan is None:
            raise ValueError("a graph needs the plan")
        return graph.render(graph.build(self.plan, self.store.load()), fmt)

    def _repr_html_(self) -> str:
        """In Jupyter, a deployment shows its ledger: each resource and its status."""
        from orchestrator.html import ledger_html

        return ledger_html(self.store.load(), self.ledger_location)

    async def aplan(self) -> Preview:
        return await asyncio.to_thread(self.plan_changes)

    async def aapply(self) -> RunResult:
        return await asyncio.to_thread(self.apply)

    async def adestroy(self) -> RunResult:
        return await asyncio.to_thread(self.destroy)

    def close(self) -> None:
        if self._workers is not None:
            self._workers[1].shutdown()
            self._workers = None
        if self._clock is not None:
            self._clock.close()
        if self._embedded is not None:
            self._embedded.stop()
            self._embedded = None

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_embedded(state_dir: Path, time_scale: float | None = None) -> Any:
    """The in-process emulator whose cloud persists under `state_dir` (--emulator alone)."""
    from provision_emulator import Emulator

    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return Emulator(time_scale=time_scale, state_file=state_dir / "emulator-state.json").start()


def clock_in_process(emulator: Any) -> Clock:
    """The clock of an Emulator this process runs: its virtual clock, shared, or the wall
    clock at its time scale."""
    shared = emulator.clock
    return (SimulatedClock(LocalBackend(shared)) if shared.mode == "virtual"
            else WallClock(shared.scale))


def load(
    path: str | os.PathLike[str],
    *,
    vars: Mapping[str, Any] | None = None,
    var_files: Sequence[str | os.PathLike[str]] = (),
    **options: Any,
) -> Deployment:
    """Load and validate a plan (raising PlanError before any API call), bound to a ledger.
    vars win over var_files (YAML files of NAME: VALUE, each winning over those before it),
    as --var over --var-file.

    options: ledger (a path or gs://BUCKET/PATH/NAME.json; default the plan's settings.ledger,
    else .provision/PLAN.ledger.json), emulator (None for Google; "embedded" for an in-process
    emulator whose cloud persists under .provision/; an `Emulator` this process runs, whose
    clock the engine then shares; or an emulator's URL, whose clock the engine asks for: its
    virtual clock over HTTP, or the wall clock at its time scale), impersonate, quota_project,
    parallelism, on_event, time_scale (the embedded emulator's only: None, the default, for its
    virtual clock, on which a run takes as long as its CPU work and CPU load cannot spend
    simulated time; a number for the wall clock at that scale), state_dir, poll ("wait", or
    "fixed:SECONDS" to poll operations with `get` at a fixed interval, as the Terraform provider
    does), readiness (False: a step is done when its operation is, without waiting for what the
    kind calls ready, a VPN tunnel ESTABLISHED or a BGP session UP, as the Terraform provider
    does; kept, like poll, for the benchmark's baseline), lock_timeout (seconds to wait for the
    ledger's lock while another run holds it; 0 refuses at once), lock_lease (seconds a Cloud
    Storage lock lasts unless its holder renews it; default 60, or PROVISION_LOCK_LEASE),
    targets (step ids: plan and apply only these and what they need, destroy only these and
    what needs them; not for routine use, as the rest goes unchecked), trust_endpoints (URLs
    besides Google's API endpoints that the plan's `endpoints:` may name, and that the
    credentials may therefore go to: the caller's, never the plan's, choice), check_permissions
    (False: plan, apply and destroy do not first ask Google whether the caller holds the
    permissions their changes need; by default they do, and raise MissingPermissions, before
    any change, listing what is missing per project and step), quotas (requests a minute per
    quota group, for groups whose limit is not Google's default: {"compute.write": 600}; the
    groups and defaults are google_facts/quotas.py's; requests are paced to them, see
    gcp/pacing.py), shared_locks (key -> a context manager holding that lock across runs: a
    fleet's, so that an organization or router has one operation at a time across instances).
    """
    from orchestrator.plan import load_plan

    trusted = tuple(options.get("trust_endpoints", ()))
    return Deployment(load_plan(path, dict(vars or {}), trusted, var_files=var_files),
                      **options)
