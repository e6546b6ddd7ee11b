"""Incident forensics: read the platform's logs and write the `40310000` incident report.

`ordersync analyze` (docs/operations.md §6, §6) calls `analyze_paths` for log files or `analyze_records`
for records
built from ordersync's own journal, then `render_markdown` or `render_json`. The package depends on the
standard library, rich (progress bar, loaded lazily) and `ordersync.domain.errors` (its exception's base);
it never imports the engine, store, brokers or simulator.
"""

from ordersync.forensics.analyze import DEFAULT_STILL_FAILING_HOURS, analyze_paths, analyze_records
from ordersync.forensics.errors import LogInputError
from ordersync.forensics.lines import Unparseable, parse_line
from ordersync.forensics.records import ErrorBody, LogRecord, Origin, Rejection, Submission
from ordersync.forensics.render_json import render_json, report_to_dict
from ordersync.forensics.render_markdown import render_markdown
from ordersync.forensics.report import (
    Cause,
    CodeCount,
    DelayBuckets,
    Evidence,
    IncidentReport,
    ParentIssue,
    Summary,
    SymbolCount,
    Verdict,
)
from ordersync.forensics.stats import FileStats, ParseStats, UnparseableExample

__all__ = [
    "DEFAULT_STILL_FAILING_HOURS",
    "Cause",
    "CodeCount",
    "DelayBuckets",
    "ErrorBody",
    "Evidence",
    "FileStats",
    "IncidentReport",
    "LogInputError",
    "LogRecord",
    "Origin",
    "ParentIssue",
    "ParseStats",
    "Rejection",
    "Submission",
    "Summary",
    "SymbolCount",
    "Unparseable",
    "UnparseableExample",
    "Verdict",
    "analyze_paths",
    "analyze_records",
    "parse_line",
    "render_json",
    "render_markdown",
    "report_to_dict",
]
