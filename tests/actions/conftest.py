"""Fixtures for the action server's unit tests (run in .venv-rasa, see pytest.ini).

The webapp REST API is faked at the HTTP boundary: a small stateful server on
127.0.0.1 answers like ``webapp/api/customers.py`` and ``webapp/api/tickets.py``
(same paths, status codes and JSON shapes, errors as
``{"error": {"code", "message", ["field"]}}``) and records every request, so
the real request-building code in ``actions/api.py`` runs.
"""
from __future__ import annotations

import asyncio
import json
import re
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_ignore_collect(collection_path, config):
    """These tests need rasa-sdk: they run only with this folder as rootdir
    (``make test-actions``), never in the webapp environment's ``pytest``."""
    if Path(config.rootpath).resolve() != HERE:
        return True
    return None


SERVICE_TOKEN = "test-service-token"
SENDER = "551188887777"  # a conversation's rasa sender id: the customer's phone key
OTHER_SENDER = "5521977776666"
CLOSED_PORT_URL = "http://127.0.0.1:9/api/v1"  # nothing listens on the discard port
MAX_ATTEMPTS = 5
STATUS_LABELS = {
    "pt": {"new": "Novo", "open": "Em atendimento", "pending": "Aguardando você",
           "resolved": "Resolvido", "closed": "Fechado"},
    "en": {"new": "New", "open": "In progress", "pending": "Waiting for you",
           "resolved": "Resolved", "closed": "Closed"},
}
ACTIVE = ("new", "open", "pending")
NOW = "2024-05-02T13:45:00+00:00"


def phone_key(raw: str) -> str | None:
    """Like bot.phone.phone_key for the numbers used here (digits, Brazil's 9th digit dropped)."""
    digits = re.sub(r"\D", "", unquote(raw or ""))
    if len(digits) < 10:
        return None
    if digits.startswith("55") and len(digits) == 13 and digits[4] == "9":
        digits = digits[:4] + digits[5:]
    return digits


class Reply(Exception):
    def __init__(self, status: int, payload: dict | None):
        self.status = status
        self.payload = payload


def error(status: int, code: str, message: str, **details) -> Reply:
    return Reply(status, {"error": {"code": code, "message": message, **details}})


@dataclass
class Recorded:
    method: str
    path: str  # as sent, still percent-encoded
    query: dict[str, list[str]]
    body: Any  # parsed JSON, or None when there was no body
    authorization: str | None


@dataclass
class FakeWebapp:
    """State and behaviour of the fake ``/api/v1``."""

    base_url: str = ""
    token: str = SERVICE_TOKEN
    requests: list[Recorded] = field(default_factory=list)
    customers: dict[str, dict] = field(default_factory=dict)  # phone key -> customer JSON
    tickets: dict[int, dict] = field(default_factory=dict)  # number -> ticket JSON (+ _key, _source)
    codes: dict[str, dict] = field(default_factory=dict)  # phone key -> {"code", "attempts", "dead"}
    overrides: dict[tuple[str, str], tuple[int, Any]] = field(default_factory=dict)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    kb: list[dict] = field(default_factory=list)
    kb_min_words: int = 1
    kb_confident_words: int = 3
    business_hours: dict = field(default_factory=lambda: {"open": True, "opens_at": None})

    # ------------------------------------------------------------ test helpers
    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.customers.clear()
            self.tickets.clear()
            self.codes.clear()
            self.overrides.clear()
            self.delay = 0.0
            self.kb.clear()
            self.business_hours = {"open": True, "opens_at": None}

    def add_customer(self, phone: str = SENDER, *, name: str | None = "Maria Silva",
                     profile_name: str | None = "Maria", email: str | None = "maria.silva@exemplo.com.br",
                     verified: bool = True, language: str = "pt", greeting_name: str | None = "") -> dict:
        key = phone_key(phone)
        customer = {"id": len(self.customers) + 1, "phone": "+" + key, "name": name,
                    "profile_name": profile_name, "email": email, "verified": verified,
                    "language": language,
                    # the webapp's usable part of the name ("" here: same as the profile name)
                    "greeting_name": name or (profile_name if greeting_name == "" else greeting_name)}
        self.customers[key] = customer
        return customer

    def add_ticket(self, phone: str = SENDER, subject: str = "Entrega atrasada",
                   description: str = "Pedido 4411 não chegou", status: str = "new",
                   number: int | None = None) -> dict:
        customer = self.customers[phone_key(phone)]
        number = number or max(self.tickets, default=0) + 1
        ticket = {"id": number, "number": number, "customer_id": customer["id"], "subject": subject,
                  "description": description, "category": None, "status": status, "priority": "normal",
                  "assignee_id": None, "created_at": NOW, "updated_at": NOW,
                  "_key": None, "_source": "whatsapp"}
        self.tickets[number] = ticket
        return ticket

    def add_article(self, title: str, answer: str, language: str = "pt", slug: str | None = None) -> dict:
        article = {"id": len(self.kb) + 1, "slug": slug or f"article-{len(self.kb) + 1}", "title": title,
                   "answer": answer, "language": language}
        self.kb.append(article)
        return article

    def set_code(self, phone: str = SENDER, code: str = "483920", attempts: int = 0) -> None:
        self.codes[phone_key(phone)] = {"code": code, "attempts": attempts}

    def override(self, method: str, path: str, status: int, payload: Any = None) -> None:
        """Answer ``method path`` (relative to /api/v1) with a fixed status and body."""
        self.overrides[(method, path)] = (status, payload)

    def requests_to(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        return [r for r in self.requests
                if (method is None or r.method == method) and (path is None or r.path == path)]

    # ------------------------------------------------------------ the API
    def _customer(self, raw_phone: str) -> dict:
        key = phone_key(raw_phone)
        if key is None:
            raise error(422, "invalid", "invalid phone number", field="phone")
        if key not in self.customers:
            raise error(404, "not_found", "customer not found")
        return self.customers[key]

    def _ticket_json(self, ticket: dict, with_label: bool = True) -> dict:
        data = {k: v for k, v in ticket.items() if not k.startswith("_")}
        if with_label:
            owner = next(c for c in self.customers.values() if c["id"] == ticket["customer_id"])
            data["status_label"] = STATUS_LABELS[owner["language"]][ticket["status"]]
        return data

    def handle(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        prefix = urlsplit(self.base_url).path
        if not path.startswith(prefix + "/"):
            raise error(404, "not_found", "The requested URL was not found on the server.")
        rel = path[len(prefix):]
        if (method, rel) in self.overrides:
            return self.overrides[(method, rel)]
        parts = [unquote(p) for p in rel.strip("/").split("/")]
        phone = (query.get("phone") or [""])[0]

        if parts[:2] == ["customers", "by-phone"] and len(parts) == 3 and method == "GET":
            return 200, {"customer": self._customer(parts[2])}
        if parts == ["customers"] and method == "POST":
            return self._register(body)
        if parts[:2] == ["customers", "by-phone"] and parts[3:] == ["verification"] and method == "POST":
            customer = self._customer(parts[2])
            if not customer["email"]:
                raise error(422, "invalid", "the customer has no email yet", field="email")
            self.set_code(parts[2], "111222")
            return 201, {"verification": "sent"}
        if parts[:2] == ["customers", "by-phone"] and parts[3:] == ["verify"] and method == "POST":
            return 200, self._verify(parts[2], str(body.get("code", "")))
        if parts[:2] == ["customers", "by-phone"] and len(parts) == 3 and method == "PATCH" \
                and "notify_whatsapp" in body:
            if not isinstance(body["notify_whatsapp"], bool):
                raise error(422, "invalid", "notify_whatsapp must be true or false", field="notify_whatsapp")
            customer = self._customer(parts[2])
            customer["notify_whatsapp"] = body["notify_whatsapp"]
            return 200, {"customer": customer}
        if len(parts) == 3 and parts[0] == "tickets" and parts[2] in ("close", "reopen") and method == "POST":
            ticket = self.tickets.get(int(parts[1])) if parts[1].isdigit() else None
            customer = self._customer(str(body.get("phone", "")))
            if ticket is None or ticket["customer_id"] != customer["id"]:
                raise error(404, "not_found", "ticket not found")
            ticket["status"] = "closed" if parts[2] == "close" else "open"
            return 200, {"ticket": self._ticket_json(ticket)}
        if parts[:2] == ["customers", "by-phone"] and len(parts) == 3 and method == "PATCH":
            language = str(body.get("language", ""))
            if language not in ("pt", "en"):
                raise error(422, "invalid", "language must be pt or en", field="language")
            customer = self._customer(parts[2])
            customer["language"] = language
            return 200, {"customer": customer}
        if parts == ["tickets"] and method == "GET":
            if not phone:
                raise error(422, "invalid", "a service caller must give a phone", field="phone")
            customer = self._customer(phone)
            active_only = (query.get("active") or ["1"])[0] != "0"
            rows = [t for n, t in sorted(self.tickets.items(), reverse=True)
                    if t["customer_id"] == customer["id"] and (not active_only or t["status"] in ACTIVE)]
            return 200, {"tickets": [self._ticket_json(t) for t in rows]}
        if parts == ["tickets"] and method == "POST":
            return self._create_ticket(body)
        if len(parts) == 2 and parts[0] == "tickets" and method == "GET":
            if not parts[1].isdigit():
                raise error(404, "not_found", "The requested URL was not found on the server.")
            ticket = self.tickets.get(int(parts[1]))
            if ticket is None:
                raise error(404, "not_found", "ticket not found")
            # A service caller sees a ticket only with the phone of its owner.
            if not phone or self._customer(phone)["id"] != ticket["customer_id"]:
                raise error(404, "not_found", "ticket not found")
            return 200, {"ticket": self._ticket_json(ticket)}
        if parts[:2] == ["conversations", "by-phone"] and parts[3:] == ["handoff"] and method == "POST":
            customer = self._customer(parts[2])
            active = [t for n, t in sorted(self.tickets.items(), reverse=True)
                      if t["customer_id"] == customer["id"] and t["status"] in ACTIVE]
            ticket = active[0] if active else self.add_ticket(
                customer["phone"], subject="Atendimento pelo WhatsApp", description="")
            context = body.get("context")
            if context is not None and not isinstance(context, dict):
                raise error(422, "invalid", "context must be an object", field="context")
            ticket.setdefault("_handoffs", []).append(
                {"reason": str(body.get("reason", "customer_request"))[:50], "context": context})
            return 201, {"ticket": self._ticket_json(ticket, with_label=False),
                         "business_hours": dict(self.business_hours)}
        if parts == ["kb", "search"] and method == "GET":
            q = (query.get("q") or [""])[0].strip()
            language = (query.get("language") or [""])[0]
            if not q or len(q) > 500:
                raise error(422, "invalid", "q must have 1 to 500 characters", field="q")
            if language not in ("pt", "en"):
                raise error(422, "invalid", "language must be pt or en", field="language")
            return 200, self._kb_search(q, language)
        raise error(404, "not_found", "The requested URL was not found on the server.")

    def _kb_search(self, q: str, language: str) -> dict:
        """Articles sharing at least ``kb_min_words`` words with the question;
        confident from ``kb_confident_words`` shared words."""
        words = set(re.findall(r"\w+", q.lower()))
        hits = []
        for article in self.kb:
            if article["language"] != language:
                continue
            shared = len(words & set(re.findall(r"\w+", (article["title"] + " " + article["answer"]).lower())))
            if shared >= self.kb_min_words:
                hits.append({**article, "score": shared, "confident": shared >= self.kb_confident_words})
        hits.sort(key=lambda a: -a["score"])
        return {"confident": bool(hits and hits[0]["confident"]), "results": hits[:3]}

    def _register(self, body: dict) -> tuple[int, dict]:
        name = str(body.get("name", "")).strip()
        email = str(body.get("email", "")).strip()
        if not name or len(name) > 255:
            raise error(422, "invalid", "a name of 1 to 255 characters is required", field="name")
        # email-validator's view of a few addresses the action's regex lets through
        if not re.fullmatch(r"[^@\s.]+(\.[^@\s.]+)*@[^@\s]+\.[a-z]{2,}", email, re.IGNORECASE) or ".." in email:
            raise error(422, "invalid", "invalid email address", field="email")
        key = phone_key(str(body.get("phone", "")))
        if key is None:
            raise error(422, "invalid", "invalid phone number", field="phone")
        customer = self.customers.get(key) or self.add_customer(key, name=None, profile_name=None,
                                                                email=None, verified=False)
        if customer["verified"] and customer["email"] == email:
            customer["name"] = name
            return 201, {"customer": customer, "verification": "not_needed"}
        customer.update(name=name, email=email, verified=False)
        if body.get("language") in ("pt", "en"):
            customer["language"] = body["language"]
        self.set_code(key, "483920")
        return 201, {"customer": customer, "verification": "sent"}

    def _verify(self, phone: str, code: str) -> dict:
        customer = self._customer(phone)
        record = self.codes.get(phone_key(phone))
        if record is None:
            return {"result": "none", "attempts_left": 0}
        if record["attempts"] >= MAX_ATTEMPTS:
            return {"result": "dead", "attempts_left": 0}
        if "".join(ch for ch in code if ch.isdigit()) == record["code"]:
            del self.codes[phone_key(phone)]
            customer["verified"] = True
            return {"result": "verified", "attempts_left": MAX_ATTEMPTS - record["attempts"],
                    "customer": customer}
        record["attempts"] += 1
        left = MAX_ATTEMPTS - record["attempts"]
        return {"result": "wrong" if left > 0 else "dead", "attempts_left": left}

    def _create_ticket(self, body: dict) -> tuple[int, dict]:
        customer = self._customer(str(body.get("phone", "")))
        if not customer["verified"]:
            raise error(422, "invalid", "the customer is not verified", field="phone")
        subject = " ".join(str(body.get("subject", "")).split())
        if not subject:
            raise error(422, "invalid", "a subject is required", field="subject")
        key = str(body["idempotency_key"])[:80] if body.get("idempotency_key") else None
        if key:
            for ticket in self.tickets.values():
                if ticket["_key"] == key:
                    if ticket["customer_id"] != customer["id"]:
                        raise error(409, "conflict", "idempotency key already used")
                    return 200, {"ticket": self._ticket_json(ticket), "created": False}
        ticket = self.add_ticket(customer["phone"], subject=subject,
                                 description=str(body.get("description", "")).strip())
        ticket["_key"] = key
        return 201, {"ticket": self._ticket_json(ticket), "created": True}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeWebapp  # set on the subclass made per server

    def log_message(self, format, *args):  # keep the test output clean
        pass

    def _serve(self) -> None:
        fake = self.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        auth = self.headers.get("Authorization")
        query = parse_qs(url.query, keep_blank_values=True)
        with fake.lock:
            fake.requests.append(Recorded(self.command, url.path, query, body, auth))
        if fake.delay:
            time.sleep(fake.delay)
        try:
            with fake.lock:
                if auth != f"Bearer {fake.token}":
                    raise error(401, "unauthorized", "Missing or invalid service token")
                if self.command in ("POST", "PATCH") and not isinstance(body, dict) \
                        and not url.path.endswith("/verification") and not url.path.endswith("/handoff"):
                    raise error(422, "invalid", "a JSON object body is required")
                status, payload = fake.handle(self.command, url.path, query, body or {})
        except Reply as reply:
            status, payload = reply.status, reply.payload
        data = b"" if payload is None else (
            payload if isinstance(payload, bytes) else json.dumps(payload).encode())
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


@pytest.fixture(scope="session")
def _server():
    fake = FakeWebapp()
    handler = type("Handler", (_Handler,), {"fake": fake})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def webapp(_server, monkeypatch):
    """The fake webapp API, empty, with the action client pointed at it."""
    from actions import api

    _server.reset()
    monkeypatch.setenv("WEBAPP_API_URL", _server.base_url)
    monkeypatch.setenv("WEBAPP_SERVICE_TOKEN", SERVICE_TOKEN)
    monkeypatch.setenv("WEBAPP_API_TIMEOUT", "3")
    api.reset_client()
    yield _server
    api.reset_client()
    _server.reset()


@pytest.fixture
def api_down(monkeypatch):
    """The webapp is not running: the client points at a closed port."""
    from actions import api

    monkeypatch.setenv("WEBAPP_API_URL", CLOSED_PORT_URL)
    monkeypatch.setenv("WEBAPP_SERVICE_TOKEN", SERVICE_TOKEN)
    monkeypatch.setenv("WEBAPP_API_TIMEOUT", "3")
    api.reset_client()
    yield
    api.reset_client()


@pytest.fixture
def dispatcher():
    from rasa_sdk.executor import CollectingDispatcher

    return CollectingDispatcher()


# ---------------------------------------------------------------- trackers
DOMAIN_SLOTS = {
    "language": "pt", "customer_verified": False, "customer_name": None, "customer_email": None,
    "verification_code": None, "ticket_subject": None, "ticket_description": None,
    "ticket_confirm": None, "ticket_number": None, "pending_flow": None,
    "created_ticket_number": None, "requested_slot": None, "pending_question": None, "misunderstood": 0,
    "kb_offered": None, "ticket_key": None, "ticket_email": None, "format_failures": 0,
    "session_started_metadata": None,
}
FORMS = {
    "registration_form": {"required_slots": ["customer_name", "customer_email"]},
    "verification_form": {"required_slots": ["verification_code"]},
    "ticket_form": {"required_slots": ["ticket_subject", "ticket_description", "ticket_confirm"]},
}


def make_domain() -> dict:
    """The parts of domain.yml the actions and the rasa-sdk form machinery read."""
    slots = {name: {"type": "any", "influence_conversation": False, "mappings": [{"type": "custom"}]}
             for name in DOMAIN_SLOTS}
    for form, spec in FORMS.items():
        for slot in spec["required_slots"]:
            slots[slot]["mappings"] = [{"type": "from_text", "conditions": [
                {"active_loop": form, "requested_slot": slot}]}]
    return {"version": "3.1", "forms": FORMS, "slots": slots,
            "session_config": {"session_expiration_time": 120, "carry_over_slots_to_new_session": False}}


def user_event(text: str, intent: str, *, entities=None, metadata=None, message_id=None,
               confidence: float = 0.93, ts: float = 1714657500.0) -> dict:
    """A UserUttered event as the Rasa server sends it to the action server."""
    parse = {"intent": {"name": intent, "confidence": confidence}, "entities": entities or [],
             "text": text, "message_id": message_id or uuid.uuid4().hex,
             "metadata": metadata if metadata is not None else {"language": "pt", "profile_name": "Maria",
                                                                 "media": [], "location": None},
             "intent_ranking": [{"name": intent, "confidence": confidence}]}
    return {"event": "user", "timestamp": ts, "text": text, "parse_data": parse,
            "input_channel": "rest", "message_id": parse["message_id"], "metadata": parse["metadata"]}


def bot_event(text: str, ts: float = 1714657501.0) -> dict:
    return {"event": "bot", "timestamp": ts, "text": text, "data": {}, "metadata": {}}


def action_event(name: str, ts: float = 1714657501.0) -> dict:
    return {"event": "action", "timestamp": ts, "name": name, "policy": "RulePolicy",
            "confidence": 1.0, "action_text": None, "hide_rule_turn": False}


def slot_event(name: str, value: Any, ts: float = 1714657501.0) -> dict:
    return {"event": "slot", "timestamp": ts, "name": name, "value": value}


@pytest.fixture
def make_tracker():
    """Build a rasa_sdk Tracker from a snapshot like the one Rasa posts to /webhook.

    ``history`` are earlier events (after the session start), ``after`` events
    logged after the latest user message (slot candidates of a form go last).
    """
    from rasa_sdk import Tracker

    def factory(text: str = "oi", intent: str = "greet", *, sender_id: str = SENDER, entities=None,
                slots: dict | None = None, metadata: dict | None = None, message_id: str | None = None,
                history: list[dict] | None = None, after: list[dict] | None = None,
                active_loop: str | None = None, requested_slot: str | None = None) -> Tracker:
        latest = user_event(text, intent, entities=entities, metadata=metadata, message_id=message_id)
        all_slots = {**DOMAIN_SLOTS, **(slots or {})}
        if requested_slot:
            all_slots["requested_slot"] = requested_slot
        events = [action_event("action_session_start", 1714657000.0),
                  {"event": "session_started", "timestamp": 1714657000.1},
                  action_event("action_listen", 1714657000.2),
                  *(history or []), latest, *(after or [])]
        loop = ({"name": active_loop, "is_interrupted": False, "rejected": False,
                 "trigger_message": latest["parse_data"]} if active_loop else {})
        state = {
            "sender_id": sender_id,
            "slots": all_slots,
            "latest_message": latest["parse_data"],
            "latest_event_time": events[-1]["timestamp"],
            "followup_action": None,
            "paused": False,
            "events": events,
            "latest_input_channel": "rest",
            "active_loop": loop,
            "latest_action": {"action_name": "action_listen"},
            "latest_action_name": "action_listen",
        }
        return Tracker.from_dict(state)

    return factory


@pytest.fixture
def domain():
    return make_domain()


def run(coro):
    return asyncio.run(coro)


def slot_sets(events: list[dict]) -> dict[str, Any]:
    """{slot: value} of the SlotSet events (a later one wins)."""
    return {e["name"]: e["value"] for e in events if e["event"] == "slot"}


def kinds(events: list[dict]) -> list[tuple]:
    """Events as comparable tuples: ("slot", name, value), ("followup", name), ...."""
    out = []
    for e in events:
        if e["event"] == "slot":
            out.append(("slot", e["name"], e["value"]))
        elif e["event"] in ("followup", "action", "active_loop"):
            out.append((e["event"], e["name"]))
        else:
            out.append((e["event"],))
    return out


def responses(dispatcher) -> list[str]:
    return [m["response"] for m in dispatcher.messages]
