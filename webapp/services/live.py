"""Live updates: record what changed, in the transaction that changes it.

``publish(topic, kind, **ids)`` notes an event on the current session; the
rows are written when that session commits (and dropped if it rolls back), so
every process that changes data (webapp workers, the worker, the API)
announces it, and an event is never seen before the change it announces.
``webapp.live`` streams the rows to agent pages as Server-Sent Events.

Topics: ``tickets`` (the ticket list), ``ticket:<id>`` (one ticket's page),
``customer:<id>`` (one customer's page). Events carry ids and a kind only,
never customer text: pages re-fetch their server-rendered HTML.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from datetime import timedelta

from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import LiveEvent, utcnow

log = logging.getLogger(__name__)
TOPIC = re.compile(r"^(tickets|ticket:\d{1,18}|customer:\d{1,18})$")
KIND = re.compile(r"^[a-z_]{1,32}$")
_PENDING = "zapdesk.live.pending"
# pg_advisory_xact_lock key ("ZDLIVE" in hex): serialises event inserts so ids are given in commit order.
_PG_LOCK_KEY = 0x5A444C495645
_prune_lock = threading.Lock()
_last_prune = 0.0


def publish(topic: str, kind: str, **ids: int | None) -> None:
    """Announce a change of ``topic`` with the current transaction.

    ``ids`` are integers (ticket_id=..., message_id=...): hints for the page,
    never text. Repeats within one transaction are written once."""
    _check(topic, kind, ids)
    _pending().append(lambda: [(topic, kind, ids)])


def ticket_changed(ticket, kind: str) -> None:
    """A ticket changed: its page, the ticket list and its customer's page follow."""
    def events():
        ids = {"ticket_id": ticket.id, "customer_id": ticket.customer_id}
        yield "tickets", kind, ids
        yield f"ticket:{ticket.id}", kind, ids
        yield f"customer:{ticket.customer_id}", kind, ids
    _check("tickets", kind, {})
    _pending().append(events)


def message_changed(message, kind: str) -> None:
    """A WhatsApp message was added or its delivery status moved: the pages
    that show its conversation follow (its customer's page, its ticket's page
    and, while a person holds the conversation, that ticket's page and, for
    customer messages, the list)."""
    if message is None:
        return

    def events():
        conversation = message.conversation
        ids = {"message_id": message.id, "customer_id": conversation.customer_id}
        yield f"customer:{conversation.customer_id}", kind, ids
        for ticket_id in sorted({t for t in (message.ticket_id, conversation.handoff_ticket_id) if t}):
            yield f"ticket:{ticket_id}", kind, {**ids, "ticket_id": ticket_id}
        if conversation.handoff_ticket_id and message.direction == "in":
            yield "tickets", kind, {**ids, "ticket_id": conversation.handoff_ticket_id}
    _check("tickets", kind, {})
    _pending().append(events)


def _check(topic: str, kind: str, ids: dict) -> None:
    if not TOPIC.match(topic):
        raise ValueError(f"unknown live topic {topic!r}")
    if not KIND.match(kind):
        raise ValueError(f"bad live event kind {kind!r}")
    for key, value in ids.items():
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise TypeError(f"live event {key} must be an integer id")


def _pending() -> list:
    # Resolved at commit, after the flush, when new rows have their ids; tied
    # to the transaction (begun here if need be), so a rollback drops them.
    session = db.session()
    if not session.in_transaction():
        session.begin()
    return session.info.setdefault(_PENDING, [])


def current_cursor() -> int:
    """The newest event id: a page rendered now has seen everything up to it."""
    newest = db.session.scalar(db.select(db.func.max(LiveEvent.id)))
    return newest if newest is not None else last_assigned_id()


def last_assigned_id() -> int:
    """The last id the table gave out, even if that row is pruned (0 if none)."""
    bind = db.session.get_bind()
    if bind.dialect.name == "postgresql":
        # The sequence moves before commit: wait for the writer in flight (it
        # holds the event lock until it commits) so the id read is committed.
        db.session.execute(db.text("SELECT pg_advisory_lock_shared(:key)"), {"key": _PG_LOCK_KEY})
        try:
            value = db.session.scalar(db.text(
                "SELECT pg_sequence_last_value(pg_get_serial_sequence('live_events', 'id'))"))
        finally:
            db.session.execute(db.text("SELECT pg_advisory_unlock_shared(:key)"), {"key": _PG_LOCK_KEY})
    elif bind.dialect.name == "sqlite":
        value = db.session.scalar(db.text("SELECT seq FROM sqlite_sequence WHERE name = 'live_events'"))
    else:
        value = None
    return int(value or 0)


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # Flush the change itself first: afterwards this transaction only waits for
    # the event lock, never holds it while waiting for another row lock.
    session.flush()
    rows: dict = {}
    for events in pending:
        try:
            for topic, kind, ids in events():
                data = {k: v for k, v in ids.items() if v is not None}
                _check(topic, kind, data)
                rows.setdefault((topic, kind, tuple(sorted(data.items()))), data)
        except Exception:  # never let a live update break the change it announces
            log.exception("live updates: cannot describe a change")
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Readers use ids as cursors: an id given before a concurrent, earlier
        # commit would be skipped. The lock (held to commit) keeps id order =
        # commit order. SQLite already serialises writers.
        session.execute(db.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    session.add_all([LiveEvent(topic=topic, kind=kind, data=data) for (topic, kind, _), data in rows.items()])
    _maybe_prune(session)


@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction) -> None:
    # A rolled back or closed transaction announces nothing (a savepoint's end does not count).
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def _maybe_prune(session: Session) -> None:
    """Delete old events, at most once per interval per process, inside a
    transaction that writes events anyway."""
    global _last_prune
    if not has_app_context():
        return
    config = current_app.config
    now = time.monotonic()
    with _prune_lock:
        if _last_prune and now - _last_prune < config.get("LIVE_PRUNE_INTERVAL_SECONDS", 600):
            return
        _last_prune = now
    prune(session, timedelta(hours=config.get("LIVE_EVENTS_KEEP_HOURS", 24)))


def prune(session: Session, keep: timedelta) -> int:
    """Delete events older than ``keep``; pages that were away longer resync."""
    result = session.execute(db.delete(LiveEvent).where(LiveEvent.created_at < utcnow() - keep))
    return result.rowcount or 0
