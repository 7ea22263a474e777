"""One root error, with the built-in error each kind also is, so callers may catch either."""

from __future__ import annotations


class JourneymineError(Exception):
    """Root of every error journeymine raises on purpose."""


class SourceFormatError(ValueError, JourneymineError):
    """A landing file is not in the format its source folder promises; names the file."""

    def __init__(self, file: str, message: str) -> None:
        super().__init__(f"{file}: {message}")
        self.file = file


class SpecError(ValueError, JourneymineError):
    """The journey spec is invalid; the message names the file and the key."""


class WarehouseError(RuntimeError, JourneymineError):
    """The warehouse cannot be opened or written (locked by another run, wrong schema...)."""


class EventLogError(ValueError, JourneymineError):
    """An event log cannot be read with the given column mapping."""


class UsageError(ValueError, JourneymineError):
    """An argument names nothing that exists (a stage, a segment, a person, a folder)."""
