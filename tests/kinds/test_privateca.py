"""Certificate Authority Service kinds, applied on the emulator: the CA Google makes STAGED is
enabled by the same step (its `settle`), a re-apply changes nothing, and destroy disables it
before deleting it for good, then deletes the pool, leaving nothing behind."""

from __future__ import annotations

from pathlib import Path

from google.auth.credentials import AnonymousCredentials
from googleapiclient.discovery import build

import orchestrator
from google_facts import permissions
from provision_emulator import Emulator

PLAN = """
name: pki
defaults: {project: pki-project, region: europe-west1}
steps:
  - {id: api-privateca, kind: serviceusage.service, name: privateca.googleapis.com}
  - id: pool
    kind: privateca.ca_pool
    name: internal
    properties: {tier: DEVOPS}
    depends_on: [api-privateca]
  - id: root
    kind: privateca.certificate_authority
    name: root
    pool: ${pool.name}
    properties:
      type: SELF_SIGNED
      keySpec: {algorithm: EC_P256_SHA256}
      lifetime: 315360000s
      config:
        subjectConfig: {subject: {commonName: Internal Root, organization: Example}}
        x509Config: {caOptions: {isCa: true}}
    depends_on: [pool]
"""
CA = "projects/pki-project/locations/europe-west1/caPools/internal/certificateAuthorities/root"


def test_a_root_ca_is_enabled_by_its_step_and_destroyed_for_good(tmp_path: Path) -> None:
    plan = tmp_path / "pki.yaml"
    plan.write_text(PLAN)
    with Emulator() as emu, orchestrator.load(plan, emulator=emu,
                                              state_dir=tmp_path / ".provision") as dep:
        applied = dep.apply()
        assert applied.ok, [(f.step, f.message) for f in applied.failures]
        authorities = build(
            "privateca", "v1", credentials=AnonymousCredentials(), static_discovery=True,
            client_options={"api_endpoint": f"{emu.url}/privateca/"},
        ).projects().locations().caPools().certificateAuthorities()
        assert authorities.get(name=CA).execute()["state"] == "ENABLED"
        assert dep.outputs()["root"]["pemCaCertificates"][0].startswith(
            "-----BEGIN CERTIFICATE-----")
        called = [r["method"] for r in emu.requests()]
        assert called.index(
            "privateca.projects.locations.caPools.certificateAuthorities.enable") > called.index(
            "privateca.projects.locations.caPools.certificateAuthorities.create")
        for method in set(called):
            permissions.required(method)

        before = len(emu.requests())
        again = dep.apply()
        assert again.ok and set(again.actions.values()) == {"noop"}
        assert [r["method"] for r in emu.requests()[before:] if r["mutating"]] == []

        destroyed = dep.destroy()
        assert destroyed.ok, [(f.step, f.message) for f in destroyed.failures]
        methods = [r["method"].rsplit(".", 1)[-1] for r in emu.requests()[before:]
                   if r["mutating"] and "certificateAuthorities" in r["method"]]
        assert methods == ["disable", "delete"]
        assert [p for p in emu.dump()["resources"].get("privateca", {})] == []


PKI = PLAN + """
  - id: requester
    kind: privateca.ca_pool_iam_member
    name: internal
    properties:
      role: roles/privateca.certificateRequester
      member: serviceAccount:service-123456789@gcp-sa-certificatemanager.iam.gserviceaccount.com
    depends_on: [pool]
  - id: issuance
    kind: certificatemanager.certificate_issuance_config
    name: internal
    properties:
      certificateAuthorityConfig:
        certificateAuthorityServiceConfig: {caPool: "${pool.name}"}
      lifetime: 2592000s
      rotationWindowPercentage: 66
      keyAlgorithm: ECDSA_P256
    depends_on: [root, requester]
  - id: certificate
    kind: certificatemanager.certificate
    name: api
    properties:
      managed:
        domains: [api.internal.example.com]
        issuanceConfig: ${issuance.name}
"""


def test_certificate_manager_issues_the_load_balancer_s_certificate_from_the_plan_s_ca(
    tmp_path: Path,
) -> None:
    from cryptography import x509

    plan = tmp_path / "pki.yaml"
    plan.write_text(PKI)
    with Emulator() as emu, orchestrator.load(plan, emulator=emu,
                                              state_dir=tmp_path / ".provision") as dep:
        applied = dep.apply()
        assert applied.ok, [(f.step, f.message) for f in applied.failures]
        outputs = dep.outputs()
        leaf, root = x509.load_pem_x509_certificates(
            outputs["certificate"]["pemCertificate"].encode())
        assert root == x509.load_pem_x509_certificate(
            outputs["root"]["pemCaCertificates"][0].encode())
        leaf.verify_directly_issued_by(root)
        assert outputs["certificate"]["sanDnsnames"] == ["api.internal.example.com"]
        again = dep.apply()
        assert again.ok and set(again.actions.values()) == {"noop"}
        destroyed = dep.destroy()
        assert destroyed.ok, [(f.step, f.message) for f in destroyed.failures]
        left = {api: list(paths) for api, paths in emu.dump()["resources"].items()
                if api in ("privateca", "certificatemanager") and paths}
        assert left == {}
