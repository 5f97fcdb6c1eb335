"""Plain HTML tables for Jupyter's rich display (`_repr_html_`) of a preview, a run result and
a ledger. No styling beyond colour: the notebook's own table style applies."""

from __future__ import annotations

import json
from html import escape
from typing import Any

ACTION_COLOURS = {"create": "#2e7d32", "update": "#b28704", "replace": "#8e24aa",
                  "delete": "#c62828", "noop": "#9e9e9e"}
STATUS_COLOURS = {"present": "#2e7d32", "failed": "#c62828", "skipped": "#b28704",
                  "cancelled": "#b28704", "pending": "#b28704", "in_flight": "#1565c0",
                  "deleting": "#c62828"}


def _cell(value: Any, colour: str | None = None, code: bool = False) -> str:
    text = escape(str(value))
    if code:
        text = f"<code>{text}</code>"
    if colour:
        text = f'<span style="color:{colour}">{text}</span>'
    return f'<td style="text-align:left">{text}</td>'


def _table(headers: tuple[str, ...], rows: list[str], caption: str) -> str:
    head = "".join(f'<th style="text-align:left">{escape(h)}</th>' for h in headers)
    return (f"<table><caption style=\"text-align:left\">{caption}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."


def preview_html(preview: Any) -> str:
    rows = []
    for step in preview.steps:
        changes = "; ".join(f"{c.field}: {_short(c.live)} → {_short(c.desired)}"
                            for c in step.changes)
        detail = " ".join(part for part in (step.reason and f"({step.reason})", changes) if part)
        rows.append("<tr>" + _cell(step.step) + _cell(step.action,
                                                       ACTION_COLOURS.get(step.action))
                    + _cell(step.kind) + _cell(step.resource, code=True) + _cell(detail) + "</tr>")
    caption = f"<b>Plan</b>: {escape(preview.summary)}"
    return _table(("step", "action", "kind", "resource", "changes"), rows, caption)


def result_html(result: Any) -> str:
    rows = []
    failed = {failure.step for failure in result.failures}
    for step, action in result.actions.items():
        if step in failed:
            continue
        rows.append("<tr>" + _cell(step) + _cell(action, ACTION_COLOURS.get(action))
                    + _cell("done", STATUS_COLOURS["present"]) + _cell("") + "</tr>")
    for failure in result.failures:
        rows.append("<tr>" + _cell(failure.step) + _cell(result.actions.get(failure.step, ""))
                    + _cell("failed", STATUS_COLOURS["failed"]) + _cell(failure.message)
                    + "</tr>")
    for step, cause in result.skipped.items():
        rows.append("<tr>" + _cell(step) + _cell("") + _cell("skipped", STATUS_COLOURS["skipped"])
                    + _cell(f"needs {cause}") + "</tr>")
    for step in result.cancelled:
        rows.append("<tr>" + _cell(step) + _cell("")
                    + _cell("cancelled", STATUS_COLOURS["cancelled"]) + _cell("") + "</tr>")
    outcome = "complete" if result.ok else "failed"
    colour = STATUS_COLOURS["present" if result.ok else "failed"]
    caption = (f'<b>{escape(result.command)}</b> <span style="color:{colour}">{outcome}</span> '
               f"(run {escape(str(result.run_id))}, {result.elapsed:.1f} s)")
    html = _table(("step", "action", "result", "detail"), rows, caption)
    if result.rollback is not None:
        html += result_html(result.rollback)
    return html


def ledger_html(ledger: Any, location: str) -> str:
    rows = ["<tr>" + _cell(sid) + _cell(rec.kind) + _cell(rec.status,
                                                          STATUS_COLOURS.get(rec.status))
            + _cell(rec.path, code=True) + _cell(rec.error or "") + "</tr>"
            for sid, rec in ledger.resources.items()]
    runs = ", ".join(f"{run.id} {run.command} {run.result}" for run in ledger.runs[-5:])
    caption = (f"<b>Ledger</b> <code>{escape(location)}</code>: {len(ledger.resources)} "
               f"resources, serial {ledger.serial}" + (f"; runs: {escape(runs)}" if runs else ""))
    return _table(("step", "kind", "status", "resource", "error"), rows, caption)
