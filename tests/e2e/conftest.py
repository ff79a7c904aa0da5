"""Starts the real system: gunicorn webapp, worker, Rasa, action server, and a
real SMTP server (aiosmtpd) — the same processes `make run` starts."""
from __future__ import annotations

import atexit
import os
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from bot.twilio_whatsapp import sign
from webapp.dev import mailcatcher

from ..conftest import free_port, fresh_postgres_database

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from devenv import system_env  # noqa: E402  (scripts/ is not a package)

MODEL = ROOT / "models" / "zapdesk.tar.gz"
AUTH_TOKEN = "e2e-twilio-auth-token"


def _database(tmp: Path) -> str:
    """A fresh database: a new SQLite file, or a new PostgreSQL database beside DATABASE_URL's
    (dropped when the test session ends)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return f"sqlite:///{tmp / 'zapdesk.db'}"
    fresh, drop = fresh_postgres_database(url, "e2e")
    atexit.register(drop)
    return fresh


class FaultProxy:
    """Between the action server and the webapp API: passes requests through,
    or, for the next requests matching a rule, answers 500, drops the
    connection, or forwards them only after a delay (the webapp still does the
    work; the caller may have given up by then)."""

    def __init__(self, target: str):
        self.target = target.rstrip("/")
        self.rules: list[dict] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _serve(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fault = proxy.take(self.command, self.path)
                if fault == "refuse":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if fault == "500":
                    data = b'{"error": {"code": "internal_server_error", "message": "injected"}}'
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                if fault and fault.startswith("slow:"):
                    time.sleep(float(fault.split(":")[1]))
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                upstream = requests.request(self.command, proxy.target + self.path, data=body or None,
                                            headers=headers, timeout=60)
                try:
                    self.send_response(upstream.status_code)
                    self.send_header("Content-Type", upstream.headers.get("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(upstream.content)))
                    self.end_headers()
                    self.wfile.write(upstream.content)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up waiting

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def fail(self, method: str, path_pattern: str, fault: str, times: int = 1) -> None:
        with self.lock:
            self.rules.append({"method": method, "path": re.compile(path_pattern), "fault": fault, "times": times})

    def take(self, method: str, path: str) -> str | None:
        with self.lock:
            for rule in self.rules:
                if rule["times"] > 0 and rule["method"] == method and rule["path"].search(path):
                    rule["times"] -= 1
                    return rule["fault"]
        return None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class System:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        ports = {name: free_port() for name in ("web", "rasa", "actions", "smtp")}
        self.base = f"http://127.0.0.1:{ports['web']}"
        self.maildir = tmp / "mailbox"
        self.env = system_env(web_port=ports["web"], rasa_port=ports["rasa"], actions_port=ports["actions"],
                              smtp_port=ports["smtp"], var=tmp, extra={
                                  "DATABASE_URL": _database(tmp), "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                                  "SECRET_KEY": "e2e-secret-key-0123456789-0123456789-abcdef",
                                  "PYTHONWARNINGS": "ignore", "LOGIN_RATE_LIMIT": "100 per minute",
                                  # Rasa down this long hands the conversation to people.
                                  "INBOUND_GIVE_UP_SECONDS": "10", "CLOSING_CHECK_SECONDS": "1"})
        self.procs: dict[str, subprocess.Popen] = {}
        self.smtp = mailcatcher.start(ports["smtp"], self.maildir)

    def flask(self, *args) -> str:
        out = subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "webapp.wsgi", *args], cwd=ROOT,
                             env=self.env, check=True, capture_output=True, text=True)
        return out.stdout.strip()

    def start(self, name: str, cmd: list[str], **env: str) -> None:
        log = open(self.tmp / f"{name}.log", "w")
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env={**self.env, **env}, stdout=log,
                                            stderr=subprocess.STDOUT)

    def up(self) -> None:
        self.flask("db", "upgrade")
        self.flask("kb-seed")
        self.flask("create-agent", "--email", "ana@example.com", "--name", "Ana", "--password",
                   "correct horse battery")
        self.env["WEBAPP_SERVICE_TOKEN"] = self.flask("service-token").splitlines()[-1]
        env = self.env
        # The action server reaches the API through a proxy that can inject faults.
        self.api_proxy = FaultProxy(self.base)
        env["WEBAPP_API_URL"] = f"{self.api_proxy.url}/api/v1"
        env["WEBAPP_API_TIMEOUT"] = "5"
        self.start("web", [str(ROOT / ".venv/bin/gunicorn"), "--workers", "1", "--threads", "8",
                           "--bind", f"127.0.0.1:{env['WEB_PORT']}", "webapp.wsgi:app"],
                   KB_PRELOAD="1")  # like the Procfile: the model loads before the first question
        self.start("worker", [str(ROOT / ".venv/bin/flask"), "--app", "webapp.wsgi", "worker"])
        self.start("actions", [str(ROOT / ".venv-rasa/bin/rasa"), "run", "actions", "--port",
                               env["ACTIONS_PORT"], "--actions", "actions"])
        self.start("rasa", [str(ROOT / ".venv-rasa/bin/rasa"), "run", "--interface", "127.0.0.1", "--port",
                            env["RASA_PORT"], "--endpoints", "endpoints.yml", "--credentials",
                            "credentials.yml", "--model", str(MODEL)])
        self.wait_for({f"{self.base}/healthz", f"http://127.0.0.1:{env['RASA_PORT']}/",
                       f"http://127.0.0.1:{env['ACTIONS_PORT']}/health"})

    def wait_for(self, urls: set[str], timeout: float = 180) -> None:
        deadline = time.time() + timeout
        pending = set(urls)
        while pending and time.time() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited early:\n{self.log(name)}")
            for url in list(pending):
                try:
                    if requests.get(url, timeout=2).status_code < 500:
                        pending.discard(url)
                except requests.RequestException:
                    pass
            time.sleep(0.5)
        if pending:
            raise RuntimeError(f"not ready: {pending}")

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")[-5000:]

    def down(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.smtp.stop()
        if getattr(self, "api_proxy", None):
            self.api_proxy.stop()


class Phone:
    """A WhatsApp user: sends signed Twilio webhooks, reads what the fake Twilio API delivered."""

    def __init__(self, system: System, number: str, name: str):
        self.system, self.number, self.name = system, number, name
        self.seen = 0
        self.count = 0

    def send(self, text: str, media: list[tuple[str, str]] = ()) -> None:
        self.count += 1
        url = f"{self.system.base}/webhooks/twilio/whatsapp"
        sid = f"SM{abs(hash((self.number, self.count, time.time()))):032d}"[:34]
        params = {"MessageSid": sid, "AccountSid": "AC" + "0" * 32, "From": f"whatsapp:{self.number}",
                  "To": "whatsapp:+14155238886", "Body": text, "ProfileName": self.name,
                  "WaId": self.number.lstrip("+"), "ApiVersion": "2010-04-01", "NumMedia": str(len(media))}
        for i, (media_url, content_type) in enumerate(media):
            params[f"MediaUrl{i}"], params[f"MediaContentType{i}"] = media_url, content_type
        response = requests.post(url, data=params, timeout=10,
                                 headers={"X-Twilio-Signature": sign(AUTH_TOKEN, url, params)})
        assert response.status_code == 200, response.text

    def replies(self) -> list[str]:
        feed = requests.get(f"{self.system.base}/dev/simulator/feed?phone={quote(self.number)}&after={self.seen}",
                            timeout=10).json()["messages"]
        return [m["body"] for m in feed if m["direction"] == "out"], feed

    def expect(self, pattern: str, timeout: float = 45) -> str:
        """Wait until a reply matching ``pattern`` arrives; return everything received since last time."""
        deadline = time.time() + timeout
        received: list[str] = []
        while time.time() < deadline:
            bodies, feed = self.replies()
            if feed:
                self.seen = max(m["id"] for m in feed)
                received.extend(bodies)
            text = "\n".join(received)
            if re.search(pattern, text, re.IGNORECASE | re.DOTALL):
                return text
            time.sleep(0.3)
        raise AssertionError(f"no reply matching {pattern!r}; got {received!r}\n"
                             f"worker log:\n{self.system.log('worker')}\nactions log:\n{self.system.log('actions')}")

    def say(self, text: str, pattern: str) -> str:
        self.send(text)
        return self.expect(pattern)


@pytest.fixture(scope="session")
def system(tmp_path_factory):
    if not MODEL.exists():
        pytest.fail("no trained model: run `make train` (make test does it)")
    system = System(tmp_path_factory.mktemp("e2e"))
    try:
        system.up()
        yield system
    finally:
        system.down()
