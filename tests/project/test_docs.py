"""The documents link to each other instead of repeating themselves, so a moved file or a
renamed heading would leave readers at a dead end: every relative link must resolve."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])

FENCE = re.compile(r"^ {0,3}(```|~~~).*?^ {0,3}\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+).+?\1", re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def _prose(text: str) -> str:
    """The text without code: a `[x](y)` inside a code block or span is not a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def _slug(heading: str, seen: dict[str, int]) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens,
    and -1, -2, … on repeats."""
    text = heading.replace("`", "").lower()
    slug = re.sub(r"[^\w\- ]", "", text).replace(" ", "-")
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return slug if count == 0 else f"{slug}-{count}"


@cache
def _anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    return frozenset(
        _slug(heading, seen) for heading in HEADING.findall(FENCE.sub("", path.read_text()))
    )


def _broken_links(document: Path) -> list[str]:
    broken = []
    for target in LINK.findall(_prose(document.read_text())):
        if SCHEME.match(target):
            continue  # another site: not ours to keep
        path_part, _, anchor = target.partition("#")
        linked = (document.parent / path_part).resolve() if path_part else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading with that anchor")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading(document: Path) -> None:
    assert _broken_links(document) == []


def test_every_document_under_docs_is_linked_from_the_readme() -> None:
    """The README is the front door: a page nothing leads to is a page nobody reads."""
    readme = ROOT / "README.md"
    linked = {
        (readme.parent / target.partition("#")[0]).resolve()
        for target in LINK.findall(_prose(readme.read_text()))
        if not SCHEME.match(target)
    }
    assert [path.name for path in (ROOT / "docs").glob("*.md") if path not in linked] == []


def test_the_link_checker_sees_a_broken_link_and_a_broken_anchor(tmp_path: Path) -> None:
    """Else a checker that finds nothing would pass every document."""
    (tmp_path / "other.md").write_text("# Title\n\n## A section, with `code`\n")
    page = tmp_path / "page.md"
    page.write_text(
        "[fine](other.md#a-section-with-code) [gone](missing.md) [bad](other.md#nowhere)\n"
        "[web](https://example.com/x.md) `[code](missing.md)`\n\n"
        "```\n[fenced](missing.md)\n```\n"
        "1. A step:\n\n   ```\n   [indented](missing.md)\n   # not a heading\n   ```\n"
    )
    assert _broken_links(page) == [
        "missing.md: no such file",
        "other.md#nowhere: no heading with that anchor",
    ]
