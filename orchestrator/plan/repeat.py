"""`for_each`: one step written, repeated over a collection from the plan's vars.

    - id: router
      for_each: ${vars.spokes}          # a list, a map, {pairs: LIST} or {product: [A, B]}
      kind: compute.router
      name: router-${each.key}
      properties: {network: "${network[${each.key}].selfLink}"}

The collection, after vars are substituted, is:
- a list: of scalars (each is its own key) or of maps with a `name` (the key);
- a map: its keys, each with its value;
- `{pairs: LIST}`: every unordered pair of the list's items, in list order (key "a-b"; value
  `{a, b, i, j, n}`: the two items, their positions, and the pair's number j*(j-1)/2+i, which
  appending items to the list never changes);
- `{product: [A, B, ...]}`: every combination of the collections A, B... (key "ka-kb"; value the
  list of their values);
- `{concat: [A, B, ...]}`: the elements of A, then of B...
Each element makes a step `ID[KEY]`, its strings holding `${each.key}`, `${each.index}` (the
element's position) and `${each.value}` (or a field or index of it: `${each.value.a.asn}`,
`${each.value.0}`) filled in; a string that is one such reference alone takes the value itself
(a number, a list). Integer arithmetic on them is written in the same braces, starting with
`each.`, a digit or a parenthesis: `${(each.value.0.n * 2 + each.value.1) % 64 * 4 + 1}` (`+`,
`-`, `*`, `//`, `%`), for addresses and ASNs derived from positions. A reference to a generated step
names it with its key (`${router[a].name}`, or `${router[${each.value.a}].name}` from another
repeated step); `depends_on` may name the repeated step itself, meaning all it generates.

Generated ids depend only on their keys, so adding an item to the collection adds only its
steps (the ledger keys records by id), and removing one removes only its. A generated step's
diagnostics point at the lines of the step as written, and name the generated id.
"""

from __future__ import annotations

import ast
import itertools
import operator
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator.plan import variables
from orchestrator.plan.errors import Diagnostic
from orchestrator.plan.source import SourceMap
from orchestrator.plan.structure import FieldNamer, describe

FOR_EACH = "for_each"
KEY_PATTERN = r"[A-Za-z0-9_.:-]{1,63}"
_KEY = re.compile(KEY_PATTERN + r"\Z")
# ${each.key}, ${each.index}, ${each.value.PATH}, or arithmetic on them (or on integers).
_EACH = re.compile(r"(?<!\$)\$\{((?:each\.|[0-9(])[^{}]*)\}")
_OPERAND = re.compile(r"each\.(?:key|index|value(?:\.[A-Za-z0-9_-]+)*)")


class _Refused(ValueError):
    pass


@dataclass
class Expansion:
    """The steps with every repeated one replaced by those it generates, the source map that
    places each generated step at the lines of the step written, and what each repeated step
    generated (by its id)."""

    steps: list[Any]
    source: SourceMap
    generated: dict[str, list[str]] = field(default_factory=dict)


def expand(raw_steps: list[Any], values: Mapping[str, Any], source: SourceMap,
           namer: FieldNamer, diagnostics: list[Diagnostic]) -> Expansion:
    out: list[Any] = []
    origin: list[int] = []
    generated: dict[str, list[str]] = {}
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, dict):
            out.append(raw)
            origin.append(index)
            continue
        _check_written_id(raw, index, source, diagnostics)
        if FOR_EACH not in raw:
            _no_each(raw, ("steps", index), source, namer, diagnostics)
            out.append(raw)
            origin.append(index)
            continue
        path = ("steps", index, FOR_EACH)
        spec = variables.substitute(raw[FOR_EACH], path, values, source, namer, diagnostics)
        try:
            elements = _elements(spec)
        except _Refused as exc:
            diagnostics.append(Diagnostic.at(source.value(path), namer(path), str(exc)))
            continue
        base = str(raw.get("id", ""))
        made = generated.setdefault(base, [])
        for position, (key, value) in enumerate(elements):
            try:
                copy = {name: _fill(item, Each(key, value, position), ("steps", index, name))
                        for name, item in raw.items() if name != FOR_EACH}
            except _Refused as exc:
                where = exc.args[1]
                diagnostics.append(Diagnostic.at(
                    source.value(where), f"{namer(where)} (for {base}[{key}])", exc.args[0]))
                continue  # the step is not made: what it would hold is not known
            copy["id"] = f"{base}[{key}]"
            made.append(copy["id"])
            out.append(copy)
            origin.append(index)
    for step in out:
        if isinstance(step, dict) and isinstance(step.get("depends_on"), list):
            step["depends_on"] = [d for entry in step["depends_on"]
                                  for d in (generated.get(entry, [entry])
                                            if isinstance(entry, str) else [entry])]
    return Expansion(out, _remapped(source, origin), generated)


def _check_written_id(raw: dict[str, Any], index: int, source: SourceMap,
                      diagnostics: list[Diagnostic]) -> None:
    step_id = raw.get("id")
    if isinstance(step_id, str) and "[" in step_id:
        diagnostics.append(Diagnostic.at(
            source.value(("steps", index, "id")), f"steps[{index}] id",
            f"'{step_id}': brackets are for the ids for_each generates; name the step without "
            "them"))


def _no_each(raw: Any, path: tuple[Any, ...], source: SourceMap, namer: FieldNamer,
             diagnostics: list[Diagnostic]) -> None:
    """`${each...}` outside a repeated step: said where, instead of read as a step 'each'."""
    if isinstance(raw, str):
        if _EACH.search(raw):
            diagnostics.append(Diagnostic.at(
                source.value(path), namer(path),
                "${each.key} and ${each.value} are defined only in a step with for_each"))
    elif isinstance(raw, dict):
        for k, v in raw.items():
            _no_each(v, (*path, k), source, namer, diagnostics)
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            _no_each(v, (*path, i), source, namer, diagnostics)


def _elements(spec: Any) -> list[tuple[str, Any]]:
    """(key, value) for each element of a for_each collection, keys checked and unique."""
    if isinstance(spec, dict) and set(spec) == {"pairs"}:
        items = list(enumerate(_elements(spec["pairs"])))
        found = [(f"{ka}-{kb}", {"a": va, "b": vb, "i": i, "j": j, "n": j * (j - 1) // 2 + i})
                 for (i, (ka, va)), (j, (kb, vb)) in itertools.combinations(items, 2)]
    elif isinstance(spec, dict) and set(spec) == {"concat"}:
        parts = spec["concat"]
        if not isinstance(parts, list):
            raise _Refused("concat takes a list of collections")
        found = [element for part in parts for element in _elements(part)]
    elif isinstance(spec, dict) and set(spec) == {"product"}:
        parts = spec["product"]
        if not isinstance(parts, list) or len(parts) < 2:
            raise _Refused("product takes a list of two or more collections")
        found = [("-".join(k for k, _ in combo), [v for _, v in combo])
                 for combo in itertools.product(*(_elements(p) for p in parts))]
    elif isinstance(spec, dict):
        found = [(str(k), v) for k, v in spec.items()]
    elif isinstance(spec, list):
        found = [(_list_key(item, i), item) for i, item in enumerate(spec)]
    else:
        raise _Refused(f"for_each takes a list, a map, {{pairs: LIST}} or {{product: [A, B]}}, "
                       f"not {describe(spec)}")
    seen: set[str] = set()
    for key, _ in found:
        if not _KEY.match(key):
            raise _Refused(f"key '{key}' cannot be part of a step id: keys hold letters, digits, "
                           "'_', '.', ':' and '-' (at most 63); key the items with a map")
        if key in seen:
            raise _Refused(f"key '{key}' comes twice: each element needs a key of its own")
        seen.add(key)
    return found


def _list_key(item: Any, index: int) -> str:
    if isinstance(item, bool) or item is None:
        raise _Refused(f"item {index} is {describe(item)}: a list item must be a string, a "
                       "number, or a map with a name")
    if isinstance(item, (str, int, float)):
        return str(item)
    if isinstance(item, dict) and isinstance(item.get("name"), (str, int)):
        return str(item["name"])
    raise _Refused(f"item {index} ({describe(item)}) has no key: a list item must be a string, "
                   "a number, or a map with a name")


@dataclass(frozen=True)
class Each:
    key: str
    value: Any
    index: int


def _fill(value: Any, each: Each, path: tuple[Any, ...]) -> Any:
    """The value with each.key, each.index and each.value filled in; _Refused(message, path)
    if not."""
    if isinstance(value, str):
        try:
            whole = _EACH.fullmatch(value)
            if whole:
                return _evaluate(whole.group(1), each)
            return _EACH.sub(lambda found: _text(found, each), value)
        except _Refused as exc:
            raise _Refused(exc.args[0], path) from None
    if isinstance(value, dict):
        return {k: _fill(v, each, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, each, (*path, i)) for i, v in enumerate(value)]
    return value


def _text(found: re.Match[str], each: Each) -> str:
    got = _evaluate(found.group(1), each)
    if isinstance(got, (dict, list)):
        raise _Refused(f"{found.group(0)} is {describe(got)}, which cannot be part of a string")
    return str(got).lower() if isinstance(got, bool) else str(got)


def _evaluate(body: str, each: Each) -> Any:
    """One reference's value, or an integer expression's."""
    body = body.strip()
    if _OPERAND.fullmatch(body):
        return _lookup(body, each)
    operands: list[int] = []

    def operand(found: re.Match[str]) -> str:
        got = _lookup(found.group(0), each)
        if isinstance(got, bool) or not isinstance(got, int):
            raise _Refused(f"${{{body}}}: {found.group(0)} is {describe(got)}, not an integer")
        operands.append(got)
        return f"_{len(operands) - 1}"

    expression = _OPERAND.sub(operand, body)
    if not re.fullmatch(r"[\s0-9_()+\-*/%]*", expression) or "/" in expression.replace(
            "//", ""):
        raise _Refused(f"${{{body}}}: only integers, each.* and + - * // % ( ) are allowed here")
    try:
        tree = ast.parse(expression, mode="eval")
        return _arith(tree.body, operands)
    except (SyntaxError, ZeroDivisionError, ValueError) as exc:
        raise _Refused(f"${{{body}}}: {exc}") from None


def _arith(node: ast.AST, operands: list[int]) -> int:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.Name) and re.fullmatch(r"_[0-9]+", node.id):
        return operands[int(node.id[1:])]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_arith(node.operand, operands)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_arith(node.left, operands),
                                         _arith(node.right, operands))
    raise ValueError("not an integer expression")


_OPERATORS: dict[type, Any] = {ast.Add: operator.add, ast.Sub: operator.sub,
                               ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
                               ast.Mod: operator.mod}


def _lookup(text: str, each: Each) -> Any:
    head, _, rest = text.removeprefix("each.").partition(".")
    if head in ("key", "index"):
        if rest:
            raise _Refused(f"${{{text}}}: each.{head} has no fields")
        return each.key if head == "key" else each.index
    value = each.value
    for part in rest.split(".") if rest else ():
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise _Refused(f"${{{text}}}: {describe(value)} has no '{part}'")
    return value


def _remapped(source: SourceMap, origin: list[int]) -> SourceMap:
    """The source map with each output step at the lines of the step it came from."""
    out = SourceMap(source.file)
    targets: dict[int, list[int]] = {}
    for new, old in enumerate(origin):
        targets.setdefault(old, []).append(new)
    for table, remapped in ((source.keys, out.keys), (source.values, out.values)):
        for path, where in table.items():
            if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
                for new in targets.get(path[1], []):
                    remapped[("steps", new, *path[2:])] = where
            else:
                remapped[path] = where
    return out
