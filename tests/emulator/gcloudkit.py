"""gcloud, a Google client nobody here wrote, pointed at an emulator: a configuration of its own
(credentials off, every API's endpoint overridden), and a runner that says what failed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GCLOUD = shutil.which("gcloud")

# Each API's root as gcloud's clients take it: the service path below the emulator's mount
# where the client's relative paths do not carry it (compute's and Cloud DNS's).
ENDPOINTS = {
    "compute": "compute/compute/v1/",
    "dns": "dns/dns/v1/",
    "iam": "iam/",
    "servicenetworking": "servicenetworking/",
    "cloudresourcemanager": "cloudresourcemanager/",
    "serviceusage": "serviceusage/",
    "apigee": "apigee/",
}


@dataclass
class Gcloud:
    """`run(...)` runs one gcloud command in `project`; `json(...)` its --format=json output."""

    config: Path
    project: str
    commands: list[str]

    @classmethod
    def configured(cls, emulator_url: str, config: Path, project: str) -> Gcloud:
        gcloud = cls(config, project, [])
        settings = {"auth/disable_credentials": "true", "core/disable_prompts": "true",
                    "core/project": project, "core/disable_usage_reporting": "true",
                    "component_manager/disable_update_check": "true"}
        settings |= {f"api_endpoint_overrides/{api}": f"{emulator_url}/{path}"
                     for api, path in ENDPOINTS.items()}
        for key, value in settings.items():
            gcloud._gcloud("config", "set", key, value)
        return gcloud

    def _gcloud(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDSDK_")}
        env["CLOUDSDK_CONFIG"] = str(self.config)
        return subprocess.run([GCLOUD or "gcloud", *args], env=env, capture_output=True,
                              text=True, timeout=120)

    def run(self, *args: str, fails: bool = False) -> subprocess.CompletedProcess[str]:
        """One command; it must succeed (or, with fails, be refused)."""
        self.commands.append(" ".join(args))
        done = self._gcloud(*args)
        if fails:
            assert done.returncode != 0, f"gcloud {' '.join(args)} was accepted:\n{done.stdout}"
        else:
            assert done.returncode == 0, f"gcloud {' '.join(args)}:\n{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--format=json").stdout)
