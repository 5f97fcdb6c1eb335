"""YAML text to plain JSON-like data, remembering where every key and value came from.

ruamel.yaml parses the text into events (through libyaml when its C extension is installed, about
twenty times faster than its pure-Python parser: a 1,000-step plan parses in ~50 ms instead of
~1 s). The nodes are built here rather than by ruamel's composer so that every duplicate key is
reported (not just the first), aliases cannot expand without bound, nesting depth is capped before
the C code can recurse deeply, and plain scalars follow the YAML 1.2 core schema on both parsers
(`no` and `on` are strings; `0777` is 777).
"""

from __future__ import annotations

import math
import re
from typing import Any

from ruamel.yaml.docinfo import DocInfo
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from ruamel.yaml.parser import Parser
from ruamel.yaml.reader import Reader, ReaderError
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.scanner import Scanner

from orchestrator.plan.errors import Diagnostic, Position

try:
    from ruamel.yaml.cyaml import CParser
except ImportError:  # ruamel.yaml installed without its libyaml extra
    CParser = None

Path = tuple[str | int, ...]
# Where positions of keys the plan cannot use (lists as keys, numbers as keys) are filed.
_DROPPED = "\0dropped"

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 50
# Values built, counting each alias as the size of what it repeats: stops "billion laughs".
MAX_NODES = 1_000_000

_YAML = "tag:yaml.org,2002:"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_TRUES = frozenset({"true", "True", "TRUE"})
_FALSES = frozenset({"false", "False", "FALSE"})
_INT = re.compile(r"[-+]?[0-9]+\Z")
_OCT = re.compile(r"0o[0-7]+\Z")
_HEX = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z")
_SPECIAL_FLOAT = re.compile(r"[-+]?\.(inf|Inf|INF)\Z|\.(nan|NaN|NAN)\Z")


class SourceMap:
    """Line and column of each key and value, by path from the document root."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.keys: dict[Path, tuple[int, int]] = {}
        self.values: dict[Path, tuple[int, int]] = {}

    def key(self, path: Path) -> Position:
        """Where the key naming `path` is (the item itself for list items)."""
        return self._find(path, self.keys, self.values)

    def value(self, path: Path) -> Position:
        return self._find(path, self.values, self.keys)

    def _find(self, path: Path, first: dict, second: dict) -> Position:
        # A path the file does not spell out (a missing field, a merged key) falls back to the
        # nearest thing above it that it does.
        while True:
            hit = first.get(path) or second.get(path)
            if hit:
                return Position(self.file, *hit)
            if not path:
                return Position(self.file, 1, 1)
            path = path[:-1]


class _PureParser(Reader, Scanner, Parser, VersionedResolver):
    def __init__(self, text: str) -> None:
        self.comment_handling = None
        self.doc_infos = [DocInfo(requested_version=None)]
        Reader.__init__(self, text, loader=self)
        Scanner.__init__(self, loader=self)
        Parser.__init__(self, loader=self)
        VersionedResolver.__init__(self, None, loader=self)


def parser_name() -> str:
    return "libyaml" if CParser is not None else "pure-python"


class _Fatal(Exception):
    """Stops building: what follows could not be trusted (or would take too long)."""

    def __init__(self, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.line, self.col, self.message = line, col, message


class _Anchored:
    __slots__ = ("value", "size", "done")

    def __init__(self) -> None:
        self.value: Any = None
        self.size = 0
        self.done = False


def read_text(path: str, what: str = "the plan") -> tuple[str | None, list[Diagnostic]]:
    """The file's text, or a diagnostic saying why it cannot be had."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as e:
        return None, [Diagnostic(path, 0, 0, "", f"cannot read {what}: {e.strerror or e}")]
    if len(raw) > MAX_BYTES:
        return None, [Diagnostic(path, 1, 1, "", f"{what} is larger than {MAX_BYTES} bytes")]
    try:
        return raw.decode("utf-8-sig"), []
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        return None, [Diagnostic(path, line, col, "", f"{what} is not valid UTF-8 text")]


def parse(text: str, file: str, what: str = "the plan", empty_ok: bool = False
          ) -> tuple[Any, SourceMap, list[Diagnostic]]:
    """Plain data (dicts, lists, str, int, float, bool, None) from one YAML document.

    Returns data None when the text is not YAML at all; other findings come as diagnostics
    alongside the data, with the offending value dropped (None) or the first duplicate key kept.
    what: the file as messages name it; empty_ok: a file with no document is None, not an error.
    """
    builder = _Builder(file, what, empty_ok)
    bad = _surrogate(text)
    if bad is not None:  # only text not read from a file can hold one; libyaml cannot take it
        line, col = _line_col(text, bad)
        return None, builder.source, [Diagnostic(file, line, col, "", _SURROGATE)]
    parser = None
    try:
        # The pure-Python reader checks the characters when built: inside the try, then.
        parser = CParser(text) if CParser is not None else _PureParser(text)
        data = builder.document(parser)
    except _Fatal as e:
        builder.diagnostics.append(Diagnostic(file, e.line, e.col, "", e.message))
        return None, builder.source, builder.diagnostics
    except MarkedYAMLError as e:
        return None, builder.source, [_syntax_error(file, e)]
    except ReaderError as e:
        line, col = _line_col(text, e.position)
        return None, builder.source, [Diagnostic(file, line, col, "", f"YAML syntax: {e.reason}")]
    except YAMLError as e:
        return None, builder.source, [Diagnostic(file, 1, 1, "", f"YAML syntax: {e}")]
    finally:
        if parser is not None:
            parser.dispose()
    return data, builder.source, builder.diagnostics


def _syntax_error(file: str, e: MarkedYAMLError) -> Diagnostic:
    mark = e.problem_mark or e.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = str(e.problem or e.context or "invalid YAML").strip()
    if e.problem and e.context:
        # "did not find expected ',' or ']' (while parsing a flow sequence at line 3)"
        at = e.context_mark
        where = f" at line {at.line + 1}" if at is not None and at.line + 1 != line else ""
        message += f" ({str(e.context).strip()}{where})"
    return Diagnostic(file, line, col, "", f"YAML syntax: {message}")


_SURROGATE = "not valid Unicode text (a lone surrogate)"


def _surrogate(text: str) -> int | None:
    """Index of the first lone surrogate, which UTF-8 (and so the ledger) cannot hold."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start
    return None


def _line_col(text: str, index: int) -> tuple[int, int]:
    index = max(0, min(index, len(text)))
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


class _Builder:
    def __init__(self, file: str, what: str = "the plan", empty_ok: bool = False) -> None:
        self.file = file
        self.what = what
        self.empty_ok = empty_ok
        self.source = SourceMap(file)
        self.diagnostics: list[Diagnostic] = []
        self.anchors: dict[str, _Anchored] = {}
        self.nodes = 0

    def document(self, parser: Any) -> Any:
        parser.get_event()  # StreamStartEvent
        if isinstance(parser.peek_event(), StreamEndEvent):
            if self.empty_ok:
                return None
            raise _Fatal(1, 1, f"{self.what} is empty")
        parser.get_event()  # DocumentStartEvent
        data, _ = self.node(parser, (), 0)
        parser.get_event()  # DocumentEndEvent
        event = parser.get_event()
        if not isinstance(event, StreamEndEvent):
            line, col = _mark(event)
            raise _Fatal(line, col, f"{self.what} must be a single YAML document (found another)")
        return data

    def _count(self, n: int, event: Any) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            raise _Fatal(*_mark(event), f"{self.what} expands to more than {MAX_NODES} values")

    def node(self, parser: Any, path: Path, depth: int) -> tuple[Any, int]:
        """The value of the next node, and its size in nodes (for alias accounting)."""
        event = parser.get_event()
        line, col = _mark(event)
        self.source.values[path] = (line, col)
        if isinstance(event, AliasEvent):
            anchored = self.anchors.get(event.anchor)
            if anchored is None:
                raise _Fatal(line, col, f"undefined alias *{event.anchor}")
            if not anchored.done:
                raise _Fatal(line, col, f"alias *{event.anchor} refers to itself")
            self._count(anchored.size, event)
            return anchored.value, anchored.size
        if depth > MAX_DEPTH:
            raise _Fatal(line, col, f"{self.what} nests deeper than {MAX_DEPTH} levels")
        anchored = None
        if event.anchor is not None:
            anchored = self.anchors[event.anchor] = _Anchored()
        self._count(1, event)
        if isinstance(event, ScalarEvent):
            value, size = self.scalar(event, path), 1
        elif isinstance(event, SequenceStartEvent):
            self._collection_tag(event, "seq", path)
            value, size = self.sequence(parser, path, depth)
        elif isinstance(event, MappingStartEvent):
            self._collection_tag(event, "map", path)
            value, size = self.mapping(parser, path, depth)
        else:  # the parser guarantees one of the above; say so rather than crash
            raise _Fatal(line, col, f"unexpected {type(event).__name__}")
        if anchored is not None:
            anchored.value, anchored.size, anchored.done = value, size, True
        return value, size

    def sequence(self, parser: Any, path: Path, depth: int) -> tuple[list[Any], int]:
        items: list[Any] = []
        size = 1
        while not isinstance(parser.peek_event(), SequenceEndEvent):
            value, n = self.node(parser, (*path, len(items)), depth + 1)
            items.append(value)
            size += n
        parser.get_event()
        return items, size

    def mapping(self, parser: Any, path: Path, depth: int) -> tuple[dict[str, Any], int]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[tuple[Any, int, int]] = []
        size = 1
        while not isinstance(parser.peek_event(), MappingEndEvent):
            key_event = parser.peek_event()
            kline, kcol = _mark(key_event)
            if _is_merge_key(key_event):
                parser.get_event()
                merged, n = self.node(parser, (*path, "<<"), depth + 1)
                merges.append((merged, kline, kcol))
                size += n
                continue
            key = self.key(parser, path, depth)
            value, n = self.node(parser, (*path, key if key is not None else _DROPPED), depth + 1)
            size += n
            if not isinstance(key, str):
                continue
            if key in first_line:
                self.diagnostics.append(
                    Diagnostic(
                        self.file,
                        kline,
                        kcol,
                        dotted((*path, key)),
                        f"duplicate key (first at line {first_line[key]})",
                    )
                )
                continue
            first_line[key] = kline
            self.source.keys[(*path, key)] = (kline, kcol)
            out[key] = value
        parser.get_event()
        for merged, line, col in merges:
            self._merge(out, merged, path, line, col)
        return out, size

    def _merge(self, out: dict[str, Any], merged: Any, path: Path, line: int, col: int) -> None:
        # YAML merge keys: keys written out beside `<<` win, then earlier merged maps.
        sources = merged if isinstance(merged, list) else [merged]
        for source in sources:
            if not isinstance(source, dict):
                self.diagnostics.append(
                    Diagnostic(
                        self.file,
                        line,
                        col,
                        dotted(path) or "<<",
                        "<< merges a mapping or a list of mappings",
                    )
                )
                continue
            for key, value in source.items():
                if key not in out:
                    out[key] = value
                    self.source.keys.setdefault((*path, key), (line, col))

    def key(self, parser: Any, path: Path, depth: int) -> str | None:
        event = parser.peek_event()
        line, col = _mark(event)
        if not isinstance(event, ScalarEvent):
            self.node(parser, (*path, _DROPPED), depth + 1)
            self.diagnostics.append(
                Diagnostic(self.file, line, col, dotted(path), "a key must be a plain string")
            )
            return None
        parser.get_event()
        key = self.scalar(event, path)
        if isinstance(key, str):
            return key
        self.diagnostics.append(
            Diagnostic(
                self.file,
                line,
                col,
                dotted(path),
                f"a key must be a string, not {event.value!r} (quote it)",
            )
        )
        return None

    def scalar(self, event: Any, path: Path) -> Any:
        text = event.value
        tag = event.tag
        if _surrogate(text) is not None:  # written as a "\ud800" escape
            self._bad(event, path, _SURROGATE)
            return None
        if tag is None or tag == "!":
            if event.style or tag == "!":  # quoted, block or explicitly non-specific
                return text
            return self._plain(text, event, path)
        if tag == _YAML + "str":
            return text
        if tag in (_YAML + "int", _YAML + "float", _YAML + "bool", _YAML + "null"):
            value = self._plain(text, event, path)
            kind = tag[len(_YAML) :]
            ok = {
                "int": type(value) is int,
                "float": type(value) in (int, float),
                "bool": type(value) is bool,
                "null": value is None,
            }[kind]
            if ok:
                return float(value) if kind == "float" else value
            self._bad(event, path, f"{text!r} is not a valid !!{kind}")
            return None
        self._bad(event, path, f"unsupported YAML tag {tag}")
        return None

    def _plain(self, text: str, event: Any, path: Path) -> Any:
        if text in _NULLS:
            return None
        if text in _TRUES:
            return True
        if text in _FALSES:
            return False
        try:
            if _INT.match(text):
                return int(text)
            if _OCT.match(text):
                return int(text[2:], 8)
            if _HEX.match(text):
                return int(text[2:], 16)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            self._bad(event, path, "number too large")
            return None
        if _FLOAT.match(text) and math.isfinite(value := float(text)):
            return value
        if _FLOAT.match(text) or _SPECIAL_FLOAT.match(text):
            self._bad(event, path, f"{text} is not a finite number")  # JSON has no inf or nan
            return None
        return text

    def _collection_tag(self, event: Any, kind: str, path: Path) -> None:
        if event.tag not in (None, "!", _YAML + kind):
            self._bad(event, path, f"unsupported YAML tag {event.tag}")

    def _bad(self, event: Any, path: Path, message: str) -> None:
        line, col = _mark(event)
        self.diagnostics.append(Diagnostic(self.file, line, col, dotted(path), message))


def _is_merge_key(event: Any) -> bool:
    return (
        isinstance(event, ScalarEvent)
        and event.value == "<<"
        and event.tag is None
        and not event.style
    )


def _mark(event: Any) -> tuple[int, int]:
    mark = event.start_mark
    return mark.line + 1, mark.column + 1


def dotted(path: Path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
