"""The APIs the emulator serves, one module of rules each.

To add an API: write `apis/<api>.py` with `RULES = ApiRules("<api>")` (or a subclass changing
a convention), register hooks and handlers only where Google departs from the generic
semantics, and list the module here. Routes and schemas come from its discovery document.
"""

from __future__ import annotations

from provision_emulator.apis import (
    apigee,
    certificatemanager,
    certificates,
    cloudresourcemanager,
    compute,
    dns,
    health_checks,
    iam,
    instance_groups,
    networkmanagement,
    privateca,
    psc,
    routers,
    run,
    servicenetworking,
    serviceusage,
    storage,
    vpn,
    xpn,
)
from provision_emulator.apis.base import ApiRules

MODULES = (
    compute,
    run,
    iam,
    cloudresourcemanager,
    serviceusage,
    storage,
    dns,
    servicenetworking,
    apigee,
    networkmanagement,
    privateca,
    certificatemanager,
)
# Modules that add rules to compute's (imported for that alone).
COMPUTE_EXTENSIONS = (vpn, routers, xpn, psc, certificates, instance_groups, health_checks)


def all_rules() -> dict[str, ApiRules]:
    return {module.RULES.api: module.RULES for module in MODULES}
