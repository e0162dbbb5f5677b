"""``check``'s report: Django's lines, a Rich table for a terminal, and JSON.

The plain lines are Django's ``check`` output (``System check identified no issues (0
silenced).``, ``ERRORS:`` groups of ``obj: (id) message`` with a tab-indented ``HINT:``), plus
a ``SKIPPED:`` group naming the checks that could not run. Rich is imported only by
``rich_report``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlmanage.actions.check import (
    CRITICAL,
    DEBUG,
    ERROR,
    FAILED,
    INFO,
    PASSED,
    SKIPPED,
    WARNED,
    WARNING,
)
from sqlmanage.render import printable

GROUPS = (
    (CRITICAL, None, "CRITICALS"),
    (ERROR, CRITICAL, "ERRORS"),
    (WARNING, ERROR, "WARNINGS"),
    (INFO, WARNING, "INFOS"),
    (DEBUG, INFO, "DEBUGS"),
)
STATUS_STYLES = {PASSED: "green", WARNED: "yellow", FAILED: "red bold", SKIPPED: "dim"}


def footer(report) -> str:
    count = len(report.issues)
    issues = "no issues" if count == 0 else "1 issue" if count == 1 else f"{count} issues"
    return f"System check identified {issues} ({len(report.silenced)} silenced)."


def plain(report, verbosity: int = 1) -> Iterator[tuple[str, str | None]]:
    """Django's lines, as (text, style) pairs; every check's outcome first at ``-v 2``."""
    blocks: list[list[tuple[str, str | None]]] = []
    if verbosity >= 2:
        blocks.append(
            [
                (
                    f"[{r.status}] {_where(r)}{r.id} {r.title}"
                    + (f": {printable(r.detail)}" if r.detail else ""),
                    None,
                )
                for r in report.results
            ]
        )
    issues = report.issues
    if issues:
        blocks.append([("System check identified some issues:", None)])
    for low, high, name in GROUPS:
        group = [i for i in issues if i.level >= low and (high is None or i.level < high)]
        if group:
            style = "error" if low >= ERROR else "warning"
            blocks.append(
                [
                    (f"{name}:", style),
                    *(
                        (printable_issue(i), "error" if i.level >= ERROR else "warning")
                        for i in group
                    ),
                ]
            )
    skipped = [r for r in report.results if r.status == SKIPPED]
    if skipped and verbosity < 2:
        blocks.append(
            [
                ("SKIPPED:", None),
                *((f"{_where(r)}({r.id}) {r.title}: {r.detail}.", None) for r in skipped),
            ]
        )
    blocks.append([(footer(report), None)])
    for index, block in enumerate(blocks):
        if index:
            yield "", None
        yield from block


def printable_issue(issue) -> str:
    hint = f"\n\tHINT: {printable(issue.hint)}" if issue.hint else ""
    return f"{printable(issue.obj or '?')}: ({issue.id}) {printable(issue.message)}{hint}"


def _where(result) -> str:
    return f"{result.database}: " if result.database not in (None, "default") else ""


def as_json(report, fail_level: int = ERROR) -> str:
    def issue(i):
        return {
            "id": i.id,
            "level": i.level_name,
            "message": i.message,
            "hint": i.hint,
            "obj": i.obj,
            "silenced": i.id in report.silenced_ids,
        }

    return json.dumps(
        {
            "passed": not report.serious(fail_level),
            "issues": [issue(i) for i in report.issues],
            "silenced": len(report.silenced),
            "checks": [
                {
                    "id": r.id,
                    "title": r.title,
                    "database": r.database,
                    "tags": list(r.tags),
                    "status": r.status,
                    "detail": r.detail or None,
                    "skipped_because": list(r.skipped_because),
                    "issues": [issue(i) for i in r.issues],
                }
                for r in report.results
            ],
        },
        indent=2,
    )


def rich_report(report):
    """A table of every check and its outcome, then Django's summary line."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text("System check", style="bold"), title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("Id", no_wrap=True)
    table.add_column("Check", ratio=1)
    table.add_column("Result", ratio=2, overflow="fold")
    show_database = len({r.database for r in report.results if r.database is not None}) > 1
    for result in report.results:
        title = Text(result.title)
        if show_database and result.database:
            title.append(f" ({result.database})", style="dim")
        outcome = Text()
        for issue in result.issues:
            silenced = issue.id in report.silenced_ids
            style = "dim" if silenced else "red" if issue.level >= ERROR else "yellow"
            if outcome:
                outcome.append("\n")
            outcome.append(
                printable(issue.message) + (" (silenced)" if silenced else ""), style=style
            )
            if issue.hint:
                outcome.append(f"\nHint: {printable(issue.hint)}", style="italic")
        if not result.issues:
            outcome.append(
                printable(result.detail), style="dim" if result.status == SKIPPED else ""
            )
        table.add_row(
            Text(result.status, style=STATUS_STYLES[result.status]), result.id, title, outcome
        )
    summary = Text(
        footer(report),
        style="red bold" if report.serious(ERROR) else "green" if not report.issues else "yellow",
    )
    return table, summary
