"""Keep database passwords out of every message, at every verbosity.

``database.py`` registers each password it sees; the error boundary and the renderers pass
text through ``redact`` before it reaches a stream. The percent-encoded form is registered
too, since URLs carry passwords that way.
"""

from __future__ import annotations

from urllib.parse import quote, quote_plus

_secrets: set[str] = set()
MASK = "***"


def register_secret(secret: str | None) -> None:
    """Remember a secret so that ``redact`` removes it from any text."""
    if not secret or len(secret) < 2:
        return
    _secrets.update({secret, quote(secret, safe=""), quote_plus(secret)})


def redact(text: str) -> str:
    """Return ``text`` with every registered secret masked, longest first."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text
