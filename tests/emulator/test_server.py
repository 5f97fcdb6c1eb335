"""The server itself: concurrency, persistence, faults, the admin API and the request log."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1, run_v2
from google.iam.v1 import iam_policy_pb2, policy_pb2
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from provision_emulator import Emulator

from .conftest import PROJECT, REGION, Compute

DONE = compute_v1.Operation.Status.DONE
NO_RETRY = None


@contextmanager
def still(emu: Emulator) -> Iterator[float]:
    """Hold the virtual clock still, as a participant at work does; yields the time."""
    worker = emu.clock.session()
    emu.clock.hold(worker)
    try:
        yield emu.clock.now()
    finally:
        emu.clock.release(worker)


def admin(url: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/_emulator/{path}", data=data)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def insert_network(compute: Compute, name: str = "net", **request) -> compute_v1.Operation:
    return compute.networks.insert(
        request={"project": PROJECT, "network_resource": {"name": name}, **request}
    )


def test_unknown_api_or_route_is_404(emulator: Emulator) -> None:
    client = discovery.build(
        "pubsub", "v1", credentials=AnonymousCredentials(), static_discovery=True,
        client_options={"api_endpoint": f"{emulator.url}/pubsub/"},
    )  # fmt: skip
    with pytest.raises(HttpError) as caught:
        client.projects().topics().list(project=f"projects/{PROJECT}").execute()
    assert caught.value.status_code == 404


# --- time and concurrency --------------------------------------------------------------------


def test_long_poll_does_not_block_other_requests() -> None:
    with Emulator(durations={"compute.networks": 60}) as emu:
        compute = Compute(emu.url)
        op = insert_network(compute)
        with still(emu) as start:
            finished: dict[str, object] = {}

            def wait() -> None:
                done = compute.global_operations.wait(project=PROJECT, operation=op.name)
                finished.update(status=done.status, at=emu.clock.now())

            waiter = threading.Thread(target=wait)
            waiter.start()
            # Answered while the wait is held: the network is not there yet.
            assert list(compute.networks.list(project=PROJECT)) == []
            assert waiter.is_alive()
        waiter.join()
        assert finished == {"status": DONE, "at": start + 60}


def test_wait_returns_after_a_bounded_long_poll() -> None:
    # A 24-hour operation; a wait holds 120 simulated seconds at most.
    with Emulator(durations={"compute.networks": 86_400}) as emu:
        compute = Compute(emu.url)
        op = insert_network(compute)
        start = emu.clock.now()
        polled = compute.global_operations.wait(project=PROJECT, operation=op.name)
        assert emu.clock.now() == start + 120
        assert polled.status == compute_v1.Operation.Status.RUNNING
        assert 0 <= polled.progress < 100


# --- persistence -----------------------------------------------------------------------------


def test_state_survives_a_restart_with_operations_in_flight(tmp_path: Path) -> None:
    state = tmp_path / "cloud.json"
    options = {"time_scale": 0.001, "state_file": state, "durations": {"compute.subnetworks": 100}}
    request_id = str(uuid.uuid4())
    with Emulator(**options) as emu:
        compute = Compute(emu.url)
        compute.wait(insert_network(compute, request_id=request_id))
        running = compute.subnetworks.insert(
            project=PROJECT, region=REGION,
            subnetwork_resource={"name": "s", "ip_cidr_range": "10.0.0.0/24",
                                 "network": "global/networks/net"},
        )  # fmt: skip
        assert running.status != DONE
    saved = json.loads(state.read_text())
    assert f"projects/{PROJECT}/global/networks/net" in saved["resources"]["compute"]

    with Emulator(**options) as emu:
        compute = Compute(emu.url)
        assert compute.networks.get(project=PROJECT, network="net").name == "net"
        assert compute.wait(running).status == DONE
        assert compute.subnetworks.get(project=PROJECT, region=REGION, subnetwork="s").name == "s"
        replayed = insert_network(compute, request_id=request_id)
        assert replayed.name  # the first run's operation, not a 409
        assert emu.request_counts() == {
            "compute.networks.get": 1,
            "compute.regionOperations.wait": 1,
            "compute.subnetworks.get": 1,
            "compute.networks.insert": 1,
        }


def test_serve_in_the_foreground_keeps_its_cloud(tmp_path: Path) -> None:
    state = tmp_path / "cloud.json"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = (
        "from provision_emulator import serve; "
        f"serve({port}, state_file={str(state)!r}, time_scale=0.001)"
    )
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert "serving on" in server.stdout.readline()
        compute = Compute(f"http://127.0.0.1:{port}")
        compute.wait(insert_network(compute))
    finally:
        server.terminate()
        server.wait(timeout=10)
    saved = json.loads(state.read_text())
    assert f"projects/{PROJECT}/global/networks/net" in saved["resources"]["compute"]


# --- faults ----------------------------------------------------------------------------------


def _outcomes(compute: Compute) -> list[int]:
    codes = []
    for _ in range(20):
        try:
            compute.networks.get(project=PROJECT, network="net", retry=NO_RETRY)
            codes.append(200)
        except exceptions.GoogleAPICallError as exc:
            codes.append(exc.code)
    return codes


def test_faults_are_deterministic_for_a_seed(emulator: Emulator, compute: Compute) -> None:
    compute.wait(insert_network(compute))
    emulator.set_faults(unavailable=0.5, methods=["compute.networks.get"])
    first = _outcomes(compute)
    assert set(first) == {200, 503}
    emulator.reset()
    compute.wait(insert_network(compute))
    emulator.set_faults(unavailable=0.5, methods=["compute.networks.get"])
    assert _outcomes(compute) == first


def test_rate_limit_fault_is_429_with_retry_after(emulator: Emulator, compute: Compute) -> None:
    emulator.set_faults(rate_limit=1.0, retry_after=7)
    with pytest.raises(exceptions.TooManyRequests) as caught:
        compute.networks.get(project=PROJECT, network="net", retry=NO_RETRY)
    assert caught.value.response.headers["Retry-After"] == "7"


def test_quota_fault_is_403_rate_limit_exceeded(emulator: Emulator, compute: Compute) -> None:
    emulator.set_faults(quota=1.0)
    with pytest.raises(exceptions.Forbidden) as caught:
        compute.networks.get(project=PROJECT, network="net", retry=NO_RETRY)
    assert caught.value.errors[0]["reason"] == "rateLimitExceeded"


def test_latency_fault_delays_answers(emulator: Emulator, compute: Compute) -> None:
    emulator.set_faults(latency=0.2)
    start = emulator.clock.now()
    with pytest.raises(exceptions.NotFound):
        compute.networks.get(project=PROJECT, network="net")
    assert emulator.clock.now() == pytest.approx(start + 0.2)


def test_failed_operations(emulator: Emulator, compute: Compute, run_services) -> None:
    emulator.set_faults(operation_failure=1.0)
    done = compute.wait(insert_network(compute))
    assert done.error.errors[0].code == "INTERNAL_ERROR"
    assert done.http_error_status_code == 500
    with pytest.raises(exceptions.NotFound):
        compute.networks.get(project=PROJECT, network="net")
    op = run_services.create_service(
        parent=f"projects/{PROJECT}/locations/{REGION}", service_id="s",
        service=run_v2.Service(template={"containers": [{"image": "x"}]}),
    )  # fmt: skip
    with pytest.raises(exceptions.InternalServerError):
        op.result()


def test_eventual_consistency(emulator: Emulator, compute: Compute) -> None:
    emulator.set_faults(consistency_delay=100)
    compute.wait(insert_network(compute))
    with pytest.raises(exceptions.NotFound):
        compute.networks.get(project=PROJECT, network="net")
    emulator.skip(99)
    with pytest.raises(exceptions.NotFound):
        compute.networks.get(project=PROJECT, network="net")
    emulator.skip(1)
    assert compute.networks.get(project=PROJECT, network="net").name == "net"


def test_iam_bindings_apply_late(emulator: Emulator, run_services) -> None:
    name = f"projects/{PROJECT}/locations/{REGION}/services/s"
    run_services.create_service(
        parent=f"projects/{PROJECT}/locations/{REGION}", service_id="s",
        service=run_v2.Service(template={"containers": [{"image": "x"}]}),
    ).result()
    emulator.set_faults(iam_delay=100)
    policy = policy_pb2.Policy(bindings=[{"role": "roles/run.invoker", "members": ["allUsers"]}])
    run_services.set_iam_policy(request={"resource": name, "policy": policy})
    request = iam_policy_pb2.GetIamPolicyRequest(resource=name)
    assert not run_services.get_iam_policy(request=request).bindings
    emulator.skip(99)
    assert not run_services.get_iam_policy(request=request).bindings
    emulator.skip(1)
    assert run_services.get_iam_policy(request=request).bindings


# --- admin API and request log ---------------------------------------------------------------


def test_admin_api(emulator: Emulator, compute: Compute) -> None:
    compute.wait(insert_network(compute))
    compute.networks.get(project=PROJECT, network="net")
    log = admin(emulator.url, "requests")["requests"]
    assert [(e["method"], e["mutating"], e["status"]) for e in log] == [
        ("compute.networks.insert", True, 200),
        ("compute.globalOperations.wait", False, 200),
        ("compute.networks.get", False, 200),
    ]
    assert log[0]["api"] == "compute" and log[0]["httpMethod"] == "POST"
    assert log[0]["path"] == f"/compute/compute/v1/projects/{PROJECT}/global/networks"
    assert admin(emulator.url, "requests/counts")["counts"]["compute.networks.get"] == 1
    state = admin(emulator.url, "state")
    assert f"projects/{PROJECT}/global/networks/net" in state["resources"]["compute"]

    assert admin(emulator.url, "faults", {"unavailable": 1.0})["unavailable"] == 1.0
    assert emulator.faults.unavailable == 1.0
    with pytest.raises(exceptions.ServiceUnavailable):
        compute.networks.get(project=PROJECT, network="net", retry=NO_RETRY)
    assert admin(emulator.url, "faults")["unavailable"] == 1.0

    admin(emulator.url, "reset", {})
    assert emulator.faults.unavailable == 0.0
    assert emulator.requests() == []
    with pytest.raises(exceptions.NotFound):
        compute.networks.get(project=PROJECT, network="net")


def test_skipping_time_finishes_what_ends_meanwhile_and_no_more() -> None:
    # Held still, the clock moves only by skips: a network takes 10 s.
    with Emulator() as emu, still(emu):
        compute = Compute(emu.url)
        op = insert_network(compute)
        emu.skip(5)
        op = compute.global_operations.get(project=PROJECT, operation=op.name)
        assert op.status != DONE
        admin(emu.url, "skip", {"seconds": 60})
        done = compute.global_operations.wait(project=PROJECT, operation=op.name)
        assert done.status == DONE
        assert compute.networks.get(project=PROJECT, network="net").name == "net"
        with pytest.raises(urllib.error.HTTPError) as refused:
            admin(emu.url, "skip", {"seconds": -1})
        assert refused.value.code == 400


def test_admin_methods_are_safe_from_other_threads(emulator: Emulator, compute: Compute) -> None:
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(50):
                emulator.request_counts()
                emulator.dump()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(10):
        compute.wait(insert_network(compute, f"net-{i}"))
    for thread in threads:
        thread.join()
    assert not errors
    assert len(emulator.dump()["resources"]["compute"]) == 10
