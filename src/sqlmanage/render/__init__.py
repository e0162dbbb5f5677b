"""Renderers: turn the data that core functions return into text. They never touch a database.

``plain`` writes Django's lines (stable byte for byte: CI parses them), ``rich_table`` the
terminal tables, ``json_data`` machine-readable output.
"""

from __future__ import annotations


def printable(text: str) -> str:
    """User-provided text with control characters (ANSI escapes, newlines) shown escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
