"""REST API: login, token checks, service scope, customers, tickets."""
from datetime import timedelta

import pytest
from flask_jwt_extended import create_access_token

from webapp.auth import service_token
from webapp.extensions import db
from webapp.models import Conversation, Ticket
from webapp.services import customers
from webapp.services.tokens import make_status_token

PHONE = "5511988887777"


@pytest.fixture
def service(app):
    with app.app_context():
        token = service_token()
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def verified_customer(ctx):
    customer = customers.register(f"whatsapp:+{PHONE}", "Maria", "maria@example.com")
    customer.email_verified_at = customer.created_at
    conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=customer.id))
    conversation.last_inbound_at = customer.created_at  # the customer wrote: WhatsApp's 24-hour window is open
    db.session.commit()
    return customer


def login(client, email="ana@example.com", password="correct horse battery"):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def test_login_returns_a_token_that_works(client, make_agent):
    make_agent()
    response = login(client)
    assert response.status_code == 200
    token = response.json["access_token"]
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json["agent"]["email"] == "ana@example.com"


def test_login_errors_are_generic(client, make_agent):
    make_agent()
    wrong_password = login(client, password="nope nope nope")
    unknown = login(client, email="nobody@example.com")
    assert wrong_password.status_code == unknown.status_code == 401
    assert wrong_password.json == unknown.json
    assert client.post("/api/v1/auth/login", data="x").status_code == 422


def test_login_is_rate_limited(app, client, make_agent):
    make_agent()
    app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    try:
        codes = [login(client, password="wrong wrong").status_code for _ in range(4)]
    finally:
        app.config["LOGIN_RATE_LIMIT"] = "1000 per minute"
    assert codes == [401, 401, 401, 429]


def test_tokens_are_checked(client, app, service):
    assert client.get("/api/v1/auth/me").status_code == 401
    assert client.get("/api/v1/auth/me", headers={"Authorization": "Bearer garbage"}).status_code == 401
    # A service token is not an agent.
    assert client.get("/api/v1/auth/me", headers=service).status_code == 401
    with app.app_context():
        expired = create_access_token("1", expires_delta=timedelta(seconds=-1),
                                      additional_claims={"typ": "agent", "ver": 0})
        status_link = make_status_token(1)
        none_alg = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwidHlwIjoiYWdlbnQiLCJ2ZXIiOjB9."
    for token in (expired, status_link, none_alg):
        response = client.get("/api/v1/tickets", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


def test_service_token_has_its_scope_only(client, app):
    with app.app_context():
        narrow = service_token("x", scopes=("customers",))
    response = client.get(f"/api/v1/tickets?phone={PHONE}", headers={"Authorization": f"Bearer {narrow}"})
    assert response.status_code == 403


def test_customer_lookup_and_registration(client, service, inbox):
    assert client.get(f"/api/v1/customers/by-phone/{PHONE}", headers=service).status_code == 404
    response = client.post("/api/v1/customers", headers=service,
                           json={"phone": PHONE, "name": "Maria", "email": "bad", "language": "pt"})
    assert response.status_code == 422 and response.json["error"]["field"] == "email"
    response = client.post("/api/v1/customers", headers=service,
                           json={"phone": PHONE, "name": "Maria", "email": "maria@example.com"})
    assert response.status_code == 201
    customer = client.get("/api/v1/customers/by-phone/(11) 98888-7777", headers=service).json["customer"]
    assert customer["name"] == "Maria" and customer["verified"] is False
    result = client.post(f"/api/v1/customers/by-phone/{PHONE}/verify", headers=service, json={"code": "x"})
    assert result.json["result"] == "wrong"


def test_ticket_creation_is_idempotent_and_needs_verification(client, service, ctx):
    customers.register(f"whatsapp:+{PHONE}", "Maria", "maria@example.com")
    body = {"phone": PHONE, "subject": "Pedido quebrado", "description": "Chegou quebrado",
            "idempotency_key": "k1"}
    assert client.post("/api/v1/tickets", headers=service, json=body).status_code == 422
    customer = customers.get_by_phone(PHONE)
    customer.email_verified_at = customer.created_at
    db.session.commit()
    first = client.post("/api/v1/tickets", headers=service, json=body)
    again = client.post("/api/v1/tickets", headers=service, json=body)
    assert first.status_code == 201 and again.status_code == 200
    assert first.json["ticket"]["number"] == again.json["ticket"]["number"]
    assert first.json["ticket"]["status_label"] == "Novo"
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 1
    assert client.post("/api/v1/tickets", headers=service, json={**body, "subject": "",
                                                                  "idempotency_key": "k2"}).status_code == 422



@pytest.mark.parametrize("field,value", [("subject", {"a": 1}), ("description", ["x"]), ("phone", 5511988887777),
                                         ("category", True)])
def test_ticket_fields_that_are_not_text_are_refused(client, service, verified_customer, field, value):
    body = {"phone": verified_customer.phone, "subject": "Pedido quebrado", "description": "Chegou quebrado",
            field: value}
    response = client.post("/api/v1/tickets", headers=service, json=body)
    assert response.status_code == 422 and field in response.text
    assert db.session.scalar(db.select(db.func.count()).select_from(Ticket)) == 0

def test_a_customer_sees_only_their_own_tickets(client, service, verified_customer):
    other = customers.register("whatsapp:+5521977776666", "Outro", "outro@example.com")
    other.email_verified_at = other.created_at
    db.session.commit()
    mine = client.post("/api/v1/tickets", headers=service,
                       json={"phone": PHONE, "subject": "Meu", "description": "d"}).json["ticket"]
    theirs = client.post("/api/v1/tickets", headers=service,
                         json={"phone": "5521977776666", "subject": "Deles", "description": "d"}).json["ticket"]
    listed = client.get(f"/api/v1/tickets?phone={PHONE}", headers=service).json["tickets"]
    assert [t["number"] for t in listed] == [mine["number"]]
    assert client.get(f"/api/v1/tickets/{mine['id']}?phone={PHONE}", headers=service).status_code == 200
    assert client.get(f"/api/v1/tickets/{theirs['id']}?phone={PHONE}", headers=service).status_code == 404
    assert client.get(f"/api/v1/tickets/{theirs['id']}", headers=service).status_code == 404
    assert client.get("/api/v1/tickets", headers=service).status_code == 422


def test_agents_update_tickets_and_reply(client, make_agent, service, verified_customer):
    make_agent()
    token = login(client).json["access_token"]
    agent = {"Authorization": f"Bearer {token}"}
    ticket = client.post("/api/v1/tickets", headers=agent,
                         json={"phone": PHONE, "subject": "S", "description": "D"}).json["ticket"]
    assert client.patch(f"/api/v1/tickets/{ticket['id']}", headers=service, json={"status": "open"}).status_code == 401
    response = client.patch(f"/api/v1/tickets/{ticket['id']}", headers=agent, json={"status": "open"})
    assert response.json["ticket"]["status"] == "open"
    bad = client.patch(f"/api/v1/tickets/{ticket['id']}", headers=agent, json={"status": "new"})
    assert bad.status_code == 422 and "cannot go from 'open' to 'new'" in bad.json["error"]["message"]
    reply = client.post(f"/api/v1/tickets/{ticket['id']}/messages", headers={**agent, "Idempotency-Key": "r1"},
                        json={"body": "Olá Maria"})
    again = client.post(f"/api/v1/tickets/{ticket['id']}/messages", headers={**agent, "Idempotency-Key": "r1"},
                        json={"body": "Olá Maria"})
    assert reply.status_code == 201 and reply.json["message"]["id"] == again.json["message"]["id"]
    listed = client.get("/api/v1/tickets?status=open", headers=agent).json["tickets"]
    assert [t["id"] for t in listed] == [ticket["id"]]


def test_admins_create_agents(client, make_agent):
    make_agent(email="boss@example.com", role="admin")
    make_agent()
    admin = {"Authorization": "Bearer " + login(client, email="boss@example.com").json["access_token"]}
    agent = {"Authorization": "Bearer " + login(client).json["access_token"]}
    body = {"email": "new@example.com", "name": "New", "password": "long enough password"}
    assert client.post("/api/v1/auth/register", headers=agent, json=body).status_code == 403
    assert client.post("/api/v1/auth/register", headers=admin, json=body).status_code == 201
    assert client.post("/api/v1/auth/register", headers=admin, json=body).status_code == 409
    short = {**body, "email": "x@example.com", "password": "short"}
    assert client.post("/api/v1/auth/register", headers=admin, json=short).status_code == 422


def test_api_index_lists_the_routes(client):
    body = client.get("/api/v1/").get_json()
    assert "POST /api/v1/tickets" in body["routes"] and "POST /api/v1/auth/login" in body["routes"]


def test_oversized_fields_are_refused_not_a_500(client, make_agent, verified_customer):
    """PostgreSQL enforces column lengths that SQLite ignores."""
    make_agent(email="boss@example.com", role="admin")
    admin = {"Authorization": "Bearer " + login(client, email="boss@example.com").json["access_token"]}
    long_name = {"email": "n@example.com", "name": "x" * 121, "password": "long enough password"}
    assert client.post("/api/v1/auth/register", headers=admin, json=long_name).status_code == 422
    ticket = client.post("/api/v1/tickets", headers=admin,
                         json={"phone": PHONE, "subject": "S", "description": "D"}).json["ticket"]
    response = client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"body": "oi"},
                           headers={**admin, "Idempotency-Key": "k" * 65})
    assert response.status_code == 422
