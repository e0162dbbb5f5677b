"""Names and revision ids of new migration files, and alembic.ini's post-write hooks.

Two schemes. sqlmanage's own, Django's ``NNNN_slug`` (the revision id is the file name),
continues a history that uses it, and starts an empty one. Alembic's, a random hex revision
id and the file name that alembic.ini's ``file_template`` asks for (Alembic's default
``%(rev)s_%(slug)s``), is used whenever alembic.ini sets ``file_template``, and for a history
that has no ``NNNN_`` migration at all (a hex or date-named history started with plain
Alembic), so that such a history is never continued with a made-up ``0068_``.
``truncate_slug_length`` and ``timezone`` are honoured in both schemes, as Alembic reads them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

from sqlmanage.errors import SqlmanageError

REVISION_MAX = 32  # Alembic's version_num column
ALEMBIC_SLUG_LENGTH = 40  # Alembic's default truncate_slug_length
INI_HINT = "Fix it in the [alembic] section of alembic.ini."


@dataclass(frozen=True)
class Naming:
    """The naming options of alembic.ini: ``file_template``, ``truncate_slug_length``, ``timezone``."""

    file_template: str | None = None
    truncate_slug_length: int | None = None
    timezone: str | None = None

    @classmethod
    def from_config(cls, config) -> Naming:
        """Read the options as Alembic does (alembic.ini, or pyproject.toml on Alembic 1.16+)."""
        get = getattr(config, "get_alembic_option", None) or config.get_main_option
        length = get("truncate_slug_length")
        try:
            truncate = int(length) if length not in (None, "") else None
        except ValueError:
            raise SqlmanageError(
                f"truncate_slug_length = {length!r} is not a number.", hint=INI_HINT
            ) from None
        if truncate is not None and truncate < 1:
            raise SqlmanageError(
                f"truncate_slug_length = {truncate} must be at least 1.", hint=INI_HINT
            )
        return cls(get("file_template") or None, truncate, get("timezone") or None)

    @property
    def spelled_template(self) -> str | None:
        """``file_template`` as alembic.ini spells it (``%%`` for each ``%``)."""
        return self.file_template.replace("%", "%%") if self.file_template else None

    def now(self) -> datetime:
        """The creation time, in ``timezone`` when one is set (Alembic's rule), to the second."""
        if self.timezone is None:
            return datetime.now().replace(microsecond=0)
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        for name in (self.timezone, self.timezone.upper()):
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return datetime.now(tz=dt_timezone.utc).astimezone(zone).replace(microsecond=0)
        raise SqlmanageError(
            f"Can't locate timezone: {self.timezone} (the timezone option of alembic.ini).",
            hint="Use an IANA name such as UTC or Europe/Paris; on Windows, pip install tzdata.",
        )

    def numbered(self, history, tree: str | None = None) -> bool:
        """Whether new migrations (of ``tree``) continue sqlmanage's ``NNNN_slug`` scheme."""
        if self.file_template is not None:
            return False
        migrations = history.tree(tree)
        return not migrations or any(m.number is not None for m in migrations)

    def numbered_slug(self, slug: str) -> str:
        """The slug of a ``NNNN_slug`` id, shortened at a word when truncate_slug_length is set."""
        if self.truncate_slug_length is None or len(slug) <= self.truncate_slug_length:
            return slug
        return cut(slug, self.truncate_slug_length) or slug[: self.truncate_slug_length]

    def file_name(self, revision: str, slug: str, created: datetime) -> str:
        """``file_template`` filled in exactly as Alembic's ``ScriptDirectory`` fills it."""
        length = self.truncate_slug_length or ALEMBIC_SLUG_LENGTH
        if len(slug) > length:
            slug = slug[:length].rsplit("_", 1)[0] + "_"
        template = self.file_template or "%(rev)s_%(slug)s"
        try:
            stem = template % {
                "rev": revision,
                "slug": slug,
                "epoch": int(created.timestamp()),
                "year": created.year,
                "month": created.month,
                "day": created.day,
                "hour": created.hour,
                "minute": created.minute,
                "second": created.second,
            }
        except (KeyError, ValueError, TypeError) as exc:
            raise SqlmanageError(
                f"file_template = {self.spelled_template} cannot name a migration: "
                f"{type(exc).__name__}: {exc}.",
                hint="Alembic's tokens are rev, slug, epoch, year, month, day, hour, minute, "
                "second, e.g. %%(rev)s_%%(slug)s. " + INI_HINT,
            ) from None
        return f"{stem}.py"

    def path_in(self, versions: Path, revision: str, slug: str, created: datetime) -> Path:
        """``file_name`` inside ``versions``; a template that leads out of it is refused."""
        path = versions / self.file_name(revision, slug, created)
        if versions.resolve() not in path.resolve().parents:
            raise SqlmanageError(
                f"file_template = {self.spelled_template} would write {path}, outside {versions}.",
                hint=INI_HINT,
            )
        return path


def new_file(
    naming: Naming,
    history,
    versions: Path,
    slug: str,
    created: datetime,
    revision: str | None = None,
    tree: str | None = None,
) -> tuple[str, Path]:
    """The revision id and path of a new migration of ``tree``; ``revision`` keeps a given
    id (squash). Numbers count within the tree, as Django counts within an app."""
    if revision is None and naming.numbered(history, tree):
        revision = unique_revision(
            f"{history.next_number(tree):04d}_{naming.numbered_slug(slug)}", history, versions
        )
        return revision, versions / f"{revision}.py"
    given = revision is not None
    revision = revision or _fresh_hex_revision(history, versions)
    path = naming.path_in(versions, revision, slug, created)
    if path.exists() and not given:
        raise SqlmanageError(
            f"{path} already exists: file_template = {naming.spelled_template} names this "
            "migration like an earlier one.",
            hint="Give -n another name, or put %%(rev)s in file_template so every name differs.",
        )
    return revision, path


def _fresh_hex_revision(history, versions: Path) -> str:
    """Alembic's random 12-hex-digit revision id, one that no migration has."""
    from alembic.util import rev_id

    while True:
        revision = rev_id()
        if revision not in history.by_id and not any(versions.glob(f"*{revision}*")):
            return revision


def unique_revision(stem: str, history, versions: Path) -> str:
    """Cut to Alembic's 32 characters (at a word where it can) and step past ids taken."""
    candidate = cut(stem, REVISION_MAX)
    counter = 2
    while candidate in history.by_id or (versions / f"{candidate}.py").exists():
        suffix = f"_{counter}"
        candidate = cut(stem, REVISION_MAX - len(suffix)) + suffix
        counter += 1
    return candidate


def cut(stem: str, limit: int) -> str:
    """``stem`` shortened to ``limit`` characters, preferably at an underscore."""
    if len(stem) <= limit:
        return stem
    shortened = stem[:limit]
    word_end = shortened.rfind("_")
    return (shortened[:word_end] if word_end > 5 else shortened).rstrip("_")


def run_post_write_hooks(config, path: Path) -> list[str]:
    """Run alembic.ini's ``post_write_hooks`` on a file just written; the hooks' names.

    Alembic's own hook runner (``alembic_internals.post_write_hooks_runner``: Alembic has no
    public one), so every hook type that ``alembic revision`` runs (console_scripts, exec,
    module, registered ones) runs the same.
    Its "Running post write hook" status line is kept off stdout; the hooks' own output is not.
    """
    import io
    from contextlib import redirect_stdout

    from alembic.util import CommandError

    from sqlmanage.engine.alembic_internals import post_write_hooks_runner

    if hasattr(config, "get_hooks_list"):  # Alembic 1.16+: a list, from ini or pyproject.toml
        hooks = config.get_hooks_list()
        names = [hook["_hook_name"] for hook in hooks]
    else:
        hooks = config.get_section("post_write_hooks", {})
        names = [n for n in re.split(r"[\s,]+", hooks.get("hooks", "")) if n]
    if not names:
        return []
    run_hooks = post_write_hooks_runner()
    if run_hooks is None:
        import alembic

        raise SqlmanageError(
            f"Cannot run the post_write_hooks of alembic.ini with Alembic {alembic.__version__}: "
            "it has no alembic.script.write_hooks._run_hooks.",
            hint=f"The migration {path.name} was written; run the formatter on it by hand, or "
            "install an Alembic version that sqlmanage supports.",
        )
    try:
        with redirect_stdout(io.StringIO()):
            run_hooks(str(path), hooks)
    except CommandError as exc:
        raise SqlmanageError(
            f"The post-write hooks of alembic.ini failed on {path.name}: {exc}",
            hint="The migration file was written as generated. Fix [post_write_hooks] in "
            "alembic.ini, or run the formatter on the file by hand.",
        ) from exc
    return names
