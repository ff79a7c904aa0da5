"""The WhatsApp simulator: a phone-like chat page that sends Twilio-format,
signed webhook requests to this server and shows what the outbox sent back."""
from __future__ import annotations

import uuid

import requests
from flask import current_app, jsonify, render_template, request

from bot.phone import InvalidPhone, to_e164
from bot.twilio_whatsapp import sign

from ..extensions import db, limiter
from ..models import SimulatedMessage
from . import bp


@bp.get("/")
def index():
    return render_template("dev/index.html")


@bp.get("/simulator")
def simulator():
    return render_template("dev/simulator.html")


def _address(raw: str) -> str:
    try:
        return "whatsapp:" + to_e164(raw)
    except InvalidPhone:
        return ""


@bp.post("/simulator/send")
@limiter.exempt
def send():
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return jsonify(error="send a JSON object with phone and body"), 400
    address = _address(str(data.get("phone", "")))
    body = str(data.get("body", ""))
    if not address or not body.strip():
        return jsonify(error="a valid phone and a message are required"), 400
    cfg = current_app.config
    params = {
        "MessageSid": "SM" + uuid.uuid4().hex, "SmsMessageSid": "", "AccountSid": cfg["TWILIO_ACCOUNT_SID"],
        "From": address, "To": cfg["TWILIO_WHATSAPP_FROM"], "Body": body, "NumMedia": "0",
        "NumSegments": "1", "ProfileName": str(data.get("name", ""))[:100], "WaId": address[len("whatsapp:+"):],
        "SmsStatus": "received", "ApiVersion": "2010-04-01",
    }
    params["SmsMessageSid"] = params["MessageSid"]
    public_url = cfg["PUBLIC_BASE_URL"] + "/webhooks/twilio/whatsapp"
    db.session.add(SimulatedMessage(sid=params["MessageSid"], direction="in", to=address, from_=address,
                                    body=body))
    db.session.commit()
    response = requests.post(request.url_root.rstrip("/") + "/webhooks/twilio/whatsapp", data=params,
                             headers={"X-Twilio-Signature": sign(cfg["TWILIO_AUTH_TOKEN"], public_url, params)},
                             timeout=10)
    return jsonify(webhook_status=response.status_code, sid=params["MessageSid"])


@bp.get("/simulator/feed")
def feed():
    address = _address(request.args.get("phone", ""))
    after = request.args.get("after", 0, type=int)
    # A message Twilio failed (63016: outside the window) never reached the phone.
    rows = db.session.scalars(
        db.select(SimulatedMessage).where(SimulatedMessage.to == address, SimulatedMessage.id > after,
                                          SimulatedMessage.status != "failed")
        .order_by(SimulatedMessage.id).limit(200)).all()
    return jsonify(messages=[{"id": r.id, "direction": r.direction, "body": r.body or _template(r),
                              "at": r.created_at.isoformat()} for r in rows])


def _template(row: SimulatedMessage) -> str:
    """The fake knows no template texts: a template shows as its SID and variables."""
    return f"[template {row.content_sid}] {row.content_variables or ''}".strip()
