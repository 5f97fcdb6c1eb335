"""`provision verify` on architecture A: every reference plan verifies with no broken hop, and
in each variant Google accepts but where traffic cannot flow, exactly one hop is broken and
verify names it and the step to change."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import orchestrator
from provision_emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
PLANS = ROOT / "plans"
CONNECTIVITY_TESTS = "networkmanagement.projects.locations.global.connectivityTests."
DEBUG_SESSIONS = "apigee.organizations.environments.apis.revisions.debugsessions."
HOPS = ["deployment", "dns", "endpoint-attachment", "service-attachment", "forwarding-rule",
        "reachability", "tls", "url-map", "backend-service", "serverless-neg", "ingress", "invoker",
        "audience", "path", "probe"]


def applied_report(plan: Path, tmp_path: Path, **options: Any) -> Any:
    with Emulator() as emu:
        dep = orchestrator.load(plan, emulator=emu, state_dir=tmp_path / ".provision",
                                **options)
        with dep:
            result = dep.apply()
            assert result.ok, [(f.step, f.message) for f in result.failures]
            before = len(emu.requests())
            report = dep.verify(probe=True)
            # Verify changes nothing but the connectivity tests it asks for and the probe's
            # debug sessions, and deletes them (a session ends by itself).
            changes = {r["method"].rsplit(".", 1)[-1] for r in emu.requests()[before:]
                       if r["mutating"] and not r["method"].startswith(
                           (CONNECTIVITY_TESTS, DEBUG_SESSIONS))}
            assert changes == set()
    return report


def walked(report: Any) -> set[tuple[str, str | None]]:
    """The broken hops the walk found, by name and step."""
    return {(h.name, h.step) for _, h in report.broken() if h.name != "probe"}


def probed(report: Any) -> set[tuple[str, str | None]]:
    """The broken probes, by Apigee's fault code and the step they name."""
    return {(h.evidence.split("Apigee's fault ")[1].split(",")[0], h.step)
            for _, h in report.broken() if h.name == "probe"}


def variant(tmp_path: Path, plan: str, edits: list[tuple[str, str]]) -> Path:
    """The reference plan with `edits` (old, new) made to its text, beside its secrets."""
    text = (PLANS / plan).read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new)
    for secrets in ("demo-tls", "demo-vpn"):
        shutil.copytree(PLANS / secrets, tmp_path / secrets)
    out = tmp_path / plan
    out.write_text(text)
    return out


@pytest.mark.parametrize("plan", ["psc-cloud-run.yaml", "psc-cloud-run-multi-project.yaml"])
def test_a_reference_plan_verifies_with_no_broken_hop(plan: str, tmp_path: Path) -> None:
    """Both verify TLS to their load balancers against their own CAs' roots in a truststore:
    every hop ok. psc-cloud-run.yaml's mask finds the service in the path, which it receives
    with the prefix; the multi-project plan's finds it in the hostname, and its targets strip
    the prefix."""
    report = applied_report(PLANS / plan, tmp_path)
    assert report.ok and report.paths
    targets = 3 if plan == "psc-cloud-run.yaml" else 4
    assert len(report.paths) == targets
    for path in report.paths:
        assert [h.name for h in path.hops] == HOPS
        assert {h.name: h.status for h in path.hops if h.status != "ok"} == {}
        received = next(h for h in path.hops if h.name == "path").evidence
        service = path.name.split(" → ")[1]
        if plan == "psc-cloud-run.yaml":
            assert f"receives /{service}/…" in received
        else:
            assert f"strips /{service}: the service receives /…" in received
    document = report.to_json()
    assert document["format_version"] == 1
    assert document["status"] == "ok"
    assert document["counts"] == {"ok": 15 * targets, "warning": 0, "broken": 0, "unknown": 0}
    for path in report.paths:
        assert " → 200; debug session " in path.hops[-1].evidence


# name -> (edits to psc-cloud-run.yaml, the broken hop, the step named, the targets broken)
ALL = ("orders", "catalog", "payments")
VARIANTS: dict[str, tuple[list[tuple[str, str]], str, str | None, tuple[str, ...]]] = {
    "record points at the load balancer, not the endpoint attachment": (
        [('rrdatas: ["${endpoint-attachment.host}"]', 'rrdatas: ["${forwarding-rule.IPAddress}"]')],
        "dns", "apigee-record", ALL),
    "DNS peering for another domain": (
        [('dnsSuffix: "${vars.domain}."', 'dnsSuffix: "other.example.com."')],
        "dns", "apigee-dns-peering", ALL),
    "private zone visible to the backend network only": (
        [('networks: [{networkUrl: "${apigee-vpc.selfLink}"}]',
          'networks: [{networkUrl: "${backend-vpc.selfLink}"}]')],
        "dns", "apigee-zone", ALL),
    "record under another name": (
        [('    name: "${vars.domain}."\n    managed_zone: ${apigee-zone.name}',
          '    name: "www.${vars.domain}."\n    managed_zone: ${apigee-zone.name}')],
        "dns", "apigee-zone", ALL),
    "load balancer on another port": (
        [('portRange: "443"', 'portRange: "8443"')], "forwarding-rule", "forwarding-rule", ALL),
    "TLS enforced with no truststore against the plan's private CA": (
        [('sslInfo: &verified {enforce: true, trustStore: "ref://backends-trust"}',
          "sslInfo: &verified {enforce: true}")],
        "tls", "proxy", ALL),
    "URL mask that names no service": (
        [('urlMask: "${vars.domain}/<service>"', 'urlMask: "<service>.internal.example.com"')],
        "serverless-neg", "neg", ALL),
    "invoker role on the wrong identity": (
        [('name: orders\n    project: ${vars.backend_project}\n    properties: {role: '
          'roles/run.invoker, member: "serviceAccount:${invoker.email}"}',
          'name: orders\n    project: ${vars.backend_project}\n    properties: {role: '
          'roles/run.invoker, member: "user:someone@example.com"}')],
        "invoker", "orders-invoker", ("orders",)),
    "token audience the service does not accept": (
        [("audience: https://${vars.domain}/catalog", "audience: https://catalog.example.com")],
        "audience", "proxy", ("catalog",)),
    "target that strips its prefix behind a mask that finds the service in the path": (
        [("pathPrefix: /catalog\n", "pathPrefix: /catalog\n          stripPrefix: true\n")],
        "serverless-neg", "neg", ("catalog",)),
    "target URL that repeats the path prefix": (
        [("url: https://${vars.domain}\n          audience: https://${vars.domain}/payments",
          "url: https://${vars.domain}/payments\n          audience: "
          "https://${vars.domain}/payments")],
        "path", "proxy", ("payments",)),
}


def test_an_apigee_dns_zone_for_another_domain_is_named(tmp_path: Path) -> None:
    """Without VPC peering, Apigee resolves through its DNS zones: one for another domain
    leaves the backends' name to the internet."""
    plan = variant(tmp_path, "psc-cloud-run-non-peered.yaml", [(
        "      domain: ${vars.domain}\n", "      domain: other.example.com\n")])
    report = applied_report(plan, tmp_path)
    assert walked(report) == {("dns", "apigee-dns-zone")}
    assert "no Apigee DNS zone covers it" in report.broken()[0][1].evidence
    # The probe's request meets the same: the runtime cannot resolve the backends' name.
    assert probed(report) == {("protocol.http.NoResolvedHost", "apigee-dns-zone")}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_a_variant_with_one_broken_hop_is_named(name: str, tmp_path: Path) -> None:
    edits, hop, step, targets = VARIANTS[name]
    report = applied_report(variant(tmp_path, "psc-cloud-run.yaml", edits), tmp_path)
    broken = [(p, h) for p, h in report.broken() if h.name != "probe"]
    assert not report.ok
    assert walked(report) == {(hop, step)}, [
        (p.name, h.name, h.step, h.evidence) for p, h in broken]
    assert sorted(p.name.split(" → ")[1] for p, _ in broken) == sorted(targets)
    assert all(h.fix for _, h in report.broken())
    # The probe's request, worked out by the emulator's runtime (a model of its own), does not
    # get through either, and names the same step; a 404 is a warning (the service's or the
    # load balancer's, which a client cannot tell apart). Only a doubled path reaches a
    # service that answers every path.
    for path in report.paths:
        probe = path.hops[-1]
        assert probe.name == "probe"
        if path.name.split(" → ")[1] not in targets or hop == "path":
            assert probe.status == "ok", (path.name, probe)
        elif probe.status == "broken":
            assert probe.step == step, (path.name, probe)
        else:
            assert probe.status == "warning" and "404" in probe.evidence, (path.name, probe)


def test_a_connection_left_pending_is_named_when_apply_does_not_wait_for_it(
    tmp_path: Path,
) -> None:
    """An accept list without Apigee's tenant project: with readiness off (as the Terraform
    provider applies), the apply succeeds; verify finds the connection PENDING and names the
    service attachment."""
    plan = variant(tmp_path, "psc-cloud-run.yaml", [(
        'consumerAcceptLists: [{projectIdOrNum: "${org.apigeeProjectId}", connectionLimit: 10}]',
        'consumerAcceptLists: [{projectIdOrNum: "${vars.apigee_project}", connectionLimit: 10}]',
    )])
    report = applied_report(plan, tmp_path, readiness=False)
    assert walked(report) == {("endpoint-attachment", "service-attachment")}
    # Not waited for, the proxy is still deploying: nothing to probe yet, and said so.
    assert {p.hops[-1].status for p in report.paths} == {"unknown"}
    assert "PROGRESSING: nothing to probe until it is READY" in report.paths[0].hops[-1].evidence
    hop = report.broken()[0][1]
    assert "PENDING" in hop.evidence and "tenant project" in hop.fix


def test_the_cli_prints_the_report_and_exits_1_on_a_broken_hop(tmp_path: Path) -> None:
    plan = variant(tmp_path, "psc-cloud-run.yaml", [(
        "audience: https://${vars.domain}/catalog", "audience: https://catalog.example.com")])
    env = {**os.environ, "COLUMNS": "200"}

    def provision(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "orchestrator", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=300)

    with Emulator() as emu:
        applied = provision("apply", plan.name, f"--emulator={emu.url}", "--yes", "--verify")
        assert applied.returncode == 1, applied.stderr
        assert "broken  shop → catalog" in applied.stdout
        assert "fix: set the target's audience to one of" in applied.stdout
        shown = provision("verify", plan.name, f"--emulator={emu.url}", "--json", "--probe")
        drawn = provision("graph", plan.name, f"--emulator={emu.url}", "--verify")
    assert drawn.returncode == 0, drawn.stderr
    classes = {line.split('["')[0].strip(): line.rsplit(":::", 1)[1]
               for line in drawn.stdout.splitlines() if ":::" in line}
    # The audience is the proxy's: its step is the broken one; the service's hops are fine.
    assert (classes["s_proxy"], classes["s_catalog"], classes["s_api_dns"]) == (
        "broken", "ok", "off_path")
    assert shown.returncode == 1, shown.stderr
    document = json.loads(shown.stdout)
    assert document["format_version"] == 1 and document["status"] == "broken"
    catalog = next(p for p in document["paths"] if p["name"] == "shop → catalog")
    # The probe's request is answered 401 by the service, and names the audience's step.
    assert [h["hop"] for h in catalog["hops"] if h["status"] == "broken"] == [
        "audience", "probe"]
    probe = catalog["hops"][-1]
    assert probe["step"] == "proxy" and " → 401" in probe["evidence"]
    orders = next(p for p in document["paths"] if p["name"] == "shop → orders")
    assert orders["hops"][-1]["status"] == "ok"


def test_verify_refuses_without_a_ledger_and_with_apply_json(tmp_path: Path) -> None:
    shutil.copytree(PLANS / "demo-tls", tmp_path / "demo-tls")
    shutil.copy(PLANS / "psc-cloud-run.yaml", tmp_path)
    with Emulator() as emu:
        for args in (["verify", "psc-cloud-run.yaml"],
                     ["apply", "psc-cloud-run.yaml", "--verify", "--json"]):
            done = subprocess.run(
                [sys.executable, "-m", "orchestrator", *args, f"--emulator={emu.url}"],
                cwd=tmp_path, capture_output=True, text=True, timeout=120)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr
        assert not [r for r in emu.requests() if r["mutating"]]


def test_what_the_caller_may_not_read_is_unknown_with_google_s_words_never_broken(
    tmp_path: Path,
) -> None:
    """A caller who may do everything but list record sets in the Apigee project: the dns hop
    says so (Google's 403), the hops it leads to are not reached, and nothing is called
    broken for want of a read."""
    from google_facts import permissions

    with Emulator() as emu:
        dep = orchestrator.load(PLANS / "psc-cloud-run.yaml", emulator=emu,
                                state_dir=tmp_path / ".provision")
        with dep:
            assert dep.apply().ok
            every = sorted({p for r in permissions.roles().values() for p in r}
                           | {"networkmanagement.connectivitytests.create",
                              "networkmanagement.connectivitytests.get",
                              "networkmanagement.connectivitytests.delete",
                              "networkmanagement.connectivitytests.rerun",
                              "networkmanagement.operations.get", "compute.subnetworks.list",
                              "dns.managedZones.list", "apigee.endpointattachments.list",
                              "apigee.instances.list", "compute.routers.get"})
            blind = [p for p in every if p != "dns.resourceRecordSets.list"]
            emu.set_access({"caller": "user:auditor@example.com",
                            "roles": {"projects/x/roles/all": every,
                                      "projects/x/roles/blind": blind},
                            "grants": {"projects/apigee-demo-project": ["projects/x/roles/blind"],
                                       "projects/backend-demo-project": ["projects/x/roles/all"]}})
            report = dep.verify()
    assert report.ok and not report.broken()
    for path in report.paths:
        dns = next(h for h in path.hops if h.name == "dns")
        assert dns.status == "unknown" and "403" in dns.evidence, dns.evidence
        assert "dns.resourceRecordSets.list" in dns.evidence
        after = [h for h in path.hops if h.name == "endpoint-attachment"]
        assert after[0].status == "unknown" and "not reached" in after[0].evidence


def test_a_plan_without_request_paths_says_so_and_exits_0(tmp_path: Path) -> None:
    shutil.copy(PLANS / "network-basics.yaml", tmp_path)
    with Emulator() as emu:
        def provision(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "orchestrator", *args,
                                   f"--emulator={emu.url}"], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=300)

        assert provision("apply", "network-basics.yaml", "--yes").returncode == 0
        done = provision("verify", "network-basics.yaml")
    assert done.returncode == 0, done.stderr
    assert "No request paths to verify" in done.stdout


@pytest.mark.parametrize(("ssl", "trust", "status"), [
    ("{enforce: false}", "ca", "warning"), ("{enforce: true}", "ca", "broken"),
    ('{enforce: true, trustStore: "ref://backends-trust"}', "other-root", "broken")])
def test_tls_to_a_private_ca_is_judged_by_what_the_target_trusts(
    tmp_path: Path, ssl: str, trust: str, status: str,
) -> None:
    """The load balancer serves a Certificate Manager certificate from the plan's CA Service
    pool (the reference plan, every hop ok). Not enforced: a warning. Enforced with no
    truststore: Apigee refuses a private CA. A truststore holding another CA's root: the chain
    does not rest on it, and the truststore certificate is the step named."""
    edits = [('sslInfo: &verified {enforce: true, trustStore: "ref://backends-trust"}',
              f"sslInfo: &verified {ssl}")]
    if trust == "other-root":
        edits += [('properties: {certificate: "${ca.pemCaCertificates.0}"}',
                   'properties: {certificate: "${other-root.pemCaCertificates.0}"}'),
                  ("  - id: issuance\n", OTHER_ROOT + "  - id: issuance\n")]
    report = applied_report(variant(tmp_path, "psc-cloud-run.yaml", edits), tmp_path)
    for path in report.paths:
        hop = next(h for h in path.hops if h.name == "tls")
        assert hop.status == status, hop.evidence
        assert "internal-cert names api.internal.example.com" in hop.evidence
        assert "O=Example,CN=Backends Root CA (a private CA Service pool)" in hop.evidence
        assert [h.name for h in path.hops if h.status == "broken"] == (
            ["tls", "probe"] if status == "broken" else [])
        if status == "broken":  # the probe's handshake fails too, and names the same step
            assert "SslHandshakeFailed" in path.hops[-1].evidence
            assert path.hops[-1].step == hop.step
        if trust == "other-root":
            assert hop.step == "truststore-root" and "does not chain to" in hop.evidence


OTHER_ROOT = """  - id: other-pool
    kind: privateca.ca_pool
    name: other
    project: ${vars.backend_project}
    properties: {tier: DEVOPS}
    depends_on: [backend-api-privateca]
  - id: other-root
    kind: privateca.certificate_authority
    name: other-root
    project: ${vars.backend_project}
    pool: ${other-pool.name}
    properties:
      type: SELF_SIGNED
      keySpec: {algorithm: EC_P256_SHA256}
      config:
        subjectConfig: {subject: {commonName: Other Root}}
        x509Config: {caOptions: {isCa: true}}
"""


def test_an_endpoint_attachment_accepted_with_limited_capacity_is_ready_with_a_warning(
        tmp_path: Path) -> None:
    """ACCEPTED_LIMITED_CAPACITY (the producer must add capacity) is usable: apply goes on and
    says what limits it; verify reports the hop as a warning, not broken."""
    events: list[Any] = []
    with Emulator() as emu:
        emu.set_faults(limited_capacity=["projects/*/regions/*/serviceAttachments/cloud-run-psc"])
        with orchestrator.load(PLANS / "psc-cloud-run.yaml", emulator=emu,
                               state_dir=tmp_path / ".provision", on_event=events.append) as dep:
            result = dep.apply()
            assert result.ok, [(f.step, f.message) for f in result.failures]
            warnings = [e for e in events
                        if e.type == "diagnostic" and e.data.get("level") == "warning"]
            assert [e.step for e in warnings] == ["endpoint-attachment"]
            assert "ACCEPTED_LIMITED_CAPACITY" in warnings[0].message
            assert "increase capacity" in warnings[0].message
            report = dep.verify(connectivity_tests=False)
    assert report.ok
    for path in report.paths:
        hop = next(h for h in path.hops if h.name == "endpoint-attachment")
        assert hop.status == "warning" and "ACCEPTED_LIMITED_CAPACITY" in hop.evidence


def test_no_architecture_a_plan_holds_a_private_key() -> None:
    """Each A plan's load balancer certificate is issued by its own CA: none brings a key."""
    plans = sorted(PLANS.glob("psc-cloud-run*.yaml"))
    assert len(plans) == 3
    for plan in plans:
        text = plan.read_text()
        assert "privateKey" not in text and "secrets:" not in text, plan.name
        assert "kind: certificatemanager.certificate\n" in text, plan.name
