"""Tickets: list (filters, search, keyset pages), create, read, update, timeline, notes, reply."""
from flask import request
from flask_jwt_extended import current_user

from ..auth import agent_required, is_service, principal_required
from ..models import Ticket
from ..services import customers, outbox, ticket_list, tickets, timelines
from ..services.errors import Invalid, NotFound
from ..services.texts import status_label
from . import bp
from .auth import json_body, text_field


def _json(ticket: Ticket) -> dict:
    """A ticket, with its status in the customer's language for the assistant to say."""
    return {**ticket.to_dict(), "status_label": status_label(ticket.status, ticket.customer.language)}


def _owned(ticket: Ticket) -> Ticket:
    """A service caller sees a ticket only with the phone of its owner."""
    if is_service():
        phone = request.args.get("phone", "")
        if not phone or customers.get_by_phone(phone).id != ticket.customer_id:
            raise NotFound("ticket not found")
    return ticket


@bp.get("/tickets")
@principal_required("tickets")
def list_tickets():
    phone = request.args.get("phone")
    if phone:
        customer = customers.get_by_phone(phone)
        active_only = request.args.get("active", "1") != "0"
        return {"tickets": [_json(t) for t in tickets.for_customer(customer, active_only)]}
    if is_service():
        raise Invalid("a service caller must give a phone", field="phone")
    # Agents: the ticket list's filters (status, assignee, priority, category,
    # q, from, to, sort) and keyset pages (cursor, next_cursor, prev_cursor).
    filters = ticket_list.parse_filters({"status": "all", **request.args.to_dict()})
    try:
        limit = int(request.args.get("limit", ticket_list.PAGE_SIZE))
    except ValueError as exc:
        raise Invalid("limit must be a number", field="limit") from exc
    page = ticket_list.list_page(filters, current_user, cursor=request.args.get("cursor") or None, limit=limit)
    return {"tickets": [_json(t) for t in page.tickets], "next_cursor": page.next_cursor,
            "prev_cursor": page.prev_cursor, "total": page.total, "total_capped": page.total_capped}


@bp.post("/tickets")
@principal_required("tickets")
def create_ticket():
    body = json_body()
    subject, description = text_field(body, "subject"), text_field(body, "description")
    category = text_field(body, "category") or None
    customer = customers.get_by_phone(text_field(body, "phone"))
    if is_service() and not customer.verified:
        raise Invalid("the customer is not verified", field="phone")
    ticket, created = tickets.create(
        customer, subject, description, category=category,
        idempotency_key=(str(body["idempotency_key"])[:80] if body.get("idempotency_key") else None))
    # "queued" until the email actually leaves: the assistant must not say it was sent.
    return {"ticket": _json(ticket), "created": created, "email": outbox.email_status(ticket)}, \
        201 if created else 200


@bp.get("/tickets/<int:ticket_id>")
@principal_required("tickets")
def get_ticket(ticket_id):
    ticket = _owned(tickets.get(ticket_id))
    return {"ticket": _json(ticket)}


@bp.patch("/tickets/<int:ticket_id>")
@agent_required()
def update_ticket(ticket_id):
    """Change status, priority, category and assignee (null: nobody), all or none.
    A refused status change is 422 invalid_transition with the allowed ones."""
    body = json_body()
    ticket = tickets.get(ticket_id)
    changes = {name: body[name] for name in ("status", "priority", "category", "assignee_id") if name in body}
    if "status" in changes:
        changes["status"] = str(changes["status"])
    if changes:
        tickets.update(ticket, current_user, **changes)
    return {"ticket": _json(ticket)}


@bp.get("/tickets/<int:ticket_id>/timeline")
@agent_required()
def ticket_timeline(ticket_id):
    """Messages (with delivery status), notes and changes, oldest first."""
    items = timelines.ticket_timeline(tickets.get(ticket_id))
    return {"timeline": [_item(i) for i in items]}


def _item(item) -> dict:
    if item.kind == "message":
        message = item.obj
        return {"type": "message", **message.to_dict(), "agent_id": message.agent_id,
                "error": message.error if message.status == "failed" else None}
    event = item.obj
    return {"type": "event", "id": event.id, "kind": event.kind, "actor_type": event.actor_type,
            "agent_id": event.agent_id, "body": event.body, "data": event.data, "internal": not event.public,
            "created_at": event.created_at.isoformat()}


@bp.post("/tickets/<int:ticket_id>/notes")
@agent_required()
def add_note(ticket_id):
    event = tickets.add_note(tickets.get(ticket_id), current_user, str(json_body().get("body", "")))
    return {"note": _item(timelines.Item("event", event.created_at, event))}, 201


@bp.post("/tickets/<int:ticket_id>/messages")
@agent_required()
def reply(ticket_id):
    body = json_body()
    message = tickets.reply(tickets.get(ticket_id), current_user, str(body.get("body", "")),
                            client_key=request.headers.get("Idempotency-Key"))
    return {"message": message.to_dict()}, 201
