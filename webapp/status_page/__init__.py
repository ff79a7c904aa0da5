"""The customer's status page for one ticket, opened from the emailed link.

``GET /t/<token>`` checks the link and, when it is valid, sets a short-lived
cookie for that one ticket (path ``/t/<id>``, and the ticket in its claims)
and redirects (303) to ``/t/<id>``, so the token leaves the address bar,
the history and any Referer. Opening the link never changes anything and
never uses it up: mail scanners open links before people do.

``/t/<id>`` shows the ticket; the page polls ``/t/<id>/updates`` and swaps in
the server's HTML when the ticket changed. An expired link offers a fresh one
(a POST with CSRF, rate limited) on the customer's verified email, or
WhatsApp; a damaged one offers to ask on WhatsApp. No link ever gets a 500.
"""
from __future__ import annotations

import logging
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, current_app, jsonify, make_response, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from ..extensions import db, limiter
from ..models import Ticket, utcnow
from ..services import status_links
from ..services.texts import LANGUAGES, status_label
from ..services.tokens import check_status_token, make_status_session, read_status_session
from . import forms, logs

log = logging.getLogger(__name__)
bp = Blueprint("status_page", __name__)
SESSION_COOKIE = "zd_status"


@bp.record_once
def _setup(_state) -> None:
    logs.install()


@bp.after_request
def _headers(response):
    # Set, not defaulted: whatever else the app does, these pages never leak their URL or get cached.
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.vary.add("Cookie")
    return response


@bp.errorhandler(Exception)
def _unexpected(exc):
    if isinstance(exc, HTTPException):
        return exc
    # Logged without the path's token (Flask's own message would carry it).
    log.error("status page failed on %s %s", request.method, logs.redact(request.path), exc_info=exc)
    return _message_page("unavailable", 503, _lang())


# --- opening the link -------------------------------------------------------------------------------

@bp.get("/t/<path:token>")
def open_link(token: str):
    """Exchange the link's token for the page's cookie; read only."""
    check = check_status_token(token)
    ticket = db.session.get(Ticket, check.ticket_id) if check.ticket_id else None
    if check.state == "valid" and ticket is not None:
        response = redirect(url_for(".page", ticket_id=ticket.id), 303)
        _set_session_cookie(response, ticket.id, check.expires_at)
        return response
    lang = _lang(check.lang)
    if check.state == "expired" and ticket is not None:
        nonce, form_value = forms.new_form(ticket.id, lang)
        response = make_response(render_template(
            f"status_page/{lang}/expired.html", html_lang=lang, ticket_id=ticket.id, csrf_token=form_value,
            **_contact(lang, ticket.id)), 410)
        forms.set_cookie(response, nonce)
        return response
    # Damaged, forged or foreign: it identifies nothing (nor does a link to a ticket that is gone).
    return _message_page("invalid", 404 if check.state != "invalid" else 403, lang)


# --- the page -------------------------------------------------------------------------------------

@bp.get("/t/<int:ticket_id>")
def page(ticket_id: int):
    session = read_status_session(request.cookies.get(SESSION_COOKIE), ticket_id)
    ticket = db.session.get(Ticket, ticket_id) if session else None
    if ticket is None:
        return _message_page("no_session", 403, _lang())
    view = status_links.public_view(ticket)
    response = make_response(render_template(
        f"status_page/{view.lang}/ticket.html", html_lang=view.lang, view=view, ticket=ticket,
        updates_url=url_for(".updates", ticket_id=ticket.id),
        poll_seconds=current_app.config["STATUS_POLL_SECONDS"], **_page_helpers(view.lang),
        **_contact(view.lang, ticket.id)))
    _renew(response, session)
    return response


@bp.get("/t/<int:ticket_id>/updates")
def updates(ticket_id: int):
    """204 when the page (version ``v``) is current, else its new HTML; 401 when the cookie is gone."""
    session = read_status_session(request.cookies.get(SESSION_COOKIE), ticket_id)
    ticket = db.session.get(Ticket, ticket_id) if session else None
    if ticket is None:
        return jsonify(error={"code": "session_ended"}), 401
    if request.args.get("v", "") == status_links.page_version(ticket):
        response = make_response("", 204)
    else:
        view = status_links.public_view(ticket)
        html = render_template(f"status_page/{view.lang}/_ticket.html", view=view, ticket=ticket,
                               **_page_helpers(view.lang))
        response = jsonify(version=view.version, html=html)
    _renew(response, session)
    return response


# --- a fresh link ---------------------------------------------------------------------------------

def _resend_ticket_key() -> str:
    data = forms.signed_fields()
    return f"status-resend:{data['t']}" if data else "status-resend:unsigned"


def _rate_limited(_limit):
    data = forms.signed_fields()
    return _message_page("rate_limited", 429, data["l"] if data else _lang())


@bp.post("/t/resend")
@limiter.limit(lambda: current_app.config["STATUS_RESEND_RATE_LIMIT"], on_breach=_rate_limited)
@limiter.limit(lambda: current_app.config["STATUS_RESEND_TICKET_RATE_LIMIT"], key_func=_resend_ticket_key,
               on_breach=_rate_limited)
def resend():
    form = forms.submitted()
    if form is None:
        return _message_page("form_expired", 403, _lang())
    channel = status_links.send_fresh_link(form.ticket_id)
    response = redirect(url_for(".resent", lang=form.lang, via=channel or "none", ticket=form.ticket_id), 303)
    forms.clear_cookie(response)  # one form, one request
    return response


@bp.get("/t/resent")
def resent():
    lang = _lang(request.args.get("lang"))
    via = request.args.get("via") if request.args.get("via") in ("email", "whatsapp") else "none"
    ticket = request.args.get("ticket", "")
    ticket_id = int(ticket) if ticket.isdigit() and len(ticket) <= 18 else None
    return render_template(f"status_page/{lang}/resent.html", html_lang=lang, via=via, ticket_id=ticket_id,
                           **_contact(lang, ticket_id))


# --- helpers --------------------------------------------------------------------------------------

def _lang(preferred: str | None = None) -> str:
    """The link's language claim, else the browser's, else Portuguese."""
    if preferred in LANGUAGES:
        return preferred
    best = request.accept_languages.best_match(LANGUAGES)
    return best if best in LANGUAGES else "pt"


def _message_page(kind: str, status: int, lang: str):
    return make_response(render_template(f"status_page/{lang}/message.html", html_lang=lang, kind=kind,
                                         **_contact(lang, None)), status)


def _contact(lang: str, ticket_id: int | None) -> dict:
    """The company's WhatsApp number for a wa.me link (the text to send is in the templates)."""
    number = re.sub(r"\D", "", current_app.config.get("TWILIO_WHATSAPP_FROM", ""))
    return {"whatsapp_number": number or None, "contact_ticket_id": ticket_id}


def _page_helpers(lang: str) -> dict:
    zone = ZoneInfo(current_app.config.get("BUSINESS_TIMEZONE") or "UTC")
    return {"status_label": lambda s: status_label(s, lang), "local_time": lambda dt: dt.astimezone(zone),
            "timezone_name": zone.key}


def _set_session_cookie(response, ticket_id: int, link_expires_at) -> None:
    value, session = make_status_session(ticket_id, link_expires_at)
    max_age = max(int((session.expires_at - utcnow()).total_seconds()), 0)
    response.set_cookie(SESSION_COOKIE, value, max_age=max_age, path=f"/t/{ticket_id}", httponly=True,
                        secure=current_app.config["STATUS_COOKIE_SECURE"], samesite="Lax")


def _renew(response, session) -> None:
    """Keep an open page's cookie alive (half its life left), never past the link's expiry."""
    minutes = current_app.config["STATUS_SESSION_MINUTES"]
    if session.expires_at - utcnow() < timedelta(minutes=minutes / 2) and session.link_expires_at > utcnow():
        _set_session_cookie(response, session.ticket_id, session.link_expires_at)
