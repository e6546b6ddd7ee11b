"""The one exception forensics raises: input that cannot be read as a log at all.

Lines that cannot be parsed are never errors (they are counted and shown in the report); this exception
is for what the caller must handle before any report exists: a missing path, a directory, a file that
cannot be opened, or a gzip stream that is corrupt before its first line. The CLI maps it to exit code 2
(DESIGN §3). It derives from `Exception` only because `ordersync.domain.errors` does not exist yet;
re-parent it under `OrderSyncError` when it does. Imports nothing.
"""

from __future__ import annotations

from pathlib import Path


class LogInputError(Exception):
    """A log path cannot be read; the message is one line and names the path."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
