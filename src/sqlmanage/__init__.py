"""sqlmanage: Django's manage.py migration commands for SQLAlchemy projects, on Alembic."""

__version__ = "0.1.0"


def call_command(command_name, *args, **options):
    """Run a command from Python, like Django's ``call_command``; see ``sqlmanage.cli.call_command``.

    ``call_command("migrate", "0003", fake=True)``, ``call_command("makemigrations",
    name="x", empty=True)``, ``call_command("check", stdout=buffer)``. Imported lazily so
    that ``import sqlmanage`` stays cheap.
    """
    from sqlmanage.cli import call_command as run

    return run(command_name, *args, **options)
