"""Reading one mail that came in to the support address, as the MTA hands it over (raw bytes).

Pure: no database, no network. What a customer wrote is what a ticket should show, so the
quoted history and the signature go (mail-parser-reply finds where the history starts; a
few patterns it leaves behind are cut here), and a mail that no person wrote (an
auto-reply, a bounce, a newsletter) says so in `automatic`: answering one starts a loop.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from email import errors, message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage, Message
from email.utils import getaddresses

from mailparser_reply import EmailReplyParser  # type: ignore[import-untyped]
from pydantic import TypeAdapter, ValidationError

from ticketdesk.mail.html import html_to_text
from ticketdesk.schemas import EmailAddress

__all__ = ["InboundAttachment", "InboundMail", "InvalidMail", "html_to_text", "parse"]

MAX_FILENAME = 255
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl"]
_REPLY_PARSER = EmailReplyParser(languages=_LANGUAGES)
# mail-parser-reply's patterns backtrack quadratically on long lines, and the new text sits
# at the top: only that much of a mail, each line cut short, is searched for its history.
_SCAN_CHARS = 100_000
_SCAN_LINE = 300
# Mail from the internet breaks the standard library's parsers in many ways (deeply nested
# parts exhaust the recursion of its get_body).
_BROKEN = (LookupError, ValueError, TypeError, AttributeError, RecursionError, errors.MessageError)
_RECIPIENT_HEADERS = ("to", "cc", "delivered-to", "x-original-to", "envelope-to")
_AUTOMATIC_IF_PRESENT = ("x-autoreply", "x-autorespond", "list-id", "list-unsubscribe")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_FOOTER = re.compile(
    r"(?:sent from (?:my )?[\w .-]{1,40}|get outlook for \w+|von meinem [\w .-]{1,40} gesendet"
    r"|envoy[ée] de mon [\w .-]{1,40}|enviado desde mi [\w .-]{1,40})(?:\s*<https?://\S{1,200}>)?",
    re.IGNORECASE,
)
# "On <date>, <name> wrote:"; group 1 is empty when a wrapped line starts with the verb.
_ATTRIBUTION = re.compile(
    r"(.{0,200}\s)?(?:wrote|schrieb|écrit|escribió|scritto|schreef)\b.{0,80}:"
)
_CHARSETS = {"ascii": "utf-8", "iso8859-1": "cp1252"}  # as browsers read what is so labelled
# A sender is held to what registration takes (users/schemas.py): an account is made for it.
_ADDRESS: TypeAdapter[str] = TypeAdapter(EmailAddress)
_ENCODED_NAME = re.compile(r"\b(?:file)?name\s*=\s*(=\?[^\s;\"]+\?=)", re.IGNORECASE)


class InvalidMail(ValueError):
    """The bytes are not a mail we can read (no valid From address, not RFC 5322...)."""


@dataclass(frozen=True)
class InboundAttachment:
    filename: str  # decoded, without folders or control characters, never empty
    content_type: str  # as declared, lower-case
    content: bytes


@dataclass(frozen=True)
class InboundMail:
    message_id: str | None  # without angle brackets, unfolded: never any whitespace
    sender: str  # the From address, lower-case, valid as registration takes an email
    sender_name: str  # the From display name on one line, "" if none
    recipients: tuple[str, ...]  # To, Cc, Delivered-To, X-Original-To, Envelope-To; lower-case
    subject: str  # whitespace collapsed
    in_reply_to: tuple[str, ...]  # message ids of In-Reply-To, then References
    text: str  # what the sender wrote this time: no quoted history, no signature
    attachments: tuple[InboundAttachment, ...]
    automatic: bool  # auto-reply, bounce, bulk or list mail: never to be answered or posted


def parse(raw: bytes) -> InboundMail:
    """Read one mail; InvalidMail for anything that is not a mail with a From address."""
    try:
        return _read(message_from_bytes(raw, policy=policy.default))
    except InvalidMail:
        raise
    except _BROKEN as error:
        raise InvalidMail(f"unreadable mail: {error}") from error


def _read(msg: EmailMessage) -> InboundMail:
    sender_name, sender = _from(msg)
    if not sender:
        raise InvalidMail("no From address")
    body = msg.get_body(preferencelist=("plain", "html"))
    text = ""
    if body is not None:
        text = _decode(body)
        text = html_to_text(text) if body.get_content_type() == "text/html" else text
    ids = [_ids(v) or v.split() for v in _raw(msg, "in-reply-to", "references")]
    return InboundMail(
        message_id=_message_id(msg),
        sender=sender,
        sender_name=sender_name,
        recipients=_unique(a.lower() for _, a in getaddresses(_raw(msg, *_RECIPIENT_HEADERS))),
        subject=" ".join(_header(msg, "subject").split()),
        in_reply_to=_unique(i for found in ids for i in found),
        text=_new_text(text),
        attachments=tuple(_attachments(msg)),
        automatic=_is_automatic(msg, sender),
    )


def _raw(msg: Message, *names: str) -> list[str]:
    """The undecoded values of these fields, in the order of `names`: for what must never
    fail to parse (ids, addresses), since decoding is where the library trips."""
    items = [(field.lower(), value) for field, value in msg.raw_items()]
    return [_clean(value) for name in names for field, value in items if field == name]


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
    except _BROKEN:
        value = next(iter(_raw(msg, name)), None)
    return "" if value is None else _clean(str(value))


def _from(msg: Message) -> tuple[str, str]:
    """The display name and the address (lower-case) of the first usable From address.
    InvalidMail when that address is not valid, or its decoded name breaks the line (RFC 2047
    can hide a CR LF and a header of its own there): what such a From says is no sender."""
    try:
        header = msg.get("from")
        pairs = [(a.display_name, a.addr_spec) for a in getattr(header, "addresses", ())]
    except _BROKEN:  # the library refuses a name or address that decodes to CR or LF
        pairs = [(_decoded(name), address) for name, address in getaddresses(_raw(msg, "from"))]
    for name, address in pairs:
        local, _, domain = address.strip().rpartition("@")
        if not (local and domain):
            continue
        if any(c in part for part in (name, _decoded(address)) for c in "\r\n"):
            raise InvalidMail("the From field holds a line break")
        try:
            _ADDRESS.validate_python(address.strip())
        except ValidationError:
            raise InvalidMail(f"the From address is not valid: {address.strip()[:80]!r}") from None
        return " ".join(_clean(name).split()), address.strip().lower()
    return "", ""


def _decoded(text: str) -> str:
    """A header value with its RFC 2047 encoded words decoded, as far as they decode."""
    try:
        return str(make_header(decode_header(text)))
    except _BROKEN:
        return text


def _message_id(msg: Message) -> str | None:
    value = next(iter(_raw(msg, "message-id")), "").strip()
    found = _ids(value)
    value = found[0] if found else "".join(value.split()).strip("<>")
    return value or None


def _ids(value: str) -> list[str]:
    """The <bracketed> message ids of a header value, unfolded: an id has no whitespace, so
    any a line break or a careless client left in one is no part of it."""
    return _MSG_ID.findall("".join(value.split()))


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    """Each once, in order; only what has the form of an address or of a message id."""
    return tuple(dict.fromkeys(item.strip() for item in items if "@" in item))


def _clean(text: str) -> str:
    """Readable text from a header value: raw 8-bit bytes read as UTF-8, controls gone."""
    try:
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return "".join(c if c in "\t\n" or unicodedata.category(c) != "Cc" else " " for c in text)


def _decode(part: Message) -> str:
    """The text of a part in its declared charset; an unknown charset is read as UTF-8."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    try:
        charset = codecs.lookup(part.get_content_charset() or "utf-8").name
    except LookupError:
        charset = "utf-8"
    return payload.decode(_CHARSETS.get(charset, charset), errors="replace")


def _new_text(body: str) -> str:
    """What the sender wrote this time: without the quoted history and the signature. A mail
    that is nothing but a quote keeps all of it rather than coming out empty."""
    whole = _trim(body.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    kept = _trim(_drop_trailers(_cut_signature(_before_history(whole))))
    return "\n".join(kept or whole)


def _trim(lines: list[str]) -> list[str]:
    text = "\n".join(line.rstrip() for line in lines).strip("\n")
    return text.split("\n") if text else []


def _before_history(lines: list[str]) -> list[str]:
    """The lines above the quoted history, as mail-parser-reply finds it. Its answer has
    every line stripped, so it is mapped back to the mail's lines: a pasted log keeps its
    indentation. When its answer is not the top of the mail, its words are all there is."""
    scan: list[str] = []
    size = 0
    for line in lines:
        if size > _SCAN_CHARS:
            break
        scan.append(line[:_SCAN_LINE])
        size += len(scan[-1]) + 1
    reply = (_REPLY_PARSER.parse_reply("\n".join(scan)) or "").split("\n")
    if [line.strip() for line in scan[: len(reply)]] != reply:
        return reply
    return lines if len(reply) >= len(scan) else lines[: len(reply)]


def _cut_signature(lines: list[str]) -> list[str]:
    """All from the "-- " line on is the signature (RFC 3676, 4.3)."""
    return next((lines[:i] for i, line in enumerate(lines) if line.strip() == "--"), lines)


def _drop_trailers(lines: list[str]) -> list[str]:
    """Without what mail-parser-reply leaves at the end: a ">" quote below the text, the
    "On ... wrote:" line above such a quote, a "Sent from my iPhone" footer."""
    lines = list(lines)
    quoted = False
    while lines:
        last = lines[-1].strip()
        if quoted and (span := _attribution(lines)):
            del lines[-span:]
            quoted = False
            continue
        if last.startswith(">"):
            quoted = True
        elif last and not _FOOTER.fullmatch(last):
            break
        lines.pop()
    return lines


def _attribution(lines: list[str]) -> int:
    """How many of the last lines say "On <date>, <name> wrote:" (two where Gmail wrapped
    it). Its date tells it from the sender's own "here is what I wrote:"."""
    found = _ATTRIBUTION.fullmatch(lines[-1].strip())
    span = 1 if found and found.group(1) else 2
    return span if found and re.search(r"\d", " ".join(lines[-span:])) else 0


def _attachments(msg: Message) -> list[InboundAttachment]:
    """Parts sent as attachments, and named inline parts other than text (inline images).
    The body is never one: get_body passes over attachments, and it is unnamed inline text."""
    found = []
    for part in _leaves(msg):
        name = _filename_of(part)
        inline_text = part.get_content_type() in ("text/plain", "text/html")
        wanted = part.get_content_disposition() == "attachment" or (name and not inline_text)
        content = _content(part) if wanted else b""
        if content:
            found.append(InboundAttachment(_safe_filename(name), part.get_content_type(), content))
    return found


def _leaves(part: Message) -> list[Message]:
    """The parts that hold content. A forwarded mail (message/rfc822) is one such part."""
    payload = part.get_payload() if part.get_content_maintype() == "multipart" else None
    if not isinstance(payload, list):
        return [part]
    return [leaf for sub in payload if isinstance(sub, Message) for leaf in _leaves(sub)]


def _content(part: Message) -> bytes:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload
    inner = part.get_payload()
    forwarded = inner[0] if isinstance(inner, list) and inner else None
    try:
        return forwarded.as_bytes() if isinstance(forwarded, Message) else b""
    except _BROKEN:
        return b""


def _filename_of(part: Message) -> str | None:
    """The declared file name, RFC 2231 and RFC 2047 decoded (also the unquoted encoded
    words some clients send, which the standard library drops)."""
    try:
        name = part.get_filename()
        found = _ENCODED_NAME.search(" ".join(_raw(part, "content-disposition", "content-type")))
        if name is None and found:
            name = str(make_header(decode_header(found.group(1))))
    except _BROKEN:
        return None
    return name


def _safe_filename(name: str | None) -> str:
    """Only the file's own name, never a path, a control character or an empty name."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip().strip(".")
    return name[:MAX_FILENAME] or "attachment"


def _is_automatic(msg: Message, sender: str) -> bool:
    """A mail no person wrote (RFC 3834 and the headers autoresponders, list servers and MTAs
    actually send): answering one starts a mail loop, posting one is noise."""

    def values(name: str) -> list[str]:
        return [value.strip().lower() for value in _raw(msg, name)]

    suppress = {word.strip() for v in values("x-auto-response-suppress") for word in v.split(",")}
    return (
        any(value.split(";")[0].strip() != "no" for value in values("auto-submitted"))
        or any(value in ("bulk", "junk", "list", "auto_reply") for value in values("precedence"))
        or bool(suppress & {"all", "oof", "autoreply"})
        or any(values(name) for name in _AUTOMATIC_IF_PRESENT)
        or sender.partition("@")[0] in ("mailer-daemon", "postmaster")
        or msg.get_content_type() == "multipart/report"
        or any(re.fullmatch(r"<\s*>", value) for value in values("return-path"))
    )
