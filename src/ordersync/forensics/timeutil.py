"""Exact integer time: microseconds since the Unix epoch, UTC.

Refusal times are stored as integers so millions of them fit in compact arrays and delays are exact
(no float rounding in a 3.4 vs 3.5 minute boundary). Stdlib only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND: Final = timedelta(microseconds=1)


def to_us(at: datetime) -> int:
    """Microseconds since the epoch for an aware datetime."""
    return (at - EPOCH) // MICROSECOND


def from_us(us: int) -> datetime:
    """The aware UTC datetime for microseconds since the epoch."""
    # positional (days, seconds, microseconds): a keyword call costs a third more, ~150 000 rows x 3 times
    return EPOCH + timedelta(0, 0, us)
