"""Logging configured while stderr was a temporary stream keeps working after that stream is closed."""

from __future__ import annotations

import io
import sys

import pytest
import structlog

from ordersync.logging import configure


def test_log_lines_go_to_the_current_stderr_not_a_closed_one(monkeypatch: pytest.MonkeyPatch) -> None:
    captured = io.StringIO()
    monkeypatch.setattr(sys, "stderr", captured)
    configure(json=True, level="info")
    captured.close()  # what a test runner does to the stream it lent a CLI call
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)
    structlog.get_logger("t").warning("engine.alert", alert="x")
    assert "engine.alert" in later.getvalue()
    structlog.reset_defaults()
