"""Adopt an existing Alembic project: read its alembic.ini and env.py, plan sqlmanage's files.

Nothing is executed: env.py is read as source (``ast``), so a project whose env.py connects
somewhere on import is safe to adopt. What env.py held moves to the settings module: the URL
source, the models (``target_metadata``), ``include_object`` / ``include_name`` /
``process_revision_directives`` (functions defined in env.py are copied, with what they use,
into ``env_hooks.py``, which only comparing commands import),
the comparison switches and the version table. env.py is replaced by sqlmanage's two lines and
kept as ``env.py.orig``; ``versions/`` is never touched. What could not be carried over is
listed with where it goes instead.
"""

from __future__ import annotations

import ast
import builtins
import configparser
import re
import sys
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from sqlmanage.errors import SqlmanageError

SETTINGS_MODULE = "sqlmanage_settings"
HOOKS_MODULE = "env_hooks"  # env.py's functions, apart: importing them may be slow (Prefect)
HOOKS = {
    "include_object": "INCLUDE_OBJECT",
    "include_name": "INCLUDE_NAME",
    "process_revision_directives": "PROCESS_REVISION_DIRECTIVES",
}
LITERAL_OPTIONS = {
    "compare_type": "COMPARE_TYPE",
    "compare_server_default": "COMPARE_SERVER_DEFAULT",
    "render_as_batch": "RENDER_AS_BATCH",
    "version_table": "VERSION_TABLE",
    "version_table_schema": "VERSION_TABLE_SCHEMA",
    "include_schemas": "INCLUDE_SCHEMAS",
}
# Options whose Alembic default differs from sqlmanage's: an env.py that leaves them unset
# compared without them, and so does the adopted project (no changes the team never saw).
ALEMBIC_DEFAULTS = {"compare_server_default": "COMPARE_SERVER_DEFAULT"}
# Options Alembic also takes as a callable (asked first, None falls back to its comparison).
CALLABLE_OPTIONS = {"compare_type", "compare_server_default"}
PLACEHOLDER_URL = "driver://user:pass@localhost/dbname"


@dataclass
class PlannedFile:
    path: Path
    content: str
    action: str  # "create", "replace", "edit"
    kept_as: Path | None = None


@dataclass
class Adoption:
    """What adopting writes, what it carried over, and what it could not."""

    root: Path
    settings_module: str
    files: list[PlannedFile] = field(default_factory=list)
    carried: list[str] = field(default_factory=list)
    not_carried: list[str] = field(default_factory=list)


def plan_adoption(root: Path, settings_module: str = SETTINGS_MODULE) -> Adoption:
    """Read ``root/alembic.ini`` and the env.py it names; return the files to write."""
    ini_path = root / "alembic.ini"
    if not ini_path.is_file():
        raise SqlmanageError(
            f"No alembic.ini in {root}.",
            hint="Run adopt from the folder that holds your Alembic project's alembic.ini, or "
            "start a new project with 'sqlmanage startproject NAME'.",
        )
    ini_text = ini_path.read_text(encoding="utf-8")
    parser = configparser.ConfigParser(defaults={"here": str(root)})
    parser.read_string(ini_text)
    if not parser.has_section("alembic") or not parser.get(
        "alembic", "script_location", fallback=None
    ):
        raise SqlmanageError(
            f"{ini_path} has no script_location in its [alembic] section.",
            hint="adopt reads the migrations folder from alembic.ini's script_location.",
        )
    location = parser.get("alembic", "script_location")
    if (
        ":" in location
        and not Path(location).is_absolute()
        and not re.match(r"^[A-Za-z]:[\\/]", location)
    ):
        raise SqlmanageError(
            f"script_location = {location} names a package resource; adopt needs a folder.",
            hint="Set script_location to the migrations folder's path (e.g. myapp/migrations).",
        )
    migrations = (root / location).resolve() if not Path(location).is_absolute() else Path(location)
    env_path = migrations / "env.py"
    if not env_path.is_file():
        raise SqlmanageError(
            f"No env.py in {migrations}.", hint="script_location must name the folder of env.py."
        )
    env_source = env_path.read_text(encoding="utf-8")
    if "sqlmanage.alembic_env" in env_source:
        raise SqlmanageError(
            f"{env_path} is already sqlmanage's env.py: this project has been adopted.",
            hint="Run 'python manage.py showmigrations' to see where the database stands.",
        )
    if (root / f"{settings_module}.py").exists():
        raise SqlmanageError(
            f"{root / (settings_module + '.py')} already exists; adopt never overwrites a file.",
            hint="Remove it, or choose another name with --settings-module.",
        )

    adoption = Adoption(root=root, settings_module=settings_module)
    reading = _EnvReading(env_source)
    settings, hooks = _settings_source(root, migrations, parser, reading, adoption)
    templates = files("sqlmanage") / "templates"
    adoption.files.append(PlannedFile(root / f"{settings_module}.py", settings, "create"))
    if hooks is not None:
        if (root / f"{HOOKS_MODULE}.py").exists():
            raise SqlmanageError(
                f"{root / (HOOKS_MODULE + '.py')} already exists; adopt never overwrites a file.",
                hint="Remove or rename it: adopt copies env.py's functions there.",
            )
        adoption.files.append(PlannedFile(root / f"{HOOKS_MODULE}.py", hooks, "create"))
    adoption.files.append(
        PlannedFile(
            env_path,
            (templates / "migrations" / "env.py").read_text(encoding="utf-8"),
            "replace",
            kept_as=env_path.with_name("env.py.orig"),
        )
    )
    if not (migrations / "script.py.mako").exists():
        adoption.files.append(
            PlannedFile(
                migrations / "script.py.mako",
                (templates / "migrations" / "script.py.mako").read_text(encoding="utf-8"),
                "create",
            )
        )
    if not (root / "manage.py").exists():
        manage = (templates / "project" / "default" / "manage.py-tpl").read_text(encoding="utf-8")
        manage = manage.replace("{{ project_name }}.settings", settings_module)
        manage = manage.replace("{{ project_name }}'s", "This project's")
        adoption.files.append(PlannedFile(root / "manage.py", manage, "create"))
    adoption.files.append(
        PlannedFile(ini_path, _ini_with_settings(ini_text, settings_module), "edit")
    )
    adoption.carried.append(
        f"alembic.ini: sqlmanage_settings = {settings_module}, so plain alembic uses "
        "the same settings"
    )
    _note_version_folders(migrations, reading, parser, adoption)
    for call in reading.module_calls():
        adoption.not_carried.append(
            f"env.py runs {call} when it loads; sqlmanage imports MODELS instead: if the models "
            "need that call, make it in a module MODELS names"
        )
    for key in ("file_template", "version_locations", "truncate_slug_length", "timezone"):
        if parser.get("alembic", key, fallback=None):
            adoption.carried.append(f"{key}: kept in alembic.ini, which sqlmanage reads")
    return adoption


def _note_version_folders(
    migrations: Path, reading: _EnvReading, parser, adoption: Adoption
) -> None:
    """A history split per database (Prefect: versions/sqlite, versions/postgresql, env.py
    picking one by dialect) is not something the settings can say yet: tell how to lay it out."""
    if parser.get("alembic", "version_locations", fallback=None):
        return
    versions = migrations / "versions"
    folders = (
        sorted(p.name for p in versions.iterdir() if p.is_dir() and any(p.glob("*.py")))
        if versions.is_dir()
        else []
    )
    own = any(versions.glob("*.py")) if versions.is_dir() else False
    picks = "version_locations" in reading.source
    if not folders or own:
        if picks:
            adoption.not_carried.append(
                "env.py sets the version locations itself; sqlmanage reads them from alembic.ini "
                "(version_locations) or versions/: move the setting there"
            )
        return
    names = ", ".join(f"versions/{name}" for name in folders)
    adoption.not_carried.append(
        f"env.py picks one of {names} per database; sqlmanage keeps one history per migrations "
        "folder: give each its own folder (env.py and script.py.mako copied, the folder's files "
        "under its versions/), and choose it in the settings, e.g. MIGRATIONS = BASE_DIR / "
        "('migrations_postgresql' if DATABASE_URL.startswith('postgres') else 'migrations_sqlite'), "
        "or one DATABASES alias per folder"
    )


def write_adoption(adoption: Adoption) -> None:
    """Write the planned files; env.py is renamed to env.py.orig first."""
    for planned in adoption.files:
        if planned.kept_as is not None and planned.path.exists():
            planned.path.replace(planned.kept_as)
        planned.path.write_text(planned.content, encoding="utf-8")
        if planned.path.name == "manage.py":
            planned.path.chmod(0o755)


class _EnvReading:
    """What env.py says, read from its syntax tree: imports, functions, configure() options."""

    def __init__(self, source: str):
        self.source = source
        try:
            self.tree = ast.parse(source)
        except SyntaxError as exc:
            raise SqlmanageError(
                f"env.py has a syntax error at line {exc.lineno}: {exc.msg}.",
                hint="Fix env.py (or copy it from version control) and run adopt again.",
            ) from exc
        self.imports: dict[str, str] = {}  # local name -> dotted origin
        self.import_nodes: dict[str, ast.stmt] = {}
        self.functions: dict[str, ast.FunctionDef] = {}
        self.assignments: dict[str, ast.expr] = {}
        self.assignment_nodes: dict[str, ast.Assign] = {}
        for node in self.tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    self.imports[local] = alias.name if alias.asname else alias.name.split(".")[0]
                    self.import_nodes[local] = node
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.imports[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                    self.import_nodes[alias.asname or alias.name] = node
            elif isinstance(node, ast.FunctionDef):
                self.functions[node.name] = node
            elif (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                self.assignments[node.targets[0].id] = node.value
                self.assignment_nodes[node.targets[0].id] = node
        self.configure: dict[str, ast.expr] = {}
        for call in ast.walk(self.tree):
            if isinstance(call, ast.Call) and _dotted(call.func) in (
                "context.configure",
                "configure",
            ):
                for keyword in call.keywords:
                    if keyword.arg and keyword.arg not in self.configure:
                        self.configure[keyword.arg] = keyword.value

    def dotted(self, node: ast.expr) -> str | None:
        """``Base.metadata`` -> ``myapp.models.Base.metadata`` through env.py's imports."""
        text = _dotted(node)
        if text is None:
            return None
        head, _, rest = text.partition(".")
        if head in self.imports:
            return self.imports[head] + (f".{rest}" if rest else "")
        if head in self.assignments:
            return self.dotted(self.assignments[head]) if not rest else None
        return None

    def module_calls(self) -> list[str]:
        """Calls env.py makes at its top level, other than running its own functions
        (Airflow's ``models.import_all_models()``)."""
        calls = []
        for node in self.tree.body:
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
                name = _dotted(node.value.func)
                if (
                    name
                    and name not in self.functions
                    and not name.startswith(("context.", "fileConfig"))
                ):
                    calls.append(f"{name}()")
        return calls

    def environment_variables(self) -> list[str]:
        names = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Subscript) and _dotted(node.value) == "os.environ":
                key = node.slice
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    names.append(key.value)
            elif (
                isinstance(node, ast.Call)
                and _dotted(node.func) in ("os.environ.get", "os.getenv")
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names.append(node.args[0].value)
        return list(dict.fromkeys(names))

    def copied_function(self, name: str) -> tuple[dict[int, str], str, list[str], list[str]]:
        """The env.py statements the function needs (imports, module-level values and what
        those use, by line), its source, the names it uses that env.py does not define, and
        the module-level values it needs that env.py computes when it runs."""
        function = self.functions[name]
        needed: dict[int, str] = {}  # env.py line -> statement, so the order is env.py's
        unresolved: list[str] = []
        computed: list[str] = []
        pending = sorted(_free_names(function) - {name})
        seen: set[str] = set()
        while pending:
            used_name = pending.pop(0)
            if used_name in seen:
                continue
            seen.add(used_name)
            if used_name in self.import_nodes:
                node = self.import_nodes[used_name]
                needed[node.lineno] = ast.get_source_segment(self.source, node) or ""
            elif used_name in self.assignment_nodes:
                node = self.assignment_nodes[used_name]
                needed[node.lineno] = ast.get_source_segment(self.source, node) or ""
                if any(isinstance(inner, ast.Call) for inner in ast.walk(node.value)):
                    computed.append(used_name)
                pending += sorted(_free_names(node.value) - seen)
            elif used_name in self.functions:
                node = self.functions[used_name]
                needed[node.lineno] = ast.get_source_segment(self.source, node) or ""
                pending += sorted(_free_names(node) - seen - {used_name})
            elif used_name not in dir(builtins):
                unresolved.append(used_name)
        return needed, ast.get_source_segment(self.source, function) or "", unresolved, computed


def _hooks_source(settings_module: str, needed: dict[int, str], functions: list[str]) -> str:
    """The hooks module: env.py's imports, then its module-level values, then the functions."""
    statements = [needed[line] for line in sorted(needed)]
    imports = [text for text in statements if text.startswith(("import ", "from "))]
    others = [text for text in statements if not text.startswith(("import ", "from "))]
    lines = [
        '"""What env.py (kept as env.py.orig) held for autogenerate, copied by \'sqlmanage adopt\'.',
        "",
        f"Named by {settings_module}.py; imported only by the commands that compare models with",
        'the database, so the settings stay quick to load."""',
        "",
        *imports,
    ]
    if others:
        lines += ["", *others]
    text = "\n".join(lines) + "\n"
    for function in functions:
        text += "\n\n" + function + "\n"
    return text


def _free_names(node: ast.AST) -> set[str]:
    """Names ``node`` reads that it does not bind itself (arguments, assignments, loops)."""
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = {a.arg for a in ast.walk(node) if isinstance(a, ast.arg)}
    bound |= {
        n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    return used - bound


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _settings_source(
    root: Path, migrations: Path, parser, reading: _EnvReading, adoption: Adoption
) -> tuple[str, str | None]:
    """The settings module's text, and the hooks module's (None when env.py had no hooks)."""
    module = adoption.settings_module
    lines = [
        "\"\"\"sqlmanage's settings for this project, written by 'sqlmanage adopt' from alembic.ini",
        'and env.py (kept as env.py.orig). manage.py and plain alembic both read them."""',
        "",
        "import os",
        "from pathlib import Path",
        "",
        "BASE_DIR = Path(__file__).resolve().parent",
        "",
    ]
    lines += _url_lines(parser, reading, adoption)
    lines += _models_lines(root, reading, adoption)
    relative = migrations.relative_to(root) if migrations.is_relative_to(root) else migrations
    lines += ["", f"MIGRATIONS = BASE_DIR / {str(relative.as_posix())!r}"]
    adoption.carried.append(
        f"MIGRATIONS: script_location ({relative.as_posix()}); versions/ is untouched"
    )

    copied: list[str] = []
    needed: dict[int, str] = {}
    hook_options = dict(HOOKS)
    for option, setting in LITERAL_OPTIONS.items():
        value = reading.configure.get(option)
        if value is None:
            continue
        if isinstance(value, ast.Name) and value.id in reading.assignments:
            value = reading.assignments[value.id]  # Airflow: version_table=version_table
        try:
            literal = ast.literal_eval(value)
        except ValueError:
            if option in CALLABLE_OPTIONS and (
                _dotted(value) in reading.functions or reading.dotted(value)
            ):
                hook_options[option] = setting  # a comparison callable: carried like the filters
                continue
            adoption.not_carried.append(
                f"{option}={ast.get_source_segment(reading.source, value)} in env.py is not a plain "
                f"value; set {setting} in {module}.py by hand (sqlmanage's default is used meanwhile)"
            )
            continue
        lines.append(f"{setting} = {literal!r}")
        adoption.carried.append(f"{setting}: {option}={literal!r} from env.py")
    for option, setting in ALEMBIC_DEFAULTS.items():
        if option not in reading.configure:
            lines.append(f"{setting} = False  # env.py left {option} unset: Alembic's default")
            adoption.carried.append(
                f"{setting}: False, Alembic's default, as env.py left {option} unset "
                "(sqlmanage's own default is True)"
            )
    for option, setting in hook_options.items():
        value = reading.configure.get(option)
        if value is None:
            continue
        name = _dotted(value)
        if name in reading.functions:
            statements, source, unresolved, computed = reading.copied_function(name)
            needed.update(statements)
            if source not in copied:
                copied.append(source)
            lines.append(f"{setting} = {HOOKS_MODULE + '.' + name!r}")
            adoption.carried.append(
                f"{setting}: {name}() copied from env.py into {HOOKS_MODULE}.py"
            )
            if computed:
                adoption.not_carried.append(
                    f"{name}() uses {', '.join(computed)}, which env.py computes when it runs: "
                    f"copied as is into {HOOKS_MODULE}.py; check that it describes the database "
                    "DATABASE_URL names (sqlmanage connects there, not where env.py connected)"
                )
            if unresolved:
                adoption.not_carried.append(
                    f"{name}() uses {', '.join(unresolved)} from env.py, which adopt could not copy: "
                    f"define them in {HOOKS_MODULE}.py"
                )
        elif reading.dotted(value):
            lines.append(f"{setting} = {reading.dotted(value)!r}")
            adoption.carried.append(f"{setting}: {reading.dotted(value)} from env.py")
        else:
            adoption.not_carried.append(
                f"{option}={ast.get_source_segment(reading.source, value)} in env.py: write it as a "
                f"function in {module}.py and name it in {setting}"
            )
    lines += _template_args_lines(reading, adoption)
    for option in sorted(
        set(reading.configure) - set(LITERAL_OPTIONS) - set(hook_options) - _HANDLED_OPTIONS
    ):
        adoption.not_carried.append(
            f"context.configure({option}=...) in env.py has no sqlmanage setting; it is dropped "
            "(see env.py.orig)"
        )
    hooks = _hooks_source(module, needed, copied) if copied else None
    return "\n".join(lines) + "\n", hooks


_HANDLED_OPTIONS = {
    "connection",
    "url",
    "target_metadata",
    "literal_binds",
    "dialect_opts",
    "transaction_per_migration",
    "template_args",
}


def _template_args_lines(reading: _EnvReading, adoption: Adoption) -> list[str]:
    """``template_args`` for script.py.mako: literal values become TEMPLATE_ARGS; a
    ``dialect`` entry needs nothing, since makemigrations passes the database's dialect name."""
    value = reading.configure.get("template_args")
    if not isinstance(value, ast.Dict):
        if value is not None:
            adoption.not_carried.append(
                f"template_args={ast.get_source_segment(reading.source, value)} in env.py: set "
                f"TEMPLATE_ARGS in {adoption.settings_module}.py to the names script.py.mako uses"
            )
        return []
    literal: dict[str, object] = {}
    dropped: list[str] = []
    for key, item in zip(value.keys, value.values, strict=True):
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            dropped.append((ast.get_source_segment(reading.source, key) or "?") if key else "**")
            continue
        if key.value == "dialect":
            adoption.carried.append(
                "script.py.mako's ${dialect}: makemigrations passes the "
                "database's dialect name, as env.py's template_args did"
            )
            continue
        try:
            literal[key.value] = ast.literal_eval(item)
        except ValueError:
            dropped.append(key.value)
    if dropped:
        adoption.not_carried.append(
            f"template_args {', '.join(dropped)} in env.py are not plain values: add them to "
            f"TEMPLATE_ARGS in {adoption.settings_module}.py"
        )
    if not literal:
        return []
    adoption.carried.append(f"TEMPLATE_ARGS: {', '.join(literal)} from env.py's template_args")
    return [f"TEMPLATE_ARGS = {literal!r}"]


def _url_lines(parser, reading: _EnvReading, adoption: Adoption) -> list[str]:
    ini_url = parser.get("alembic", "sqlalchemy.url", fallback="").strip()
    if ini_url in (PLACEHOLDER_URL, '""', "''"):  # MLflow ships sqlalchemy.url = ""
        ini_url = ""
    reads_ini = any(
        word in reading.source for word in ("sqlalchemy.url", "get_section", "engine_from_config")
    )
    if ini_url and not reads_ini:  # Airflow's ini says scheme://localhost/airflow, never read
        adoption.not_carried.append(
            f"alembic.ini's sqlalchemy.url ({ini_url}): env.py never reads it, so it is not taken "
            "as the database"
        )
        ini_url = ""
    variables = [
        v
        for v in reading.environment_variables()
        if "URL" in v.upper() or "DB" in v.upper() or "DATABASE" in v.upper() or "URI" in v.upper()
    ]
    if variables:
        variable = variables[0]
        fallback = f" or {ini_url!r}" if ini_url else ""
        adoption.carried.append(
            f"DATABASE_URL: the environment variable {variable}, as env.py read it"
            + (", then alembic.ini's sqlalchemy.url" if ini_url else "")
        )
        lines = [
            "# DATABASE_URL in the environment overrides this, as for every sqlmanage project.",
            f"DATABASE_URL = os.environ.get({variable!r}){fallback}",
        ]
        if not ini_url:  # never fall back to the embedded SQLite default: say what is missing
            lines += [
                "if not DATABASE_URL and not os.environ.get('DATABASE_URL'):",
                f"    raise RuntimeError('Set {variable}: the database URL is read from it.')",
            ]
        return lines
    if ini_url:
        adoption.carried.append("DATABASE_URL: sqlalchemy.url from alembic.ini")
        return [
            "# DATABASE_URL in the environment overrides this.",
            f"DATABASE_URL = {ini_url!r}",
        ]
    where = (
        "from alembic.ini's sqlalchemy.url, which is empty (the application fills it in)"
        if reads_ini
        else "in a way adopt cannot read"
    )
    adoption.not_carried.append(
        f"the database URL: env.py gets it {where}; set DATABASE_URL in the "
        "environment or in the settings (until then the default is db.sqlite3 beside manage.py)"
    )
    return [
        "# Where env.py found its URL could not be read; DATABASE_URL in the environment is used.",
        "DATABASE_URL = os.environ.get('DATABASE_URL')",
    ]


def _models_lines(root: Path, reading: _EnvReading, adoption: Adoption) -> list[str]:
    value = reading.assignments.get("target_metadata") or reading.configure.get("target_metadata")
    if value is None or (isinstance(value, ast.Constant) and value.value is None):
        adoption.not_carried.append(
            "the models: env.py has no target_metadata; set MODELS to the packages that define "
            "your models (autogenerate needs them)"
        )
        return ["MODELS = []  # the packages or modules that define your models"]
    elements = value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value]
    traced = [reading.dotted(element) for element in elements]
    paths = [path for path in traced if path]
    if len(paths) != len(traced):
        adoption.not_carried.append(
            f"target_metadata = {ast.get_source_segment(reading.source, value)} could not be traced "
            "to an import; set MODELS (and TARGET_METADATA) by hand"
        )
        return ["MODELS = []  # the packages or modules that define your models"]
    modules = list(dict.fromkeys(_defining_module(root, path) for path in paths))
    declaring = _modules_declaring_tables(root, modules)
    if declaring:
        adoption.carried.append(
            f"MODELS: {', '.join(declaring)} (they define the tables of {', '.join(modules)}, "
            "which defines none: env.py relied on the application importing them)"
        )
        modules = declaring
    else:
        adoption.carried.append(f"MODELS: {', '.join(modules)} (where target_metadata comes from)")
    lines = [f"MODELS = {modules!r}"]
    if len(paths) == 1:
        lines.append(f"TARGET_METADATA = {paths[0]!r}")
        adoption.carried.append(f"TARGET_METADATA: {paths[0]}")
    return lines


def _module_file(root: Path, dotted: str) -> Path | None:
    """The source file of a module, found on ``root`` and sys.path without importing it."""
    parts = dotted.split(".")
    for entry in [str(root), *sys.path]:
        base = Path(entry or ".").joinpath(*parts)
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _modules_declaring_tables(root: Path, modules: list[str]) -> list[str]:
    """When target_metadata's module declares no table (MLflow's ``base_sql_model``: only the
    declarative base), the modules of its package that import it and declare tables; else []."""
    found: list[str] = []
    for module in modules:
        path = _module_file(root, module)
        if path is None or _declares_tables(path.read_text(encoding="utf-8", errors="replace")):
            return []
        top = module.split(".")[0]
        package = _module_file(root, top)
        if package is None or package.name != "__init__.py":
            return []
        package_dir = package.parent
        for candidate in sorted(package_dir.rglob("*.py")):
            relative = candidate.relative_to(package_dir.parent)
            if {"migrations", "db_migrations", "tests", "_migrations"} & set(relative.parts):
                continue
            text = candidate.read_text(encoding="utf-8", errors="replace")
            if module in text and _declares_tables(text):
                found.append(".".join(relative.with_suffix("").parts))
    return list(dict.fromkeys(found))


def _declares_tables(source: str) -> bool:
    return "__tablename__" in source or re.search(r"\bTable\(", source) is not None


def _defining_module(root: Path, dotted: str) -> str:
    """The longest prefix of ``dotted`` that is a module or package under ``root``."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        candidate = root.joinpath(*parts[:end])
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts[:end])
    return ".".join(parts[:-2]) if len(parts) > 2 else parts[0]


def _ini_with_settings(ini_text: str, settings_module: str) -> str:
    """alembic.ini with ``sqlmanage_settings`` added to its [alembic] section, all else kept."""
    lines = ini_text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if line.strip() == "[alembic]":
            lines.insert(
                index + 1,
                f"# Added by 'sqlmanage adopt': the settings manage.py and alembic share.\n"
                f"sqlmanage_settings = {settings_module}\n",
            )
            break
    return "".join(lines)
