"""The two ways an import ends early, kept apart because the command answers them differently.

A UsageError is the caller's to fix before anything is sent (exit code 2); an ImportStopped means the import
was under way and stopped before the end (exit code 3): its checkpoint is intact and a rerun resumes it.
"""

from __future__ import annotations

__all__ = ["ImportStopped", "UsageError"]


class UsageError(Exception):
    """The command, its mapping or its files cannot work as given; nothing was sent."""


class ImportStopped(Exception):
    """The server could not take a batch (retries exhausted, or an error no retry can fix)."""

    def __init__(self, message: str, *, code: str = "", usage: bool = False) -> None:
        super().__init__(message)
        self.code = code
        # True when the cause is the caller's (bad API key, a batch the server refuses whole).
        self.usage = usage
