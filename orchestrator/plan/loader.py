"""load_plan: a plan file in, a validated Plan out, or every problem found in it."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator import kinds
from orchestrator.plan import limits, repeat, sections, variables
from orchestrator.plan.checks import Checker, check_ids
from orchestrator.plan.errors import Diagnostic, PlanError
from orchestrator.plan.model import Plan, Step
from orchestrator.plan.source import parse, read_text
from orchestrator.plan.structure import (
    EXTENSION_PREFIX,
    SCOPE_FIELDS,
    FieldNamer,
    StepSpec,
    check_step,
    check_top,
    describe,
)


def load_plan(
    path: str | os.PathLike[str],
    vars: Mapping[str, Any] | None = None,
    trust_endpoints: Collection[str] = (),
    environment: Mapping[str, str] | None = None,
    var_files: Sequence[str | os.PathLike[str]] = (),
) -> Plan:
    """Read and validate a plan file. vars: `--var key=value` overrides of the plan's vars;
    trust_endpoints: endpoints the user named (--trust-endpoint) that the plan's `endpoints:`
    may use besides Google's; environment: where PROVISION_VAR_name values of declared vars
    are read from (the CLI's process environment); var_files: YAML files of NAME: VALUE
    (--var-file), each winning over the environment and the files before it, `vars` winning
    over them all.

    Raises PlanError with every problem found, each with file, line, column and field.
    """
    file = os.fspath(path)
    text, diagnostics = read_text(file)
    if text is None:
        raise PlanError(diagnostics)
    return load_plan_text(text, file, vars, trust_endpoints, environment, var_files)


def load_plan_text(
    text: str,
    path: str | os.PathLike[str] = "<plan>",
    vars: Mapping[str, Any] | None = None,
    trust_endpoints: Collection[str] = (),
    environment: Mapping[str, str] | None = None,
    var_files: Sequence[str | os.PathLike[str]] = (),
) -> Plan:
    """Validate a plan given as text; `path` names it in messages and anchors relative files."""
    file = os.fspath(path)
    data, source, diagnostics = parse(text, file)
    files = variables.read_var_files(var_files, diagnostics)
    if data is None and diagnostics:  # not YAML, or its one value refused
        raise PlanError(diagnostics)
    if not isinstance(data, dict):
        diagnostics.append(
            Diagnostic(
                file,
                1,
                1,
                "",
                f"the plan must be a mapping (name:, steps: ...), not {describe(data)}",
            )
        )
        raise PlanError(diagnostics)

    # Top-level "x-..." keys hold YAML anchors for steps to reuse, as in docker-compose files.
    data = {k: v for k, v in data.items() if not k.startswith(EXTENSION_PREFIX)}
    values = variables.collect(data.get("vars"), vars or {}, source, diagnostics,
                               variables.from_environment(data.get("vars"), environment or {}),
                               files)
    raw_steps = data.get("steps") if isinstance(data.get("steps"), list) else []
    if raw_steps:
        # Repeated steps become those they generate, placed at the lines of the step written.
        expansion = repeat.expand(raw_steps, values, source,
                                  FieldNamer(check_ids(raw_steps, source, [])[1]), diagnostics)
        data["steps"] = raw_steps = expansion.steps
        source = expansion.source
    # Diagnostics of substitution name steps by their ids as written; the ids' own problems are
    # reported once, after substitution.
    namer = FieldNamer(check_ids(raw_steps, source, [])[1])
    data = {
        k: v if k == "vars" else variables.substitute(v, (k,), values, source, namer, diagnostics)
        for k, v in data.items()
    }
    raw_steps = data.get("steps") if isinstance(data.get("steps"), list) else []
    ids, names = check_ids(raw_steps, source, diagnostics)
    namer = FieldNamer(names)

    diagnostics += check_top(data, source, namer)
    defaults = sections.defaults(data.get("defaults"), source, diagnostics)
    secrets = sections.secrets(data.get("secrets"), Path(file).parent)
    endpoints = sections.endpoints(data.get("endpoints"), source, diagnostics, trust_endpoints)
    sections.static_refs(data, source, diagnostics)
    moved = sections.moved(data.get("moved"), set(ids), source, diagnostics)

    scope_fields = _scope_fields()
    extra_scope = frozenset(scope_fields) - frozenset(SCOPE_FIELDS)
    # A reference to a secret whose entry is malformed is not "undefined": its entry is at fault.
    secret_names = set(data["secrets"]) if isinstance(data.get("secrets"), dict) else set()
    checker = Checker(source, namer, scope_fields, ids, defaults, secret_names, diagnostics)
    steps: list[Step] = []
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, dict):
            diagnostics.append(
                Diagnostic.at(
                    source.value(("steps", index)),
                    f"steps[{index}]",
                    f"expected a mapping (id:, kind:, name: ...), got {describe(raw)}",
                )
            )
            continue
        spec, bad, found = check_step(raw, index, source, namer, extra_scope)
        diagnostics += found
        facts = checker.step(index, raw, bad)
        if spec is not None and facts.kind is not None:
            steps.append(_step(spec, index, facts.scope, facts.deps, source))

    if not diagnostics:
        diagnostics += limits.check(steps)
    if diagnostics:
        raise PlanError(diagnostics)
    return Plan(
        path=Path(file),
        name=data["name"],
        vars=values,
        defaults=defaults,
        secrets=secrets,
        endpoints=endpoints,
        settings=dict(data.get("settings") or {}),
        steps=steps,
        source=source,
        moved=moved,
    )


def _scope_fields() -> tuple[str, ...]:
    extra = {f for k in kinds.registry().values() for f in k.scope} - set(SCOPE_FIELDS)
    return (*SCOPE_FIELDS, *sorted(extra - set(StepSpec.model_fields)))


def _step(spec: StepSpec, index: int, scope: dict[str, str], deps: set[str], source) -> Step:
    depends_on = tuple(dict.fromkeys(spec.depends_on or ()))
    return Step(
        id=spec.id,
        kind=spec.kind,
        name=spec.name,
        scope=scope,
        properties=dict(spec.properties or {}),
        depends_on=depends_on,
        timeout=spec.timeout,
        deps=frozenset(deps) | frozenset(depends_on),
        pos=source.value(("steps", index)),
        source=source,
        index=index,
    )
