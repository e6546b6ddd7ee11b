"""The one exception forensics raises: input that cannot be read as a log at all.

Lines that cannot be parsed are never errors (they are counted and shown in the report); this exception
is for what the caller must handle before any report exists: no path, a missing path, a directory, a
file that cannot be opened, or a gzip stream that is corrupt before its first line. It belongs to the
project's one exception tree (`ordersync.domain.errors`, a leaf module), so the CLI's single
`OrderSyncError` handler maps it to exit code 2 with its one-line message (docs/operations.md §6).
"""

from __future__ import annotations

from pathlib import Path

from ordersync.domain.errors import OrderSyncError


class LogInputError(OrderSyncError):
    """A log path cannot be read; the message is one line and names the path."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason
