"""Resource Manager v3: projects.

Projects are implicit: every well-formed project id exists, ACTIVE, with a stable 12-digit number
derived from the id (formats.project_number), so a plan can name any project without a setup
step. An emulator started with `projects=[...]` knows only those. Like Google, a project that
does not exist (or is not visible) answers 403, not 404.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from provision_emulator import catalog, errors, formats
from provision_emulator.apis.base import ApiRules, project_by_id
from provision_emulator.call import Call
from provision_emulator.catalog import Collection
from provision_emulator.errors import ApiError

if TYPE_CHECKING:
    from provision_emulator.cloud import Cloud

PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
# When the implicit projects were "created": fixed, so a project reads the same every time.
CREATED = 1_600_000_000.0


class ResourceManagerRules(ApiRules):
    generic_collections: frozenset[str] = frozenset()  # projects.get and IAM policies only
    other_versions = {"v1": ("cloudresourcemanager.projects.get",)}

    def canonical(self, cloud: Cloud, path: str) -> str:
        return project_by_id(cloud, path)

    def implicit(self, cloud: Cloud, path: str, coll: Collection) -> bool:
        segments = path.split("/")
        return (
            coll.name == "projects"
            and len(segments) == 2
            and PROJECT_ID.match(segments[1]) is not None
            and cloud.project_exists(segments[1])
        )

    def not_found(self, path: str, coll: Collection | None = None) -> ApiError:
        return errors.permission_denied("The caller does not have permission")


RULES = ResourceManagerRules("cloudresourcemanager")


def _project(cloud: Cloud, path: str) -> tuple[str, str]:
    """(id, number) of the project at `projects/ID` (or NUMBER); Google's 403 if none."""
    path = RULES.canonical(cloud, path)
    if not RULES.implicit(cloud, path, catalog.collections(RULES.api)["projects"]):
        raise RULES.not_found(path)
    project = path.split("/")[1]
    return project, cloud.project_number(project)


@RULES.handler("v1:cloudresourcemanager.projects.get")
def get_project_v1(cloud: Cloud, call: Call) -> dict[str, Any]:
    """Resource Manager v1's Project (the discovery document's `Project` of v1): the number
    as a field of its own, lifecycleState rather than state."""
    project, number = _project(cloud, f"projects/{call.params['projectId']}")
    return {
        "projectNumber": number,
        "projectId": project,
        "lifecycleState": "ACTIVE",
        "name": project,
        "createTime": formats.rfc3339(CREATED),
    }


@RULES.handler("cloudresourcemanager.projects.get")
def get_project(cloud: Cloud, call: Call) -> dict[str, Any]:
    project, number = _project(cloud, call.path)
    return {
        "name": f"projects/{number}",
        "projectId": project,
        "state": "ACTIVE",
        "displayName": project,
        "createTime": formats.rfc3339(CREATED),
        "updateTime": formats.rfc3339(CREATED),
        "etag": f'W/"{formats.fingerprint("project", project)}"',
    }
