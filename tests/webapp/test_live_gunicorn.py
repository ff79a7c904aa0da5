"""The live-updates stream under the real server settings (gunicorn.conf.py):
open streams do not block other requests, and stopping the server does not
wait for them."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ..conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"


@pytest.fixture
def server(tmp_path):
    if not GUNICORN.exists():
        pytest.fail("gunicorn is not installed in .venv")
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'web.db'}", "SECRET_KEY": "x" * 40,
           "LIVE_POLL_SECONDS": "0.1", "WEB_THREADS": "6", "LIVE_MAX_STREAMS": "3", "KB_PRELOAD": "0",
           "PYTHONPATH": str(ROOT)}
    env.pop("RATELIMIT_STORAGE_URI", None)
    env.pop("REDIS_URL", None)
    setup = ("from webapp import create_app\nfrom webapp.extensions import db\nfrom webapp.services import agents\n"
             "app = create_app()\nwith app.app_context():\n    db.create_all()\n"
             "    agents.create('ana@example.com', 'Ana', 'correct horse battery')\n")
    subprocess.run([sys.executable, "-c", setup], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    port = free_port()
    process = subprocess.Popen([str(GUNICORN), "--bind", f"127.0.0.1:{port}", "webapp.wsgi:app"], cwd=ROOT,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{base}/healthz", timeout=5).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("gunicorn did not start: " + process.communicate()[0][-2000:])
    yield base, process
    if process.poll() is None:
        process.kill()
        process.wait()


def signed_in(base) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/agent/login", timeout=5).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = session.post(f"{base}/agent/login", data={"email": "ana@example.com", "password":
                                                          "correct horse battery", "csrf_token": token},
                            allow_redirects=False, timeout=5)
    assert response.status_code == 302
    return session


def test_open_streams_leave_threads_for_pages_and_shutdown_ends_them(server):
    base, process = server
    session = signed_in(base)
    streams = [session.get(f"{base}/agent/live?topics=tickets", stream=True, timeout=10) for _ in range(3)]
    assert all(s.status_code == 200 for s in streams)
    # At the cap, one more stream is refused at once instead of taking a thread...
    busy = session.get(f"{base}/agent/live?topics=tickets", timeout=5)
    assert busy.status_code == 503 and busy.headers["Retry-After"]
    # ...and pages are still served while the streams wait.
    started = time.monotonic()
    assert session.get(f"{base}/agent/", timeout=5).status_code == 200
    assert time.monotonic() - started < 2
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=15)
    assert time.monotonic() - started < 5  # not the 10 s grace period: the streams ended at once
    for stream in streams:
        stream.close()
