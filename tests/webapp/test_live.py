"""Live updates: the event log written with each change, and the SSE stream
(/agent/live) with catch-up from Last-Event-ID."""
import json
import re
import threading
import time
from datetime import timedelta
from urllib.parse import unquote

import pytest

from webapp import live
from webapp.extensions import db
from webapp.models import Agent, Conversation, LiveEvent, Message, Outbox, utcnow
from webapp.services import inbound, outbox, tickets
from webapp.services import live as live_service

from ..conftest import csrf_of, inbound_params, signed_post

ALLOWED_KEYS = {"topic", "kind", "ticket_id", "customer_id", "message_id"}


@pytest.fixture(autouse=True)
def fast_live(app):
    saved = {k: app.config[k] for k in ("LIVE_POLL_SECONDS", "LIVE_HEARTBEAT_SECONDS", "LIVE_AUTH_CHECK_SECONDS",
                                        "LIVE_STREAM_SECONDS", "LIVE_MAX_STREAMS")}
    app.config.update(LIVE_POLL_SECONDS=0.05, LIVE_HEARTBEAT_SECONDS=0.3, LIVE_AUTH_CHECK_SECONDS=0.3,
                      LIVE_STREAM_SECONDS=20)
    yield
    app.config.update(saved)


def events(topic=None) -> list[tuple[str, str, dict]]:
    db.session.expire_all()
    query = db.select(LiveEvent).order_by(LiveEvent.id)
    if topic:
        query = query.filter_by(topic=topic)
    return [(e.topic, e.kind, e.data) for e in db.session.scalars(query)]


@pytest.fixture
def ticket(ctx, client):
    signed_post(client, "/webhooks/twilio/whatsapp",
                inbound_params("<script>alert(1)</script> pedido", name="<img src=x onerror=alert(1)>"))
    conversation = db.session.scalar(db.select(Conversation))
    ticket, _ = tickets.create(conversation.customer, "Pedido <b>quebrado</b>", "x")
    return ticket


# --- the event log ---------------------------------------------------------

def test_events_are_written_with_the_commit_and_dropped_on_rollback(ctx):
    live_service.publish("tickets", "created", ticket_id=1)
    db.session.rollback()
    assert events() == []
    live_service.publish("tickets", "created", ticket_id=2)
    live_service.publish("tickets", "created", ticket_id=2)  # once per transaction
    live_service.publish("ticket:2", "created", ticket_id=2, message_id=None)
    assert events() == []  # nothing before the commit
    db.session.commit()
    assert events() == [("tickets", "created", {"ticket_id": 2}), ("ticket:2", "created", {"ticket_id": 2})]


def test_events_carry_ids_only(ctx):
    with pytest.raises(TypeError):
        live_service.publish("tickets", "created", name="<b>Maria</b>")
    with pytest.raises(ValueError):
        live_service.publish("ticket:<b>", "created")
    with pytest.raises(ValueError):
        live_service.publish("tickets", "Created!")


def test_a_customer_message_and_its_handoff_are_announced(ctx, client, ticket):
    customer_topic = f"customer:{ticket.customer_id}"
    assert [k for _, k, _ in events(customer_topic)] == ["message", "created"]
    inbound.handoff(db.session.scalar(db.select(Conversation)), reason="customer_request", announce=False)
    assert {t for t, k, _ in events() if k == "handoff"} == {"tickets", f"ticket:{ticket.id}", customer_topic}
    before = len(events())
    signed_post(client, "/webhooks/twilio/whatsapp", inbound_params("ainda espero", sid="SM" + "b" * 32))
    new = events()[before:]
    message_id = db.session.scalar(db.select(Message.id).filter_by(provider_sid="SM" + "b" * 32))
    # While a person holds the conversation, the list and the ticket follow the customer's messages too.
    assert sorted(t for t, _, _ in new) == sorted([customer_topic, f"ticket:{ticket.id}", "tickets"])
    assert all(d["message_id"] == message_id and d["customer_id"] == ticket.customer_id for _, _, d in new)


def test_agent_actions_are_announced(agent_client, ticket):
    csrf = csrf_of(agent_client)
    start = len(events())
    agent_client.post(f"/agent/tickets/{ticket.id}/status", data={"status": "open", "csrf_token": csrf})
    agent_client.post(f"/agent/tickets/{ticket.id}/note", data={"body": "nota", "csrf_token": csrf})
    agent_client.post(f"/agent/tickets/{ticket.id}/reply", data={"body": "oi", "reply_key": "k", "csrf_token": csrf})
    kinds = {(t, k) for t, k, _ in events()[start:]}
    for kind in ("updated", "note", "reply"):
        assert {("tickets", kind), (f"ticket:{ticket.id}", kind), (f"customer:{ticket.customer_id}", kind)} <= kinds


def test_delivery_status_changes_are_announced_on_the_ticket(agent_client, ticket, live_server):
    agent_client.post(f"/agent/tickets/{ticket.id}/reply",
                      data={"body": "Olá", "reply_key": "k2", "csrf_token": csrf_of(agent_client)})
    start = len(events())
    outbox.dispatch_due()
    row = db.session.scalar(db.select(Outbox).where(Outbox.channel == "whatsapp", Outbox.provider_id.is_not(None))
                            .order_by(Outbox.id))
    sent = events()[start:]
    assert (f"ticket:{ticket.id}", "delivery") in {(t, k) for t, k, _ in sent}
    start = len(events())
    outbox.record_delivery_status(row.provider_id, "delivered")
    assert {(t, k) for t, k, _ in events()[start:]} >= {(f"ticket:{ticket.id}", "delivery"),
                                                          (f"customer:{ticket.customer_id}", "delivery")}
    start = len(events())
    outbox.record_delivery_status(row.provider_id, "sent")  # never moves back: nothing to announce
    assert events()[start:] == []


def test_old_events_are_pruned(ctx, app):
    old = LiveEvent(topic="tickets", kind="created", data={}, created_at=utcnow() - timedelta(hours=25))
    db.session.add(old)
    db.session.commit()
    live_service._last_prune = 0.0
    live_service.publish("tickets", "created", ticket_id=1)
    db.session.commit()
    assert [(t, d) for t, _, d in events()] == [("tickets", {"ticket_id": 1})]


def test_ids_follow_commit_order_under_concurrent_writers(app):
    """A reader that follows ids as a cursor sees every event, even when writers overlap."""
    writers, per_writer = 4, 15
    done = threading.Event()
    seen: list[int] = []

    def write(n):
        with app.app_context():
            for i in range(per_writer):
                live_service.publish("tickets", "created", ticket_id=n * 100 + i)
                db.session.commit()

    with app.app_context():
        start = live_service.current_cursor()

    def follow():
        cursor = start
        with app.app_context():
            while True:
                finished = done.is_set()
                rows, cursor, _ = live._read(["tickets"], cursor)
                seen.extend(r.id for r in rows)
                db.session.remove()
                if finished:
                    return
                time.sleep(0.002)

    reader = threading.Thread(target=follow)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    done.set()
    reader.join(30)
    with app.app_context():
        every = list(db.session.scalars(db.select(LiveEvent.id).order_by(LiveEvent.id)))
    assert len(every) == writers * per_writer
    assert seen == every


# --- the stream ------------------------------------------------------------

class Stream:
    """Reads a text/event-stream response of the test client, event by event."""

    def __init__(self, response):
        self.response = response
        self.chunks = iter(response.response)
        self.buffer = ""

    def next_block(self) -> str:
        while "\n\n" not in self.buffer:
            chunk = next(self.chunks)
            self.buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
        block, self.buffer = self.buffer.split("\n\n", 1)
        return block

    def next_event(self, timeout: float = 10) -> dict | None:
        """The next dispatched event (skipping comments and id-only blocks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                block = self.next_block()
            except StopIteration:
                return None
            fields = {}
            for line in block.split("\n"):
                if line.startswith(":") or ":" not in line:
                    continue
                key, value = line.split(":", 1)
                fields[key] = value.strip()
            if "data" in fields:
                return {"id": int(fields.get("id", 0)), "event": fields.get("event", "message"),
                        "data": json.loads(fields["data"])}
        raise AssertionError("no event in time")

    def close(self):
        self.response.close()


def open_stream(client, topics: str, last_event_id: int | None = None, last_id: int | None = None):
    url = f"/agent/live?topics={topics}" + (f"&last_id={last_id}" if last_id is not None else "")
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    response = client.get(url, headers=headers, buffered=False)
    return response


def test_the_stream_needs_a_signed_in_agent(app, client):
    response = client.get("/agent/live?topics=tickets")
    assert response.status_code == 401 and response.json["error"]["code"] == "unauthorized"  # not a login page
    bad = app.test_client()
    bad.set_cookie("access_token_cookie", "not-a-jwt", path="/")
    assert bad.get("/agent/live?topics=tickets").status_code == 401


@pytest.mark.parametrize("topics", ["", "everything", "tickets,ticket:abc", ",".join(f"ticket:{i}" for i in range(9))])
def test_the_stream_accepts_known_topics_only(agent_client, topics):
    assert agent_client.get(f"/agent/live?topics={topics}").status_code == 422


def test_the_stream_catches_up_from_last_event_id(agent_client, ticket):
    csrf = csrf_of(agent_client)
    mark = db.session.scalar(db.select(db.func.max(LiveEvent.id)))
    agent_client.post(f"/agent/tickets/{ticket.id}/status", data={"status": "open", "csrf_token": csrf})
    agent_client.post(f"/agent/tickets/{ticket.id}/note", data={"body": "nota", "csrf_token": csrf})
    expected = [(e.id, e.kind) for e in db.session.scalars(db.select(LiveEvent).where(
        LiveEvent.id > mark, LiveEvent.topic == f"ticket:{ticket.id}").order_by(LiveEvent.id))]
    # The status change, its WhatsApp notice to the customer, the note.
    assert sorted(kind for _, kind in expected) == ["message", "note", "updated"]
    stream = Stream(open_stream(agent_client, f"ticket:{ticket.id}", last_event_id=mark))
    assert stream.response.status_code == 200
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    assert stream.response.headers["Cache-Control"].startswith("no-cache")
    got = [stream.next_event() for _ in expected]
    stream.close()
    assert [(e["id"], e["data"]["kind"]) for e in got] == expected
    for event in got:
        assert set(event["data"]) <= ALLOWED_KEYS and event["data"]["ticket_id"] == ticket.id
    # The page's own cursor (first connection) works the same; the newer of the two wins.
    stream = Stream(open_stream(agent_client, f"ticket:{ticket.id}", last_id=expected[1][0]))
    assert stream.next_event()["id"] == expected[2][0]
    stream.close()
    stream = Stream(open_stream(agent_client, f"ticket:{ticket.id}", last_event_id=expected[1][0], last_id=mark))
    assert stream.next_event()["id"] == expected[2][0]
    stream.close()


def test_the_stream_delivers_new_events_as_they_happen(app, agent_client, ticket, client):
    cursor = db.session.scalar(db.select(db.func.max(LiveEvent.id)))
    stream = Stream(open_stream(agent_client, f"tickets,customer:{ticket.customer_id}", last_event_id=cursor))

    def customer_writes():
        time.sleep(0.3)
        with app.app_context():
            signed_post(app.test_client(), "/webhooks/twilio/whatsapp", inbound_params(
                '"}<script>alert(1)</script>', sid="SM" + "d" * 32, name='<img src=x onerror="alert(2)">'))

    writer = threading.Thread(target=customer_writes)
    writer.start()
    started = time.monotonic()
    event = stream.next_event(timeout=10)
    writer.join()
    stream.close()
    assert time.monotonic() - started < 5
    assert event["data"]["topic"] == f"customer:{ticket.customer_id}" and event["data"]["kind"] == "message"
    assert set(event["data"]) <= ALLOWED_KEYS  # no customer text travels in events


def test_the_stream_skips_other_topics_and_keeps_the_cursor_moving(agent_client, ticket):
    cursor = db.session.scalar(db.select(db.func.max(LiveEvent.id)))
    tickets.add_note(ticket, agent_client.agent, "about another ticket's customer")
    stream = Stream(open_stream(agent_client, "ticket:999999", last_event_id=cursor))
    ids = []
    for _ in range(6):
        block = stream.next_block()
        ids += [int(m) for m in re.findall(r"^id: (\d+)$", block, re.M)]
        if ids:
            break
    stream.close()
    newest = db.session.scalar(db.select(db.func.max(LiveEvent.id)))
    assert ids == [newest]  # a keepalive moves Last-Event-ID past events of other topics


def test_a_page_away_longer_than_the_log_keeps_is_told_to_reload(agent_client, ticket):
    newest = db.session.scalar(db.select(db.func.max(LiveEvent.id)))
    db.session.execute(db.delete(LiveEvent).where(LiveEvent.id < newest))  # pruned
    db.session.commit()
    stream = Stream(open_stream(agent_client, "tickets", last_event_id=1))
    event = stream.next_event()
    assert event["event"] == "resync" and event["id"] == newest
    stream.close()
    # A cursor from the future (another database) resyncs too.
    stream = Stream(open_stream(agent_client, "tickets", last_event_id=newest + 1000))
    assert stream.next_event()["event"] == "resync"
    stream.close()


def test_the_stream_ends_when_the_agent_is_deactivated(agent_client, ticket):
    stream = Stream(open_stream(agent_client, "tickets"))
    agent = db.session.get(Agent, agent_client.agent.id)
    agent.active = False
    db.session.commit()
    assert stream.next_event(timeout=10)["event"] == "signout"
    assert stream.next_event(timeout=1) is None  # the stream is over
    assert agent_client.get("/agent/live?topics=tickets").status_code == 401


def test_the_stream_ends_after_a_while_and_frees_its_slot(app, agent_client):
    app.config["LIVE_STREAM_SECONDS"] = 0.5
    hub = live.hub_for(app)
    before = hub.streams
    stream = Stream(open_stream(agent_client, "tickets"))
    assert hub.streams == before + 1
    assert stream.next_event(timeout=5) is None
    stream.close()
    assert hub.streams == before


def test_streams_are_capped_per_process(app, agent_client):
    hub = live.hub_for(app)
    app.config["LIVE_MAX_STREAMS"] = hub.streams + 1
    first = open_stream(agent_client, "tickets")
    second = agent_client.get("/agent/live?topics=tickets")
    assert first.status_code == 200
    assert second.status_code == 503 and second.headers["Retry-After"]
    first.close()
    third = open_stream(agent_client, "tickets")
    assert third.status_code == 200  # the closed stream gave its slot back
    third.close()


def test_pages_tell_live_js_what_to_follow(agent_client, ticket):
    newest = db.session.scalar(db.select(db.func.max(LiveEvent.id)))

    def config_of(path):
        html = agent_client.get(path).get_data(as_text=True)
        match = re.search(r'id="live-config" hidden data-url="([^"]+)" data-last-id="(\d+)"', html)
        assert 'src="/static/live.js' in html and 'id="live-status"' in html and 'aria-live="polite"' in html
        return (match.group(1).replace("&amp;", "&"), int(match.group(2))) if match else None

    assert config_of("/agent/") == ("/agent/live?topics=tickets", newest)
    assert unquote(config_of(f"/agent/tickets/{ticket.id}")[0]) == (
        f"/agent/live?topics=ticket:{ticket.id},customer:{ticket.customer_id}")
    assert unquote(config_of(f"/agent/customers/{ticket.customer_id}")[0]) == (
        f"/agent/live?topics=customer:{ticket.customer_id}")
    account = agent_client.get("/agent/account").get_data(as_text=True)
    assert 'id="live-config"' not in account and "live.js" not in account


def test_a_stream_with_an_expired_access_token_is_renewed_not_refused(app, agent_client):
    from flask_jwt_extended import create_access_token
    agent = agent_client.agent
    token = create_access_token(identity=str(agent.id), expires_delta=timedelta(seconds=-5), additional_claims={
        "typ": "agent", "ver": agent.token_version, "csrf": csrf_of(agent_client)})
    agent_client.set_cookie("access_token_cookie", token, path="/")
    response = agent_client.get("/agent/live?topics=tickets&last_id=3", headers={"Last-Event-ID": "7"})
    # EventSource follows the redirect with the new cookie (and keeps its Last-Event-ID).
    assert response.status_code == 302 and response.location == "/agent/live?topics=tickets&last_id=3"
    assert any(c.startswith("access_token_cookie=") for c in response.headers.getlist("Set-Cookie"))
    stream = open_stream(agent_client, "tickets")
    assert stream.status_code == 200
    stream.close()
