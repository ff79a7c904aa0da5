"""Shared fixtures: the app on SQLite (default) or PostgreSQL (DATABASE_URL),
a live HTTP server for the fake Twilio API, and a real SMTP server."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from bot.twilio_whatsapp import sign
from webapp import create_app
from webapp.dev import mailcatcher
from webapp.extensions import db, limiter
from webapp.models import Agent

PUBLIC = "https://desk.example.com"
AUTH_TOKEN = "test-twilio-auth-token"
ACCOUNT_SID = "AC" + "1" * 32


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fresh_postgres_database(url: str, label: str) -> tuple[str, Callable[[], None]]:
    """A new, empty database on DATABASE_URL's server, named after it, so test
    runs never share tables (two runs at once, or a run beside the e2e tests).
    Returns its URL and a function that drops it."""
    import uuid

    import psycopg

    base, _, name = url.rpartition("/")
    # Create and drop from the server's maintenance database: the one named in
    # the URL may itself be a fresh one that is dropped first (the e2e system's
    # database is made beside the test session's).
    admin = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    fresh = f"{name}_{label}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{fresh}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{fresh}" WITH (FORCE)')

    return f"{base}/{fresh}", drop


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    url = os.environ.get("DATABASE_URL")
    if url and url.startswith("postgres"):
        fresh, drop = fresh_postgres_database(url, "pytest")
        yield fresh
        drop()
        return
    if url:
        yield url
        return
    yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def smtp_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def maildir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mail")


@pytest.fixture(scope="session")
def app(database_url, smtp_port, maildir):
    from webapp.config import _database_url  # same normalisation as production
    os.environ["DATABASE_URL"] = database_url
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": _database_url(),
        "SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "JWT_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
        "PUBLIC_BASE_URL": PUBLIC,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": smtp_port,
        "MAIL_TIMEOUT": 5,
        "MAIL_SUPPRESS_SEND": False,  # Flask-Mail suppresses when TESTING; we use a real SMTP server
        "DEV_MAILDIR": str(maildir),
        "FAKE_TWILIO_CALLBACKS": False,
        "LOGIN_RATE_LIMIT": "1000 per minute",
    })
    with app.app_context():
        db.drop_all()
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean(request, app):
    """Every test starts from empty tables."""
    yield
    with app.app_context():
        db.session.remove()
        if db.engine.dialect.name == "postgresql":
            names = ", ".join(t.name for t in db.metadata.sorted_tables)
            db.session.execute(db.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            # conversations <-> tickets reference each other: break the cycle first.
            db.session.execute(db.text("UPDATE conversations SET handoff_ticket_id = NULL"))
            for table in reversed(db.metadata.sorted_tables):
                db.session.execute(table.delete())
        db.session.commit()
    limiter.reset()


@pytest.fixture
def ctx(app):
    with app.app_context():
        yield


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def live_server(app):
    """The app on a real port: the fake Twilio API answers the real twilio client here."""
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    app.config["TWILIO_API_BASE_URL"] = f"{base}/dev/twilio"
    yield base
    server.shutdown()


@pytest.fixture(scope="session")
def smtp_server(smtp_port, maildir):
    controller = mailcatcher.start(smtp_port, maildir)
    yield controller
    controller.stop()


class Inbox:
    def __init__(self, path: Path):
        self.path = path

    def messages(self):
        box = mailcatcher.open_maildir(self.path)
        parse = BytesParser(policy=policy.default).parsebytes
        return [parse(box[k].as_bytes()) for k in mailcatcher.keys_oldest_first(box)]

    def clear(self):
        box = mailcatcher.open_maildir(self.path)
        for key in list(box.keys()):
            box.remove(key)


@pytest.fixture
def inbox(smtp_server, maildir):
    box = Inbox(maildir)
    box.clear()
    return box


def signed_post(client, path: str, params: dict, *, token: str = AUTH_TOKEN, url: str | None = None):
    signature = sign(token, url or PUBLIC + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def inbound_params(body: str = "oi", *, sid: str = "SM" + "a" * 32, phone: str = "+5511988887777",
                   name: str = "Maria Teste", **extra) -> dict:
    params = {"MessageSid": sid, "SmsMessageSid": sid, "AccountSid": ACCOUNT_SID,
              "From": f"whatsapp:{phone}", "To": "whatsapp:+14155238886", "Body": body,
              "NumMedia": "0", "ProfileName": name, "WaId": phone.lstrip("+"), "ApiVersion": "2010-04-01"}
    params.update(extra)
    return params


@pytest.fixture
def make_agent(ctx):
    def factory(email="ana@example.com", password="correct horse battery", role="agent", name="Ana Agent"):
        from webapp.services import agents
        return agents.create(email=email, name=name, password=password, role=role)
    return factory


@pytest.fixture
def agent_client(client, make_agent):
    """A test client logged in as an agent through the real login form."""
    agent = make_agent()
    response = login(client, agent.email, "correct horse battery")
    assert response.status_code == 302
    client.agent = agent
    return client


def login(client, email: str, password: str, **extra):
    """Sign in through the login form, with its login-CSRF token (as a browser does)."""
    import re
    page = client.get("/agent/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/agent/login", data={"email": email, "password": password, "csrf_token": token, **extra})


def login_http(session, base: str, email: str = "ana@example.com", password: str = "correct horse battery",
               **extra):
    """The same against a running server, with a ``requests.Session`` (end-to-end tests)."""
    import re
    page = session.get(f"{base}/agent/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return session.post(f"{base}/agent/login", data={"email": email, "password": password, "csrf_token": token,
                                                      **extra}, timeout=10)


def csrf_of(client) -> str:
    cookie = client.get_cookie("csrf_access_token")
    assert cookie is not None
    return cookie.value


__all__ = ["ACCOUNT_SID", "AUTH_TOKEN", "PUBLIC", "Agent", "csrf_of", "inbound_params", "login", "login_http",
           "signed_post"]
