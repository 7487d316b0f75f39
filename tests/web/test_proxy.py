"""The documented nginx configuration (docs/nginx/ticketdesk.conf), run as it is: TLS in front
of two ticketdesk processes on one PostgreSQL and Redis.

Only the addresses change: nginx listens on free ports, the upstreams are the two servers the
test starts, and the certificate is a self-signed one made here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import URL

from conftest import STAFF_TOKEN, _free_port, running_servers

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "nginx" / "ticketdesk.conf"
TOKEN = "metrics-token-of-the-proxy-test"
SCRAPER = {"Authorization": f"Bearer {TOKEN}"}
PASSWORD = "a password for the proxy"


def self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def site(upstreams: list[str], https_port: int, http_port: int, cert: Path, key: Path) -> str:
    """The documented site, with this test's addresses in place of the examples."""
    text = CONFIG.read_text()
    ports = [url.rsplit(":", 1)[1] for url in upstreams]
    text = text.replace("server 127.0.0.1:8089;", f"server 127.0.0.1:{ports[0]};")
    text = text.replace("server 127.0.0.1:8090;", f"server 127.0.0.1:{ports[1]};")
    text = text.replace("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;")
    text = text.replace("listen 80;", f"listen 127.0.0.1:{http_port};")
    text = text.replace("/etc/ssl/certs/support.example.com.pem", str(cert))
    text = text.replace("/etc/ssl/private/support.example.com.key", str(key))
    return text


@contextmanager
def nginx(directory: Path, site_text: str) -> Iterator[None]:
    """nginx in the foreground, with the site as Debian's nginx.conf would include it."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    (directory / "site.conf").write_text(site_text)
    user = "user root;\n" if os.geteuid() == 0 else ""
    (directory / "nginx.conf").write_text(
        f"""{user}worker_processes 1;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    include {directory}/site.conf;
}}
"""
    )
    process = subprocess.Popen(
        [binary, "-p", str(directory), "-c", str(directory / "nginx.conf"), "-g", "daemon off;"]
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


def wait_for(url: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url, verify=False).status_code == 200:  # noqa: S501 - self-signed
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, url
        time.sleep(0.1)


def client_from(address: str, base_url: str, cert: Path) -> httpx.Client:
    """A client connecting from `address` (127.0.0.x): another machine, to nginx."""
    trusted = ssl.create_default_context(cafile=str(cert))
    return httpx.Client(
        base_url=base_url,
        timeout=30,
        transport=httpx.HTTPTransport(local_address=address, verify=trusted),
    )


def counted_healthz(upstream: str) -> float:
    text = httpx.get(f"{upstream}/metrics", headers=SCRAPER).text
    match = re.search(
        r'ticketdesk_http_requests_total\{method="GET",route="/healthz",status="200"\} (\S+)',
        text,
    )
    return float(match[1]) if match else 0.0


@pytest.mark.postgresql_only
def test_the_documented_nginx_terminates_tls_before_two_processes(
    database_url: URL, tmp_path: Path
) -> None:
    redis_url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    cert, key = self_signed(tmp_path)
    https_port, http_port = _free_port(), _free_port()
    base = f"https://localhost:{https_port}"
    env = {
        "COOKIE_SECURE": "true",
        "FORWARDED_ALLOW_IPS": "127.0.0.1",
        "REDIS_URL": redis_url,
        "RATE_LIMIT_PREFIX": f"proxy-test-{time.time_ns()}",
        "RATE_LIMIT_LOGIN_PER_IP": "3/minute",
        "METRICS_TOKEN": TOKEN,
        "PUBLIC_URL": base,
    }
    with (
        running_servers(2, database_url, tmp_path, **env) as upstreams,
        nginx(tmp_path, site(upstreams, https_port, http_port, cert, key)),
    ):
        wait_for(f"{base}/healthz")

        # Plain HTTP is sent to HTTPS.
        redirect = httpx.get(f"http://127.0.0.1:{http_port}/tickets")
        assert redirect.status_code == 301
        assert redirect.headers["location"].startswith("https://")

        # Balanced over both processes.
        with client_from("127.0.0.1", base, cert) as client:
            for _ in range(20):
                answer = client.get("/healthz")
                assert answer.status_code == 200
                assert answer.headers["strict-transport-security"].startswith("max-age=")
        counts = [counted_healthz(upstream) for upstream in upstreams]
        assert all(count >= 5 for count in counts), counts

        # Limits count per real client (nginx passes its peer's address, whatever the
        # client claims), in Redis, whichever process answers.
        wrong = {"email": "nobody@example.com", "password": "wrong password"}
        with (
            client_from("127.0.0.2", base, cert) as first,
            client_from("127.0.0.3", base, cert) as second,
        ):
            tries = [
                first.post("/login", json=wrong, headers={"X-Forwarded-For": f"10.0.0.{n}"})
                for n in range(4)
            ]
            assert [t.status_code for t in tries] == [404, 404, 404, 429]
            assert second.post("/login", json=wrong).status_code == 404

            # Cookies are Secure over TLS; a logout through one process holds on both.
            registered = second.post(
                "/users",
                json={"email": "cookie@example.com", "username": "c", "password": PASSWORD},
            )
            assert registered.status_code == 201
            login = second.post(
                "/login", json={"email": "cookie@example.com", "password": PASSWORD}
            )
            assert login.status_code == 200
            assert "Secure" in login.headers["set-cookie"]
            token = {"Authorization": f"Bearer {login.json()['token']}"}
            assert second.post("/logout", headers=token).status_code == 204
        for upstream in upstreams:
            assert httpx.get(f"{upstream}/users/me", headers=token).status_code == 401

        # The event stream flows through the proxy as it is written.
        with client_from("127.0.0.1", base, cert) as client:
            staff = {"email": "agent@example.com", "username": "a", "password": PASSWORD}
            made = client.post(
                "/users",
                json={**staff, "isStaff": True},
                headers={"Authorization": f"Bearer {STAFF_TOKEN}"},
            )
            assert made.status_code == 201
            agent_token = client.post("/login", json=staff).json()["token"]
            agent = {"Authorization": f"Bearer {agent_token}"}
            with client.stream("GET", "/events/stream", headers=agent) as stream:
                assert stream.status_code == 200
                lines = stream.iter_lines()
                assert next(lines) == "retry: 2000"
                started = time.monotonic()
                with client_from("127.0.0.1", base, cert) as writer:
                    created = writer.post(
                        "/tickets", json={"topic": "proxied", "text": "x"}, headers=agent
                    )
                assert created.status_code == 201
                # Events left by earlier tests come first: the stream starts at the beginning.
                ticket_id = created.json()["id"]
                event = next(
                    data
                    for line in lines
                    if line.startswith("data: ")
                    and (data := json.loads(line[6:]))["ticket_id"] == ticket_id
                )
                took = time.monotonic() - started
    assert event["kind"] == "created"
    assert took < 3
