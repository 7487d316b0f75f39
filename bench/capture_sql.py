"""Capture the SQL the service sends per request, and write it as pgbench scripts.

With `log_statement = 'all'` set on the bench database, the service runs with one worker and
one pooled connection; each scenario's request is sent once to warm up, then once between two
marker statements. The statements logged between the markers, with their parameter values,
become bench/pgbench/<scenario>.sql: numbers as `\\set`, other values as `-- define` lines
that the runner passes to pgbench with -D. Rerun it whenever the service's queries change:

    .venv/bin/python bench/capture_sql.py
"""

from __future__ import annotations

import argparse
import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from common import ACCOUNTS, BENCH_DB, PGBENCH_DIR, dsn, log
from dataset import Targets, find_targets, restore, watermark
from loadgen import Request
from scenarios import Scenario, select
from server import Server, ServerConfig

DEFAULT_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
CAPTURE_PORT = 8202
MARKER = "ticketdesk-bench-capture"
ENTRY = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ \[(?P<pid>\d+)\] "
    r"(?:(?P<user>[^@\s]*)@(?P<db>\S*) )?(?P<level>[A-Z]+):  (?P<text>.*)$"
)
STATEMENT = re.compile(r"^(?:execute [^:]+|statement): (?P<sql>.*)$", re.DOTALL)
PARAMETER = re.compile(r"\$(\d+) = (NULL|'(?:[^']|'')*')")
INSERT = re.compile(r"^INSERT INTO (\w+) \(([^)]*)\) VALUES \(([^)]*)\)")
RETURNING = re.compile(r"^INSERT INTO (\w+) .* RETURNING \1\.id\b", re.DOTALL)
COMPARED = re.compile(r"(\w+)\.(\w+)\s*(?:=|<>|!=|<=|>=|<|>)\s*\$(\d+)\b")
TUPLE = re.compile(r"\(([-\w., ]+)\)\s*(?:<=|>=|<|>)\s*\(([^()]*)\)")
PLACEHOLDER = re.compile(r"\$(\d+)\b")


@dataclass
class Entry:
    pid: int
    db: str
    level: str
    text: str


@dataclass
class Statement:
    sql: str
    parameters: dict[int, str | None] = field(default_factory=dict)


def read_entries(path: Path, offset: int) -> Iterator[Entry]:
    """Log entries from `offset` on; continuation lines (tab-indented) join their entry."""
    with path.open("rb") as file:
        file.seek(offset)
        lines = file.read().decode("utf-8", "replace").splitlines()
    current: Entry | None = None
    for line in lines:
        match = ENTRY.match(line)
        if match:
            if current:
                yield current
            current = Entry(int(match["pid"]), match["db"] or "", match["level"], match["text"])
        elif current and line.startswith("\t"):
            current.text += "\n" + line[1:]
    if current:
        yield current


def parse_parameters(detail: str) -> dict[int, str | None]:
    return {
        int(number): None if value == "NULL" else value[1:-1].replace("''", "'")
        for number, value in PARAMETER.findall(detail)
    }


def captured(entries: list[Entry], name: str) -> list[Statement]:
    """The service's statements between the scenario's two markers."""
    begin, end = f"'{MARKER} begin {name}'", f"'{MARKER} end {name}'"
    inside, marker_pid = False, -1
    found: list[Statement] = []
    for entry in entries:
        if entry.db != BENCH_DB:
            continue
        if begin in entry.text:
            inside, marker_pid = True, entry.pid
        elif end in entry.text:
            return found
        elif inside and entry.pid != marker_pid:
            statement = STATEMENT.match(entry.text)
            if entry.level == "LOG" and statement:
                found.append(Statement(statement["sql"].strip()))
            elif entry.level == "DETAIL" and found and entry.text.startswith("parameters:"):
                found[-1].parameters = parse_parameters(entry.text)
    raise RuntimeError(f"the log has no complete capture of {name}")


def parameter_names(sql: str) -> dict[int, str]:
    """A readable variable name for each placeholder, from the column it is compared with."""
    names: dict[int, str] = {}
    insert = INSERT.match(sql)
    if insert:
        columns = [c.strip() for c in insert[2].split(",")]
        for column, value in zip(columns, insert[3].split(","), strict=False):
            number = PLACEHOLDER.search(value)
            if number:
                names[int(number[1])] = f"{insert[1]}_{column}"
    for table, column, number in COMPARED.findall(sql):
        names.setdefault(int(number), f"{table}_{column}")
    for columns, values in TUPLE.findall(sql):
        for column, value in zip(columns.split(","), values.split(","), strict=False):
            number = PLACEHOLDER.search(value)
            if number:
                names.setdefault(int(number[1]), column.strip(" -").replace(".", "_"))
    for keyword in ("LIMIT", "OFFSET"):
        for number in re.findall(rf"\b{keyword} \$(\d+)\b", sql):
            names.setdefault(int(number), keyword.lower())
    return names


@dataclass
class Script:
    """A pgbench script under construction: variables named once per (name, value)."""

    title: str
    numbers: dict[str, str] = field(default_factory=dict)
    defines: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    returned: dict[str, str] = field(default_factory=dict)  # value -> pgbench variable

    def variable(self, name: str, value: str) -> str:
        if value in self.returned:
            return self.returned[value]
        for suffix in ("", *(f"_{n}" for n in range(2, 100))):
            candidate = name + suffix
            known = self.numbers.get(candidate, self.defines.get(candidate))
            if known is None or known == value:
                table = self.numbers if re.fullmatch(r"-?\d+", value) else self.defines
                table[candidate] = value
                return candidate
        raise RuntimeError(f"too many values for {name}")

    def add(self, statement: Statement, new_ids: dict[str, int]) -> None:
        names = parameter_names(statement.sql)

        def replace(match: re.Match[str]) -> str:
            number = int(match[1])
            value = statement.parameters.get(number)
            if value is None:
                raise RuntimeError(f"no value for ${number} in {statement.sql}")
            return ":" + self.variable(names.get(number, f"p{number}"), value)

        sql = PLACEHOLDER.sub(replace, statement.sql).rstrip().rstrip(";")
        returning = RETURNING.match(statement.sql)
        if returning and returning[1] in new_ids:
            prefix = f"new_{returning[1]}_"
            self.returned[str(new_ids[returning[1]])] = f"{prefix}id"
            self.commands.append(f"{sql} \\gset {prefix}")
        else:
            self.commands.append(f"{sql};")

    def text(self) -> str:
        lines = [
            f"-- {self.title}: the statements the service sends for one request,",
            "-- captured from PostgreSQL's log by bench/capture_sql.py (regenerate, do not edit).",
            *(f"-- define {name}={value}" for name, value in self.defines.items()),
            *(f"\\set {name} {value}" for name, value in self.numbers.items()),
            *self.commands,
        ]
        return "\n".join(lines) + "\n"


def build_script(scenario: Scenario, statements: list[Statement], new_ids: dict[str, int]) -> str:
    script = Script(scenario.title)
    for statement in statements:
        script.add(statement, new_ids)
    return script.text()


async def set_statement_logging(on: bool) -> None:
    conn = await asyncpg.connect(dsn(BENCH_DB))
    try:
        setting = "SET log_statement = 'all'" if on else "RESET log_statement"
        await conn.execute(f"ALTER DATABASE {BENCH_DB} {setting}")
    finally:
        await conn.close()


async def max_ids(conn: asyncpg.Connection) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT (SELECT max(id) FROM tickets) AS tickets, "
        "(SELECT max(id) FROM messages) AS messages"
    )
    assert row is not None
    return {"tickets": row["tickets"], "messages": row["messages"]}


def send(client: httpx.Client, request: Request) -> None:
    headers = {"Cookie": f"token={request.token}"} if request.token else None
    response = client.request(request.method, request.path, content=request.body, headers=headers)
    if not response.is_success:
        raise RuntimeError(
            f"{request.method} {request.path}: {response.status_code} {response.text[:300]}"
        )


async def capture_requests(
    server: Server, scenarios: list[Scenario], targets: Targets
) -> dict[str, dict[str, int]]:
    """Send each scenario's request between markers; returns the ids each request created."""
    tokens = {role: server.login(account.email) for role, account in ACCOUNTS.items()}
    created: dict[str, dict[str, int]] = {}
    conn = await asyncpg.connect(dsn(BENCH_DB))
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            for scenario in scenarios:
                request = scenario.request(targets, tokens)
                send(client, request)  # prepares the statements and fills the caches
                before = await max_ids(conn)
                await conn.execute(f"SELECT '{MARKER} begin {scenario.name}'")
                send(client, request)
                await conn.execute(f"SELECT '{MARKER} end {scenario.name}'")
                after = await max_ids(conn)
                created[scenario.name] = {t: after[t] for t in after if after[t] != before[t]}
    finally:
        await conn.close()
    return created


async def log_path() -> Path:
    conn = await asyncpg.connect(dsn(BENCH_DB))
    try:
        current = await conn.fetchval("SELECT pg_current_logfile()")
        data_dir = await conn.fetchval("SHOW data_directory")
    finally:
        await conn.close()
    return Path(data_dir, current) if current else DEFAULT_LOG


async def capture(scenarios: list[Scenario], targets: Targets) -> dict[str, dict[str, int]]:
    """Send the requests with statement logging on; returns the ids each request created."""
    await set_statement_logging(True)
    try:
        config = ServerConfig(port=CAPTURE_PORT, workers=1, pool_size=1)
        with Server(config) as server:
            return await capture_requests(server, scenarios, targets)
    finally:
        await set_statement_logging(False)


def write_scripts(
    scenarios: list[Scenario],
    entries: list[Entry],
    created: dict[str, dict[str, int]],
    out_dir: Path,
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for scenario in scenarios:
        statements = captured(entries, scenario.name)
        script = build_script(scenario, statements, created[scenario.name])
        (out_dir / f"{scenario.name}.sql").write_text(script)
    log(f"captured the SQL of {len(scenarios)} scenarios into {out_dir}")


def capture_and_restore(
    scenarios: list[Scenario], out_dir: Path = PGBENCH_DIR, log_file: Path | None = None
) -> Targets:
    """Write <out_dir>/<name>.sql for each scenario that has a pgbench ceiling, then remove
    the rows that the captured write requests added."""
    scenarios = [s for s in scenarios if s.has_pgbench]
    targets = asyncio.run(find_targets())
    mark = asyncio.run(watermark(targets.post_ticket))
    try:
        log_file = log_file or asyncio.run(log_path())
        offset = log_file.stat().st_size
        created = asyncio.run(capture(scenarios, targets))
        write_scripts(scenarios, list(read_entries(log_file, offset)), created, out_dir)
    finally:
        asyncio.run(restore(mark))
    return targets


def statements_of(script: Path) -> list[str]:
    """A script's SQL without its variable values: what must match the service's SQL."""
    lines = script.read_text().splitlines()
    return [line for line in lines if not line.startswith(("--", "\\set "))]


def compare_scripts(fresh_dir: Path, reference_dir: Path = PGBENCH_DIR) -> dict[str, str]:
    """'current', 'differs' or 'missing' for each reference script, against a fresh capture."""
    verdicts = {}
    for fresh in sorted(fresh_dir.glob("*.sql")):
        reference = reference_dir / fresh.name
        if not reference.exists():
            verdicts[fresh.stem] = "missing"
        else:
            same = statements_of(reference) == statements_of(fresh)
            verdicts[fresh.stem] = "current" if same else "differs"
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated scenario names (default: all)")
    parser.add_argument("--log-file", type=Path, help=f"PostgreSQL's log (default {DEFAULT_LOG})")
    parser.add_argument("--out", type=Path, default=PGBENCH_DIR, help="where the scripts go")
    args = parser.parse_args()
    capture_and_restore(select(args.only), args.out, args.log_file)


if __name__ == "__main__":
    main()
