"""The ticket list and one ticket: replies, notes, status, priority,
category, assignment, hand-back."""
from __future__ import annotations

import secrets

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext
from flask_jwt_extended import current_user

from ..auth import agent_required
from ..extensions import db
from ..models import Agent, CannedResponse, Ticket
from ..services import canned as canned_service
from ..services import notifications, ticket_list, timelines
from ..services import tickets as ticket_service
from ..services.errors import DomainError
from . import bp, i18n, render


def _active_agents() -> list[Agent]:
    return list(db.session.scalars(db.select(Agent).filter_by(active=True).order_by(Agent.name)))


@bp.get("/")
@agent_required()
def tickets():
    try:
        filters = ticket_list.parse_filters(request.args)
        page = ticket_list.list_page(filters, current_user, cursor=request.args.get("cursor") or None)
    except DomainError as exc:
        flash(i18n.error_text(exc), "error")
        filters = ticket_list.Filters()
        page = ticket_list.list_page(filters, current_user)
    return render("agent/tickets.html", page=page, filters=filters, agents=_active_agents(),
                  categories=ticket_service.CATEGORIES)


def _ticket_page(ticket: Ticket, *, draft: str = "", reply_key: str | None = None, status: int = 200):
    language = ticket.customer.language
    responses = [(r, canned_service.render(r, ticket, current_user)) for r in canned_service.for_language(language)]
    conversation = notifications.conversation_of(ticket)
    return render("agent/ticket.html", ticket=ticket, timeline=timelines.ticket_timeline(ticket),
                  handed_off=ticket_service.holds_conversation(ticket), agents=_active_agents(),
                  categories=ticket_service.CATEGORIES, canned=responses, draft=draft,
                  reply_key=reply_key or secrets.token_urlsafe(16), has_conversation=conversation is not None,
                  wa_window=notifications.window(conversation),
                  wa_templates=notifications.agent_templates(ticket, current_user)), status


@bp.get("/tickets/<int:ticket_id>")
@agent_required()
def ticket(ticket_id):
    return _ticket_page(db.session.get(Ticket, ticket_id) or abort(404))


@bp.post("/tickets/<int:ticket_id>/compose")
@agent_required()
def compose(ticket_id):
    """Insert a canned response into the reply box without JavaScript: the
    page comes back with the draft and the response, and the same reply key."""
    ticket = db.session.get(Ticket, ticket_id) or abort(404)
    draft = request.form.get("body", "").rstrip()
    chosen = request.form.get("canned_id", "")
    response = db.session.get(CannedResponse, int(chosen)) if chosen.isdigit() else None
    if response is not None:
        text = canned_service.render(response, ticket, current_user)
        draft = f"{draft}\n\n{text}" if draft else text
    return _ticket_page(ticket, draft=draft, reply_key=request.form.get("reply_key") or None)


def _act(ticket_id: int, action, done: str | None = None):
    ticket = db.session.get(Ticket, ticket_id) or abort(404)
    try:
        action(ticket)
    except DomainError as exc:
        flash(i18n.error_text(exc), "error")
    else:
        if done:
            flash(done, "info")
    return redirect(url_for("agent.ticket", ticket_id=ticket_id))


@bp.post("/tickets/<int:ticket_id>/reply")
@agent_required()
def reply(ticket_id):
    """Free text inside WhatsApp's 24-hour window; outside it, a template
    (``template``). Refused outside the window without one: the page comes
    back with the text, so nothing typed is lost."""
    ticket = db.session.get(Ticket, ticket_id) or abort(404)
    body = request.form.get("body", "")
    template = request.form.get("template") or None
    try:
        message = ticket_service.reply(ticket, current_user, body, client_key=request.form.get("reply_key") or None,
                                       template=template)
    except DomainError as exc:
        flash(_reply_error(exc), "error")
        return _ticket_page(ticket, draft=body.rstrip(), reply_key=request.form.get("reply_key") or None,
                            status=exc.status)
    if template is None and message.parts and message.parts[0].content_sid:
        flash(gettext("WhatsApp's 24-hour window has closed: the reply went as the approved reply template."),
              "info")
    return redirect(url_for("agent.ticket", ticket_id=ticket_id))


def _reply_error(exc: DomainError) -> str:
    if isinstance(exc, notifications.WindowClosed):
        return gettext("The customer last wrote more than 24 hours ago: WhatsApp only accepts an approved template "
                       "now, and no template is configured for replies. Your text was kept.")
    if exc.message == "this template is not configured":
        return gettext("This template is not configured.")
    if exc.message == "unknown template":
        return gettext("Unknown template.")
    return i18n.error_text(exc)


@bp.post("/tickets/<int:ticket_id>/note")
@agent_required()
def note(ticket_id):
    return _act(ticket_id, lambda t: ticket_service.add_note(t, current_user, request.form.get("body", "")))


@bp.post("/tickets/<int:ticket_id>/status")
@agent_required()
def status(ticket_id):
    new = request.form.get("status", "")
    return _act(ticket_id, lambda t: ticket_service.change_status(t, new, current_user),
                gettext("Status changed to %(status)s.", status=i18n.STATUS_LABELS.get(new, new)))


@bp.post("/tickets/<int:ticket_id>/details")
@agent_required()
def details(ticket_id):
    return _act(ticket_id, lambda t: ticket_service.update(
        t, current_user, priority=request.form.get("priority", t.priority),
        category=request.form.get("category", t.category or "") or None), gettext("Saved."))


@bp.post("/tickets/<int:ticket_id>/assign")
@agent_required()
def assign(ticket_id):
    """Take the ticket, give it to a colleague, or leave it unassigned."""
    choice = request.form.get("assignee", "")
    if choice == "me":
        assignee = current_user.id
    elif choice.isdigit():
        assignee = int(choice)
    elif choice == "none":
        assignee = None
    else:
        abort(400)
    return _act(ticket_id, lambda t: ticket_service.assign(t, assignee, current_user))


@bp.post("/tickets/<int:ticket_id>/handback")
@agent_required()
def handback(ticket_id):
    return _act(ticket_id, lambda t: ticket_service.hand_back(t, current_user))


@bp.cli.command("reindex-tickets")
def reindex_tickets():
    """Rebuild every ticket's search document (after a bulk import or restore)."""
    from ..services import ticket_search
    print(f"{ticket_search.reindex_all()} tickets indexed")
