"""A local stand-in for Twilio's Messages API, at the HTTP boundary.

The real ``twilio`` client builds and sends its request here instead of to
Twilio. Accepted messages appear in the simulator; delivery status callbacks
are posted back, signed, like Twilio does.
"""
from __future__ import annotations

import base64
import hmac
import threading
import time
import uuid

import requests
from flask import abort, current_app, request

from bot.twilio_whatsapp import sign

from ..extensions import db, limiter
from ..models import SimulatedMessage, utcnow
from . import bp


def _check_auth(account_sid: str) -> None:
    cfg = current_app.config
    expected = base64.b64encode(f"{cfg['TWILIO_ACCOUNT_SID']}:{cfg['TWILIO_AUTH_TOKEN']}".encode()).decode()
    given = request.headers.get("Authorization", "").removeprefix("Basic ")
    if account_sid != cfg["TWILIO_ACCOUNT_SID"] or not hmac.compare_digest(given, expected):
        abort(401)


def _twilio_error(status: int, code: int, message: str):
    return {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}, status


@bp.post("/twilio/2010-04-01/Accounts/<account_sid>/Messages.json")
@limiter.exempt
def create_message(account_sid):
    _check_auth(account_sid)
    form = request.form
    to, from_ = form.get("To", ""), form.get("From", "")
    if not to.startswith("whatsapp:+") or not from_.startswith("whatsapp:+"):
        return _twilio_error(400, 21211, "Invalid 'To' or 'From' WhatsApp address")
    body = form.get("Body", "")
    if not body and not form.get("ContentSid"):
        return _twilio_error(400, 21619, "A text message body or media URL is required")
    if len(body) > 1600:
        return _twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit")
    row = SimulatedMessage(sid="SM" + uuid.uuid4().hex, direction="out", to=to, from_=from_, body=body,
                           content_sid=form.get("ContentSid"), status_callback=form.get("StatusCallback"))
    db.session.add(row)
    db.session.commit()
    if row.status_callback and current_app.config.get("FAKE_TWILIO_CALLBACKS", True):
        threading.Thread(target=_post_callbacks, daemon=True,
                         args=(current_app.config["TWILIO_AUTH_TOKEN"], row.status_callback,
                               current_app.config["PUBLIC_BASE_URL"], request.url_root, row.sid,
                               account_sid, to, from_)).start()
    now = utcnow().strftime("%a, %d %b %Y %H:%M:%S +0000")
    return {
        "sid": row.sid, "account_sid": account_sid, "to": to, "from": from_, "body": body,
        "status": "queued", "direction": "outbound-api", "num_segments": "1", "num_media": "0",
        "date_created": now, "date_updated": now, "date_sent": None, "error_code": None,
        "error_message": None, "price": None, "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{row.sid}.json",
    }, 201


def _post_callbacks(auth_token, callback_url, public_base, url_root, sid, account_sid, to, from_):
    # Signed on the public URL (as Twilio does), delivered to this server's own address.
    local_url = callback_url
    if callback_url.startswith(public_base):
        local_url = url_root.rstrip("/") + callback_url[len(public_base):]
    for status in ("sent", "delivered"):
        time.sleep(0.3)
        params = {"MessageSid": sid, "MessageStatus": status, "AccountSid": account_sid,
                  "To": to, "From": from_, "ApiVersion": "2010-04-01"}
        try:
            requests.post(local_url, data=params, timeout=5,
                          headers={"X-Twilio-Signature": sign(auth_token, callback_url, params)})
        except requests.RequestException:
            return
