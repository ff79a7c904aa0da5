"""Closing the loop, for the assistant: the customer closes, reopens or rates
one of their own tickets (always with their phone: nobody else's)."""
from ..auth import is_service, principal_required
from ..services import closing, customers
from ..services.errors import Forbidden
from . import bp
from .auth import json_body
from .tickets import _json


def _customer(body: dict):
    if not is_service():
        # Agents change tickets through the workflow; these speak for the customer.
        raise Forbidden("only the assistant acts for the customer here")
    return customers.get_by_phone(str(body.get("phone", "")))


@bp.post("/tickets/<int:number>/close")
@principal_required("tickets")
def close_ticket(number: int):
    """The customer agreed to close (or asked to): closed, and asked for a rating on WhatsApp."""
    body = json_body()
    return {"ticket": _json(closing.close_by_customer(number, _customer(body)))}


@bp.post("/tickets/<int:number>/reopen")
@principal_required("tickets")
def reopen_ticket(number: int):
    """The customer says the problem is not solved: reopened, back to its agent."""
    body = json_body()
    return {"ticket": _json(closing.reopen_by_customer(number, _customer(body)))}


@bp.post("/tickets/<int:number>/rating")
@principal_required("tickets")
def rate_ticket(number: int):
    body = json_body()
    return {"ticket": _json(closing.rate(number, _customer(body), body.get("score")))}
