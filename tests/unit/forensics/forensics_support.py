"""Shared paths and record builders for the forensics tests (a plain module: `conftest` names clash)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType

from ordersync.forensics import ErrorBody

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "logs"


def utc(clock: str) -> datetime:
    """2025-10-10 at `clock` (HH:MM:SS[.ffffff]) in UTC."""
    return datetime.fromisoformat(f"2025-10-10 {clock}").replace(tzinfo=UTC)


def reserved_body(symbol: str, qty: int, related: str) -> ErrorBody:
    """The seed's body shape: every share exists and is held for the related order."""
    q = Decimal(qty)
    return ErrorBody(
        code=40310000,
        message=f"insufficient qty available for order (requested: {qty}, available: 0)",
        symbol=symbol,
        available=Decimal(0),
        existing_qty=q,
        held_for_orders=q,
        related_orders=(related,),
    )


SHORT_SELL = ErrorBody(code=40310000, message="cannot open a short sell while a long buy order is open")


def fixture_module(name: str) -> ModuleType:
    """Import a generator script of tests/fixtures/logs (not a package) by file name."""
    spec = importlib.util.spec_from_file_location(name, LOGS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve their module
    spec.loader.exec_module(module)
    return module
