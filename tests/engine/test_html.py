"""Jupyter's rich display: a preview, a run result and a deployment's ledger as HTML tables
naming each step, its action and its status."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from orchestrator.engine.results import RunResult, StepFailure


class _Rows(HTMLParser):
    """The text of each table row's cells."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_cell = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag == "td":
            self._in_cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._in_cell = False

    def handle_data(self, data: str) -> None:
        if self._in_cell:
            self.rows[-1][-1] += data


def _cells(html: str) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in _Rows(html).rows if row}


def test_preview_result_and_ledger_name_each_step_and_action(deploy) -> None:
    dep = deploy()
    preview = dep.plan_changes()
    html = preview._repr_html_()
    assert "3 to add" in html
    rows = _cells(html)
    assert {step: cells[0] for step, cells in rows.items()} == {
        "vpc": "create", "subnet": "create", "fw": "create"}
    assert rows["subnet"][2] == "projects/eng-project/regions/europe-west1/subnetworks/eng-subnet"

    result = dep.apply()
    rows = _cells(result._repr_html_())
    assert {step: cells[:2] for step, cells in rows.items()} == {
        step: ["create", "done"] for step in ("vpc", "subnet", "fw")}
    assert "apply" in result._repr_html_() and "complete" in result._repr_html_()

    ledger = _cells(dep._repr_html_())
    assert {step: cells[0:2] for step, cells in ledger.items()} == {
        "vpc": ["compute.network", "present"], "subnet": ["compute.subnetwork", "present"],
        "fw": ["compute.firewall", "present"]}
    assert dep.ledger_location in dep._repr_html_()


def test_a_failed_run_names_the_failure_and_what_was_skipped() -> None:
    result = RunResult(command="apply", run_id="4", actions={"vpc": "create", "fw": "create"},
                       failures=[StepFailure("fw", "compute.firewall", "p/fw",
                                             "400 <bad> range")],
                       skipped={"rule": "fw"})
    html = result._repr_html_()
    rows = _cells(html)
    assert rows["vpc"][:2] == ["create", "done"]
    assert rows["fw"] == ["create", "failed", "400 <bad> range"]
    assert rows["rule"][1:] == ["skipped", "needs fw"]
    assert "failed" in html and "&lt;bad&gt;" in html  # messages are escaped, not markup
    assert not re.search(r"<bad>", html)
