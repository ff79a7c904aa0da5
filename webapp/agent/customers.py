"""A customer's whole history on one page."""
from __future__ import annotations

from flask import abort, request

from ..auth import agent_required
from ..extensions import db
from ..models import Customer, Ticket
from ..services import timelines
from . import bp, render


@bp.get("/customers/<int:customer_id>")
@agent_required()
def customer(customer_id):
    customer = db.session.get(Customer, customer_id) or abort(404)
    everything = request.args.get("all") == "1"
    items, more = timelines.customer_timeline(customer, limit=None if everything else timelines.CUSTOMER_LIMIT)
    tickets = db.session.scalars(db.select(Ticket).filter_by(customer_id=customer.id).order_by(Ticket.id.desc()))
    return render("agent/customer.html", customer=customer, tickets=list(tickets), items=items, more=more,
                  emails=timelines.customer_emails(customer))
