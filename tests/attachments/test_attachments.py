"""Files on messages: who may fetch them, as what, within which limits, and what is kept."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import Account, add_account, client_with, open_ticket
from ticketdesk.attachments.service import clean_filename, sweep
from ticketdesk.attachments.storage import LocalStorage
from ticketdesk.models import attachments, messages

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HTML = b"<html><script>alert(document.cookie)</script></html>"


async def upload(
    client: httpx.AsyncClient,
    account: Account,
    ticket_id: int,
    files: list[tuple[str, bytes]],
    text: str = "see attached",
    **fields: str,
) -> httpx.Response:
    return await client.post(
        f"/tickets/{ticket_id}/messages",
        data={"text": text, **fields},
        files=[("files", (name, content)) for name, content in files],
        headers=account.headers,
    )


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_files_come_back_as_downloads_of_their_sniffed_type(
    client: httpx.AsyncClient, customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    files = [("shot.png", PNG), ("notes.txt", "grüße\n".encode()), ("page.html", HTML)]
    response = await upload(client, customer, ticket_id, files)
    assert response.status_code == 201, response.text
    message = response.json()
    assert message["type"] == "request" and message["text"] == "see attached"
    found = [(a["filename"], a["content_type"], a["size"]) for a in message["attachments"]]
    assert found == [
        ("shot.png", "image/png", len(PNG)),
        ("notes.txt", "text/plain; charset=utf-8", len("grüße\n".encode())),
        ("page.html", "application/octet-stream", len(HTML)),  # never served as a page
    ]
    thread = (await client.get(f"/tickets/{ticket_id}/messages", headers=staff.headers)).json()
    assert thread[0]["attachments"] == [] and thread[1]["attachments"] == message["attachments"]
    for attachment, (name, content) in zip(message["attachments"], files, strict=True):
        for account in (customer, staff):
            download = await client.get(f"/attachments/{attachment['id']}", headers=account.headers)
            assert download.status_code == 200
            assert download.content == content
            assert download.headers["content-disposition"].startswith("attachment;")
            assert name in download.headers["content-disposition"]
            assert download.headers["x-content-type-options"] == "nosniff"
            assert download.headers["content-type"] == attachment["content_type"]


async def test_only_those_who_may_read_the_message_fetch_its_files(
    client: httpx.AsyncClient, customer: Account, other_customer: Account, staff: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    public = (await upload(client, customer, ticket_id, [("a.png", PNG)])).json()
    note = await upload(client, staff, ticket_id, [("internal.txt", b"vip")], internal="true")
    assert note.status_code == 201 and note.json()["type"] == "note"
    public_id, note_id = public["attachments"][0]["id"], note.json()["attachments"][0]["id"]
    assert (await client.get(f"/attachments/{public_id}")).status_code == 401
    other = await client.get(f"/attachments/{public_id}", headers=other_customer.headers)
    assert other.status_code == 404
    assert (
        await client.get(f"/attachments/{note_id}", headers=customer.headers)
    ).status_code == 404
    assert (await client.get(f"/attachments/{note_id}", headers=staff.headers)).status_code == 200
    assert (await client.get("/attachments/999999", headers=staff.headers)).status_code == 404
    thread = (await client.get(f"/tickets/{ticket_id}/messages", headers=customer.headers)).json()
    assert "internal.txt" not in str(thread)
    customer_note = await upload(client, customer, ticket_id, [("x.txt", b"x")], internal="true")
    assert customer_note.status_code == 403


async def test_limits_refuse_the_whole_message(
    database_url: URL, tmp_path: Path, engine: AsyncEngine
) -> None:
    limits = {
        "attachment_max_bytes": 1000,
        "message_attachments_max_bytes": 1500,
        "message_attachments_max_files": 2,
    }
    async with client_with(database_url, tmp_path, **limits) as client:
        customer = await add_account(engine, "c@example.com")
        ticket_id = await open_ticket(client, customer)
        before = await count(engine, messages)
        too_big = await upload(client, customer, ticket_id, [("big.bin", b"x" * 1001)])
        assert too_big.status_code == 413
        too_much = [("a.bin", b"x" * 800), ("b.bin", b"x" * 800)]
        assert (await upload(client, customer, ticket_id, too_much)).status_code == 413
        too_many = [(f"{n}.txt", b"x") for n in range(3)]
        assert (await upload(client, customer, ticket_id, too_many)).status_code == 400
        huge = await upload(client, customer, ticket_id, [("huge.bin", b"x" * 3 * 1024 * 1024)])
        assert huge.status_code == 413
        assert await count(engine, messages) == before
        assert await count(engine, attachments) == 0
        assert (await upload(client, customer, ticket_id, too_much[:1])).status_code == 201


async def test_names_are_cleaned_and_bad_forms_refused(
    client: httpx.AsyncClient, customer: Account
) -> None:
    ticket_id = await open_ticket(client, customer)
    odd = [("../../etc/<script>x.sh", b"#!/bin/sh"), ("...", b"y"), ('"><img src=x>', b"z")]
    response = await upload(client, customer, ticket_id, odd)
    assert response.status_code == 201, response.text
    names = [a["filename"] for a in response.json()["attachments"]]
    assert names == ["<script>x.sh", "attachment", '"><img src=x>']
    assert (await upload(client, customer, ticket_id, [("a", b"a")], text=" ")).status_code == 400
    empty_input = await upload(client, customer, ticket_id, [("", b"")])  # no file chosen
    assert empty_input.status_code == 201 and empty_input.json()["attachments"] == []
    no_text = await client.post(
        f"/tickets/{ticket_id}/messages", files=[("files", ("a", b"a"))], headers=customer.headers
    )
    assert no_text.status_code == 400
    elsewhere = await client.post(
        "/tickets",
        data={"topic": "t", "text": "x"},
        files=[("files", ("a", b"a"))],
        headers=customer.headers,
    )
    assert elsewhere.status_code == 400  # only messages take forms


async def test_a_retried_upload_is_one_message(
    client: httpx.AsyncClient, customer: Account, engine: AsyncEngine
) -> None:
    ticket_id = await open_ticket(client, customer)
    headers = {**customer.headers, "Idempotency-Key": "upload-1"}
    answers = [
        await client.post(
            f"/tickets/{ticket_id}/messages",
            data={"text": "twice"},
            files=[("files", ("a.png", PNG))],
            headers=headers,
        )
        for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    assert await count(engine, attachments) == 1


async def test_contents_no_attachment_refers_to_are_swept(
    app: FastAPI, client: httpx.AsyncClient, customer: Account
) -> None:
    storage: LocalStorage = app.state.storage
    ticket_id = await open_ticket(client, customer)
    await upload(client, customer, ticket_id, [("kept.png", PNG)])
    orphan = storage.put(b"left behind by a request that failed")
    fresh = storage.put(b"an upload still on its way")
    hour_ago = time.time() - 7200
    for sha256 in (orphan, storage.put(PNG)):
        os.utime(storage.path(sha256), (hour_ago, hour_ago))
    assert await sweep(app.state.database, storage) == 1
    assert not storage.path(orphan).exists()
    assert storage.path(fresh).exists()
    kept = (await client.get(f"/tickets/{ticket_id}/messages", headers=customer.headers)).json()
    attachment = kept[-1]["attachments"][0]["id"]
    assert (await client.get(f"/attachments/{attachment}", headers=customer.headers)).content == PNG


@pytest.mark.parametrize("text", ["<script>alert(1)</script>"])
async def test_text_is_stored_as_sent(
    client: httpx.AsyncClient, customer: Account, text: str
) -> None:
    ticket_id = await open_ticket(client, customer)
    response = await upload(client, customer, ticket_id, [("", b"")], text=text)
    assert response.status_code == 201
    assert response.json()["text"] == text and response.json()["attachments"] == []


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("a\x00b\x1bc\u202ed.txt", "abcd.txt"),
        ("..", "attachment"),
        ("x" * 300 + ".txt", "x" * 255),
    ],
)
def test_file_names_keep_only_the_name(given: str, kept: str) -> None:
    assert clean_filename(given) == kept
