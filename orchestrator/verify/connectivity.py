"""Google's own analysis of a hop: a Network Management connectivity test, created, run and
deleted by verify (kept with `keep_tests`), its result read as Google gives it.

https://cloud.google.com/network-intelligence-center/docs/connectivity-tests/concepts/overview:
`create` starts the analysis as a long-running operation; the test then holds
`reachabilityDetails` (REACHABLE, UNREACHABLE, AMBIGUOUS or UNDETERMINED, and the trace's
steps); `rerun` analyses an existing test again. Tests have ids of verify's own, derived from
what they test, so that a test a killed run left behind is rerun, not duplicated.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from orchestrator.gcp import retry
from orchestrator.gcp.errors import DeadlineExceeded, OperationError, from_exception
from orchestrator.gcp.operations import OperationRef, Waiter, invoke
from orchestrator.verify.live import Unreadable

TESTS = "networkmanagement.projects.locations.global.connectivityTests"
# How long a test's analysis may take (Google's take tens of seconds to a few minutes).
ANALYSIS_DEADLINE = 600.0


def test_id(source: dict[str, Any], destination: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps([source, destination], sort_keys=True).encode())
    return f"provision-verify-{digest.hexdigest()[:12]}"


def run(live: Any, project: str, source: dict[str, Any], destination: dict[str, Any],
        *, keep: bool, bypass_firewalls: bool = False) -> dict[str, Any]:
    """The test, analysed; Unreadable when Google would not run it or it did not finish.
    bypass_firewalls: Google's bypassFirewallChecks, for a test whose source stands in for
    another (the firewall is then checked for the real one, by a hop of verify's own)."""
    clients, clock = live.clients, live.clock
    svc = clients.discovery("networkmanagement")
    body = {"source": source, "destination": destination, "protocol": "TCP",
            "bypassFirewallChecks": bypass_firewalls,
            "description": "provision verify: Google's analysis of a hop"}
    ident = test_id(source, {**destination, "bypassFirewallChecks": bypass_firewalls})
    name = f"projects/{project}/locations/global/connectivityTests/{ident}"

    def call(method: str, **params: Any) -> Any:
        return retry.call(lambda: invoke(svc, f"{TESTS}.{method}", **params),
                          deadline=clock.now() + ANALYSIS_DEADLINE, clock=clock)

    try:
        try:
            op = call("create", parent=f"projects/{project}/locations/global",
                      testId=name.rsplit("/", 1)[-1], body=body)
        except Exception as exc:
            err = from_exception(exc)
            if err is None or not err.already_exists:
                raise
            op = call("rerun", name=name, body={})
        Waiter(clients, clock).wait(OperationRef("lro", "networkmanagement", op["name"]),
                                    clock.now() + ANALYSIS_DEADLINE)
        test = call("get", name=name)
        if not keep:
            deleted = call("delete", name=name)
            Waiter(clients, clock).wait(OperationRef("lro", "networkmanagement",
                                                     deleted["name"]),
                                        clock.now() + ANALYSIS_DEADLINE)
    except (DeadlineExceeded, OperationError) as exc:
        raise Unreadable(f"connectivity test {name}: {exc}") from exc
    except Exception as exc:
        err = from_exception(exc)
        if err is None:
            raise
        raise Unreadable(f"connectivity test {name} could not be run: {err}") from exc
    return test


def summary(test: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    """(result, the trace's states joined, the final step)."""
    details = test.get("reachabilityDetails", {})
    steps = next(iter(details.get("traces", [])), {}).get("steps", [])
    final = steps[-1] if steps else {}
    return (details.get("result", "RESULT_UNSPECIFIED"),
            " → ".join(s.get("state", "") for s in steps), final)
