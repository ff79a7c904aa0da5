"""Customers, for the action server: look-up, registration, verification."""
from flask import request

from ..auth import principal_required
from ..services import customers, inbound
from ..services.errors import Invalid
from . import bp
from .auth import json_body


@bp.get("/customers/by-phone/<phone>")
@principal_required("customers")
def customer_by_phone(phone):
    return {"customer": customers.get_by_phone(phone).to_dict()}


@bp.post("/customers")
@principal_required("customers")
def register_customer():
    body = json_body()
    customer = customers.register(str(body.get("phone", "")), str(body.get("name", "")),
                                  str(body.get("email", "")), body.get("language"))
    return {"customer": customer.to_dict(), "verification": "sent" if not customer.verified else "not_needed"}, 201


@bp.post("/customers/by-phone/<phone>/verification")
@principal_required("customers")
def resend_verification(phone):
    customers.resend_code(phone)
    return {"verification": "sent"}, 201


@bp.post("/customers/by-phone/<phone>/verify")
@principal_required("customers")
def verify(phone):
    body = json_body()
    return customers.verify_code(phone, str(body.get("code", "")))


@bp.patch("/customers/by-phone/<phone>")
@principal_required("customers")
def update_customer(phone):
    body = json_body()
    if not {"language", "notify_whatsapp"} & body.keys():
        raise Invalid("nothing to change: give language or notify_whatsapp")
    customer = customers.get_by_phone(phone)
    if "notify_whatsapp" in body:
        customer = customers.set_notifications(phone, body["notify_whatsapp"])
    if "language" in body:
        customer = customers.set_language(phone, str(body.get("language", "")))
    return {"customer": customer.to_dict()}


@bp.post("/conversations/by-phone/<phone>/handoff")
@principal_required("conversations")
def handoff(phone):
    body = request.get_json(silent=True) or {}
    customer = customers.get_by_phone(phone)
    conversation = customers.get_or_create_for_whatsapp(customer.phone)
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise Invalid("context must be an object", field="context")
    ticket = inbound.handoff(conversation, reason=str(body.get("reason", "customer_request"))[:50],
                             note=str(body.get("note", ""))[:5000] or None, context=context, announce=False)
    # The assistant tells the customer itself; outside business hours it says when people are back.
    return {"ticket": ticket.to_dict(), "business_hours": inbound.opening_info(customer)}, 201
