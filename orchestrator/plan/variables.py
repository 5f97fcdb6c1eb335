"""Vars: the plan's own values, what sets them (PROVISION_VAR_name, var files, `--var`), and
their substitution at load time."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.plan import refs
from orchestrator.plan.errors import Diagnostic, did_you_mean
from orchestrator.plan.source import Path, SourceMap, parse, read_text
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


@dataclass(frozen=True)
class VarFile:
    """A --var-file's values (NAME: VALUE, as Terraform's .tfvars), with where each is written."""

    values: dict[str, Any]
    source: SourceMap
    damaged: bool  # the parser refused some of it (a value it dropped reads as null)


def read_var_files(
    paths: Sequence[str | os.PathLike[str]], diagnostics: list[Diagnostic]
) -> list[VarFile]:
    """Each file's vars; what cannot be read or is not a mapping is a diagnostic at its place."""
    files = []
    for path in paths:
        file = os.fspath(path)
        text, found = read_text(file, "the var file")
        data, source, problems = (parse(text, file, "the var file", empty_ok=True)
                                  if text is not None else (None, None, []))
        diagnostics += found + problems
        if text is None or (data is None and problems):
            continue
        if data is not None and not isinstance(data, dict):
            diagnostics.append(Diagnostic(file, 1, 1, "", "a var file is a mapping of var "
                                          f"names to values (NAME: VALUE), not {describe(data)}"))
            continue
        files.append(VarFile(data or {}, source, bool(problems)))
    return files


def collect(
    raw: Any, overrides: Mapping[str, Any], source: SourceMap, diagnostics: list[Diagnostic],
    environment: Mapping[str, str] | None = None, var_files: Sequence[VarFile] = (),
) -> dict[str, Any]:
    """The vars' values after the environment's (from_environment), then each var file's in
    turn, then the overrides. A var's value is literal: it holds no references, and `$${` in
    it stands for `${`."""
    values: dict[str, Any] = {}
    declared = raw if isinstance(raw, dict) else {}
    for name, value in declared.items():
        if not _NAME.match(name):
            continue  # the shape check names it
        literal = _literal(value, source, ("vars", name), f"vars.{name}", diagnostics)
        if literal is not _REFUSED:
            values[name] = literal
    for name, text in (environment or {}).items():
        if name in values:
            value, problem = _coerce(text, values[name])
            if problem:
                diagnostics.append(Diagnostic(ENVIRONMENT + name, 0, 0, "", problem))
            else:
                values[name] = value
    for file in var_files:
        for name, value in file.values.items():
            if name not in declared:
                diagnostics.append(Diagnostic.at(
                    file.source.key((name,)), name,
                    f"the plan declares no var '{name}'{did_you_mean(name, declared)}"))
                continue
            literal = _literal(value, file.source, (name,), name, diagnostics)
            if literal is _REFUSED or name not in values or (value is None and file.damaged):
                continue  # refused here, or the plan's own value is: reported already
            problem = _type_problem(literal, values[name])
            if problem:
                diagnostics.append(Diagnostic.at(file.source.value((name,)), name, problem))
            else:
                values[name] = literal
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


_REFUSED = object()


def _literal(value: Any, source: SourceMap, path: Path, field: str,
             diagnostics: list[Diagnostic]) -> Any:
    """A var's value with `$${` as `${`; _REFUSED, with a diagnostic, if it refers to anything."""
    try:
        found = refs.find_refs(value)
    except refs.RefSyntaxError as e:
        diagnostics.append(Diagnostic.at(source.value(path), field, str(e)))
        return _REFUSED
    if found:
        diagnostics.append(Diagnostic.at(
            source.value(path), field,
            f"a var's value cannot refer to anything ({found[0].text}); write $${{ for a "
            "literal ${"))
        return _REFUSED
    return refs.resolve(value, _no_lookup)


def _type_problem(value: Any, declared: Any) -> str | None:
    """Why a var file's value cannot replace the plan's (a YAML value keeps its type: a string
    var's value is quoted, `"0123"`, or YAML reads a number)."""
    if declared is None:
        return None
    if isinstance(declared, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(declared, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(declared, float):
        ok, expected = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    elif isinstance(declared, str):
        ok, expected = isinstance(value, str), "a string (quote it)"
    elif isinstance(declared, list):
        ok, expected = isinstance(value, list), "a list"
    else:
        ok, expected = isinstance(value, dict), "a mapping"
    return None if ok else f"expected {expected}, as the plan's value, got {describe(value)}"


def _no_lookup(ref: refs.Ref) -> Any:
    raise AssertionError(f"unexpected reference {ref.text}")  # collect() found none


def _coerce(text: Any, declared: Any) -> tuple[Any, str | None]:
    """An override (a string from the command line) as the declared value's type; an override
    that already has a type (a saved plan's) is checked against it."""
    if not isinstance(text, str):
        return text, _type_problem(text, declared)
    if declared is None or isinstance(declared, str):
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
