"""Fleets: one plan over many instances, each with its vars and ledger, wave after wave,
sharing the locks of Google's one-operation-at-a-time parents."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.fleet.model import load_fleet, parse_shard
from orchestrator.fleet.runner import FleetResult, Runner
from orchestrator.fleet.session import open_session
from orchestrator.plan import PlanError
from provision_emulator import Emulator

from ..emulator.test_apigee import FAST, PROJECT, Cloud

PLANS = Path(__file__).parents[2] / "plans"
ENVIRONMENT_PLAN = """
name: env
vars: {org: x, env: y}
steps:
  - id: env
    kind: apigee.environment
    name: ${vars.env}
    organization: ${vars.org}
    properties: {displayName: "${vars.env}"}
"""


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def make(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return make


def basics_fleet(tmp_path: Path, instances: str, concurrency: int = 4) -> str:
    return (f"name: basics\nplan: {PLANS / 'network-basics.yaml'}\nstate: {tmp_path / 'state'}\n"
            f"concurrency: {concurrency}\ninstances:\n{instances}")


def run(fleet_file: Path, emu: Emulator, command: str, tmp_path: Path,
        shard: tuple[int, int] | None = None, run_id: str = "") -> FleetResult:
    fleet = load_fleet(fleet_file)
    with open_session(emu, tmp_path) as session, session.clock.busy():
        runner = Runner(fleet, emulator=session.emulator, clock=session.clock,
                        storage=session.storage, state_dir=tmp_path / ".provision",
                        run_id=run_id)
        return runner.run(command, shard)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(start=1_800_000_000) as server:
        yield server


def test_waves_apply_in_order_and_destroy_in_reverse(
        emu: Emulator, write: Callable[[str, str], Path], tmp_path: Path) -> None:
    instances = "".join(f"  - {{name: t{i}, vars: {{project: t{i}-project}}, wave: {1 + i // 2}}}\n"
                        for i in range(4))
    fleet = write("fleet.yaml", basics_fleet(tmp_path, instances))
    applied = run(fleet, emu, "apply", tmp_path)
    assert applied.ok and [r.status for r in applied.instances] == ["applied"] * 4
    assert all(r.steps_done == r.steps == 3 for r in applied.instances)
    ops = emu.dump()["operations"]

    def span(project: str) -> tuple[float, float]:
        mine = [o for o in ops if o["target"].startswith(f"projects/{project}/")]
        return min(o["start"] for o in mine), max(o["end"] for o in mine)

    assert max(span(p)[1] for p in ("t0-project", "t1-project")) <= min(
        span(p)[0] for p in ("t2-project", "t3-project"))
    # each instance's own ledger; a re-plan shows nothing to do
    assert all((tmp_path / "state" / "ledgers" / f"t{i}.json").exists() for i in range(4))
    planned = run(fleet, emu, "plan", tmp_path)
    assert {r.message for r in planned.instances} == {
        "0 to add, 0 to change, 0 to replace, 0 to destroy"}
    before = len(emu.dump()["operations"])
    destroyed = run(fleet, emu, "destroy", tmp_path)
    assert destroyed.ok and [r.name for r in destroyed.instances] == ["t2", "t3", "t0", "t1"]
    deletes = emu.dump()["operations"][before:]
    last_wave_2 = max(o["end"] for o in deletes if o["target"].startswith(("projects/t2-",
                                                                             "projects/t3-")))
    assert last_wave_2 <= min(o["start"] for o in deletes
                              if o["target"].startswith(("projects/t0-", "projects/t1-")))


def test_a_failed_wave_stops_the_waves_after_it(
        emu: Emulator, write: Callable[[str, str], Path], tmp_path: Path) -> None:
    # Two instances claim one project: the second finds the first's network, which it does
    # not own, and fails; the wave after is not started.
    instances = ("  - {name: a, vars: {project: same-project}}\n"
                 "  - {name: b, vars: {project: same-project}}\n"
                 "  - {name: c, vars: {project: c-project}, wave: 2}\n")
    fleet = write("fleet.yaml", basics_fleet(tmp_path, instances, concurrency=1))
    result = run(fleet, emu, "apply", tmp_path)
    assert [r.status for r in result.instances] == ["applied", "failed", "not started"]
    assert "demo-vpc" in result.instances[1].message
    assert not any(o["target"].startswith("projects/c-project/")
                   for o in emu.dump()["operations"])
    status = CliRunner().invoke(app, ["fleet", "status", str(fleet)])
    assert status.exit_code == 0
    lines = status.output.splitlines()
    assert "applied" in lines[0] and "failed" in lines[1]
    assert "not started" in lines[2] and "an earlier wave failed" in lines[2]


@pytest.mark.parametrize("remote", [False, True], ids=["directory", "bucket"])
def test_instances_in_one_organization_never_run_two_operations_at_once(
        remote: bool, write: Callable[[str, str], Path], tmp_path: Path) -> None:
    """Three runs creating environments in one Apigee organization: its lock, shared through
    the fleet's space (a directory, or a bucket with the ledger lock's leased objects), queues
    them, so none is refused for the organization being busy."""
    with Emulator(durations=FAST) as emu:
        cloud = Cloud(emu.url)
        cloud.peered_network()
        cloud.org()
        state = str(tmp_path / "state")
        if remote:
            storage.Client(project=PROJECT, credentials=AnonymousCredentials(),
                           client_options={"api_endpoint": f"{emu.url}/storage"}
                           ).create_bucket("fleet-state")
            state = "gs://fleet-state/envs"
        plan = write("env.yaml", ENVIRONMENT_PLAN)
        instances = "".join(f"  - {{name: e{i}, vars: {{org: {PROJECT}, env: env-{i}}}}}\n"
                            for i in range(3))
        fleet = write("fleet.yaml", f"name: envs\nplan: {plan}\nstate: {state}\n"
                      f"instances:\n{instances}")
        result = run(fleet, emu, "apply", tmp_path)
        assert result.ok, [r.message for r in result.instances]
        creates = sorted((o["start"], o["end"]) for o in emu.dump()["operations"]
                         if o["collection"].endswith("environments") and o["verb"] == "create")
        assert len(creates) == 3
        assert all(later[0] >= earlier[1] for earlier, later in zip(creates, creates[1:],
                                                                     strict=False))
        refused = [r for r in emu.requests()
                   if r["method"] == "apigee.organizations.environments.create"
                   and r["status"] >= 400]
        assert refused == []
        if remote:
            names = {b.name for b in storage.Client(
                project=PROJECT, credentials=AnonymousCredentials(),
                client_options={"api_endpoint": f"{emu.url}/storage"}).list_blobs("fleet-state")}
            assert {f"envs/status/e{i}.json" for i in range(3)} | {
                f"envs/ledgers/e{i}.json" for i in range(3)} <= names
            assert not any(n.endswith(".lock") for n in names)  # every lock released


def test_shards_split_the_instances_and_wait_for_the_earlier_waves_of_others(
        emu: Emulator, write: Callable[[str, str], Path], tmp_path: Path) -> None:
    instances = "".join(f"  - {{name: s{i}, vars: {{project: s{i}-project}}, wave: {1 + i // 2}}}\n"
                        for i in range(4))
    fleet_file = write("fleet.yaml", basics_fleet(tmp_path, instances))
    fleet = load_fleet(fleet_file)
    assert [i.name for i in fleet.shard(0, 2)] == ["s0", "s2"]
    assert [i.name for i in fleet.shard(1, 2)] == ["s1", "s3"]
    assert parse_shard("1/2") == (1, 2)
    for bad in ("2/2", "a/b", "1"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)
    # Shard 0 alone, with a run id: its wave-2 instance waits for s1 (shard 1's), which has
    # not run in this run, until the barrier gives up; so it reports it not started.
    import orchestrator.fleet.runner as runner_module

    runner_module.BARRIER_WAIT, saved = 60.0, runner_module.BARRIER_WAIT
    try:
        alone = run(fleet_file, emu, "apply", tmp_path, shard=(0, 2), run_id="r1")
    finally:
        runner_module.BARRIER_WAIT = saved
    assert [(r.name, r.status) for r in alone.instances] == [("s0", "applied"),
                                                             ("s2", "not started")]
    # Shard 1 then shard 0 again in run r2: shard 1 runs s1 (wave 1) and waits for s0.
    import threading

    results: dict[int, FleetResult] = {}

    def shard(i: int) -> None:
        results[i] = run(fleet_file, emu, "apply", tmp_path / f"runner-{i}", shard=(i, 2),
                         run_id="r2")

    threads = [threading.Thread(target=shard, args=(i,)) for i in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i].ok for i in (0, 1)), results


def test_a_bad_fleet_or_instance_is_refused_with_its_line_before_any_call(
        write: Callable[[str, str], Path], tmp_path: Path) -> None:
    bad = write("bad.yaml", f"""name: Bad Name
plan: {PLANS / 'network-basics.yaml'}
concurency: 3
instances:
  - {{name: t1, vars: {{project: p1}}}}
  - {{name: t1, wave: -1}}
""")
    with pytest.raises(PlanError) as refused:
        load_fleet(bad)
    text = str(refused.value)
    assert f"{bad}:1:7: name:" in text
    assert f"{bad}:3:1: concurency: unknown field (did you mean concurrency?)" in text
    assert f"{bad}:6:" in text and "instances[1].name: 't1' is also instance 0's name" in text
    assert "instances[1].wave: a whole number" in text
    result = CliRunner().invoke(app, ["fleet", "apply", str(bad), "--emulator",
                                      "http://127.0.0.1:1", "--yes"])
    assert result.exit_code == 2 and "nothing was sent to Google" in result.output
    # An instance whose vars make the plan invalid: named, exit 2, nothing sent.
    fleet = write("fleet.yaml", basics_fleet(
        tmp_path, "  - {name: ok, vars: {project: p1}}\n"
                  "  - {name: broken, vars: {project: Not_A_Project}}\n"))
    result = CliRunner().invoke(app, ["fleet", "apply", str(fleet), "--emulator",
                                      "http://127.0.0.1:1", "--yes"])
    assert result.exit_code == 2, result.output
    assert "(instance broken)" in result.output and "(instance ok)" not in result.output
