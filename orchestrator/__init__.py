"""provision: builds Google Cloud networking around Apigee X from a plan of ordered steps.

    import orchestrator
    with orchestrator.load("plans/network-basics.yaml", emulator="embedded") as d:
        print(d.plan_changes().summary)
        result = d.apply()
        print(d.outputs()["vpc"]["selfLink"])
        d.destroy()

Names are imported on first use, so that `provision --help` starts without loading the
Google client libraries.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Deployment", "PlanError", "__version__", "load"]


def __getattr__(name: str) -> Any:
    if name in ("Deployment", "load"):
        from orchestrator import api

        return getattr(api, name)
    if name == "__version__":
        from orchestrator.version import VERSION

        return VERSION
    if name == "PlanError":
        from orchestrator.plan import PlanError

        return PlanError
    raise AttributeError(name)
