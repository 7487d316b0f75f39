"""The text a person reads in an HTML mail, without what mail clients mark as history."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_SKIPPED = frozenset({"script", "style", "head", "title", "template", "blockquote"})
# Where Gmail, Outlook, Thunderbird and Yahoo put the quoted history and the signature.
_QUOTE_MARKS = {"gmail_quote", "appendonsend", "moz-cite-prefix", "yahoo_quoted"}
_SIGNATURE_MARKS = {"gmail_signature", "moz-signature"}
_BLOCKS = {"div", "li", "tr", "ul", "ol", "table", "pre", "section", "article", "dd", "dt"}
_HISTORY_HEADER = re.compile(r"(?:From|Von|De|Da|Van|Från)\s?:", re.IGNORECASE)


def html_to_text(html: str) -> str:
    """The text a reader sees in an HTML mail, without the quoted history and signature that
    mail clients mark in it (Gmail, Outlook, Apple Mail, Thunderbird)."""
    reader = _HtmlText()
    reader.feed(html)
    reader.close()
    lines = [line.rstrip() for line in "".join(reader.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip("\n")


class _HtmlText(HTMLParser):
    """Collects text; skips one element (and all in it) at a time, counting its nesting."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping: str | None = None
        self.depth = 0
        self.pre = 0
        self.stopped = False
        self.after_hr: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping:
            self.depth += tag == self.skipping
            if self.skipping == "head" and tag == "body":  # a <head> never closed
                self.skipping = None
            return
        attributes = {name: value or "" for name, value in attrs}
        marks = {attributes.get("id", ""), *attributes.get("class", "").split()}
        if self.stopped or "divRplyFwdMsg" in marks:  # Outlook: the history follows, unmarked
            self.stopped = True
        elif tag in _SKIPPED or marks & (_QUOTE_MARKS | _SIGNATURE_MARKS):
            self.skipping, self.depth = tag, 1
        elif tag == "br":
            self.out.append("\n")
        elif tag == "hr":
            self.newline()
            self.after_hr = len(self.out)
        else:
            self.block(tag)
            self.pre += tag == "pre"
            if tag == "li":
                self.out.append("- ")
            elif tag in ("td", "th") and not self.at_line_start():
                self.out.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            self.depth -= tag == self.skipping
            self.skipping = self.skipping if self.depth > 0 else None
        elif not self.stopped:
            self.block(tag)
            self.pre = max(0, self.pre - (tag == "pre"))

    def handle_data(self, data: str) -> None:
        if self.stopped or self.skipping:
            return
        text = data if self.pre else re.sub(r"\s+", " ", data)
        if not self.pre and (self.at_line_start() or self.out[-1].endswith(" ")):
            text = text.lstrip(" ")
        if self.after_hr is not None and text.strip():
            if _HISTORY_HEADER.match(text.strip()):  # Outlook: <hr> then "From: ..."
                del self.out[self.after_hr :]
                self.stopped = True
                return
            self.after_hr = None
        if text:
            self.out.append(text)

    def at_line_start(self) -> bool:
        return not self.out or self.out[-1].endswith("\n")

    def newline(self) -> None:
        if not self.at_line_start():
            self.out.append("\n")

    def block(self, tag: str) -> None:
        if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6"):
            self.newline()
            if self.out:
                self.out.append("\n")
        elif tag in _BLOCKS:
            self.newline()
