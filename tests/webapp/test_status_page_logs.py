"""Status-link tokens never reach the logs: werkzeug's server, gunicorn's access log, Flask."""
import http.client
import logging
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from webapp.extensions import db
from webapp.services import customers, tickets
from webapp.services.tokens import make_status_token
from webapp.status_page.logs import RedactStatusTokens, redact

from ..conftest import PUBLIC, free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


@pytest.fixture
def ticket(ctx):
    customer = customers.register("whatsapp:+5511988887777", "Maria", "maria@example.com")
    customer.email_verified_at = customer.created_at
    db.session.commit()
    ticket, _ = tickets.create(customer, "Pedido quebrado", "Chegou quebrado")
    return ticket


def get(base_port: int, path: str, cookie: str | None = None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", base_port, timeout=10)
    conn.request("GET", path, headers={"Cookie": cookie} if cookie else {})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def test_redact_keeps_ticket_numbers_and_drops_tokens():
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-_"
    assert redact(f'"GET /t/{token} HTTP/1.1" 303 -') == '"GET /t/[redacted] HTTP/1.1" 303 -'
    assert redact(f"https://desk.example.com/t/{token}?utm=x") == "https://desk.example.com/t/[redacted]?utm=x"
    assert redact("GET /t/garbage HTTP/1.1") == "GET /t/[redacted] HTTP/1.1"
    assert redact("GET /t/12 HTTP/1.1") == "GET /t/12 HTTP/1.1"
    assert redact("GET /t/12/updates?v=ab HTTP/1.1") == "GET /t/12/updates?v=ab HTTP/1.1"
    assert redact("POST /t/resend HTTP/1.1") == "POST /t/resend HTTP/1.1"
    assert redact("GET /t/123abc HTTP/1.1") == "GET /t/[redacted] HTTP/1.1"
    assert redact(f"Cookie: zd_status={token}; other=1") == "Cookie: zd_status=[redacted]; other=1"
    assert redact("GET /agent/tickets/3 HTTP/1.1") == "GET /agent/tickets/3 HTTP/1.1"


def test_the_filter_cleans_tuple_and_mapping_arguments():
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig"
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1, '"%s" %s', (f"GET /t/{token} HTTP/1.1", 303),
                               None)
    RedactStatusTokens().filter(record)
    assert token not in record.getMessage() and "/t/[redacted]" in record.getMessage()
    atoms = {"r": f"GET /t/{token} HTTP/1.1", "U": f"/t/{token}", "s": 303}
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "%(r)s %(U)s %(s)s", (atoms,), None)
    RedactStatusTokens().filter(record)
    assert record.getMessage() == "GET /t/[redacted] HTTP/1.1 /t/[redacted] 303"


def test_the_development_server_log_has_no_token(app, live_server, ticket, caplog, monkeypatch):
    # Alembic's fileConfig (a migration test earlier in the run) disables the loggers that existed then.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", False)
    caplog.set_level(logging.INFO, logger="werkzeug")
    token = make_status_token(ticket.id)
    port = int(live_server.rsplit(":", 1)[1])
    response = get(port, f"/t/{token}")
    assert response.status == 303 and response.getheader("Location") == f"/t/{ticket.id}"
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    assert get(port, f"/t/{ticket.id}", cookie).status == 200
    assert get(port, "/t/garbage.token.here").status == 403
    # The server logs after answering: wait for the three request lines.
    deadline = time.monotonic() + 5
    while caplog.text.count("/t/") < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", r.getMessage())  # without the terminal colours
             for r in caplog.records if r.name == "werkzeug" and "/t/" in r.getMessage()]
    assert any("GET /t/[redacted] HTTP/1.1\" 303" in line for line in lines), lines
    assert any(f"GET /t/{ticket.id} HTTP/1.1\" 200" in line for line in lines), lines
    assert token not in caplog.text and "garbage.token.here" not in caplog.text


def test_the_gunicorn_access_log_has_no_token(app, database_url, ticket, tmp_path):
    """The production server, with an access log of the request line, path, query, referrer,
    raw URI, WSGI path and cookie header."""
    token = make_status_token(ticket.id)
    expired = make_status_token(ticket.id, days=-1)
    port = free_port()
    access, errors = tmp_path / "access.log", tmp_path / "error.log"
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": app.config["SECRET_KEY"],
           "JWT_SECRET_KEY": app.config["JWT_SECRET_KEY"], "PUBLIC_BASE_URL": PUBLIC, "APP_ENV": "development",
           "KB_PRELOAD": "0"}
    log_format = '%(h)s "%(r)s" %(s)s "%(f)s" %(U)s %(q)s %({raw_uri}e)s %({path_info}e)s %({cookie}i)s'
    server = subprocess.Popen(
        [str(GUNICORN), "--bind", f"127.0.0.1:{port}", "--workers", "1", "--threads", "2",
         "--access-logfile", str(access), "--error-logfile", str(errors), "--access-logformat", log_format,
         "webapp.wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(port, server, errors)
        exchange = get(port, f"/t/{token}")
        assert exchange.status == 303
        cookie = exchange.getheader("Set-Cookie").split(";", 1)[0]
        assert get(port, f"/t/{ticket.id}", cookie).status == 200
        assert get(port, f"/t/{expired}").status == 410
        # gunicorn writes the access line after answering: wait for the three.
        deadline = time.monotonic() + 10
        while access.read_text().count('"GET /t/') < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(timeout=30)
    log = access.read_text()
    assert log.count("/t/[redacted]") >= 4, log  # request line and path of both links
    assert f'"GET /t/{ticket.id} HTTP/1.1" 200' in log and "zd_status=[redacted]" in log
    for secret in (token, expired, cookie.split("=", 1)[1]):
        assert secret not in log and secret not in errors.read_text()
        # Not even a piece of it (a JWT's signature part is the secret bit).
        assert secret.rsplit(".", 1)[1] not in log


def _wait_for(port: int, server: subprocess.Popen, errors: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"gunicorn stopped: {errors.read_text()[-2000:]}")
        try:
            if get(port, "/healthz").status == 200:
                return
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
    pytest.fail("gunicorn did not start")
