"""Django's makemigrations questions, asked on a terminal.

The logic that finds what to ask lives in ``core.questions``; this is only the asking.
"""

from __future__ import annotations

import ast

import click

from sqlmanage.errors import QuitRequested, SqlmanageError


class InteractiveQuestioner:
    """Asks in Django's words; ``err`` sends the questions to stderr (``--scriptable``)."""

    def __init__(self, err: bool = False):
        self.err = err

    def _say(self, text: str) -> None:
        click.echo(text, err=self.err)

    def rename_column(self, table, old, new, type_text) -> bool:
        return click.confirm(
            f"Was {table}.{old} renamed to {table}.{new} (a {type_text})?",
            default=False,
            prompt_suffix=" ",
            err=self.err,
        )

    def rename_table(self, old, new) -> bool:
        return click.confirm(
            f"Was the table {old} renamed to {new}?", default=False, prompt_suffix=" ", err=self.err
        )

    def not_null_value(self, table, column, type_text, adding) -> object:
        if adding:
            self._say(
                f"It is impossible to add the NOT NULL column {table}.{column} (a {type_text}) "
                "without a default. This is because the database needs something to populate "
                "existing rows."
            )
        else:
            self._say(
                f"It is impossible to change the nullable column {table}.{column} (a {type_text}) "
                "to NOT NULL without providing a default. This is because the database needs "
                "something to put in the rows that hold NULL."
            )
        self._say("Please select a fix:")
        self._say(
            " 1) Provide a one-off default now (will be set on all existing rows with a "
            "null value for this column)"
        )
        self._say(
            " 2) Quit and manually define a server_default (or make the column nullable) "
            "in the model."
        )
        choice = click.prompt(
            "Select an option:", type=click.IntRange(1, 2), prompt_suffix=" ", err=self.err
        )
        if choice == 2:
            raise QuitRequested("Quit: nothing was written.")
        self._say("Please enter the default value as a Python literal (e.g. 0, 'none', True).")
        self._say("Type 'exit' to exit this prompt")
        while True:
            answer = click.prompt(
                ">>>", prompt_suffix=" ", err=self.err, default="", show_default=False
            )
            if answer.strip() == "exit":
                raise SqlmanageError("Quit: nothing was written.")
            if not answer.strip():
                self._say("Please enter some code, or 'exit' (without quotes) to exit.")
                continue
            try:
                return ast.literal_eval(answer.strip())
            except (ValueError, SyntaxError) as exc:
                self._say(f"Invalid input: {exc}")
