"""``ordersync analyze``: the incident report from logs and broker exports or from ordersync's journal, and
``--verify``'s read-only check of the named orders at the broker (docs/forensics.md).

The report is streamed piece by piece (a huge log's JSON is never held whole in memory), its parent rows
spooled to a temporary file once while the report is built.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from ordersync.cli.common import err, fail, settings_and_keys

ANALYZE_FORMATS = ("md", "json", "html")


def analyze(
    logs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="logs (any format, plain or gzip; - for stdin) and broker exports (orders, fills)"
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="md, json or html")] = "md",
    db: Annotated[str | None, typer.Option(help="analyze ordersync's own journal at this store URL")] = None,
    still_failing_hours: Annotated[
        str, typer.Option(help="report parents still failing after N hours")
    ] = "1",
    verify: Annotated[
        bool,
        typer.Option("--verify", help="also read the named orders and positions at the broker (read-only)"),
    ] = False,
    config: Annotated[Path | None, typer.Option(help="config file (broker URL) for --verify")] = None,
    verify_requests: Annotated[
        int, typer.Option(help="at most this many broker reads for --verify (of the 200/min budget)")
    ] = 50,
) -> None:
    """Write the incident report from logs and broker exports, or from ordersync's journal.

    Exit codes (docs/forensics.md): 0 no `40310000` refusal, 1 refusals found, 2 bad input. With
    --verify: 1 while anything is unprotected at the broker now, else 0."""
    from ordersync.forensics import LogInputError, analyze_paths, analyze_records

    if fmt not in ANALYZE_FORMATS:
        fail(ValueError(f"--format must be md or json or html, was {fmt!r}"))
    hours = _analyze_hours(still_failing_hours)
    if not logs and not db:
        fail(ValueError("give log files, or --db URL for ordersync's own journal"))
    spool: _JsonSpool | None = None
    try:
        if db:
            from ordersync.reports import journal_records
            from ordersync.store import open_store

            store = open_store(db, migrate=False)
            try:
                report = analyze_records(journal_records(store), source=db, still_failing_hours=hours)
            finally:
                store.close()
        else:
            from datetime import UTC, datetime

            spool = _json_spool() if fmt == "json" else None
            report = analyze_paths(
                logs or [],
                progress=sys.stderr.isatty(),
                still_failing_hours=hours,
                today=datetime.now(UTC),  # the edge's clock: only for syslog years read from stdin
                on_row=spool.write_row if spool else None,
            )
    except LogInputError as e:
        fail(e)
    check = _verify_at_broker(report, config, verify_requests) if verify else None
    _write_report(report, fmt, check, spool)
    if check is not None:
        raise typer.Exit(1 if check.unprotected_now else 0)
    raise typer.Exit(1 if report.summary.issues else 0)


def _verify_at_broker(report: object, config: Path | None, max_requests: int) -> Any:
    # issue 19: read-only reads through the same adapter `run` uses; keys from the environment
    import asyncio

    from ordersync.brokers.alpaca import AlpacaBroker
    from ordersync.clocks import SystemClock
    from ordersync.domain.errors import OrderSyncError
    from ordersync.forensics import IncidentReport
    from ordersync.incident_check import BUDGET_PER_MINUTE, check_at_broker

    assert isinstance(report, IncidentReport)
    if not 2 <= max_requests <= BUDGET_PER_MINUTE:
        fail(ValueError(f"--verify-requests must be 2 to {BUDGET_PER_MINUTE}, was {max_requests}"))
    settings, keys = settings_and_keys(config)
    broker = AlpacaBroker(
        keys.key_id.get_secret_value(),
        keys.secret_key.get_secret_value(),
        clock=SystemClock(),
        base_url=settings.broker.base_url,
        paper=settings.broker.paper,
        timeout_s=settings.broker.timeout_s,
        requests_per_minute=settings.broker.requests_per_minute,
    )
    try:
        if not sys.stderr.isatty():  # a log or cron: one plain progress line per read on stderr
            return asyncio.run(check_at_broker(report, broker, max_requests=max_requests, on_read=_read_line))
        from rich.progress import Progress

        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("reading at the broker", total=max_requests)
            return asyncio.run(
                check_at_broker(
                    report,
                    broker,
                    max_requests=max_requests,
                    on_read=lambda spent, _most: bar.update(task, completed=spent),
                )
            )
    except OrderSyncError as e:
        fail(e)


def _read_line(spent: int, most: int) -> None:
    sys.stderr.write(f"verify: broker read {spent} of at most {most}\n")
    sys.stderr.flush()


def _analyze_hours(text: str) -> float:
    # a finite number >= 0, or exit 2 with one line (typer's own float parsing accepts nan and inf)
    import math

    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours) or hours < 0:
        fail(ValueError(f"--still-failing-hours must be a finite number of hours >= 0, was {text!r}"))
    return hours


class _JsonSpool:
    """The `parents` rows as JSON lines in a temporary file, written once while the report is built.

    Building 150 000 rows a second time to write them cost as much as the whole analysis; the file (on
    disk, not in memory) is read back in order when the JSON is written.
    """

    def __init__(self) -> None:
        import tempfile

        from ordersync.forensics.render_json import parent_json

        # unlinked at once by the OS; closed by `_write_report` once the rows are copied out
        self.file = tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n")  # noqa: SIM115
        self._json = parent_json

    def write_row(self, row: Any) -> None:
        self.file.write(self._json(row) + "\n")

    def rows(self) -> Iterator[str]:
        self.file.seek(0)
        return (line.rstrip("\n") for line in self.file)


def _json_spool() -> _JsonSpool:
    return _JsonSpool()


def _write_report(report: object, fmt: str, check: Any = None, spool: _JsonSpool | None = None) -> None:
    # streamed piece by piece: the JSON of a huge log is never held whole in memory
    from ordersync.forensics import IncidentReport, render_markdown
    from ordersync.forensics.render_html import iter_html
    from ordersync.forensics.render_json import iter_json

    assert isinstance(report, IncidentReport)
    write = sys.stdout.write
    if fmt == "json":
        extra: list[tuple[str, str]] = []
        if check is not None:  # the validation is one more top-level key
            from ordersync.incident_check import check_json

            extra.append(("validation", check_json(check)))
        pieces = iter_json(report, extra, parents=spool.rows() if spool else None)
    elif fmt == "html":
        sections: Any = ()
        if check is not None:
            from ordersync.incident_check import iter_check_html

            sections = iter_check_html(check)
        pieces = iter_html(report, extra=sections)
    else:
        text = render_markdown(report)
        if check is not None:
            from ordersync.incident_check import render_check_markdown

            text += "\n" + render_check_markdown(check)
        pieces = iter((text,))
    for piece in pieces:
        write(piece)
    sys.stdout.flush()
    if spool is not None:
        spool.file.close()
