"""The lines ``adopt`` prints: the files, what was carried over, what was not, next steps."""

from __future__ import annotations

from collections.abc import Iterator

Line = tuple[str, "str | None"]


def adoption_lines(adoption, dry_run: bool, verbosity: int) -> Iterator[Line]:
    if verbosity < 1:
        return
    root = adoption.root
    yield ("Would write:" if dry_run else "Wrote:"), "heading"
    for planned in adoption.files:
        path = planned.path.relative_to(root) if planned.path.is_relative_to(root) else planned.path
        note = {"create": "new", "edit": "edited", "replace": "replaced"}[planned.action]
        if planned.kept_as is not None:
            note += f"; the original kept as {planned.kept_as.name}"
        yield f"  {path} ({note})", None
        if verbosity >= 2 and planned.path.suffix == ".py" and planned.action != "replace":
            for line in planned.content.splitlines():
                yield f"      {line}", None
    yield "Carried over:", "heading"
    for item in adoption.carried:
        yield f"  + {item}", "success"
    if adoption.not_carried:
        yield "Not carried over (do it by hand):", "heading"
        for item in adoption.not_carried:
            yield f"  ! {item}", "warning"
    yield "", None
    yield "Next steps:", "heading"
    if dry_run:
        yield "  sqlmanage adopt", None
    yield "  python manage.py showmigrations", None
    yield "  python manage.py makemigrations --check   # the models match the history?", None
