"""The ticket API for agents: list filters and pages, updates (status,
priority, category, assignee) with their permission rules, timeline, notes."""
import pytest

from webapp.extensions import db
from webapp.models import Agent, Message, Outbox, TicketEvent
from webapp.services import agents

from .test_workspace_service import make_ticket


def bearer(client, email):
    token = client.post("/api/v1/auth/login", json={"email": email, "password": "correct horse battery"})
    return {"Authorization": f"Bearer {token.json['access_token']}"}


@pytest.fixture
def team(client, make_agent):
    make_agent()
    make_agent(email="bia@example.com", name="Bia")
    make_agent(email="root@example.com", name="Root", role="admin")
    return {name: bearer(client, f"{name}@example.com") for name in ("ana", "bia", "root")}


def ids_of(name):
    return db.session.scalar(db.select(Agent.id).filter_by(email=f"{name}@example.com"))


def test_status_changes_follow_the_workflow(client, team):
    ticket = make_ticket()
    url = f"/api/v1/tickets/{ticket.id}"
    ok = client.patch(url, headers=team["ana"], json={"status": "in_progress"})
    assert ok.status_code == 200 and ok.json["ticket"]["status"] == "in_progress"
    assert ok.json["ticket"]["allowed_statuses"] == ["open", "pending", "resolved"]
    refused = client.patch(url, headers=team["ana"], json={"status": "closed"})
    assert refused.status_code == 422
    error = refused.json["error"]
    assert error["code"] == "invalid_transition" and error["field"] == "status"
    assert error["message"] == "a ticket cannot go from 'in_progress' to 'closed'"
    assert error["allowed"] == ["open", "pending", "resolved"]
    for step in ("resolved", "closed", "open"):  # resolve, close, reopen
        assert client.patch(url, headers=team["ana"], json={"status": step}).status_code == 200
    kinds = [(e.data["from"], e.data["to"]) for e in ticket.events.filter_by(kind="status")]
    assert kinds == [("new", "in_progress"), ("in_progress", "resolved"), ("resolved", "closed"), ("closed", "open")]
    assert client.patch(url, json={"status": "open"}).status_code == 401


def test_assignment_rules(client, team):
    ticket = make_ticket()
    url = f"/api/v1/tickets/{ticket.id}"
    ana, bia = ids_of("ana"), ids_of("bia")
    assert client.patch(url, headers=team["ana"], json={"assignee_id": ana}).json["ticket"]["assignee"] == "Ana Agent"
    stolen = client.patch(url, headers=team["bia"], json={"assignee_id": bia})
    assert stolen.status_code == 403 and stolen.json["error"]["code"] == "forbidden"
    assert client.patch(url, headers=team["bia"], json={"assignee_id": None}).status_code == 403
    assert client.patch(url, headers=team["ana"], json={"assignee_id": "x"}).status_code == 422
    assert client.patch(url, headers=team["ana"], json={"assignee_id": True}).status_code == 422
    given = client.patch(url, headers=team["ana"], json={"assignee_id": bia})
    assert given.json["ticket"]["assignee_id"] == bia
    root = client.patch(url, headers=team["root"], json={"assignee_id": None})
    assert root.status_code == 200 and root.json["ticket"]["assignee_id"] is None
    agents.deactivate(agents.get(ids_of("root")), agents.get(bia))
    assert client.patch(url, headers=team["ana"], json={"assignee_id": bia}).status_code == 422


def test_an_update_is_all_or_nothing(client, team):
    ticket = make_ticket()
    url = f"/api/v1/tickets/{ticket.id}"
    bad = client.patch(url, headers=team["ana"], json={"priority": "urgent", "category": "delivery", "status": "closed",
                                                         "assignee_id": ids_of("ana")})
    assert bad.status_code == 200  # new -> closed is allowed (a dismissal)
    again = client.patch(url, headers=team["ana"], json={"priority": "low", "status": "pending"})
    assert again.status_code == 422
    db.session.expire_all()
    assert client.get(url, headers=team["ana"]).json["ticket"]["priority"] == "urgent"
    assert client.patch(url, headers=team["ana"], json={"category": "gossip"}).status_code == 422


def test_list_filters_search_and_pages(client, team):
    first = make_ticket(subject="Entrega atrasada")
    make_ticket(phone="+5521977776666", subject="Cobrança", name="João")
    client.patch(f"/api/v1/tickets/{first.id}", headers=team["ana"], json={"priority": "high"})
    listed = client.get("/api/v1/tickets?q=atrasada", headers=team["ana"]).json
    assert [t["id"] for t in listed["tickets"]] == [first.id] and listed["total"] == 1
    assert [t["subject"] for t in client.get("/api/v1/tickets?priority=high", headers=team["ana"]).json["tickets"]] \
        == ["Entrega atrasada"]
    page = client.get("/api/v1/tickets?limit=1&sort=oldest", headers=team["ana"]).json
    assert page["tickets"][0]["id"] == first.id and page["next_cursor"] and page["prev_cursor"] is None
    second = client.get(f"/api/v1/tickets?limit=1&sort=oldest&cursor={page['next_cursor']}", headers=team["ana"]).json
    assert second["tickets"][0]["subject"] == "Cobrança" and second["next_cursor"] is None
    bad = client.get("/api/v1/tickets?assignee=everyone", headers=team["ana"])
    assert bad.status_code == 422 and bad.json["error"]["field"] == "assignee"
    assert client.get("/api/v1/tickets?cursor=nope", headers=team["ana"]).status_code == 422


def test_timeline_and_notes(client, team):
    ticket = make_ticket()
    note = client.post(f"/api/v1/tickets/{ticket.id}/notes", headers=team["ana"], json={"body": "VIP"})
    assert note.status_code == 201 and note.json["note"]["internal"] is True
    assert client.post(f"/api/v1/tickets/{ticket.id}/notes", headers=team["ana"], json={"body": " "}).status_code == 422
    reply = client.post(f"/api/v1/tickets/{ticket.id}/messages", headers={**team["ana"], "Idempotency-Key": "k1"},
                        json={"body": "Olá"})
    again = client.post(f"/api/v1/tickets/{ticket.id}/messages", headers={**team["ana"], "Idempotency-Key": "k1"},
                        json={"body": "Olá"})
    assert reply.json["message"]["id"] == again.json["message"]["id"]
    assert db.session.scalar(db.select(db.func.count()).select_from(Outbox)
                             .filter_by(message_id=reply.json["message"]["id"])) == 1
    items = client.get(f"/api/v1/tickets/{ticket.id}/timeline", headers=team["ana"]).json["timeline"]
    kinds = [(i["type"], i.get("kind") or i.get("author")) for i in items]
    assert kinds[0] == ("message", "customer") and ("event", "note") in kinds
    assert ("message", "agent") in kinds and ("event", "reply") not in kinds
    agent_message = next(i for i in items if i.get("author") == "agent")
    assert agent_message["status"] == "queued"
    assert db.session.scalar(db.select(db.func.count()).select_from(Message).filter_by(author="agent")) == 1
    assert db.session.scalar(db.select(TicketEvent.body).filter_by(kind="note")) == "VIP"
