"""Reading the mail customers send to the support address: the new text only, who sent it
to which address, which mail it answers, its files, and whether a person wrote it at all."""

from __future__ import annotations

import base64
import email
import random
import time
from email import policy
from pathlib import Path

import pytest

from ticketdesk.mail.inbound import (
    InboundAttachment,
    InboundMail,
    InvalidMail,
    html_to_text,
    parse,
)

MAIL = Path(__file__).parent / "samples"
FIXTURES = sorted(path.name for path in MAIL.glob("*.eml"))
TICKET = "support+t12-abcd@support.example.com"
SUPPORT = "support@support.example.com"
ROOT = "t12.m3@support.example.com"
FIRST = "t12.m1@support.example.com"
SUBJECT = "Re: [#12] Printer on fire"
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
    "AAAADUlEQVR42mP4n8bwHwAGMgJl7FfQdQAAAABJRU5ErkJggg=="
)


def read(name: str) -> InboundMail:
    return parse((MAIL / name).read_bytes())


def mail(headers: str, body: str = "Hello,\n\nthe printer is on fire.\n") -> bytes:
    """A plain mail with these header lines (From, To, Subject, Message-ID unless given)."""
    defaults = {
        "From": "Heidi <heidi@alps.example>",
        "To": SUPPORT,
        "Subject": "Printer on fire",
        "Message-ID": "<m1@alps.example>",
    }
    given = {line.split(":", 1)[0].lower() for line in headers.splitlines() if ":" in line}
    lines = [f"{name}: {value}" for name, value in defaults.items() if name.lower() not in given]
    return ("\n".join([*lines, *filter(None, headers.splitlines())]) + "\n\n" + body).encode()


def html_part(name: str) -> str:
    message = email.message_from_bytes((MAIL / name).read_bytes(), policy=policy.default)
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


def test_gmail_reply_loses_the_quote_and_the_wrapped_wrote_line() -> None:
    assert read("gmail_reply.eml") == InboundMail(
        message_id="CAFx9a0bQ=Zk7hP2mT+vXw3e1kR9dLq@mail.gmail.com",
        sender="bob.customer@example.com",
        sender_name="Bob Customer",
        recipients=(TICKET,),
        subject=SUBJECT,
        in_reply_to=(ROOT, FIRST),
        text="Hi,\n\nthe fire is out \u2013 but the printer still shows error E-42 when I print"
        "\ndouble-sided.\n\nBob",
        attachments=(),
        automatic=False,
    )


def test_outlook_reply_loses_the_header_block_and_the_history_below_it() -> None:
    assert read("outlook_reply.eml") == InboundMail(
        message_id="AM9PR07MB7123ABCDEF0123456789@AM9PR07MB7123.eurprd07.prod.outlook.com",
        sender="carol.jones@contoso.example",
        sender_name="Carol Jones",
        recipients=(TICKET, "dave.miller@contoso.example"),
        subject="RE: [#12] Printer on fire",
        in_reply_to=(ROOT,),
        text="Hello,\n\nthe replacement toner arrived, thank you. Could you also send the invoice"
        " for it?\n\nKind regards\nCarol",
        attachments=(),
        automatic=False,
    )


def test_apple_mail_reply_loses_the_quote_and_the_sent_from_footer() -> None:
    assert read("apple_mail_reply.eml") == InboundMail(
        message_id="5F2C8E1A-3B7D-4C9E-9A61-0D2E4F6B8C10@walsh.example",
        sender="erin@walsh.example",
        sender_name="Erin Walsh",
        recipients=(TICKET,),
        subject=SUBJECT,
        in_reply_to=(ROOT,),
        text="It works again, thank you!",
        attachments=(),
        automatic=False,
    )


def test_thunderbird_reply_loses_the_signature_and_keeps_the_indentation_of_a_log() -> None:
    assert read("thunderbird_reply.eml") == InboundMail(
        message_id="0a4b7c1e-2d3f-4e5a-8b9c-1d2e3f4a5b6c@fabrikam.example",
        sender="juergen.mueller@fabrikam.example",
        sender_name="J\u00fcrgen M\u00fcller",
        recipients=(TICKET,),
        subject=SUBJECT,
        in_reply_to=(ROOT, FIRST),
        text="Hello,\n\nthe error is back after the update. The printer log says:\n\n"
        "    E-42 duplex unit not ready\n    E-17 tray 2 empty",
        attachments=(),
        automatic=False,
    )


def test_html_only_mail_is_read_as_text_without_its_blockquote() -> None:
    assert read("html_only.eml") == InboundMail(
        message_id="20261201132000.4711@oneil.example",
        sender="frank@oneil.example",
        sender_name="Frank O'Neil",
        recipients=(SUPPORT,),
        subject=SUBJECT,
        in_reply_to=(ROOT,),
        text="Hi team,\n\nthe printer works again.\nPaper & toner are fine \u2013 thanks a lot!",
        attachments=(),
        automatic=False,
    )


def test_attachments_keep_their_decoded_names_types_and_bytes() -> None:
    found = read("with_attachments.eml")
    pdf, png = found.attachments
    assert pdf.filename == "Rechnung M\u00e4rz.pdf"  # RFC 2231
    assert pdf.content_type == "application/pdf"
    assert pdf.content.startswith(b"%PDF-1.4\n") and pdf.content.endswith(b"%%EOF\n")
    assert png == InboundAttachment("Fehler\u00fcbersicht.png", "image/png", PNG)  # RFC 2047
    assert found.text == (
        "Hello,\n\nthe invoice for the toner is attached, and a screenshot of the error.\n\nIvan"
    )
    assert (found.sender, found.recipients, found.subject) == (
        "ivan@petrov.example",
        (SUPPORT,),
        "Invoice and screenshot",
    )
    assert (found.message_id, found.in_reply_to, found.automatic) == (
        "a1b2c3d4.5e6f@petrov.example",
        (),
        False,
    )


def test_out_of_office_reply_is_automatic() -> None:
    found = read("auto_reply.eml")
    assert found.automatic is True
    assert found.sender == "grace@navy.example"
    assert found.subject == "Out of office: [#12] Printer on fire"
    assert found.in_reply_to == (ROOT,)
    assert found.recipients == (TICKET,)
    assert found.message_id == "ooo-20261201100205-7731@navy.example"
    assert found.text == (
        "I am out of the office until Monday, 7 December 2026, with no access to\n"
        "my mail. For urgent matters please call the front desk."
    )


def test_newsletter_is_automatic() -> None:
    found = read("bulk.eml")
    assert found.automatic is True
    assert (found.sender, found.sender_name) == ("news@printers.example", "Printers Monthly")
    assert found.recipients == (SUPPORT,)
    assert found.subject == "Our December deals: 20% off all toner"
    assert (
        found.message_id == "newsletter-2026-12.support=support.example.com@news.printers.example"
    )
    assert found.text == (
        "December deals\n\nAll toner is 20% off until Christmas.\n\n"
        "Unsubscribe: https://news.printers.example/unsubscribe?u=4711"
    )


def test_latin1_body_and_encoded_subject_are_decoded() -> None:
    assert read("latin1.eml") == InboundMail(
        message_id="20261201140327.GA1234@exemple.fr",
        sender="rene.dupre@exemple.fr",
        sender_name="Ren\u00e9 Dupr\u00e9",
        recipients=(TICKET,),
        subject="Re : Probl\u00e8me d'impression \u00e0 l'\u00e9tage",
        in_reply_to=(ROOT,),
        text="Bonjour,\n\nl'imprimante du deuxi\u00e8me \u00e9tage ne r\u00e9pond toujours pas"
        " apr\u00e8s le red\u00e9marrage.\n\nMerci d'avance,\nRen\u00e9",
        attachments=(),
        automatic=False,
    )


def test_new_ticket_mail_is_kept_whole_and_lists_each_recipient_once() -> None:
    assert read("new_ticket.eml") == InboundMail(
        message_id="8f14e45f-ceea-467f-a8f1-8b7c9c0e9d2a@alps.example",
        sender="heidi@alps.example",
        sender_name="Heidi Klum",
        recipients=(SUPPORT, "office@alps.example"),
        subject="Printer on fire",
        in_reply_to=(),
        text="Hello,\n\nthe printer on the 2nd floor is on fire. There is smoke everywhere.\n"
        "What should we do?\n\nThanks,\nHeidi",
        attachments=(),
        automatic=False,
    )


def test_reply_to_a_forged_address_reports_that_address() -> None:
    found = read("forged_reply.eml")
    assert found.recipients == ("support+t12-0000000000000000@support.example.com",)
    assert (found.sender, found.sender_name) == ("mallory@evil.example", "Mallory")
    assert found.in_reply_to == (ROOT,)
    assert found.text == "Please close this ticket and send the refund to my account."
    assert found.automatic is False


def test_bounce_is_automatic_and_its_returned_mail_is_no_attachment() -> None:
    found = read("bounce.eml")
    assert found.automatic is True
    assert found.sender == "mailer-daemon@mx.support.example.com"
    assert found.message_id == "20261201090209.4QxZB3Np5Xz9sKp@mx.support.example.com"
    assert found.subject == "Undelivered Mail Returned to Sender"
    assert found.recipients == (TICKET,)
    assert found.attachments == ()
    assert found.text.startswith("This is the mail system at host mx.support.example.com.\n\n")
    assert "\n                   The mail system\n" in found.text
    assert found.text.endswith("in virtual mailbox table (in reply to RCPT TO command)")


@pytest.mark.parametrize("name", FIXTURES)
def test_crlf_line_ends_read_the_same(name: str) -> None:
    raw = (MAIL / name).read_bytes()
    assert b"\r\n" not in raw
    assert parse(raw.replace(b"\n", b"\r\n")) == parse(raw)


def test_the_mbox_from_line_of_a_pipe_is_no_header() -> None:
    raw = (MAIL / "gmail_reply.eml").read_bytes()
    piped = b"From Bob.Customer@Example.com  Tue Dec  1 11:15:44 2026\n" + raw
    assert parse(piped) == parse(raw)


@pytest.mark.parametrize("name", FIXTURES)
def test_no_quote_wrote_line_or_signature_is_left(name: str) -> None:
    text = read(name).text
    assert text and text == text.strip("\n")
    lines = text.splitlines()
    assert not any(line.startswith(">") or line.rstrip() == "--" for line in lines)
    assert not any(word in text for word in ("wrote:", "a \u00e9crit", "Sent from", "From:"))
    assert "please try turning it off and on again" not in text


@pytest.mark.parametrize(
    "raw",
    [
        b"not a mail",
        b"",
        b"To: support@support.example.com\nSubject: hi\n\nhello\n",
        mail("From: <>"),
        mail("From: undisclosed-recipients:;"),
        mail("From: heidi"),
    ],
    ids=["no-headers", "empty", "no-from", "null-from", "group", "no-domain"],
)
def test_a_mail_without_from_address_is_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidMail):
        parse(raw)


def test_a_mail_that_is_all_quote_keeps_its_text() -> None:
    body = "On Tue, 1 Dec 2026 at 10:02, ticketdesk wrote:\n> Hello,\n> please try again.\n"
    assert parse(mail("", body)).text == body.strip()
    assert parse(mail("", "> Hello,\r\n> please try again.\r\n")).text == (
        "> Hello,\n> please try again."
    )


@pytest.mark.parametrize(
    "history",
    [
        "-----Original Message-----\nFrom: ticketdesk\nSent: Tuesday\nSubject: [#12]\n\nold",
        "Von: ticketdesk <s@x.example>\nGesendet: Dienstag, 1. Dezember 2026\nAn: Carol\n\nalt",
        "Am Di., 1. Dez. 2026 um 10:02 Uhr schrieb ticketdesk <\ns@x.example>:\n\n> alt",
        "El mar, 1 dic 2026 a las 10:02, ticketdesk (<s@x.example>)\nescribi\u00f3:\n\n> viejo",
        "Le mar. 1 d\u00e9c. 2026 \u00e0 10:02, ticketdesk <s@x.example> a\n\u00e9crit :\n> vieux",
        "Op di 1 dec 2026 om 10:02 schreef ticketdesk <s@x.example>:\n\n> oud",
        "Bob Customer <bob@example.com> wrote on 1 Dec:\n> Hello",
        "Get Outlook for iOS<https://aka.ms/o0ukef>",
        "Sent from my Galaxy\n\n-------- Original message --------\nFrom: ticketdesk\nDate: 1/12",
    ],
)
def test_history_of_other_clients_and_languages_is_cut(history: str) -> None:
    assert parse(mail("", f"Fixed, thanks.\n\n{history}\n")).text == "Fixed, thanks."


def test_the_senders_own_words_above_a_quote_stay() -> None:
    body = "The printer says this.\nHere is what I wrote:\n> E-42\n"
    assert parse(mail("", body)).text == "The printer says this.\nHere is what I wrote:"
    body = "Steps:\n- unplug it\n- plug it in\n\nThanks,\nBob"
    assert parse(mail("", body)).text == body


def test_broken_headers_and_charsets_are_read_not_refused() -> None:
    raw = (
        "From: J\u00f6rg <Joerg@Example.com>\n"
        "To: support@support.example.com\n"
        "Subject: Gr\u00f6\u00dfe =?x-unknown?q?caf=E9?=\n"
        "Message-ID: <<<@@>\n"
        "References: t12.m3@support.example.com\n"
        "Content-Type: text/plain; charset=x-bogus\n"
        "\n"
        "H\u00e9llo\n"
    ).encode()
    found = parse(raw)
    assert (found.sender, found.sender_name) == ("joerg@example.com", "J\u00f6rg")
    assert found.subject == "Gr\u00f6\u00dfe caf\ufffd"
    assert found.message_id == "@@"
    assert found.in_reply_to == (ROOT,)
    assert found.text == "H\u00e9llo"  # unknown charset: read as UTF-8


@pytest.mark.parametrize("name", FIXTURES)
def test_truncated_or_garbled_mail_raises_only_invalid_mail(name: str) -> None:
    raw = (MAIL / name).read_bytes()
    noise = random.Random(name)
    samples = [raw[:cut] for cut in range(0, len(raw), max(1, len(raw) // 40))]
    samples += [bytes(b if noise.random() > 0.02 else noise.randrange(256) for b in raw)]
    for sample in samples:
        try:
            found = parse(sample)
        except InvalidMail:
            continue
        assert isinstance(found.text, str) and "@" in found.sender


def test_message_ids_keep_their_case_and_come_once() -> None:
    found = parse(
        mail(
            "Message-ID: \n <CAFx9+Q@Mail.Example>\n"
            "In-Reply-To: <t12.m3@support.example.com> (Alice's mail of 1 Dec)\n"
            "References: <t12.m1@support.example.com>\n <CAFx9+Q@Mail.Example>\n"
            "  <t12.m3@support.example.com>"
        )
    )
    assert found.message_id == "CAFx9+Q@Mail.Example"
    assert found.in_reply_to == (ROOT, FIRST, "CAFx9+Q@Mail.Example")
    assert parse(mail("In-Reply-To: t12.m3@support.example.com")).in_reply_to == (ROOT,)
    assert parse(mail("Message-ID: <>")).message_id is None
    assert parse(mail("References: none")).in_reply_to == ()


def test_deeply_nested_parts_are_refused() -> None:
    nesting = "".join(
        f"Content-Type: multipart/mixed; boundary=b{i}\n\n--b{i}\n" for i in range(3000)
    )
    with pytest.raises(InvalidMail):
        parse(mail("", "").rstrip(b"\n") + b"\n" + nesting.encode() + b"\nhi\n")


def test_long_lines_do_not_stall_the_reader() -> None:
    body = "On" + " and on" * 30_000 + "\n" + ("On and on\n" * 20_000)
    started = time.perf_counter()
    found = parse(mail("", body))
    assert time.perf_counter() - started < 5
    assert found.text == body.strip()


@pytest.mark.parametrize(
    ("disposition", "filename"),
    [
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ('attachment; filename="C:\\\\Users\\\\bob\\\\report.pdf"', "report.pdf"),
        ('attachment; filename="in\u202evoice\u0007.pdf"', "invoice.pdf"),
        ('attachment; filename=".."', "attachment"),
        ("attachment", "attachment"),
        ("attachment; filename==?utf-8?B?UmVjaG51bmcgTcOkcnoucGRm?=", "Rechnung M\u00e4rz.pdf"),
        (
            "attachment; filename*0*=utf-8''Rech; filename*1*=nung%20M%C3%A4rz.pdf",
            "Rechnung M\u00e4rz.pdf",
        ),
        (f'attachment; filename="{"a" * 300}.pdf"', "a" * 255),
    ],
)
def test_attachment_names_are_made_safe(disposition: str, filename: str) -> None:
    raw = mail(
        'Content-Type: multipart/mixed; boundary="b"',
        "--b\nContent-Type: text/plain\n\nsee the file\n--b\n"
        f"Content-Type: application/pdf\nContent-Disposition: {disposition}\n"
        "Content-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--b--\n",
    )
    found = parse(raw)
    assert found.attachments == (InboundAttachment(filename, "application/pdf", b"%PDF-1.4\n"),)
    assert found.text == "see the file"


def test_which_parts_count_as_attachments() -> None:
    parts = [
        ("text/plain", "", "the body"),  # the body itself
        ("text/plain", "inline", "more text"),  # more of the body
        ("text/plain", 'inline; filename="notes.txt"', "body text with a name"),
        ("text/plain", 'attachment; filename="log.txt"', "E-42"),
        ("image/png", 'inline; filename="empty.png"', ""),  # no content
        ("image/gif", "", "GIF89a"),  # no name, not an attachment
    ]
    body = "".join(
        f"--b\nContent-Type: {kind}\n"
        + (f"Content-Disposition: {disposition}\n" if disposition else "")
        + f"\n{content}\n"
        for kind, disposition, content in parts
    )
    found = parse(mail('Content-Type: multipart/mixed; boundary="b"', body + "--b--\n"))
    assert found.attachments == (InboundAttachment("log.txt", "text/plain", b"E-42"),)
    assert found.text == "the body"


def test_a_forwarded_mail_is_one_attachment() -> None:
    inner = "From: a@b.example\nSubject: old\n\nold text\n"  # the last line break is the boundary's
    body = (
        "--b\nContent-Type: text/plain\n\nsee below\n"
        f'--b\nContent-Type: message/rfc822\nContent-Disposition: attachment; filename="old.eml"'
        f"\n\n{inner}--b--\n"
    )
    (forwarded,) = parse(mail('Content-Type: multipart/mixed; boundary="b"', body)).attachments
    assert (forwarded.filename, forwarded.content_type) == ("old.eml", "message/rfc822")
    assert forwarded.content == b"From: a@b.example\nSubject: old\n\nold text"


@pytest.mark.parametrize(
    ("headers", "automatic"),
    [
        ("", False),
        ("Auto-Submitted: auto-generated", True),
        ("Auto-Submitted: auto-replied; owner-email=grace@navy.example", True),
        ("Auto-Submitted: no", False),
        ("Auto-Submitted: No", False),
        ("Precedence: bulk", True),
        ("Precedence: junk", True),
        ("Precedence: list", True),
        ("Precedence: auto_reply", True),
        ("Precedence: first-class", False),
        ("X-Autoreply: yes", True),
        ("X-Autorespond: Out of office", True),
        ("X-Auto-Response-Suppress: All", True),
        ("X-Auto-Response-Suppress: DR, OOF, AutoReply", True),
        ("X-Auto-Response-Suppress: DR, RN", False),
        ("List-Id: Printer news <news.printers.example>", True),
        ("List-Unsubscribe: <mailto:unsubscribe@printers.example>", True),
        ("From: MAILER-DAEMON@mx.alps.example", True),
        ("From: Postmaster <postmaster@alps.example>", True),
        ("From: daemon-fan@alps.example", False),
        ('Content-Type: multipart/report; report-type=delivery-status; boundary="b"', True),
        ("Return-Path: <>", True),
        ("Return-Path: <heidi@alps.example>", False),
    ],
)
def test_automatic(headers: str, automatic: bool) -> None:
    assert parse(mail(headers)).automatic is automatic


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello</p><p>World</p>", "Hello\n\nWorld"),
        ("<div>Hello</div><div><br></div><div>World</div>", "Hello\n\nWorld"),
        ("one<br>two<br><br><br><br>three", "one\ntwo\n\nthree"),
        (
            "<h2>Steps</h2><ul><li>plug in</li><li> switch on</li></ul>done",
            "Steps\n\n- plug in\n- switch on\ndone",
        ),
        (
            "<table><tr><td>Model</td><td>X-200</td></tr>"
            "<tr><th>Error</th><td>E-42</td></tr></table>",
            "Model X-200\nError E-42",
        ),
        (
            "Fish &amp; chips &lt;3 &eacute;t&eacute; &#8211; fine&nbsp;now",
            "Fish & chips <3 \u00e9t\u00e9 \u2013 fine now",
        ),
        ("<html><head><title>Mail</title><style>p {}</style></head><body>hi</body></html>", "hi"),
        ("<head><title>never closed</title><body>hi", "hi"),
        ("<script>document.write('<div>x</div>')</script>hi", "hi"),
        ("new<blockquote>old<blockquote>older</blockquote>old</blockquote>", "new"),
        ("new<div class='gmail_quote gmail_quote_container'><div>old</div>old</div>", "new"),
        ("new<div class=gmail_signature><div>Bob</div>CEO</div>", "new"),
        ("new<div id=appendonsend></div><div id=divRplyFwdMsg><b>From:</b> a</div>old", "new"),
        ("new<hr><b>From:</b> Alice<br><b>Sent:</b> today<br>old", "new"),
        ("above<hr>below", "above\nbelow"),
        ("<pre>  x = 1\n    y = 2</pre>", "  x = 1\n    y = 2"),
        ("<p>  spaced \n   out  </p>", "spaced out"),
        ("", ""),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_html_parts_of_gmail_and_outlook_lose_their_history() -> None:
    assert html_to_text(html_part("gmail_reply.eml")) == (
        "Hi,\n\nthe fire is out \u2013 but the printer still shows error E-42 when I print"
        " double-sided.\n\nBob"
    )
    assert html_to_text(html_part("outlook_reply.eml")) == (
        "Hello,\n\nthe replacement toner arrived, thank you. Could you also send the invoice"
        " for it?\n\nKind regards\nCarol"
    )


def test_a_folded_message_id_is_one_id_without_whitespace() -> None:
    for newline in ("\n", "\r\n"):
        found = parse(
            mail(
                f"Message-ID: <8f14e45f-ceea-{newline} 467f@alps.example>\n"
                f"In-Reply-To: <t12.m3@support.{newline}\texample.com>\n"
                f"References: <t12.m1@support.example.com> <t12.m3@support.{newline} example.com>"
            )
        )
        assert found.message_id == "8f14e45f-ceea-467f@alps.example"
        assert found.in_reply_to == (ROOT, FIRST)
    assert parse(mail("Message-ID: 8f14e45f-\n ceea@alps.example")).message_id == (
        "8f14e45f-ceea@alps.example"
    )


@pytest.mark.parametrize(
    "sender",
    [
        "=?utf-8?q?Eve=0D=0ABcc=3A_evil=40example=2Ecom?= <dave@example.com>",
        "=?utf-8?q?Eve=0D=0ABcc:=20evil@example.com?= <dave@example.com>",
        "=?utf-8?b?RXZlDQpCY2M6IGV2aWxAZXhhbXBsZS5jb20=?= <dave@example.com>",
        "=?utf-8?q?Eve=0ABcc=3A_evil=40example=2Ecom?= <dave@example.com>",
        "=?utf-8?q?Eve=0DBcc=3A_evil=40example=2Ecom?= <dave@example.com>",
        "Eve <=?utf-8?q?dave=0D=0A?=@example.com>",
        "Dave <dave@example..com>",
        "Dave <dave@localhost>",
        "Dave <dave@exa_mple.com>",
    ],
)
def test_a_from_that_hides_a_header_or_is_no_valid_address_is_invalid(sender: str) -> None:
    with pytest.raises(InvalidMail, match="From"):
        parse(mail(f"From: {sender}"))


def test_an_encoded_from_name_is_decoded_to_one_line() -> None:
    found = parse(mail("From: =?utf-8?q?Ren=C3=A9_=09Dupr=C3=A9?= <Rene@Exemple.FR>"))
    assert (found.sender, found.sender_name) == ("rene@exemple.fr", "Ren\u00e9 Dupr\u00e9")
