"""Platform logs in the seed's format, so ``ordersync analyze`` can read what a demo run did.

Lines look like the seed's (docs/architecture.md §1): ``2025-10-10 15:59:16,078 -
AlpacaAccount - INFO - Successfully submitted order to Alpaca: broker_order_id=...`` and ``... ERROR -
Error submitting order to Alpaca: {json}``, plus the DB-log row ``TP for order N | Error: {json}``.
Timestamps are the demo's virtual time.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO


class PlatformLog:
    """Append-only writer of seed-format lines (a no-op when no path is given)."""

    def __init__(self, path: Path | None) -> None:
        self._file: TextIO | None = path.open("w", encoding="utf-8") if path else None
        self.lines = 0

    def _write(self, at: datetime, logger: str, level: str, text: str) -> None:
        if self._file is None:
            return
        stamp = at.strftime("%Y-%m-%d %H:%M:%S,") + f"{at.microsecond // 1000:03d}"
        self._file.write(f"{stamp} - {logger} - {level} - {text}\n")
        self.lines += 1

    def submitted(
        self, at: datetime, broker_order_id: str, client_order_id: str, symbol: str, side: str, qty: str
    ) -> None:
        """Log a submission the broker answered with 200."""
        self._write(
            at,
            "AlpacaAccount",
            "INFO",
            f"Successfully submitted order to Alpaca: broker_order_id={broker_order_id} "
            f"client_order_id={client_order_id} symbol={symbol} side={side} qty={qty}",
        )

    def refused(
        self,
        at: datetime,
        body: dict[str, Any],
        platform_order: int,
        kind: str,
        symbol: str,
        client_order_id: str,
        side: str = "sell",
    ) -> None:
        """Log a refusal as the seed's platform did: the Alpaca error line and the DB-log row.

        The error line names the order's symbol and client id before the body (as ``key=value``), so a
        body without those fields (a wash-trade refusal) can still be tied to its parent.
        """
        text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        context = f"client_order_id={client_order_id} symbol={symbol} side={side}"
        self._write(at, "AlpacaAccount", "ERROR", f"Error submitting order to Alpaca: {context} {text}")
        row = f"[parameters: ('ERROR', '{kind} for order {platform_order} | Error: {text}')]"
        self._write(at, "sqlalchemy.engine.Engine", "INFO", row)

    def error(self, at: datetime, what: str, body: dict[str, Any]) -> None:
        """Log a failed call other than a submission (a read, a cancel): one ERROR line, no DB-log row.

        The words differ from a submission's ("Error fetching orders from Alpaca"), so the analyzer never
        counts a failed read as a refused order.
        """
        text = json.dumps(body, separators=(",", ":"), sort_keys=True)
        self._write(at, "AlpacaAccount", "ERROR", f"Error {what} from Alpaca: {text}")

    def info(self, at: datetime, text: str) -> None:
        """Log any other platform line (noise the analyzer must skip)."""
        self._write(at, "Platform", "INFO", text)

    def close(self) -> None:
        """Flush and close the file."""
        if self._file is not None:
            self._file.close()
            self._file = None
