"""structlog configuration (called by the CLI only), with secret redaction as the last line of defence.

Nothing in ordersync logs a key on purpose; the redaction processor still masks any value of
APCA_API_KEY_ID / APCA_API_SECRET_KEY and any field whose name looks like a credential.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO, cast

import structlog

_SENSITIVE = ("secret", "password", "api_key", "key_id", "token", "authorization")


def redactor(secrets: list[str]) -> structlog.types.Processor:
    """Return a processor that masks credential fields and any occurrence of ``secrets``."""

    def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key in list(event):
            value = event[key]
            if any(s in key.lower() for s in _SENSITIVE):
                event[key] = "***"
            elif isinstance(value, str):
                for secret in secrets:
                    if secret in value:
                        value = value.replace(secret, "***")
                event[key] = value
        return event

    return redact


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is at the time of writing, not at the time of configuring.

    Configuration is process-wide; a caller that swapped stderr and closed it afterwards (a test runner
    capturing a CLI call, a daemon redirecting its streams) must not leave every later log line raising
    "I/O operation on closed file" inside the engine's loops."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(*, json: bool, level: str = "info", secrets: list[str] | None = None) -> None:
    """Configure structlog for the process: JSON lines for services, readable lines for a terminal."""
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redactor(secrets or []),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=cast(TextIO, _CurrentStderr())),
        cache_logger_on_first_use=False,
    )
