"""Shared pieces of the real-traffic tests (issue 6): a scripted stand-in for
Rasa's REST channel, the worker running in a thread against it and the fake
Twilio API, and media storage in temporary directories."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import pytest

from webapp import worker
from webapp.extensions import db

from ..conftest import inbound_params, signed_post
from ..stub_server import JSONHandler, serve


class ScriptedRasa(JSONHandler):
    """Rasa's REST channel: records every request; ``script`` gives the
    replies; ``gate`` (when set) holds the turn, like a slow custom action."""

    received: list = []
    script: Callable[[dict], list[dict]] = staticmethod(lambda payload: [{"text": "Olá!"}])
    gate: threading.Event | None = None
    in_turn = threading.Event()

    def do_POST(self):
        payload = json.loads(self.body())
        ScriptedRasa.received.append(payload)
        ScriptedRasa.in_turn.set()
        if ScriptedRasa.gate is not None:
            ScriptedRasa.gate.wait(30)
        replies = ScriptedRasa.script(payload)
        try:
            self.reply(200, [{"recipient_id": payload["sender"], **r} for r in replies])
        except OSError:  # the worker stopped waiting (a timeout): the answer is lost, as with Rasa
            pass

    @classmethod
    def texts(cls) -> list[str]:
        return [r["message"] for r in cls.received]


@pytest.fixture
def rasa_stub(app):
    ScriptedRasa.received = []
    ScriptedRasa.script = staticmethod(lambda payload: [{"text": "Olá!"}])
    ScriptedRasa.gate = None
    ScriptedRasa.in_turn = threading.Event()
    with serve(ScriptedRasa) as url:
        saved = app.config["RASA_URL"]
        app.config["RASA_URL"] = url
        try:
            yield url
        finally:
            app.config["RASA_URL"] = saved
            if ScriptedRasa.gate is not None:
                ScriptedRasa.gate.set()


@pytest.fixture
def media_dirs(app, tmp_path):
    saved = app.config["MEDIA_DIR"], app.config["DEV_TWILIO_MEDIA_DIR"]
    app.config.update(MEDIA_DIR=str(tmp_path / "media"), DEV_TWILIO_MEDIA_DIR=str(tmp_path / "twilio-media"))
    yield tmp_path
    app.config["MEDIA_DIR"], app.config["DEV_TWILIO_MEDIA_DIR"] = saved


@pytest.fixture
def latency(app):
    """Set the fake Twilio API's latency for one test."""
    saved = app.config.get("FAKE_TWILIO_LATENCY", "")

    def set_latency(spec: str) -> None:
        app.config["FAKE_TWILIO_LATENCY"] = spec

    yield set_latency
    app.config["FAKE_TWILIO_LATENCY"] = saved


@pytest.fixture
def traffic_worker(app, live_server, rasa_stub, media_dirs):
    """The real worker loop (three schedulers, keyed pools) in a thread."""
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(app, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        if ScriptedRasa.gate is not None:
            ScriptedRasa.gate.set()
        thread.join(timeout=30)


def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        db.session.expire_all()
        if condition():
            return True
        time.sleep(0.05)
    return False


def count(model, *where) -> int:
    return db.session.scalar(db.select(db.func.count()).select_from(model).where(*where))


def deliver(client, body: str | None = "oi", *, sid: str, phone: str = "+5511988887777", **extra):
    """One signed webhook, as Twilio posts it."""
    params = inbound_params(body if body is not None else "", sid=sid, phone=phone, **extra)
    if body is None:
        del params["Body"]
    return signed_post(client, "/webhooks/twilio/whatsapp", params)
