"""Twilio webhooks: inbound WhatsApp messages and delivery status callbacks.

Both verify ``X-Twilio-Signature`` against the configured public URL, store
what they got and answer at once; the worker does the rest.
"""
from __future__ import annotations

from flask import Blueprint, abort, current_app, request

from bot.twilio_whatsapp import InboundMessage, signature_is_valid

from ..extensions import limiter
from ..services import inbound, outbox

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/twilio")

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _public_url() -> str:
    """The URL Twilio signed: the configured public base plus the path and the
    raw query this request arrived with. A TLS-terminating proxy in front hands
    us plain HTTP on an internal host and port, so neither comes from the
    request; Twilio's validator accepts the https URL with or without ':443'."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    query = request.query_string.decode("utf-8", "replace")  # as sent, not re-encoded
    return base + request.path + (f"?{query}" if query else "")


def _verify() -> None:
    # Every value of every field, as received (a repeated field is signed too).
    if not signature_is_valid(current_app.config["TWILIO_AUTH_TOKEN"], _public_url(), request.form,
                              request.headers.get("X-Twilio-Signature")):
        abort(403, "invalid Twilio signature")


@bp.post("/whatsapp")
@limiter.exempt
def whatsapp():
    _verify()
    try:
        message = InboundMessage.from_form(request.form)
    except ValueError as exc:
        abort(400, str(exc))
    inbound.store(message)
    return EMPTY_TWIML, 200, {"Content-Type": "text/xml"}


@bp.post("/status")
@limiter.exempt
def status():
    _verify()
    sid = request.form.get("MessageSid", "")
    new_status = request.form.get("MessageStatus", "")
    if sid and new_status:
        outbox.record_delivery_status(sid, new_status, request.form.get("ErrorCode") or None)
    return "", 204
