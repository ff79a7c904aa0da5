"""The worker: processes inbound messages and dispatches the outbox.

Schedulers poll the database. Each hands work to a thread pool one key
at a time (a conversation for inbound messages, a recipient for the outbox,
an attachment for media downloads), so order is kept within a conversation
while a slow Rasa turn, a slow Twilio send or a slow download for one
customer never holds back the others. Every task is a
series of short transactions; errors leave rows queued for a retry.
"""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

from flask import Flask

from bot.rasa_client import RasaClient

from .extensions import db
from .services import closing, inbound, media, outbox

log = logging.getLogger("zapdesk.worker")


class KeyedPool:
    """A thread pool that runs at most one task per key at a time."""

    def __init__(self, size: int, name: str):
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix=name)
        self.busy: set[Hashable] = set()
        self.lock = threading.Lock()

    def submit(self, key: Hashable, task: Callable[[], object]) -> bool:
        with self.lock:
            if key in self.busy:
                return False
            self.busy.add(key)

        def run() -> None:
            try:
                task()
            finally:
                with self.lock:
                    self.busy.discard(key)

        self.executor.submit(run)
        return True

    def shutdown(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _in_context(app: Flask, name: str, work: Callable[[], object]) -> object:
    with app.app_context():
        try:
            return work()
        except Exception:  # keep going: the row stays queued and is retried
            log.exception("%s task failed", name)
            db.session.rollback()
            return None
        finally:
            db.session.remove()


def _schedule(app: Flask, name: str, pool: KeyedPool, keys: Callable[[], list],
              work: Callable[[Hashable], object], stop: threading.Event) -> None:
    poll = app.config["WORKER_POLL_SECONDS"]
    while not stop.is_set():
        for key in _in_context(app, name, keys) or []:
            pool.submit(key, lambda key=key: _in_context(app, name, lambda: work(key)))
        stop.wait(poll)


def _every(seconds: float, keys: Callable[[], list]) -> Callable[[], list]:
    """``keys`` at most once per ``seconds`` (the schedulers poll much faster)."""
    last = [0.0]

    def throttled() -> list:
        if time.monotonic() - last[0] < seconds:
            return []
        last[0] = time.monotonic()
        return [("close", key) for key in keys()]

    return throttled


def run(app: Flask, stop: threading.Event | None = None) -> None:
    stop = stop or threading.Event()
    rasa = RasaClient(app.config["RASA_URL"], timeout=app.config["RASA_TIMEOUT"])
    size = app.config["WORKER_THREADS"]
    pools = {"inbound": KeyedPool(size, "inbound"), "outbox": KeyedPool(size, "outbox"),
             "media": KeyedPool(max(2, size // 2), "media")}
    schedulers = [
        threading.Thread(target=_schedule, name="inbound", daemon=True, args=(
            app, "inbound", pools["inbound"], inbound.waiting_conversations,
            lambda conversation_id: inbound.process_conversation(conversation_id, rasa), stop)),
        threading.Thread(target=_schedule, name="outbox", daemon=True, args=(
            app, "outbox", pools["outbox"], outbox.waiting_recipients, outbox.dispatch_recipient, stop)),
        threading.Thread(target=_schedule, name="media", daemon=True, args=(
            app, "media", pools["media"], media.waiting, media.fetch, stop)),
        # Resolved tickets whose closing question went unanswered (checked once a minute).
        threading.Thread(target=_schedule, name="closing", daemon=True, args=(
            app, "closing", pools["outbox"], _every(app.config["CLOSING_CHECK_SECONDS"], closing.unanswered),
            lambda key: closing.close_unanswered(key[1]), stop)),
    ]
    for thread in schedulers:
        thread.start()
    log.info("worker started (Rasa at %s, %s threads per pool)", app.config["RASA_URL"], size)
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            time.sleep(0.2)
    except KeyboardInterrupt:
        stop.set()
    for thread in schedulers:
        thread.join(timeout=10)
    for pool in pools.values():
        pool.shutdown()
    log.info("worker stopped")
