"""Every reference in the repository resolves inside the repository.

Someone who clones ordersync has only the repository: a link or a `docs/<file>.md §N` citation that points
at a missing file, a missing section or material kept elsewhere is a dead end. Checked here:

* every relative Markdown link in the README, the changelog, bench/README.md and docs/*.md names an existing
  file, and its `#anchor` (if any) a heading of that file;
* every `docs/<file>.md §N`, `docs/<file>.md#anchor` or `docs/<file>.md, "Title"` citation in those files and
  in src/, tests/ and bench/ names an existing file and a heading numbered N (with that anchor, containing
  that title);
* no file cites design material kept outside the repository (`../shared`, `shared/...`, "DESIGN §N", or a
  Markdown file the repository does not hold).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve()


_FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
_CITATION = re.compile(
    r"(?<![\w./:-])docs/([\w.-]+\.md)(?:\s*§\s*(\d+(?:\.\d+)*)|#([\w-]+)|,\s*(['\"])([^'\"\n]{1,80})\4)?"
)
_SHARED = re.compile(r"(?:\.\./)+shared\b|(?<![\w.-])shared/|\b(?:DESIGN|STYLE)\s*(?:§|section\b)")
_MD_NAME = re.compile(r"(?<![\w./:-])((?:\.\./|\./)?(?:[\w-]+/)*[\w.-]+\.md)\b")


@dataclass(frozen=True)
class Ref:
    """One reference: where it is, what it names."""

    source: Path
    line: int
    target: Path
    section: str | None = None  # "6.2" for `§6.2`
    anchor: str | None = None
    title: str | None = None  # "Sibling cancel" for `docs/alpaca.md, "Sibling cancel"`

    def __str__(self) -> str:
        where = f"{self.source.relative_to(ROOT)}:{self.line}"
        what = self.target.relative_to(ROOT) if self.target.is_relative_to(ROOT) else self.target
        suffix = f" §{self.section}" if self.section else (f"#{self.anchor}" if self.anchor else "")
        suffix = f", {self.title!r}" if self.title else suffix
        return f"{where} -> {what}{suffix}"


def _markdown_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "bench" / "README.md"]
    files += sorted((ROOT / "docs").glob("*.md"))
    return [f for f in files if f.is_file()]


def _code_files() -> list[Path]:
    folders = ("src", "tests", "bench", "tools")
    return sorted(p for d in folders for p in (ROOT / d).rglob("*.py") if p != THIS)


def _text_files() -> list[Path]:
    # everything a reader of the repository meets: sources, tests, benchmarks, docs, scenario files, README
    suffixes = {".py", ".md", ".yaml", ".yml", ".json", ".toml", ".txt", ".cfg", ".ini"}
    files = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for folder in ("src", "tests", "bench", "tools", "docs"):
        files += [p for p in (ROOT / folder).rglob("*") if p.is_file() and p.suffix in suffixes]
    return sorted(f for f in files if f.is_file() and f != THIS and "egg-info" not in f.parts)


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _prose(text: str) -> str:
    # code blocks and code spans are not links: blank them out, keeping offsets (and so line numbers)
    blank = lambda m: re.sub(r"[^\n]", " ", m.group(0))  # noqa: E731
    return _INLINE_CODE.sub(blank, _FENCE.sub(blank, text))


def slug(heading: str) -> str:
    """Return GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\*|__", "", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Return every heading anchor of a Markdown file (GitHub numbers repeated headings -1, -2, ...)."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    for match in _HEADING.finditer(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def has_section(path: Path, number: str) -> bool:
    """True when a heading of ``path`` starts with ``number`` (``## 6. …`` for 6, ``### 6.2 …`` for 6.2)."""
    pattern = re.compile(rf"^{re.escape(number)}\.?(\s|$)")
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return any(pattern.match(m.group(1)) for m in _HEADING.finditer(text))


def has_title(path: Path, title: str) -> bool:
    """True when a heading of ``path`` contains ``title`` (case-insensitive), for `, "Title"` citations."""
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return any(title.lower() in m.group(1).lower() for m in _HEADING.finditer(text))


def markdown_links() -> Iterator[Ref]:
    """Yield every relative link of the Markdown files (web and mail links are not ours to check)."""
    for source in _markdown_files():
        text = source.read_text(encoding="utf-8")
        for match in _LINK.finditer(_prose(text)):
            target = match.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue
            path, _, anchor = target.partition("#")
            resolved = (source.parent / path).resolve() if path else source
            yield Ref(source, _line_of(text, match.start()), resolved, anchor=anchor or None)


def citations() -> Iterator[Ref]:
    """Yield every ``docs/<file>.md §N`` / ``docs/<file>.md#anchor`` citation in docs, code and tests."""
    for source in [*_markdown_files(), *_code_files()]:
        text = source.read_text(encoding="utf-8")
        for match in _CITATION.finditer(text):
            target = (ROOT / "docs" / match.group(1)).resolve()
            section, anchor, title = match.group(2), match.group(3), match.group(5)
            yield Ref(source, _line_of(text, match.start()), target, section, anchor, title)


def _case(ref: Ref) -> object:
    return pytest.param(ref, id=str(ref))


def problem(ref: Ref) -> str | None:
    """Return what is wrong with ``ref``, or None when it resolves."""
    if not ref.target.exists():
        return f"{ref}: no such file"
    if ref.section is not None and not has_section(ref.target, ref.section):
        return f"{ref}: no heading numbered {ref.section}"
    if ref.anchor is not None and ref.target.suffix == ".md" and ref.anchor not in anchors(ref.target):
        return f"{ref}: no heading with anchor #{ref.anchor}"
    if ref.title is not None and not has_title(ref.target, ref.title):
        return f"{ref}: no heading containing {ref.title!r}"
    return None


@pytest.mark.parametrize("ref", [_case(r) for r in markdown_links()])
def test_relative_link_resolves(ref: Ref) -> None:
    assert problem(ref) is None, problem(ref)


@pytest.mark.parametrize("ref", [_case(r) for r in citations()])
def test_docs_citation_resolves(ref: Ref) -> None:
    assert problem(ref) is None, problem(ref)


def test_the_checks_catch_a_broken_link_a_missing_section_and_a_missing_anchor() -> None:
    """The resolver is not a test that cannot fail: each kind of dead reference is reported."""
    alpaca = ROOT / "docs" / "alpaca.md"
    readme = ROOT / "README.md"
    assert problem(Ref(readme, 1, ROOT / "docs" / "no-such-file.md")) is not None
    assert problem(Ref(readme, 1, alpaca, section="99.9")) is not None
    assert problem(Ref(readme, 1, alpaca, anchor="no-such-heading")) is not None
    assert problem(Ref(readme, 1, alpaca, section="6.2")) is None
    assert problem(Ref(readme, 1, alpaca, anchor="62-legs-and-held")) is None
    assert problem(Ref(readme, 1, alpaca, title="No such title")) is not None
    assert problem(Ref(readme, 1, alpaca, title="sibling cancel")) is None
    assert has_section(alpaca, "6")
    assert not has_section(alpaca, "6.9")


def test_slug_matches_githubs_anchors() -> None:
    assert slug("6. Brackets, OTO, OCO and held legs") == "6-brackets-oto-oco-and-held-legs"
    assert slug("4.4 PATCH /v2/orders/{order_id} (replace)") == "44-patch-v2ordersorder_id-replace"
    assert slug("2. The `trade_updates` websocket") == "2-the-trade_updates-websocket"


def _outside_references() -> list[str]:
    found: list[str] = []
    for path in _text_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in _SHARED.finditer(text):
            found.append(f"{path.relative_to(ROOT)}:{_line_of(text, match.start())}: {match.group(0)}")
    return found


def _missing_markdown_names() -> list[str]:
    # a Markdown file named in code, tests or the README must be one the repository holds
    names = {p.name for p in ROOT.rglob("*.md") if ".venv" not in p.parts and ".git" not in p.parts}
    found: list[str] = []
    for path in [ROOT / "README.md", ROOT / "bench" / "README.md", *_code_files()]:
        text = path.read_text(encoding="utf-8")
        for match in _MD_NAME.finditer(text):
            if Path(match.group(1)).name not in names:
                found.append(f"{path.relative_to(ROOT)}:{_line_of(text, match.start())}: {match.group(1)}")
    return found


def test_nothing_cites_material_outside_the_repository() -> None:
    outside = _outside_references()
    assert not outside, f"{len(outside)} references outside the repository:\n" + "\n".join(outside)


def test_every_markdown_file_named_in_code_exists_in_the_repository() -> None:
    missing = _missing_markdown_names()
    assert not missing, f"{len(missing)} citations of files not in the repository:\n" + "\n".join(missing)


def test_the_outside_reference_pattern_catches_both_forms_and_spares_prose() -> None:
    assert _SHARED.search("see ../shared/seed/000.txt")
    assert _SHARED.search("(shared/alpaca/semantics.md §4)")
    assert not _SHARED.search("a shared lock; shared state; the shared_ptr")
    assert _SHARED.search("exit codes per DESIGN §3")
    assert not _SHARED.search("docs/alpaca.md §4")
