"""The summary of ``migrate --all-databases``: one row per database, plain or as a Rich table.

Columns: the alias, its database (password masked), how many migrations it applied (or,
with ``--check``, lacks), the time it took, and the result with the first line of its error.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlmanage.render import printable

Line = tuple[str, "str | None"]
RESULT_STYLES = {"OK": "success", "UNAPPLIED": "warning"}  # anything else is an error


def _headers(checking: bool) -> list[str]:
    return ["Alias", "Database", "Unapplied" if checking else "Applied", "Time", "Result"]


def _cells(outcome) -> list[str]:
    result = outcome.result
    if outcome.error:  # the URL is in its own column: not again in the error
        error = (
            outcome.error.replace(f" {outcome.database}", "") if outcome.database else outcome.error
        )
        result = f"{result}: {error}"
    return [
        printable(outcome.alias),
        printable(outcome.database),
        str(len(outcome.migrations)),
        f"{outcome.seconds:.2f}s",
        printable(result),
    ]


def totals(run, checking: bool) -> tuple[str, str]:
    """The closing line: how many databases ended how, and the time; with its style."""
    counts: dict[str, int] = {}
    for outcome in run.outcomes:
        counts[outcome.result] = counts.get(outcome.result, 0) + 1
    count = len(run.outcomes)
    text = f"{count} database{'' if count == 1 else 's'}: "
    text += ", ".join(f"{number} {result}" for result, number in counts.items())
    text += f" ({run.seconds:.2f}s)." if not checking else "."
    if set(counts) <= {"OK"}:
        return text, "success"
    return text, "warning" if set(counts) <= {"OK", "UNAPPLIED"} else "error"


def plain_summary(run, checking: bool = False) -> Iterator[Line]:
    """Aligned columns, the result last so that a long error does not push the others."""
    rows = [_headers(checking)] + [_cells(outcome) for outcome in run.outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for index, row in enumerate(rows):
        text = (
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False))
            + "  "
            + row[-1]
        )
        style = (
            "label" if index == 0 else RESULT_STYLES.get(run.outcomes[index - 1].result, "error")
        )
        yield text.rstrip(), style
    yield totals(run, checking)


def rich_summary(run, checking: bool = False):
    """A Rich table and the closing sentence, as renderables."""
    from rich.table import Table
    from rich.text import Text

    colours = {"success": "green", "warning": "yellow", "error": "red", None: ""}
    table = Table(title=Text("Databases", style="bold"), title_justify="left")
    for header in _headers(checking):
        if header in ("Database", "Result"):  # long text folds, so that an error shows
            errors = any(outcome.error for outcome in run.outcomes)
            table.add_column(
                header, overflow="fold", min_width=16 if errors or header == "Database" else None
            )
        elif header == "Alias":
            table.add_column(header, no_wrap=True)
        else:
            table.add_column(header, justify="right", no_wrap=True)
    for outcome in run.outcomes:
        cells = _cells(outcome)
        colour = colours[RESULT_STYLES.get(outcome.result, "error")]
        table.add_row(*(Text(cell) for cell in cells[:-1]), Text(cells[-1], style=colour))
    sentence, style = totals(run, checking)
    return table, Text(sentence, style=colours[style])
