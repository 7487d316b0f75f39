"""Fill the bench database with users, tickets and messages, through SQL.

Every row is computed in PostgreSQL from its id (INSERT ... SELECT generate_series, with
hash-based pseudo-random values), so the data set is reproducible and chunks can be loaded by
several connections at once. Secondary indexes and foreign keys are dropped during the load and
recreated afterwards exactly as the migration made them (checked against the catalog).

    .venv/bin/python bench/generate.py --tickets 10000     # 1k users, 10k tickets, 40k messages
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from argon2 import PasswordHasher
from common import (
    ACCOUNTS,
    BENCH_DB,
    BENCH_DIR,
    CUSTOMER,
    EMAIL_DOMAIN,
    MAINTENANCE_DB,
    PASSWORD,
    STAFF,
    SUPERUSER,
    TICKETDESK,
    Progress,
    dsn,
    log,
)

OWN_TICKETS = 50  # tickets of the known customer
SPAN = timedelta(days=365)  # tickets are spread over the last year
TOPICS = (
    "Billing",
    "Login problem",
    "New instances",
    "Refund",
    "Invoice copy",
    "Password reset",
    "API errors",
    "Slow dashboard",
    "Upgrade plan",
    "Data export",
    "Cancel account",
    "Feature request",
)
_WORDS = (
    "laptop refund vpn printer invoice password backup mailbox calendar license router "
    "firewall certificate upgrade downgrade migration webhook export import dashboard report "
    "shipping delivery tracking warranty replacement battery screen keyboard mouse monitor "
    "headset camera microphone bluetooth wifi ethernet modem server database cluster storage "
    "quota billing payment receipt discount coupon subscription renewal cancellation trial "
    "onboarding training manual documentation integration plugin extension browser mobile "
    "android iphone tablet sync notification reminder schedule timezone language "
    "translation accessibility security phishing spam virus malware encryption token api "
    "latency outage timeout crash freeze error warning performance memory disk cpu network"
)
VOCABULARY = tuple(_WORDS.split())
"""Words sprinkled over the messages, two per message, uniformly: each is in about 8% of
the tickets, so a search for two of them finds about 1% of them (dataset.SEARCH_WORDS)."""
LOREM = (
    "Hello, we noticed that the service stopped answering after the last update and our "
    "team cannot log in anymore. Could you have a look at the account and tell us what "
    "changed? We also need a copy of the last three invoices and the current plan limits, "
    "ideally before the end of the week. Thanks a lot for your help and have a nice day."
)


@dataclass(frozen=True)
class Sizes:
    users: int
    tickets: int
    messages: int

    @classmethod
    def scaled(cls, tickets: int, users: int | None = None, messages: int | None = None) -> Sizes:
        """Users and messages follow the ticket count (1 : 10 : 40) unless given."""
        return cls(
            users=users if users is not None else max(tickets // 10, 100),
            tickets=tickets,
            messages=messages if messages is not None else tickets * 4,
        )

    def check(self) -> None:
        if self.users < 100:
            raise SystemExit("generate: at least 100 users")
        if self.tickets < OWN_TICKETS:
            raise SystemExit(f"generate: at least {OWN_TICKETS} tickets")
        if self.messages < self.tickets:
            raise SystemExit("generate: at least one message per ticket")


@dataclass(frozen=True)
class Layout:
    """Which user ids are staff and which are customers; fixed accounts come first."""

    sizes: Sizes
    now: datetime

    @property
    def staff_lo(self) -> int:
        return 4

    @property
    def staff_hi(self) -> int:
        # 1% staff in all, the known staff account (id 2) included.
        return self.staff_lo + max(self.sizes.users // 100, 2) - 2

    @property
    def customers_lo(self) -> int:
        return self.staff_hi + 1

    @property
    def customers(self) -> int:
        return self.sizes.users - self.customers_lo + 1

    @property
    def own_step(self) -> int:
        """Every own_step-th ticket (up to OWN_TICKETS of them) belongs to the known customer."""
        return self.sizes.tickets // OWN_TICKETS


def _literal(moment: datetime) -> str:
    return f"to_timestamp({moment.timestamp()!r})"


def function_sql(layout: Layout) -> list[str]:
    """Per-connection SQL functions that give every row its values.

    They are STABLE, as timestamptz arithmetic is: the planner inlines a SQL function only
    when its body is no more volatile than its declaration, and a called one is slow.
    """
    n, m = layout.sizes.tickets, layout.sizes.messages
    start = _literal(layout.now - SPAN)
    now = _literal(layout.now)
    step_seconds = SPAN.total_seconds() / n
    body = {
        "u01(x bigint, seed bigint) RETURNS float8": (
            "(hashint8extended(x, seed) & 4503599627370495)::float8 / 4503599627370496.0"
        ),
        "ticket_author(t bigint) RETURNS bigint": (
            f"CASE WHEN t % {layout.own_step} = 0 AND t / {layout.own_step} <= {OWN_TICKETS} "
            f"THEN {CUSTOMER.user_id} ELSE {layout.customers_lo} "
            f"+ floor({layout.customers} * power(pg_temp.u01(t, 1), 2.5))::bigint END"
        ),
        "ticket_created(t bigint) RETURNS timestamptz": (
            f"{start} + ((t - 1) + pg_temp.u01(t, 2)) * {step_seconds!r} * interval '1 second'"
        ),
        "ticket_updated(t bigint) RETURNS timestamptz": (
            "pg_temp.ticket_created(t) + power(pg_temp.u01(t, 3), 2) "
            f"* least(interval '30 days', {now} - pg_temp.ticket_created(t))"
        ),
        "pair_shift(p bigint) RETURNS bigint": (f"floor(pg_temp.u01(p, 7) * {m // n})::bigint"),
        # Messages per ticket vary around m/n; pairs of tickets shift by +v/-v, so the total
        # is exactly m and a ticket's first message id is known without counting.
        "msg_count(t bigint) RETURNS bigint": (
            f"({m}::bigint * t / {n}) - ({m}::bigint * (t - 1) / {n}) + CASE "
            f"WHEN t % 2 = 1 AND t < {n} THEN pg_temp.pair_shift((t + 1) / 2) "
            "WHEN t % 2 = 0 THEN -pg_temp.pair_shift(t / 2) ELSE 0 END"
        ),
        "msg_base(t bigint) RETURNS bigint": (
            f"({m}::bigint * (t - 1) / {n}) "
            "+ CASE WHEN t % 2 = 0 THEN pg_temp.pair_shift(t / 2) ELSE 0 END"
        ),
        "ticket_status(t bigint) RETURNS text": (
            "CASE WHEN pg_temp.u01(t, 4) < 0.30 THEN 'pending' "
            "WHEN pg_temp.u01(t, 4) < 0.70 THEN "
            "CASE WHEN pg_temp.msg_count(t) >= 2 THEN 'resolved' ELSE 'pending' END "
            "WHEN pg_temp.u01(t, 4) < 0.85 THEN 'unresolved' ELSE 'canceled' END"
        ),
    }
    return [
        f"CREATE FUNCTION pg_temp.{signature} LANGUAGE sql STABLE PARALLEL SAFE "
        f"AS $$ SELECT {expression} $$"
        for signature, expression in body.items()
    ]


USER_COLUMNS = (
    "id, email, username, password_hash, is_staff, is_superuser, is_active, tickets_count, "
    "token_version, created_at"
)


def known_users_sql(layout: Layout) -> str:
    created = _literal(layout.now - SPAN - timedelta(days=60))
    rows = ", ".join(
        f"({account.user_id}, '{account.email}', '{account.role}', $1, "
        f"{account is STAFF}, {account is SUPERUSER}, true, 0, 0, {created})"
        for account in ACCOUNTS.values()
    )
    return f"INSERT INTO users ({USER_COLUMNS}) VALUES {rows}"


def users_sql(layout: Layout, lo: int, hi: int) -> str:
    created = _literal(layout.now - SPAN)
    return (
        f"INSERT INTO users ({USER_COLUMNS}) "
        f"SELECT i, 'user' || i || '@{EMAIL_DOMAIN}', 'user ' || i, $1, "
        f"i BETWEEN {layout.staff_lo} AND {layout.staff_hi}, false, true, 0, 0, "
        f"{created} - interval '60 days' * pg_temp.u01(i, 10) "
        f"FROM generate_series({lo}::bigint, {hi}::bigint) i"
    )


def tickets_sql(lo: int, hi: int) -> str:
    topics = ", ".join(f"'{topic}'" for topic in TOPICS)
    return (
        "INSERT INTO tickets (id, author_id, topic, status, created_at, updated_at) "
        f"SELECT t, pg_temp.ticket_author(t), (ARRAY[{topics}])"
        f"[1 + floor(pg_temp.u01(t, 9) * {len(TOPICS)})::int], "
        "pg_temp.ticket_status(t), pg_temp.ticket_created(t), pg_temp.ticket_updated(t) "
        f"FROM generate_series({lo}::bigint, {hi}::bigint) t"
    )


def message_text_sql(t: str, s: str, message_id: str) -> str:
    """The text of message number s of ticket t, whose id is message_id (SQL expressions)."""
    lorem = LOREM.replace("'", "''")
    words = ", ".join(f"'{word}'" for word in VOCABULARY)
    pick = (
        f"(ARRAY[{words}])[1 + floor(pg_temp.u01({message_id}, {{seed}}) * {len(VOCABULARY)})::int]"
    )
    return (
        f"'Message ' || {s} || ' on ticket ' || {t} || ': ' "
        f"|| left('{lorem}', 20 + floor(pg_temp.u01({message_id}, 8) * 200)::int) "
        f"|| ' ' || {pick.format(seed=11)} || ' ' || {pick.format(seed=12)}"
    )


def messages_sql(layout: Layout, lo: int, hi: int) -> str:
    staff_count = layout.staff_hi - layout.staff_lo + 1
    # OFFSET 0 keeps the per-ticket values computed once per ticket, not once per message.
    tickets = (
        "SELECT t, pg_temp.msg_count(t) AS k, pg_temp.msg_base(t) AS base, "
        "pg_temp.ticket_author(t) AS author, pg_temp.ticket_status(t) AS status, "
        "pg_temp.ticket_created(t) AS created, pg_temp.ticket_updated(t) AS updated "
        f"FROM generate_series({lo}::bigint, {hi}::bigint) t OFFSET 0"
    )
    kind = (
        "CASE WHEN s = 1 THEN 'request' "
        "WHEN s = k AND status = 'resolved' THEN 'response' "
        "WHEN pg_temp.u01(base + s, 5) < 0.5 THEN 'response' ELSE 'request' END"
    )
    rows = (
        f"SELECT tk.*, s, base + s AS id, {kind} AS kind "
        f"FROM ({tickets}) tk CROSS JOIN LATERAL generate_series(1::bigint, tk.k) s"
    )
    return (
        "INSERT INTO messages (id, ticket_id, author_id, type, text, created_at) "
        "SELECT id, t, CASE WHEN kind = 'request' THEN author "
        f"ELSE {layout.staff_lo} + floor(pg_temp.u01(id, 6) * {staff_count})::bigint END, "
        f"kind, {message_text_sql('t', 's', 'id')}, "
        "created + (updated - created) * ((s - 1)::float8 / greatest(k - 1, 1)) "
        f"FROM ({rows}) m"
    )


def search_sql(lo: int, hi: int) -> str:
    """Each ticket's search document: its topic and its messages, as the service keeps it."""
    return (
        "UPDATE tickets AS tk SET search_public = to_tsvector('english', tk.topic) "
        "|| to_tsvector('english', d.text) FROM ("
        "SELECT t, (SELECT string_agg("
        f"{message_text_sql('t', 's', 'pg_temp.msg_base(t) + s')}, ' ' ORDER BY s) "
        "FROM generate_series(1::bigint, pg_temp.msg_count(t)) s) AS text "
        f"FROM generate_series({lo}::bigint, {hi}::bigint) t) AS d WHERE tk.id = d.t"
    )


def events_sql(lo: int, hi: int) -> str:
    """One `created` event per ticket, in the order of creation."""
    return (
        "INSERT INTO ticket_events (id, ticket_id, at, actor_id, kind, before, after) "
        "SELECT t, t, pg_temp.ticket_created(t), pg_temp.ticket_author(t), 'created', NULL, "
        "json_build_object('status', 'pending')::text "
        f"FROM generate_series({lo}::bigint, {hi}::bigint) t"
    )


FINISH_SQL = (
    "UPDATE users u SET tickets_count = c.n "
    "FROM (SELECT author_id, count(*) AS n FROM tickets GROUP BY author_id) c "
    "WHERE u.id = c.author_id",
    *(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        for table in ("users", "tickets", "messages", "ticket_events")
    ),
)

SECONDARY_INDEXES_SQL = """
SELECT i.relname AS name, pg_get_indexdef(i.oid) AS definition
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
WHERE t.relnamespace = 'public'::regnamespace
  AND NOT EXISTS (
    SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.contype IN ('p', 'u', 'x')
  )
ORDER BY 1
"""
FOREIGN_KEYS_SQL = """
SELECT conrelid::regclass::text AS table_name, conname AS name,
       pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE contype = 'f' AND connamespace = 'public'::regnamespace
ORDER BY 2
"""
CATALOG_SQL = """
SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint ' || conname || ': ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
ORDER BY 1
"""


def chunks(total: int, size: int, first: int = 1) -> list[tuple[int, int]]:
    return [(lo, min(lo + size - 1, total)) for lo in range(first, total + 1, size)]


def inserted_rows(status: str) -> int:
    """asyncpg's command tag, e.g. 'INSERT 0 5000' -> 5000."""
    return int(status.split()[-1])


class Loader:
    """A few connections that take statements from a queue, each with the row functions."""

    def __init__(self, layout: Layout, jobs: int) -> None:
        self.layout = layout
        self.jobs = jobs
        self.connections: list[asyncpg.Connection] = []

    async def __aenter__(self) -> Loader:
        for _ in range(self.jobs):
            conn = await asyncpg.connect(dsn(BENCH_DB))
            await conn.execute("SET synchronous_commit = off")
            await conn.execute("SET maintenance_work_mem = '512MB'")
            for statement in function_sql(self.layout):
                await conn.execute(statement)
            self.connections.append(conn)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for conn in self.connections:
            await conn.close()

    async def run(
        self,
        statements: Sequence[tuple[str, Sequence[object]]],
        progress: Progress,
        count: Callable[[str], int] = inserted_rows,
    ) -> None:
        queue: asyncio.Queue[tuple[str, Sequence[object]]] = asyncio.Queue()
        for item in statements:
            queue.put_nowait(item)

        async def worker(conn: asyncpg.Connection) -> None:
            while not queue.empty():
                sql, args = queue.get_nowait()
                progress.advance(count(await conn.execute(sql, *args)))

        await asyncio.gather(*(worker(conn) for conn in self.connections))


async def recreate_database(database: str = BENCH_DB) -> None:
    conn = await asyncpg.connect(dsn(MAINTENANCE_DB))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        await conn.execute(f"CREATE DATABASE {database} TEMPLATE template0")
    finally:
        await conn.close()


def migrate(database: str = BENCH_DB) -> None:
    # The bench directory has no .env, so only the variables given here configure the service.
    env = {**os.environ, "DATABASE_URL": dsn(database)}
    subprocess.run(
        [str(TICKETDESK), "migrate"], env=env, cwd=BENCH_DIR, check=True, stdout=sys.stderr
    )


async def catalog(conn: asyncpg.Connection) -> list[str]:
    return [row[0] for row in await conn.fetch(CATALOG_SQL)]


async def drop_secondary(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """Drop foreign keys and non-constraint indexes; return the statements that restore them."""
    foreign_keys = await conn.fetch(FOREIGN_KEYS_SQL)
    indexes = await conn.fetch(SECONDARY_INDEXES_SQL)
    for fk in foreign_keys:
        await conn.execute(f"ALTER TABLE {fk['table_name']} DROP CONSTRAINT {fk['name']}")
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    restore_fks = [
        f"ALTER TABLE {fk['table_name']} ADD CONSTRAINT {fk['name']} {fk['definition']}"
        for fk in foreign_keys
    ]
    return [index["definition"] for index in indexes], restore_fks


async def settle_definitions(conn: asyncpg.Connection) -> None:
    """Drop and restore the secondary indexes and foreign keys once, on the empty tables.

    They come back from their definitions as PostgreSQL prints them, which may word a
    predicate otherwise than the migration did (`status IN (...)` becomes `= ANY (...)`,
    its casts placed differently): after one such round trip they print alike, so the check
    after the load compares like with like."""
    indexes, foreign_keys = await drop_secondary(conn)
    for sql in (*indexes, *foreign_keys):
        await conn.execute(sql)


def password_hash() -> str:
    hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    return hasher.hash(PASSWORD)


async def timed(label: str, step: Awaitable[None], timings: dict[str, float]) -> None:
    started = time.monotonic()
    await step
    timings[label] = round(time.monotonic() - started, 2)
    log(f"{label:<10} done in {timings[label]:.1f}s")


async def load_rows(loader: Loader, layout: Layout, hashed: str, timings: dict[str, float]) -> None:
    sizes = layout.sizes
    await loader.connections[0].execute(known_users_sql(layout), hashed)
    steps = (
        (
            "users",
            sizes.users - 3,
            [(users_sql(layout, lo, hi), (hashed,)) for lo, hi in chunks(sizes.users, 50_000, 4)],
        ),
        (
            "tickets",
            sizes.tickets,
            [(tickets_sql(lo, hi), ()) for lo, hi in chunks(sizes.tickets, 50_000)],
        ),
        (
            "messages",
            sizes.messages,
            [(messages_sql(layout, lo, hi), ()) for lo, hi in chunks(sizes.tickets, 25_000)],
        ),
        (
            "search",
            sizes.tickets,
            [(search_sql(lo, hi), ()) for lo, hi in chunks(sizes.tickets, 25_000)],
        ),
        (
            "events",
            sizes.tickets,
            [(events_sql(lo, hi), ()) for lo, hi in chunks(sizes.tickets, 50_000)],
        ),
    )
    for label, total, statements in steps:
        progress = Progress(label, total)
        await loader.run(statements, progress)
        timings[label] = round(progress.finish(), 2)


async def rebuild(loader: Loader, indexes: list[str], foreign_keys: list[str]) -> dict[str, float]:
    """Counts, sequences, indexes, foreign keys, statistics; each step's time in seconds."""
    timings: dict[str, float] = {}
    conn = loader.connections[0]

    async def counts() -> None:
        for sql in FINISH_SQL:
            await conn.execute(sql)

    async def build(statements: list[str], label: str) -> None:
        progress = Progress(label, len(statements), unit="steps")
        await loader.run([(sql, ()) for sql in statements], progress, count=lambda _: 1)
        progress.finish()

    async def add_foreign_keys() -> None:
        for sql in foreign_keys:  # each takes a table lock that conflicts with the others
            await conn.execute(sql)

    tables = ("messages", "tickets", "users", "ticket_events")
    vacuum = [f"VACUUM (ANALYZE) {table}" for table in tables]
    await timed("counts", counts(), timings)
    await timed("indexes", build(indexes, "indexes"), timings)
    await timed("fkeys", add_foreign_keys(), timings)
    await timed("vacuum", build(vacuum, "vacuum"), timings)
    await timed("checkpoint", conn.execute("CHECKPOINT"), timings)
    return timings


async def describe(sizes: Sizes, layout: Layout, timings: dict[str, float]) -> dict[str, object]:
    info: dict[str, object] = {
        "sizes": asdict(sizes),
        "generated_at": layout.now.isoformat(),
        "staff_ids": [STAFF.user_id, layout.staff_lo, layout.staff_hi],
        "timings_s": timings,
    }
    comment = json.dumps(info).replace("'", "''")
    conn = await asyncpg.connect(dsn(BENCH_DB))
    try:
        await conn.execute(f"COMMENT ON DATABASE {BENCH_DB} IS '{comment}'")
    finally:
        await conn.close()
    return info


async def dataset_info() -> dict[str, Any] | None:
    """What the generator recorded about the data set now in the bench database."""
    conn = await asyncpg.connect(dsn(BENCH_DB))
    try:
        comment = await conn.fetchval(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1",
            BENCH_DB,
        )
    finally:
        await conn.close()
    return json.loads(comment) if comment else None


async def generate(sizes: Sizes, jobs: int = 2, keep_indexes: bool = False) -> dict[str, object]:
    """Drop, recreate, migrate and fill the bench database; returns sizes and timings."""
    sizes.check()
    started = time.monotonic()
    layout = Layout(sizes, datetime.now(UTC).replace(microsecond=0))
    log(f"generating {sizes.users} users, {sizes.tickets} tickets, {sizes.messages} messages")
    await recreate_database()
    migrate()
    hashed = password_hash()
    async with Loader(layout, jobs) as loader:
        conn = loader.connections[0]
        if not keep_indexes:
            await settle_definitions(conn)
        before = await catalog(conn)
        indexes, foreign_keys = ([], []) if keep_indexes else await drop_secondary(conn)
        timings: dict[str, float] = {}
        await load_rows(loader, layout, hashed, timings)
        timings |= await rebuild(loader, indexes, foreign_keys)
        after = await catalog(conn)
    if before != after:
        raise SystemExit(f"generate: schema differs after the load:\n{before}\n{after}")
    timings["total"] = round(time.monotonic() - started, 2)
    log(f"generated in {timings['total']:.1f}s; indexes and constraints match the migration")
    return await describe(sizes, layout, timings)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, help="default: tickets / 10")
    parser.add_argument("--messages", type=int, help="default: tickets * 4")
    parser.add_argument("--jobs", type=int, default=2, help="loading connections (default 2)")
    parser.add_argument(
        "--keep-indexes",
        action="store_true",
        help="load with every index and foreign key in place (slower; for comparison)",
    )
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    sizes = Sizes.scaled(args.tickets, args.users, args.messages)
    info = asyncio.run(generate(sizes, args.jobs, args.keep_indexes))
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
