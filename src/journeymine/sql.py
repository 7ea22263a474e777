"""SQL fragments used across the analyses: literals, identifiers and activity patterns.

Values from a spec or a user reach SQL through these (or as bound parameters), never pasted.
"""

from __future__ import annotations


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def glob_any(column: str, patterns: tuple[str, ...]) -> str:
    """A condition: ``column`` matches any of the shell-style ``patterns`` (false if none)."""
    if not patterns:
        return "false"
    return "(" + " OR ".join(f"{column} GLOB {literal(p)}" for p in patterns) + ")"
