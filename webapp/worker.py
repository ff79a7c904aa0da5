"""The worker: processes inbound messages in order and dispatches the outbox.

Inbound messages and outbox sends run in two threads so that a slow Rasa
turn never holds back deliveries, and a slow delivery never holds back
turns. Each pass is a short transaction; both loops survive errors.
"""
from __future__ import annotations

import logging
import signal
import threading
import time

from flask import Flask

from bot.rasa_client import RasaClient

from .extensions import db
from .services import inbound, outbox

log = logging.getLogger("zapdesk.worker")


def _loop(app: Flask, name: str, step, stop: threading.Event) -> None:
    poll = app.config["WORKER_POLL_SECONDS"]
    while not stop.is_set():
        with app.app_context():
            try:
                busy = step()
            except Exception:  # keep going: the row stays queued and is retried
                log.exception("%s pass failed", name)
                db.session.rollback()
                busy = 0
            finally:
                db.session.remove()
        if not busy:
            stop.wait(poll)


def run(app: Flask, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    rasa = RasaClient(app.config["RASA_URL"], timeout=app.config["RASA_TIMEOUT"])
    with app.app_context():
        sender = outbox.make_sender()
    threads = [
        threading.Thread(target=_loop, name="inbound", daemon=True,
                         args=(app, "inbound", lambda: inbound.process_due(rasa), stop)),
        threading.Thread(target=_loop, name="outbox", daemon=True,
                         args=(app, "outbox", lambda: outbox.dispatch_due(sender), stop)),
    ]
    for thread in threads:
        thread.start()
    log.info("worker started (Rasa at %s)", app.config["RASA_URL"])
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop.set()
    for thread in threads:
        thread.join(timeout=10)
    log.info("worker stopped")
