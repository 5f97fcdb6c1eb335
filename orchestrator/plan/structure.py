"""The plan file's shape: which keys go where, with what types.

One pydantic model serves both the validator (its error `loc` is a path into the YAML, which the
source map turns into a line and column) and the editor's JSON Schema. What the shape cannot say
(kinds, properties, references) is checked in `checks`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from orchestrator.plan.durations import PATTERN as DURATION_PATTERN
from orchestrator.plan.durations import parse_duration
from orchestrator.plan.errors import Diagnostic, did_you_mean
from orchestrator.plan.source import Path, SourceMap, dotted

# A step's id as written, and the `[KEY]` for_each adds to the ids it generates (repeat.py).
ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}(\[[A-Za-z0-9_.:-]{1,63}\])?$"
PLAN_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]{0,62}$"
ENV_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
SECRET_VERSION_PATTERN = r"^projects/[^/\s]+/secrets/[^/\s]+/versions/[^/\s]+$"
SCOPE_FIELDS = ("project", "region", "zone", "organization")
EXTENSION_PREFIX = "x-"

PATTERN_HELP = {
    ID_PATTERN: "must start with a letter and hold only letters, digits, '_' and '-' "
    "(at most 63 characters)",
    PLAN_NAME_PATTERN: "must hold only letters, digits, '_', '-' and '.' (at most 63 "
    "characters), as it names the ledger file",
    VAR_PATTERN: "must start with a letter or '_' and hold only letters, digits, '_' and '-' "
    "(at most 63 characters)",
    ENV_PATTERN: "is not an environment variable name",
    SECRET_VERSION_PATTERN: "must be a version name: projects/P/secrets/S/versions/V "
    "(V may be 'latest')",
    DURATION_PATTERN: "is not a duration",
}

Id = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
Name = Annotated[str, StringConstraints(pattern=VAR_PATTERN)]
Timeout = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": DURATION_PATTERN},
            ],
            "description": 'Deadline of the step: "90s", "10m", "1h", or seconds.',
        }
    ),
]


class _Section(BaseModel):
    # strict: YAML already typed its scalars; `name: 123` is a mistake, not a string.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Defaults(_Section):
    """Scope fields a step takes from here when it does not set them itself."""

    project: str | None = None
    region: str | None = None
    zone: str | None = None
    organization: str | None = None


class SecretSpec(_Section):
    """Where a secret's value comes from: exactly one of env, file, secret_manager."""

    env: Annotated[str, StringConstraints(pattern=ENV_PATTERN)] | None = Field(
        None, description="Name of an environment variable."
    )
    file: Annotated[str, StringConstraints(min_length=1)] | None = Field(
        None, description="Path of a file, relative to the plan file."
    )
    secret_manager: Annotated[str, StringConstraints(pattern=SECRET_VERSION_PATTERN)] | None = (
        Field(None, description="Secret Manager version: projects/P/secrets/S/versions/V.")
    )

    @model_validator(mode="after")
    def _one_source(self) -> SecretSpec:
        if sum(v is not None for v in (self.env, self.file, self.secret_manager)) != 1:
            raise ValueError("give exactly one of env, file or secret_manager")
        return self


class StepSpec(_Section):
    id: Id = Field(description="Unique id; other steps refer to it as ${id.output}.")
    kind: str = Field(description="Resource kind.")
    name: str = Field(description="The resource's name in Google Cloud.")
    project: str | None = None
    region: str | None = None
    zone: str | None = None
    organization: str | None = None
    properties: dict[str, Any] | None = Field(
        None, description="The resource's fields, in the API's own JSON names."
    )
    depends_on: list[Id] | None = Field(
        None, description="Steps (above this one) to finish first, beyond those referenced."
    )
    timeout: Timeout | None = None
    for_each: Any = Field(
        None, description="Repeat the step over a list, a map, {pairs: LIST} or {product: [A, "
        "B]} (usually ${vars.NAME}): each element makes a step ID[KEY], with ${each.key} and "
        "${each.value} filled in.")


class SettingsSpec(_Section):
    ledger: str | None = Field(
        None, description="Where the ledger is kept: a file, or gs://BUCKET/PATH/NAME.json."
    )


class MoveSpec(_Section):
    from_: Id = Field(alias="from", description="The step id the ledger records it under.")
    to: Id = Field(description="The plan's step that now describes the same resource.")


class PlanSpec(_Section):
    name: Annotated[str, StringConstraints(pattern=PLAN_NAME_PATTERN)] = Field(
        description="Names the plan's ledger."
    )
    vars: dict[Name, Any] | None = Field(
        None, description="Values for ${vars.NAME}; --var overrides."
    )
    defaults: Defaults | None = None
    secrets: dict[Name, SecretSpec] | None = None
    endpoints: dict[str, str] | None = Field(
        None,
        description="Base URL per API (e.g. compute), such as a Private Service Connect endpoint.",
    )
    settings: SettingsSpec | None = Field(None, description="Engine settings.")
    moved: list[MoveSpec] | None = Field(
        None,
        description="Renamed steps: the ledger's record moves to the new id instead of the "
        "resource being replaced.",
    )
    steps: list[StepSpec]


_FIELDS = {
    "": list(PlanSpec.model_fields),
    "defaults": list(Defaults.model_fields),
    "secrets": list(SecretSpec.model_fields),
    "steps": list(StepSpec.model_fields),
    "moved": ["from", "to"],
    "settings": list(SettingsSpec.model_fields),
}


def check_top(data: dict[str, Any], source: SourceMap, field: FieldNamer) -> list[Diagnostic]:
    """Shape of everything but the steps' insides (checked one by one with check_step)."""
    top = dict(data)
    if isinstance(top.get("steps"), list):
        top["steps"] = []
    try:
        PlanSpec.model_validate(top)
    except ValidationError as e:
        return _diagnostics(e, (), source, field)
    return []


def check_step(
    raw: dict[str, Any],
    index: int,
    source: SourceMap,
    field: FieldNamer,
    extra_scope: frozenset[str],
) -> tuple[StepSpec | None, set[str], list[Diagnostic]]:
    """The step's shape: its model, the top-level fields found wrong, and the diagnostics.

    extra_scope: scope fields some kind declares beyond the usual four; the checks of kinds and
    scopes deal with them.
    """
    data = {k: v for k, v in raw.items() if k not in extra_scope}
    try:
        return StepSpec.model_validate(data), set(), []
    except ValidationError as e:
        bad = {str(err["loc"][0]) for err in e.errors() if err["loc"]}
        return None, bad, _diagnostics(e, ("steps", index), source, field)


class FieldNamer:
    """Turns a path into the name a diagnostic shows: "step 'subnet' properties.ipCidrRange"."""

    def __init__(self, step_ids: dict[int, str]) -> None:
        self.step_ids = step_ids

    def __call__(self, path: Path) -> str:
        if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
            step = self.step_ids.get(path[1])
            rest = dotted(path[2:])
            head = f"step '{step}'" if step else f"steps[{path[1]}]"
            return f"{head} {rest}" if rest and step else (f"{head}.{rest}" if rest else head)
        return dotted(path)


def _diagnostics(
    error: ValidationError, base: Path, source: SourceMap, field: FieldNamer
) -> list[Diagnostic]:
    out = []
    for err in error.errors(include_url=False):
        loc = tuple(err["loc"])
        kind = err["type"]
        if loc and loc[-1] == "[key]":
            path = (*base, *loc[:-1])
            pos = source.key(path)
            help_ = PATTERN_HELP.get((err.get("ctx") or {}).get("pattern", ""), err["msg"])
            message = f"invalid name: {help_}"
        elif kind == "extra_forbidden":
            path = (*base, *loc)
            pos = source.key(path)
            section = "steps" if base else (str(loc[0]) if len(loc) > 1 else "")
            message = "unknown field" + did_you_mean(str(loc[-1]), _FIELDS.get(section, []))
        elif kind == "missing":
            path = (*base, *loc)
            pos = source.value(path[:-1])
            message = "missing (required)"
        else:
            path = (*base, *loc)
            pos = source.value(path)
            message = _message(err)
        out.append(Diagnostic.at(pos, field(path), message))
    return out


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}


def _message(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(err['input'])}"
    if kind == "string_pattern_mismatch":
        return f"{describe(err['input'])} {PATTERN_HELP.get(ctx.get('pattern', ''), err['msg'])}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "string_too_short":
        return "must not be empty"
    return str(err["msg"])


def describe(value: Any) -> str:
    """A value as a message names it: short, and never the whole of a long input."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        text = str(value)
        return text if len(text) <= 20 else "a very large number"
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__
