"""Checks of the plan's top-level sections other than steps: defaults, secrets, endpoints."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from google_facts import discovery
from orchestrator.gcp import trust
from orchestrator.plan import refs
from orchestrator.plan.checks import SCOPE_VALUE
from orchestrator.plan.errors import Diagnostic, did_you_mean
from orchestrator.plan.secrets import SOURCES, SecretRef, Source
from orchestrator.plan.source import Path as FieldPath
from orchestrator.plan.source import SourceMap, dotted
from orchestrator.plan.structure import SCOPE_FIELDS, SecretSpec, describe

# Sections resolved before any step runs: only vars can be used in them.
STATIC_SECTIONS = ("name", "defaults", "secrets", "endpoints", "settings")


def defaults(raw: Any, source: SourceMap, diagnostics: list[Diagnostic]) -> dict[str, str]:
    out: dict[str, str] = {}
    if not isinstance(raw, dict):
        return out
    for name in SCOPE_FIELDS:
        value = raw.get(name)
        if not isinstance(value, str):
            continue  # absent, or the shape check names it
        if not refs.has_refs(value) and not SCOPE_VALUE.match(value):
            diagnostics.append(
                Diagnostic.at(
                    source.value(("defaults", name)),
                    f"defaults.{name}",
                    f"{describe(value)} is not a valid {name}",
                )
            )
        out[name] = value
    return out


def secrets(raw: Any, base_dir: Path) -> dict[str, SecretRef]:
    """The well-formed secret entries (the shape check reports the others)."""
    out: dict[str, SecretRef] = {}
    if not isinstance(raw, dict):
        return out
    for name, spec in raw.items():
        try:
            parsed = SecretSpec.model_validate(spec)
        except ValueError:
            continue
        source = next(s for s in SOURCES if getattr(parsed, s) is not None)
        ref = cast(str, getattr(parsed, source))
        if source == "file":
            ref = str((base_dir / os.path.expanduser(ref)).absolute())
        out[name] = SecretRef(name, cast(Source, source), ref)
    return out


def endpoints(
    raw: Any, source: SourceMap, diagnostics: list[Diagnostic], trusted: Collection[str] = (),
) -> dict[str, str]:
    """The per-API endpoints: URLs credentials may go to (see gcp/trust.py), Google's or one
    the user named on the command line (`trusted`)."""
    out: dict[str, str] = {}
    if not isinstance(raw, dict):
        return out
    for api, url in raw.items():
        if api not in discovery.API_VERSIONS:
            diagnostics.append(
                Diagnostic.at(
                    source.key(("endpoints", api)),
                    f"endpoints.{api}",
                    f"unknown API '{api}'{did_you_mean(api, discovery.API_VERSIONS)}; one of: "
                    + ", ".join(discovery.API_VERSIONS),
                )
            )
            continue
        if not isinstance(url, str):
            continue
        if not _is_http_url(url):
            diagnostics.append(
                Diagnostic.at(
                    source.value(("endpoints", api)),
                    f"endpoints.{api}",
                    f"{describe(url)} is not an http(s) URL such as https://compute-p.p.googleapis.com",
                )
            )
            continue
        if "${" in url:
            continue  # a reference that cannot be resolved here, reported as such
        if not trust.is_trusted(url, trusted):
            scheme, host, port = trust.origin(url)
            diagnostics.append(
                Diagnostic.at(
                    source.value(("endpoints", api)),
                    f"endpoints.{api}",
                    f"{url} is not a Google API endpoint (https://*.googleapis.com, Private "
                    "Service Connect's *.p.googleapis.com included): a plan cannot send the "
                    "credentials of whoever runs it anywhere else. If you run this endpoint "
                    f"yourself, name it on the command line: --trust-endpoint "
                    f"{scheme}://{host}:{port}",
                )
            )
            continue
        out[api] = url
    return out


def moved(
    raw: Any, ids: set[str], source: SourceMap, diagnostics: list[Diagnostic]
) -> tuple[tuple[str, str], ...]:
    """The `moved:` entries as (from, to): `to` a step of the plan, `from` none of its steps
    and named once (the shape itself is checked with the rest of the plan's)."""
    out: list[tuple[str, str]] = []
    if not isinstance(raw, list):
        return ()
    seen: set[str] = set()
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            continue
        old, new = entry.get("from"), entry.get("to")
        if not isinstance(old, str) or not isinstance(new, str):
            continue
        problem = ""
        if new not in ids:
            problem = (f"to: the plan has no step {new!r}{did_you_mean(new, sorted(ids))}; a "
                       "move names the step that now describes the resource")
        elif old in ids:
            problem = (f"from: {old!r} is still a step of the plan; a move names a step id the "
                       "plan no longer has")
        elif old in seen:
            problem = f"from: {old!r} is moved twice"
        if problem:
            diagnostics.append(Diagnostic.at(source.value(("moved", i)), f"moved[{i}]", problem))
            continue
        seen.add(old)
        out.append((old, new))
    return tuple(out)


def _is_http_url(url: str) -> bool:
    if any(c.isspace() for c in url):
        return False
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def static_refs(data: dict[str, Any], source: SourceMap, diagnostics: list[Diagnostic]) -> None:
    """Secret and step references where nothing can resolve them."""
    for section in STATIC_SECTIONS:
        if section in data:
            _static(data[section], (section,), source, diagnostics)


def _static(value: Any, path: FieldPath, source: SourceMap, diagnostics: list[Diagnostic]) -> None:
    if isinstance(value, str):
        try:
            found = [r for r in refs.find_refs(value) if not r.is_var]
        except refs.RefSyntaxError:
            return  # reported when vars were substituted (as are vars left unresolved)
        if found:
            diagnostics.append(
                Diagnostic.at(
                    source.value(path),
                    dotted(path),
                    f"{found[0].text}: only vars can be used here; secrets and step outputs "
                    "belong in a step",
                )
            )
    elif isinstance(value, dict):
        for k, v in value.items():
            _static(v, (*path, k), source, diagnostics)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _static(v, (*path, i), source, diagnostics)
