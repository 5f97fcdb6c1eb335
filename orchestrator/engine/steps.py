"""One step's resolution: references filled in, its resource path, and its recordable spec.

Secret values are resolved here and only here; what leaves this module for the ledger or
events carries keyed fingerprints in their place.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.kinds.adapter import Target
from orchestrator.kinds.base import Kind


class StepError(Exception):
    """A step that could not be brought to its desired state; the message says why and what
    to do next."""


class InvalidRequest(StepError):
    """A request that names what is not there (a step the plan lacks, a resource that is not
    the step's): the caller's input is wrong, nothing was attempted."""


def kind_named(name: str) -> Kind:
    from orchestrator import kinds

    kind = kinds.get(name)
    if kind is None:
        raise StepError(f"unknown kind {name!r}")
    return kind


def target_of(kind: Kind, path: str, spec: dict[str, Any] | None = None) -> Target:
    """The Target of a recorded resource: destroy and rollback work from the ledger alone."""
    name, scope = scope_from_path(kind, path)
    return Target(name, scope, path, spec or {})


class MissingOutput(KeyError):
    """An output path names what the outputs do not hold; args[0] is the missing part."""


def output_at(outputs: Any, path: Sequence[str | int]) -> Any:
    """The value at a reference's output path (list indices as numbers); MissingOutput when a
    part is not there."""
    value = outputs
    for part in path:
        if isinstance(value, list) and str(part).isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict) and part in value:
            value = value[part]
        else:
            raise MissingOutput(part)
    return value


class Unknown(str):
    """An output of a step that has not run yet. A string, so that it reads as the reference
    itself ("${org.name}") wherever a plan interpolates it into longer text, such as a path."""


@dataclass(frozen=True)
class Resolved:
    target: Target
    body: dict[str, Any]  # what is sent to Google: secrets included
    spec: dict[str, Any]  # what is recorded: secrets replaced by keyed fingerprints
    secret_fields: dict[str, str]  # field -> keyed fingerprint
    unknown: bool  # some reference is known only after apply

    @property
    def fingerprint(self) -> str:
        canonical = json.dumps(
            {"path": self.target.path, "spec": self.spec}, sort_keys=True, default=repr
        )
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def resolve_step(
    step: Any,
    kind: Kind,
    lookup: Callable[[Any], Any],
    fingerprint_secret: Callable[[str], str],
) -> Resolved:
    """Fill in a step's references. `lookup(ref)` returns a step output, a secret's value or an
    Unknown; `fingerprint_secret(value)` returns the keyed fingerprint that stands for it."""
    from orchestrator.plan.refs import resolve

    unknown = False

    def track(ref: Any) -> Any:
        nonlocal unknown
        value = lookup(ref)
        if isinstance(value, Unknown):
            unknown = True
        return value

    name = str(resolve(step.name, track))
    # A scope field names one path segment: a reference to a resource's full name
    # (`pool: ${pool.name}`, "projects/p/locations/l/caPools/internal") means its last one.
    scope = {k: str(resolve(v, track)).rstrip("/").rsplit("/", 1)[-1]
             for k, v in step.scope.items()}
    body = resolve(step.properties, track)
    if kind.name_field:
        body = {kind.name_field: name, **body}
    secret_fields = {
        field: fingerprint_secret(str(body[field])) for field in kind.secret_fields if field in body
    }
    spec = {k: secret_fields.get(k, v) for k, v in body.items()}
    path = kind.resource_path(name, scope, body)
    return Resolved(Target(name, scope, path, spec), body, spec, secret_fields, unknown)


def scope_from_path(kind: Kind, path: str) -> tuple[str, dict[str, str]]:
    """The name and scope fields of a recorded resource path, read back through the kind's
    path template (destroy works from the ledger alone)."""
    seen: set[str] = set()

    def group(m: re.Match[str]) -> str:
        field = m.group(1)
        if field in seen:  # "{name}@{project}.iam.gserviceaccount.com" names its project twice
            return f"(?P={field})"
        seen.add(field)
        # Fields from properties (an IAM role) may hold slashes; name and scope never do.
        return f"(?P<{field}>{'[^/]+' if field == 'name' or field in kind.scope else '.+'})"

    pattern = re.sub(r"\\\{(\w+)\\\}", group, re.escape(kind.path))
    match = re.fullmatch(pattern, path)
    if match is None:
        raise ValueError(f"{path!r} is not a {kind.name} path ({kind.path})")
    fields = {k: v for k, v in match.groupdict().items() if k in kind.scope}
    return match.group("name"), fields
