"""Agent web interface: login, open tickets, ticket detail, replies, notes."""
from __future__ import annotations

import json
import secrets

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_jwt_extended import current_user, set_access_cookies, unset_jwt_cookies

from ..auth import agent_required, agent_token, csrf_token
from ..extensions import db, limiter
from ..models import Conversation, Customer, Message, Ticket, TicketStatus
from ..services import agents
from ..services import tickets as ticket_service
from ..services.errors import DomainError

# Agents see the workflow's names; customers see STATUS_LABELS (services.texts).
AGENT_STATUS_LABELS = {"new": "New", "open": "Open", "pending": "Waiting on customer",
                       "resolved": "Resolved", "closed": "Closed"}

bp = Blueprint("agent", __name__, url_prefix="/agent")


@bp.context_processor
def _helpers():
    return {"status_label": lambda s: AGENT_STATUS_LABELS.get(s, s),
            "transitions": TicketStatus.TRANSITIONS, "statuses": TicketStatus.ALL}


@bp.app_template_filter("handoff_context")
def _handoff_context(body: str | None) -> dict | None:
    """The context the assistant attaches to a handoff (JSON), or None for free text."""
    try:
        data = json.loads(body or "")
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _safe_next(target: str | None) -> str:
    # Only local paths: never redirect a login to another site.
    if target and target.startswith("/agent") and not target.startswith("//"):
        return target
    return url_for("agent.tickets")


@bp.get("/login")
def login():
    return render_template("agent/login.html", next=request.args.get("next", ""))


@bp.post("/login")
@limiter.limit(lambda: current_app.config["LOGIN_RATE_LIMIT"])
def login_post():
    agent = agents.authenticate(request.form.get("email", ""), request.form.get("password", ""))
    if agent is None:
        return render_template("agent/login.html", error=True, next=request.form.get("next", "")), 401
    response = redirect(_safe_next(request.form.get("next")))
    set_access_cookies(response, agent_token(agent))
    return response


@bp.post("/logout")
@agent_required()
def logout():
    # Ends every session of this agent, not only this browser's cookie.
    current_user.token_version += 1
    db.session.commit()
    response = redirect(url_for("agent.login"))
    unset_jwt_cookies(response)
    return response


def _render(template: str, **context):
    return render_template(template, agent=current_user, csrf=csrf_token(), **context)


@bp.get("/")
@agent_required()
def tickets():
    status = request.args.get("status", "active")
    query = db.select(Ticket).order_by(Ticket.id.desc()).limit(200)
    if status == "active":
        query = query.where(Ticket.status.in_(TicketStatus.ACTIVE))
    elif status in TicketStatus.ALL:
        query = query.filter_by(status=status)
    rows = db.session.scalars(query).all()
    waiting = set(db.session.scalars(db.select(Conversation.handoff_ticket_id)
                                     .where(Conversation.handoff_ticket_id.is_not(None))))
    return _render("agent/tickets.html", tickets=rows, status=status, waiting=waiting)


@bp.get("/tickets/<int:ticket_id>")
@agent_required()
def ticket(ticket_id):
    ticket = db.session.get(Ticket, ticket_id) or abort(404)
    return _render("agent/ticket.html", ticket=ticket, messages=ticket_service.conversation_messages(ticket),
                   handed_off=ticket_service.holds_conversation(ticket),
                   events=list(ticket.events), reply_key=secrets.token_urlsafe(16))


def _act(ticket_id: int, action):
    ticket = db.session.get(Ticket, ticket_id) or abort(404)
    try:
        action(ticket)
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(url_for("agent.ticket", ticket_id=ticket_id))


@bp.post("/tickets/<int:ticket_id>/reply")
@agent_required()
def reply(ticket_id):
    return _act(ticket_id, lambda t: ticket_service.reply(t, current_user, request.form.get("body", ""),
                                                   client_key=request.form.get("reply_key") or None))


@bp.post("/tickets/<int:ticket_id>/note")
@agent_required()
def note(ticket_id):
    return _act(ticket_id, lambda t: ticket_service.add_note(t, current_user, request.form.get("body", "")))


@bp.post("/tickets/<int:ticket_id>/status")
@agent_required()
def status(ticket_id):
    return _act(ticket_id, lambda t: ticket_service.change_status(t, request.form.get("status", ""), current_user))


@bp.post("/tickets/<int:ticket_id>/handback")
@agent_required()
def handback(ticket_id):
    return _act(ticket_id, lambda t: ticket_service.hand_back(t, current_user))


@bp.get("/customers/<int:customer_id>")
@agent_required()
def customer(customer_id):
    customer = db.session.get(Customer, customer_id) or abort(404)
    messages = []
    conversation = db.session.scalar(db.select(Conversation).filter_by(customer_id=customer.id))
    if conversation:
        messages = db.session.scalars(db.select(Message).filter_by(conversation_id=conversation.id)
                                      .order_by(Message.id)).all()
    rows = db.session.scalars(db.select(Ticket).filter_by(customer_id=customer.id)
                              .order_by(Ticket.id.desc())).all()
    return _render("agent/customer.html", customer=customer, tickets=rows, messages=messages)
