"""Vars: the plan's own values, `--var` overrides, and their substitution at load time."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from orchestrator.plan import refs
from orchestrator.plan.errors import Diagnostic, did_you_mean
from orchestrator.plan.source import Path, SourceMap
from orchestrator.plan.structure import VAR_PATTERN, FieldNamer, describe

OVERRIDE = "--var"
ENVIRONMENT = "PROVISION_VAR_"
_NAME = re.compile(VAR_PATTERN)
_INT = re.compile(r"[-+]?[0-9]{1,30}\Z")


def from_environment(raw: Any, environment: Mapping[str, str]) -> dict[str, str]:
    """The declared vars set as PROVISION_VAR_name, as Terraform's TF_VAR_name: other names
    are ignored (an environment serves many plans)."""
    declared = raw if isinstance(raw, dict) else {}
    return {name: environment[ENVIRONMENT + name] for name in declared
            if isinstance(name, str) and ENVIRONMENT + name in environment}


def collect(
    raw: Any, overrides: Mapping[str, Any], source: SourceMap, diagnostics: list[Diagnostic],
    environment: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The vars' values after the environment's (from_environment), then the overrides. A
    var's value is literal: it holds no references, and `$${` in it stands for `${`."""
    values: dict[str, Any] = {}
    declared = raw if isinstance(raw, dict) else {}
    for name, value in declared.items():
        if not _NAME.match(name):
            continue  # the shape check names it
        try:
            found = refs.find_refs(value)
        except refs.RefSyntaxError as e:
            diagnostics.append(Diagnostic.at(source.value(("vars", name)), f"vars.{name}", str(e)))
            continue
        if found:
            diagnostics.append(
                Diagnostic.at(
                    source.value(("vars", name)),
                    f"vars.{name}",
                    f"a var's value cannot refer to anything ({found[0].text}); "
                    "write $${ for a literal ${",
                )
            )
            continue
        values[name] = refs.resolve(value, _no_lookup)
    for name, text in (environment or {}).items():
        if name in values:
            value, problem = _coerce(text, values[name])
            if problem:
                diagnostics.append(Diagnostic(ENVIRONMENT + name, 0, 0, "", problem))
            else:
                values[name] = value
    for name, text in overrides.items():
        if name not in declared:
            hint = did_you_mean(name, declared)
            diagnostics.append(
                Diagnostic(OVERRIDE, 0, 0, name, f"the plan declares no var '{name}'{hint}")
            )
        elif name in values:
            value, problem = _coerce(text, values[name])
            if problem:
                diagnostics.append(Diagnostic(OVERRIDE, 0, 0, name, problem))
            else:
                values[name] = value
    return values


def _no_lookup(ref: refs.Ref) -> Any:
    raise AssertionError(f"unexpected reference {ref.text}")  # collect() found none


def _coerce(text: Any, declared: Any) -> tuple[Any, str | None]:
    """An override (a string from the command line) as the declared value's type."""
    if not isinstance(text, str) or declared is None or isinstance(declared, str):
        return text, None
    if isinstance(declared, bool):
        if text.lower() in ("true", "false"):
            return text.lower() == "true", None
        return None, f"expected true or false, got {describe(text)}"
    if isinstance(declared, int):
        if _INT.match(text):
            return int(text), None
        return None, f"expected an integer, got {describe(text)}"
    if isinstance(declared, float):
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if math.isfinite(number):
            return number, None
        return None, f"expected a number, got {describe(text)}"
    kind = "list" if isinstance(declared, list) else "mapping"
    return None, f"the plan's value is a {kind}; --var replaces only strings, numbers and booleans"


def substitute(
    value: Any,
    path: Path,
    values: Mapping[str, Any],
    source: SourceMap,
    field: FieldNamer,
    diagnostics: list[Diagnostic],
) -> Any:
    """The value with `${vars.x}` filled in; secret and step references kept for run time."""
    if isinstance(value, str):
        try:
            out, missing = refs.substitute_vars(value, values)
        except refs.RefSyntaxError as e:
            diagnostics.append(Diagnostic.at(source.value(path), field(path), str(e)))
            return value
        for name in missing:
            diagnostics.append(
                Diagnostic.at(
                    source.value(path),
                    field(path),
                    f"no var '{name}' in vars{did_you_mean(name, values)}",
                )
            )
        return out
    if isinstance(value, dict):
        return {
            k: substitute(v, (*path, k), values, source, field, diagnostics)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            substitute(v, (*path, i), values, source, field, diagnostics)
            for i, v in enumerate(value)
        ]
    return value
