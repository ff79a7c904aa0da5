"""Tickets: list, create, read, update, reply."""
from flask import request
from flask_jwt_extended import current_user

from ..auth import agent_required, is_service, principal_required
from ..extensions import db
from ..models import Ticket, TicketStatus
from ..services import customers, tickets
from ..services.errors import Invalid, NotFound
from ..services.texts import status_label
from . import bp
from .auth import json_body


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
    status = request.args.get("status")
    query = db.select(Ticket).order_by(Ticket.id.desc())
    if status:
        if status not in TicketStatus.ALL:
            raise Invalid("unknown status", field="status")
        query = query.filter_by(status=status)
    try:
        limit = max(1, min(int(request.args.get("limit", 50)), 200))
        offset = max(0, int(request.args.get("offset", 0)))
    except ValueError as exc:
        raise Invalid("limit and offset must be numbers") from exc
    rows = db.session.scalars(query.limit(limit).offset(offset))
    return {"tickets": [_json(t) for t in rows]}


@bp.post("/tickets")
@principal_required("tickets")
def create_ticket():
    body = json_body()
    customer = customers.get_by_phone(str(body.get("phone", "")))
    if is_service() and not customer.verified:
        raise Invalid("the customer is not verified", field="phone")
    ticket, created = tickets.create(
        customer, str(body.get("subject", "")), str(body.get("description", "")),
        category=body.get("category") or None,
        idempotency_key=(str(body["idempotency_key"])[:80] if body.get("idempotency_key") else None))
    return {"ticket": _json(ticket), "created": created}, 201 if created else 200


@bp.get("/tickets/<int:ticket_id>")
@principal_required("tickets")
def get_ticket(ticket_id):
    ticket = _owned(tickets.get(ticket_id))
    return {"ticket": _json(ticket)}


@bp.patch("/tickets/<int:ticket_id>")
@agent_required()
def update_ticket(ticket_id):
    body = json_body()
    ticket = tickets.get(ticket_id)
    if "status" in body:
        tickets.change_status(ticket, str(body["status"]), current_user)
    return {"ticket": _json(ticket)}


@bp.post("/tickets/<int:ticket_id>/messages")
@agent_required()
def reply(ticket_id):
    body = json_body()
    message = tickets.reply(tickets.get(ticket_id), current_user, str(body.get("body", "")),
                            client_key=request.headers.get("Idempotency-Key"))
    return {"message": message.to_dict()}, 201
