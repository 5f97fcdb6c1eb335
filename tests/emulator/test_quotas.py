"""Per-minute rate quotas, as Google enforces them (provision_emulator/quotas.py): off by
default; configured, a project's requests past the minute's limit are refused with Google's
answer until the next clock-aligned minute, and the engine waits them out without a failure."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from googleapiclient import discovery
from googleapiclient.errors import HttpError

import orchestrator
from provision_emulator import Emulator, quotas

PLANS = Path(__file__).parents[2] / "plans"


def networks(emu: Emulator) -> compute_v1.NetworksClient:
    return compute_v1.NetworksClient(credentials=AnonymousCredentials(),
                                     client_options={"api_endpoint": f"{emu.url}/compute"})


def test_a_spent_minute_refuses_as_google_does_until_the_next_minute() -> None:
    with Emulator(quotas={"compute.read": 3}) as emu:
        client = networks(emu)
        emu.skip(60 - emu.clock.now() % 60)  # the start of a minute
        for _ in range(3):
            list(client.list(project="proj-one"))
        with pytest.raises(exceptions.Forbidden) as refused:
            list(client.list(project="proj-one"))
        assert ("Quota exceeded for quota metric 'Read requests' and limit 'Read requests per "
                "minute' of service 'compute.googleapis.com' for consumer 'project_number:"
                in refused.value.message)
        assert refused.value.errors[0]["reason"] == "rateLimitExceeded"
        # another project has its own; writes are another group
        list(client.list(project="proj-two"))
        emu.skip(59)
        with pytest.raises(exceptions.Forbidden):
            list(client.list(project="proj-one"))
        emu.skip(1)  # the next minute refills it
        list(client.list(project="proj-one"))


def test_service_usage_counts_a_batch_enable_as_five_writes_and_answers_429() -> None:
    with Emulator(quotas={"serviceusage.write": 6}) as emu:
        usage = discovery.build("serviceusage", "v1", credentials=AnonymousCredentials(),
                                static_discovery=True,
                                client_options={"api_endpoint": f"{emu.url}/serviceusage/"})
        emu.skip(60 - emu.clock.now() % 60)
        usage.services().batchEnable(parent="projects/proj-one", body={
            "serviceIds": ["compute.googleapis.com"]}).execute()
        usage.services().enable(name="projects/proj-one/services/dns.googleapis.com").execute()
        with pytest.raises(HttpError) as refused:
            usage.services().enable(name="projects/proj-one/services/run.googleapis.com").execute()
        assert refused.value.status_code == 429
        assert "'Mutate requests per minute' of service 'serviceusage.googleapis.com'" in str(
            refused.value)


def test_quotas_are_off_unless_asked_for_and_unknown_groups_are_refused() -> None:
    with Emulator() as emu:
        client = networks(emu)
        for _ in range(50):
            list(client.list(project="proj-one"))
    with pytest.raises(ValueError, match="unknown quota groups: compute.reeds"):
        quotas.Quotas({"compute.reeds": 1})


LOW = {"compute.write": 4, "compute.read": 30, "apigee.request": 30}


@pytest.mark.parametrize(("limits", "told"), [(True, False), (LOW, False), (LOW, True)])
def test_a_reference_plan_applies_and_destroys_within_quotas_without_a_failure(
        limits: object, told: bool, tmp_path: Path) -> None:
    """At Google's defaults nothing is refused; at a few requests a minute, the engine meets
    Google's refusals (compute's 403 and Apigee's 429, both with the RATE_LIMIT_EXCEEDED
    ErrorInfo that google-api-core reports as the reason) and waits: no step fails. Told the
    limits (--quota), it paces its requests to them and meets none. The clock starts on a fixed
    minute, so the same requests meet the limits."""
    with Emulator(quotas=limits, start=1_800_000_000) as emu:  # type: ignore[arg-type]
        dep = orchestrator.load(PLANS / "psc-cloud-run.yaml", emulator=emu,
                                state_dir=tmp_path / ".provision",
                                quotas=LOW if told else None)
        applied = dep.apply()
        assert applied.ok, [(f.step, f.message) for f in applied.failures]
        destroyed = dep.destroy()
        assert destroyed.ok, [(f.step, f.message) for f in destroyed.failures]
        refused = [r for r in emu.requests() if r["status"] in (403, 429)]
        if limits is True or told:
            assert refused == []
        else:
            assert {r["api"] for r in refused} == {"compute", "apigee"}
        dep.close()
