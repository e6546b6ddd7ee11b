"""The report's Parse Statistics section: what was read, in which formats, and what could not be read.

Unparseable lines are quoted in fences longer than any run of the fence character in them, so a line
from the log can never close its fence. Split from `render_markdown.py`. Stdlib only.
"""

from __future__ import annotations

from collections.abc import Iterable

from ordersync.forensics.render_md_text import escape, longest_run
from ordersync.forensics.stats import FileStats, ParseStats


def parse_stats(stats: ParseStats) -> str:
    """The Parse Statistics section."""
    files = ", ".join(_file(f) for f in stats.files)
    lines = [
        "## Parse Statistics",
        f"- **Files**: {files}",
        f"- **Lines read**: {stats.lines_read}",
        f"- **Parsed**: {stats.recognised} ({stats.submissions} submissions, {stats.alpaca_errors} Alpaca "
        f"error lines, {stats.db_errors} DB-log rows)",
        f"- **Other lines** (not one of the platform's shapes): {stats.other_lines}",
        f"- **Repaired JSON bodies** (malformed, read field by field): {stats.repaired_bodies}",
        f"- **Oversized lines** (over 1 MiB, truncated): {stats.oversized_lines}",
        f"- **Unparseable** (looked like ours, could not be read): {stats.unparseable}",
    ]
    lines += [f"- **Note** on {escape(f.path)}: {escape(f.note)}" for f in stats.files if f.note]
    if stats.recognised == 0:
        lines.append("- **No line of the platform's log formats was found in this input.**")
    return "\n".join(lines + list(_examples(stats)))


def _file(f: FileStats) -> str:
    if f.kind == "duplicate":
        return f"{escape(f.path)} (skipped: given twice)"
    if f.kind != "log":
        return f"{escape(f.path)} ({f.kind.replace('_', ' ')}, {f.rows} rows)"
    formats = ", ".join(f"{name} {n}" for name, n in f.formats)
    enc = "" if f.encoding == "utf-8" else f", {f.encoding}"
    return (
        f"{escape(f.path)} ({'gzip' if f.gzip else 'plain'}{enc}, {f.lines} lines"
        + (f"; formats: {formats}" if formats else "")
        + ")"
    )


def _examples(stats: ParseStats) -> Iterable[str]:
    if not stats.unparseable_examples:
        return
    yield f"\n### Unparseable Lines (first {len(stats.unparseable_examples)})"
    for ex in stats.unparseable_examples:
        fence = "~" * max(3, longest_run(ex.text, "~") + 1)
        yield f"- {escape(ex.source)} line {ex.line_no}: {escape(ex.reason)}\n\n{fence}\n{ex.text}\n{fence}"
