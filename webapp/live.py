"""Live updates for agent pages: ``GET /agent/live?topics=...`` as Server-Sent Events.

The stream sends the rows of the ``live_events`` log (written by
``webapp.services.live`` with each change) whose topic the page follows,
starting after the page's cursor: ``Last-Event-ID`` on a reconnect, or
``last_id`` (the newest id when the page was rendered) on the first connection.
So a page that lost its connection catches up on everything it missed.

One thread per process polls the newest id and wakes the streams, which then
read their topics' rows: this works with SQLite or PostgreSQL and any number
of webapp, worker and API processes, without Redis. Each stream holds a
server thread (gunicorn runs gthread workers, see gunicorn.conf.py), so
streams are capped per process and end after a while or when the agent's
session does; the browser reconnects on its own.
"""
from __future__ import annotations

import json
import logging
import threading
import time

from flask import Blueprint, Flask, Response, current_app, g, request, url_for
from flask_jwt_extended import current_user, get_jwt

from .auth import agent_required
from .extensions import db
from .models import Agent, LiveEvent, Ticket
from .services import live as live_service

log = logging.getLogger(__name__)
bp = Blueprint("live", __name__, url_prefix="/agent")
MAX_TOPICS = 8
BATCH = 200


class Hub:
    """Per process and app: watches the newest event id and wakes waiting streams."""

    def __init__(self, app: Flask):
        self.app = app
        self.condition = threading.Condition()
        self.newest: int | None = None
        self.streams = 0
        self.closing = False
        self._thread: threading.Thread | None = None

    def admit(self) -> bool:
        with self.condition:
            if self.closing or self.streams >= self.app.config["LIVE_MAX_STREAMS"]:
                return False
            self.streams += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._watch, name="live-hub", daemon=True)
                self._thread.start()
            return True

    def release(self) -> None:
        with self.condition:
            self.streams -= 1

    def wait(self, seen: int | None, timeout: float) -> int | None:
        """Block until the newest id differs from ``seen`` (or timeout, or shutdown)."""
        with self.condition:
            self.condition.wait_for(lambda: self.closing or (self.newest is not None and self.newest != seen),
                                    timeout=max(timeout, 0))
            return self.newest

    def close(self) -> None:
        """End every stream now (the process is stopping)."""
        with self.condition:
            self.closing = True
            self.condition.notify_all()

    def _watch(self) -> None:
        poll = self.app.config["LIVE_POLL_SECONDS"]
        idle_since, failing = None, False
        while not self.closing:
            try:
                with self.app.app_context():
                    newest = live_service.current_cursor()
            except Exception as exc:  # the database is away for a moment: keep the streams waiting
                if not failing:
                    log.warning("live updates: cannot read the event log: %s", exc)
                failing, newest = True, self.newest
            else:
                failing = False
            with self.condition:
                if newest != self.newest:
                    self.newest = newest
                    self.condition.notify_all()
                if self.streams == 0:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since > 30:
                        self._thread = None
                        return  # nobody watches; admit() starts a new watcher
                else:
                    idle_since = None
            time.sleep(poll)


_hub_lock = threading.Lock()


def hub_for(app: Flask) -> Hub:
    with _hub_lock:
        hub = app.extensions.get("zapdesk_live_hub")
        if hub is None:
            hub = app.extensions["zapdesk_live_hub"] = Hub(app)
        return hub


def close_streams(app: Flask) -> None:
    """End every live stream of this process (gunicorn calls this on shutdown)."""
    hub_for(app).close()


def parse_topics(raw: str) -> list[str]:
    topics = [t for t in dict.fromkeys(raw.split(",")) if t]
    if not topics or len(topics) > MAX_TOPICS or not all(live_service.TOPIC.match(t) for t in topics):
        return []
    return topics


def _cursor() -> int:
    """Where the page stands: the browser's Last-Event-ID (newer) or the
    rendered page's last_id; without either, from now on."""
    values = [request.headers.get("Last-Event-ID", ""), request.args.get("last_id", "")]
    values = [int(v) for v in values if v.isdigit() and len(v) <= 18]
    return max(values) if values else live_service.current_cursor()


@bp.get("/live")
@agent_required()
def stream():
    topics = parse_topics(request.args.get("topics", ""))
    if not topics:
        return {"error": {"code": "invalid", "message": "topics: tickets, ticket:<id> or customer:<id>"}}, 422
    app = current_app._get_current_object()
    hub = hub_for(app)
    if not hub.admit():
        return ({"error": {"code": "busy", "message": "too many live connections; retry later"}}, 503,
                {"Retry-After": str(app.config["LIVE_RETRY_SECONDS"])})
    config = app.config
    # The stream ends when the access token does; the reconnect refreshes it.
    expires_in = get_jwt().get("exp", time.time() + config["LIVE_STREAM_SECONDS"]) - time.time()
    deadline = time.monotonic() + max(1.0, min(config["LIVE_STREAM_SECONDS"], expires_in))
    session = (current_user.id, current_user.token_version)
    response = Response(_events(app, hub, session, topics, _cursor(), deadline), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"})
    # The server closes the response even when the client left before the first byte.
    response.call_on_close(_once(hub.release))
    return response


def _once(func):
    lock, done = threading.Lock(), []

    def call():
        with lock:
            if not done:
                done.append(True)
                func()
    return call


def _events(app: Flask, hub: Hub, session: tuple[int, int], topics: list[str], cursor: int, deadline: float):
    config = app.config
    yield f"retry: {int(config['LIVE_RETRY_SECONDS'] * 1000)}\n\n"
    last_check = time.monotonic()
    while True:
        seen = hub.newest
        with app.app_context():
            rows, cursor, resync = _read(topics, cursor)
        if resync:
            yield f"id: {cursor}\nevent: resync\ndata: {{}}\n\n"
        for row in rows:
            payload = {"topic": row.topic, "kind": row.kind, **(row.data or {})}
            yield f"id: {row.id}\ndata: {json.dumps(payload)}\n\n"
        if len(rows) == BATCH:
            continue  # more to catch up on
        if time.monotonic() - last_check >= config["LIVE_AUTH_CHECK_SECONDS"]:
            last_check = time.monotonic()
            with app.app_context():
                agent = db.session.get(Agent, session[0])
                signed_in = agent is not None and agent.active and agent.token_version == session[1]
            if not signed_in:
                yield "event: signout\ndata: {}\n\n"
                return
        remaining = deadline - time.monotonic()
        if remaining <= 0 or hub.closing:
            return
        wait = min(remaining, config["LIVE_HEARTBEAT_SECONDS"], config["LIVE_AUTH_CHECK_SECONDS"])
        if hub.wait(seen, wait) == seen:
            # Also moves the browser's Last-Event-ID on, so a reconnect starts from here.
            yield f": keepalive\nid: {cursor}\n\n"


def _read(topics: list[str], cursor: int) -> tuple[list[LiveEvent], int, bool]:
    """The topics' events after ``cursor``, the new cursor, and whether the page
    must reload everything (events after its cursor were pruned, or the cursor
    comes from another database)."""
    oldest, newest = db.session.execute(db.select(db.func.min(LiveEvent.id), db.func.max(LiveEvent.id))).one()
    if newest is None:  # nothing kept: nothing to send (a cursor from the future resyncs)
        last = live_service.last_assigned_id()
        return ([], last, True) if cursor > last else ([], cursor, False)
    if cursor > newest or cursor + 1 < oldest:
        return [], newest, True
    rows = db.session.scalars(db.select(LiveEvent).where(LiveEvent.id > cursor, LiveEvent.topic.in_(topics))
                              .order_by(LiveEvent.id).limit(BATCH)).all()
    if len(rows) == BATCH:
        return rows, rows[-1].id, False
    # Ids are given in commit order (services.live), so nothing at or below
    # ``newest`` can still appear: the cursor moves past other topics' events too.
    return rows, max([cursor, newest] + [r.id for r in rows]), False


# Which topics an agent page follows, by endpoint.
def _page_topics() -> list[str]:
    args = request.view_args or {}
    if request.endpoint == "agent.tickets":
        return ["tickets"]
    if request.endpoint == "agent.ticket" and "ticket_id" in args:
        ticket = db.session.get(Ticket, args["ticket_id"])
        topics = [f"ticket:{args['ticket_id']}"]
        if ticket is not None:
            topics.append(f"customer:{ticket.customer_id}")
        return topics
    if request.endpoint == "agent.customer" and "customer_id" in args:
        return [f"customer:{args['customer_id']}"]
    return []


@bp.before_app_request
def _remember_cursor():
    # Read before the page's own queries: a change committed after this point
    # reaches the page through the stream, even if the page already shows it.
    if request.method == "GET" and request.blueprint == "agent":
        g.live_cursor = live_service.current_cursor()


@bp.app_context_processor
def _live_config():
    def live_config() -> dict | None:
        """What static/live.js needs on a page that follows live updates, or None."""
        if request.blueprint != "agent" or "live_cursor" not in g:
            return None
        topics = _page_topics()
        if not topics:
            return None
        return {"url": url_for("live.stream", topics=",".join(topics)), "last_id": g.live_cursor}
    return {"live_config": live_config}
