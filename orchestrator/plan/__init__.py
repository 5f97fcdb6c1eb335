"""The plan file: its model, loading with source positions, references, secrets, validation."""

from orchestrator.plan.editor_schema import plan_json_schema
from orchestrator.plan.errors import Diagnostic, PlanError, Position
from orchestrator.plan.loader import load_plan, load_plan_text
from orchestrator.plan.model import Plan, Step
from orchestrator.plan.refs import Ref, RefSyntaxError, find_refs, resolve
from orchestrator.plan.secrets import SecretError, SecretRef, resolve_secret

__all__ = [
    "Diagnostic",
    "Plan",
    "PlanError",
    "Position",
    "Ref",
    "RefSyntaxError",
    "SecretError",
    "SecretRef",
    "Step",
    "find_refs",
    "load_plan",
    "load_plan_text",
    "plan_json_schema",
    "resolve",
    "resolve_secret",
]
