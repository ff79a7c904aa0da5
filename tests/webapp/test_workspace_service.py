"""The agent workspace's services: status workflow, assignment, priority and
category, events, replies through the outbox, canned responses, timelines."""
import itertools

import pytest

from webapp.extensions import db
from webapp.models import Conversation, Message, Outbox, Ticket, TicketEvent, TicketStatus, utcnow
from webapp.services import canned, customers, inbound, outbox, tickets, timelines
from webapp.services.errors import Conflict, Forbidden, Invalid
from webapp.services.tickets import InvalidTransitionError


def make_ticket(phone="+5511988887777", subject="Pedido quebrado", description="Chegou amassado",
                name="Maria Souza", email=None, language="pt", first_message="oi, meu pedido chegou quebrado"):
    conversation = customers.get_or_create_for_whatsapp(f"whatsapp:{phone}", profile_name=name)
    customer = conversation.customer
    customer.name, customer.language = name, language
    if email:
        customer.email, customer.email_verified_at = email, customer.created_at
    db.session.add(Message(conversation=conversation, direction="in", author="customer",
                           body=first_message, status="processed"))
    conversation.last_inbound_at = utcnow()  # as the webhook does: WhatsApp's window is open
    db.session.commit()
    ticket, _ = tickets.create(customer, subject, description, conversation=conversation)
    return ticket


@pytest.fixture
def ana(make_agent):
    return make_agent()


@pytest.fixture
def bia(make_agent):
    return make_agent(email="bia@example.com", name="Bia Agent")


@pytest.fixture
def admin(make_agent):
    return make_agent(email="root@example.com", name="Admin", role="admin")


def put_in(ticket, status):
    """Force a status without the workflow (test set-up only)."""
    ticket.status = status
    db.session.commit()


PAIRS = [(a, b) for a, b in itertools.product(TicketStatus.ALL, TicketStatus.ALL) if a != b]


@pytest.mark.parametrize(("old", "new"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_every_transition_is_allowed_or_refused_as_the_workflow_says(ctx, ana, old, new):
    ticket = make_ticket()
    put_in(ticket, old)
    events_before = ticket.events.count()
    if new in TicketStatus.TRANSITIONS[old]:
        tickets.change_status(ticket, new, ana)
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).status == new
        event = db.session.scalars(db.select(TicketEvent).filter_by(kind="status")).one()
        assert event.data == {"from": old, "to": new} and event.agent_id == ana.id and event.created_at
        assert event.public is True
    else:
        with pytest.raises(InvalidTransitionError) as refused:
            tickets.change_status(ticket, new, ana)
        assert refused.value.status == 422 and refused.value.code == "invalid_transition"
        assert f"cannot go from '{old}' to '{new}'" in refused.value.message
        assert refused.value.details["allowed"] == sorted(TicketStatus.TRANSITIONS[old])
        db.session.expire_all()
        assert db.session.get(Ticket, ticket.id).status == old
        assert ticket.events.count() == events_before


def test_the_workflow_reads_as_specified():
    t = TicketStatus.TRANSITIONS
    assert TicketStatus.OPEN in t["new"] and {"pending", "in_progress"} <= t["open"]
    assert "resolved" in t["in_progress"] and "resolved" in t["pending"] and "closed" in t["resolved"]
    assert t["resolved"] >= {"open"} and t["closed"] == {"open"}  # reopen
    assert "closed" not in t["open"] and "new" not in set().union(*t.values())
    assert TicketStatus.ACTIVE == ("new", "open", "in_progress", "pending")


def test_unknown_status_is_refused(ctx, ana):
    ticket = make_ticket()
    with pytest.raises(InvalidTransitionError, match="unknown status"):
        tickets.change_status(ticket, "archived", ana)


def test_customer_hears_of_status_changes_but_not_of_open_to_in_progress(ctx, ana):
    ticket = make_ticket()
    whatsapp = db.select(Outbox).where(Outbox.channel == "whatsapp")
    tickets.change_status(ticket, "open", ana)
    assert "Em atendimento" in db.session.scalars(whatsapp).one().body
    tickets.change_status(ticket, "in_progress", ana)  # same words for the customer
    assert len(db.session.scalars(whatsapp).all()) == 1
    tickets.change_status(ticket, "pending", ana)
    assert "Aguardando você" in db.session.scalars(whatsapp.order_by(Outbox.id.desc())).first().body


def test_an_in_progress_ticket_is_active_and_reused_by_a_handoff(ctx, ana):
    ticket = make_ticket()
    tickets.change_status(ticket, "in_progress", ana)
    conversation = db.session.scalar(db.select(Conversation))
    assert inbound.handoff(conversation, reason="customer_request", announce=False).id == ticket.id


def test_resolving_releases_the_conversation(ctx, ana):
    ticket = make_ticket()
    conversation = db.session.scalar(db.select(Conversation))
    inbound.handoff(conversation, reason="customer_request", announce=False)
    tickets.change_status(ticket, "open", ana)
    tickets.change_status(ticket, "resolved", ana)
    db.session.expire_all()
    assert db.session.scalar(db.select(Conversation)).handoff_ticket_id is None
    events = list(db.session.get(Ticket, ticket.id).events)
    resolved = next(i for i, e in enumerate(events) if e.kind == "status" and e.data["to"] == "resolved")
    assert "handback" in [e.kind for e in events[resolved:]]


def test_priority_and_category_changes_are_events(ctx, ana):
    ticket = make_ticket()
    tickets.set_priority(ticket, "urgent", ana)
    tickets.set_category(ticket, "delivery", ana)
    tickets.set_category(ticket, None, ana)
    rows = [(e.kind, e.data, e.agent_id) for e in ticket.events.filter(TicketEvent.kind.in_(("priority", "category")))]
    assert rows == [("priority", {"from": "normal", "to": "urgent"}, ana.id),
                    ("category", {"from": None, "to": "delivery"}, ana.id),
                    ("category", {"from": "delivery", "to": None}, ana.id)]
    assert all(not e.public for e in ticket.events.filter(TicketEvent.kind.in_(("priority", "category"))))
    with pytest.raises(Invalid, match="priority"):
        tickets.set_priority(ticket, "critical", ana)
    with pytest.raises(Invalid, match="category"):
        tickets.set_category(ticket, "gossip", ana)


def test_an_update_applies_all_changes_or_none(ctx, ana):
    ticket = make_ticket()
    with pytest.raises(InvalidTransitionError):
        tickets.update(ticket, ana, priority="high", status="resolved")
    db.session.expire_all()
    fresh = db.session.get(Ticket, ticket.id)
    assert fresh.priority == "normal" and fresh.status == "new"
    assert fresh.events.filter(TicketEvent.kind != "created").count() == 0


def test_taking_assigning_and_unassigning(ctx, ana, bia, admin):
    ticket = make_ticket()
    tickets.take(ticket, ana)
    assert ticket.assignee_id == ana.id
    # Bia cannot take Ana's ticket, nor give it away, nor unassign it.
    for target in (bia.id, None, ana.id + 1000):
        with pytest.raises(Forbidden):
            tickets.assign(ticket, target, bia)
    assert db.session.get(Ticket, ticket.id).assignee_id == ana.id
    tickets.assign(ticket, bia, ana)  # the assignee may hand it over
    assert ticket.assignee_id == bia.id
    tickets.assign(ticket, None, admin)  # an admin may do anything
    assert ticket.assignee_id is None
    tickets.assign(ticket, ana, bia)  # nobody holds it: anyone may assign it
    events = [e.data for e in ticket.events.filter_by(kind="assignee")]
    assert [(d["from_name"], d["to_name"]) for d in events] == [
        (None, "Ana Agent"), ("Ana Agent", "Bia Agent"), ("Bia Agent", None), (None, "Ana Agent")]
    agents_in_order = [e.agent_id for e in ticket.events.filter_by(kind="assignee")]
    assert agents_in_order == [ana.id, ana.id, admin.id, bia.id]


def test_tickets_go_to_active_agents_only(ctx, ana, bia):
    ticket = make_ticket()
    bia.active = False
    db.session.commit()
    with pytest.raises(Invalid, match="active agents"):
        tickets.assign(ticket, bia.id, ana)
    with pytest.raises(Invalid, match="active agents"):
        tickets.assign(ticket, 99999, ana)
    with pytest.raises(Invalid):
        tickets.update(ticket, ana, assignee_id="2")
    assert db.session.get(Ticket, ticket.id).assignee_id is None


def test_a_reply_goes_through_the_outbox_once_and_takes_the_ticket(ctx, ana):
    ticket = make_ticket()
    first = tickets.reply(ticket, ana, "Vamos trocar.", client_key="key-1")
    again = tickets.reply(ticket, ana, "Vamos trocar.", client_key="key-1")
    assert first.id == again.id and first.status == "queued"
    assert db.session.scalar(db.select(db.func.count()).select_from(Message).filter_by(author="agent")) == 1
    parts = db.session.scalars(db.select(Outbox).filter_by(message_id=first.id)).all()
    assert len(parts) == 1 and parts[0].status == "pending"
    kinds = [(e.kind, e.data.get("to")) for e in ticket.events.filter(TicketEvent.kind.in_(("status", "assignee")))]
    assert kinds == [("status", "open"), ("assignee", ana.id)]
    with pytest.raises(Invalid, match="empty"):
        tickets.reply(ticket, ana, "   ")



def test_a_double_submit_racing_past_the_key_check_sends_once(ctx, ana, app, monkeypatch):
    """Two requests with one key both find no reply yet; the second one's insert
    fails at some flush: it answers with the first one's reply, never a 500."""
    from webapp.services import notifications

    ticket = make_ticket()
    ticket_id, ana_id = ticket.id, ana.id
    real = notifications.agent_message

    def first_request_wins(*args, **kwargs):
        monkeypatch.setattr(notifications, "agent_message", real)
        with app.app_context():  # the other request, with its own session
            tickets.reply(db.session.get(Ticket, ticket_id), db.session.get(type(ana), ana_id),
                          "Vamos trocar.", client_key="same-key")
        return real(*args, **kwargs)

    monkeypatch.setattr(notifications, "agent_message", first_request_wins)
    message = tickets.reply(ticket, ana, "Vamos trocar.", client_key="same-key")
    assert message.client_key == "same-key"
    assert db.session.scalar(db.select(db.func.count()).select_from(Message).filter_by(author="agent")) == 1
    assert db.session.scalar(db.select(db.func.count()).select_from(Outbox).where(
        Outbox.message_id == message.id)) == 1

def test_a_failed_delivery_carries_its_reason(ctx, ana, app):
    from bot.twilio_whatsapp import SendError

    class Refusing:
        def send(self, **_kwargs):
            raise SendError("Twilio 400: 63016 outside the allowed window", transient=False)

    ticket = make_ticket()
    message = tickets.reply(ticket, ana, "Olá", client_key="k")
    outbox.dispatch_due(Refusing())
    db.session.refresh(message)
    assert message.status == "failed" and "63016" in message.error


def test_canned_responses_admins_write_everyone_reads(ctx, ana, admin):
    with pytest.raises(Forbidden):
        canned.create(ana, "Troca", "Vamos trocar")
    text = "Olá {customer_name}, o chamado #{ticket_number} {unknown} é de {agent_name}."
    saved = canned.create(admin, "Troca", text, "pt")
    with pytest.raises(Conflict):
        canned.create(admin, "Troca", "outro texto")
    with pytest.raises(Invalid):
        canned.create(admin, "", "x")
    with pytest.raises(Invalid):
        canned.create(admin, "X", "y", "fr")
    canned.create(admin, "Both", "Hello")
    canned.create(admin, "English", "Hi", "en")
    assert [r.title for r in canned.for_language("pt")] == ["Troca", "Both"]
    ticket = make_ticket()
    assert canned.render(saved, ticket, ana) == f"Olá Maria Souza, o chamado #{ticket.id} {{unknown}} é de Ana Agent."
    with pytest.raises(Forbidden):
        canned.update(ana, saved, "T", "b")
    canned.update(admin, saved, "Troca de produto", "novo", None)
    with pytest.raises(Forbidden):
        canned.delete(ana, saved)
    canned.delete(admin, saved)
    assert [r.title for r in canned.all_responses()] == ["Both", "English"]


def test_the_ticket_timeline_mixes_messages_notes_and_changes_in_order(ctx, ana):
    ticket = make_ticket()
    tickets.reply(ticket, ana, "Resposta do agente", client_key="r1")
    tickets.add_note(ticket, ana, "nota interna")
    tickets.set_priority(ticket, "high", ana)
    items = timelines.ticket_timeline(ticket)
    kinds = [(i.kind, getattr(i.obj, "kind", None) or i.obj.author) for i in items]
    assert kinds[0] == ("message", "customer")
    assert ("message", "agent") in kinds and ("event", "note") in kinds and ("event", "priority") in kinds
    assert ("event", "reply") not in kinds  # the reply is shown once, as the message
    assert [i.at for i in items] == sorted(i.at for i in items)
    assert kinds.index(("event", "note")) < kinds.index(("event", "priority"))


def test_the_customer_timeline_has_tickets_messages_and_emails(ctx, ana, smtp_server):
    ticket = make_ticket(email="maria@example.com")
    other = make_ticket(phone="+5521977776666", name="João", email="joao@example.com")
    customer = ticket.customer
    conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=customer.id))
    outbox.queue_whatsapp(conversation, "Olá do assistente", author="bot")
    db.session.commit()
    tickets.reply(ticket, ana, "Olá da Ana", client_key="x")
    tickets.change_status(ticket, "pending", ana)  # the customer is told: a system message
    items, more = timelines.customer_timeline(customer)
    assert not more
    kinds = {(i.kind, getattr(i.obj, "author", None)) for i in items}
    assert {("ticket", None), ("message", "customer"), ("message", "bot"), ("message", "agent"),
            ("message", "system"), ("email", None)} <= kinds
    emails = [i.obj for i in items if i.kind == "email"]
    assert emails and all(e.recipient == "maria@example.com" for e in emails)
    assert other.customer_id != customer.id
    assert [i.order for i in items] == sorted(i.order for i in items)
    short, more = timelines.customer_timeline(customer, limit=2)
    assert more and len(short) == 2 and short[-1].obj is items[-1].obj
