"""The customer's status page for one ticket, opened from the emailed link."""
from flask import Blueprint, render_template

from ..extensions import db
from ..models import Ticket
from ..services import tickets
from ..services.texts import lang_or_default, status_label
from ..services.tokens import BadStatusToken, read_status_token

bp = Blueprint("status_page", __name__)


@bp.get("/t/<token>")
def show(token):
    # Reading only: opening the link (mail scanners do) never changes anything.
    try:
        ticket_id = read_status_token(token)
    except BadStatusToken:
        return render_template("status_page/invalid.html"), 403
    ticket = db.session.get(Ticket, ticket_id)
    if ticket is None:
        return render_template("status_page/invalid.html"), 404
    lang = lang_or_default(ticket.customer.language)
    public_messages = [m for m in tickets.conversation_messages(ticket)
                       if m.ticket_id == ticket.id and m.author in ("agent", "customer", "system")]
    response = render_template(
        f"status_page/{lang}.html", ticket=ticket, events=tickets.public_timeline(ticket),
        messages=public_messages, status_label=lambda s: status_label(s, lang), html_lang=lang)
    return response, 200, {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
