"""A local stand-in for Twilio's Messages API, at the HTTP boundary.

The real ``twilio`` client builds and sends its request here instead of to
Twilio. Accepted messages appear in the simulator; delivery status callbacks
are posted back, signed, like Twilio does. Inbound media are served like
Twilio serves them: the media URL needs the account's credentials and
redirects to a short-lived signed URL on another host (the "CDN"), which
refuses a request that still carries them. ``FAKE_TWILIO_LATENCY`` slows the
answers down (see ``webapp/config.py``).

WhatsApp's customer-care window is enforced as Twilio does: free text to a
number that has not written for ``FAKE_TWILIO_WINDOW_HOURS`` is accepted,
then fails with error 63016 in its status callback; a template (``ContentSid``
and ``ContentVariables``) goes out whenever. The Messages list answers with
what was sent, newest first.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import requests
from flask import abort, current_app, redirect, request, send_file, url_for

from bot.text import wa_length
from bot.twilio_whatsapp import sign

from ..extensions import db, limiter
from ..models import Conversation, SimulatedMessage, utcnow
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
    content_sid, variables = form.get("ContentSid"), form.get("ContentVariables")
    if not body and not content_sid:
        return _twilio_error(400, 21619, "A text message body or media URL is required")
    if content_sid is not None and not CONTENT_SID.match(content_sid):
        return _twilio_error(400, 21656, "The ContentSid is Invalid")
    if variables is not None and not _valid_variables(variables):
        return _twilio_error(400, 21656, "The ContentVariables Parameter is invalid")
    if wa_length(body) > 1600:  # Twilio counts UTF-16 units: an emoji is two
        return _twilio_error(400, 21617, "The concatenated message body exceeds the 1600 character limit")
    # Recorded after the delay, as if accepted then: parts sent in parallel
    # would land out of order here, as they could on WhatsApp.
    time.sleep(latency(to))
    # Free text outside the customer-care window is accepted, then fails (63016).
    outside = content_sid is None and not window_open(to)
    row = SimulatedMessage(sid="SM" + uuid.uuid4().hex, direction="out", to=to, from_=from_, body=body,
                           content_sid=content_sid, content_variables=variables,
                           status="failed" if outside else "sent", error_code=OUTSIDE_WINDOW if outside else None,
                           status_callback=form.get("StatusCallback"))
    db.session.add(row)
    db.session.commit()
    if row.status_callback and current_app.config.get("FAKE_TWILIO_CALLBACKS", True):
        threading.Thread(target=_post_callbacks, daemon=True,
                         args=(current_app.config["TWILIO_AUTH_TOKEN"], row.status_callback,
                               current_app.config["PUBLIC_BASE_URL"], request.url_root,
                               callback_params(row, account_sid))).start()
    return _resource(row, account_sid, status="queued"), 201


CONTENT_SID = re.compile(r"^HX[0-9a-fA-F]{32}$")
OUTSIDE_WINDOW = "63016"
ERROR_MESSAGES = {OUTSIDE_WINDOW: "Failed to send freeform message because you are outside the allowed window. "
                                  "If you are using WhatsApp, please use a Message Template."}


def _valid_variables(raw: str) -> bool:
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    return isinstance(data, dict) and all(isinstance(v, str) for v in data.values())


def window_open(to: str) -> bool:
    """Whether ``to`` wrote within ``FAKE_TWILIO_WINDOW_HOURS`` (as this
    database saw it): what Twilio knows from its own inbound traffic."""
    last = db.session.scalar(db.select(Conversation.last_inbound_at).filter_by(address=to).limit(1))
    hours = float(current_app.config.get("FAKE_TWILIO_WINDOW_HOURS", 24))
    return last is not None and utcnow() - last < timedelta(hours=hours)


def _rfc2822(value) -> str | None:
    return value.strftime("%a, %d %b %Y %H:%M:%S +0000") if value else None


def _resource(row: SimulatedMessage, account_sid: str, status: str | None = None) -> dict:
    """A Message resource as Twilio's API gives it."""
    status = status or row.status
    failed = status == "failed"
    return {
        "sid": row.sid, "account_sid": account_sid, "to": row.to, "from": row.from_, "body": row.body,
        "status": status, "direction": "outbound-api", "num_segments": "1", "num_media": "0",
        "date_created": _rfc2822(row.created_at), "date_updated": _rfc2822(row.created_at),
        "date_sent": None if status == "queued" else _rfc2822(row.created_at),
        "error_code": int(row.error_code) if failed and row.error_code else None,
        "error_message": ERROR_MESSAGES.get(row.error_code) if failed else None,
        "price": None, "api_version": "2010-04-01",
        "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{row.sid}.json",
    }


def callback_params(row: SimulatedMessage, account_sid: str) -> list[dict]:
    """The status callbacks Twilio would post for ``row``, in order."""
    base = {"MessageSid": row.sid, "SmsSid": row.sid, "AccountSid": account_sid, "To": row.to,
            "From": row.from_, "ApiVersion": "2010-04-01", "ChannelPrefix": "whatsapp"}
    if row.status == "failed":
        return [{**base, "MessageStatus": "failed", "SmsStatus": "failed", "ErrorCode": row.error_code or "30008",
                 "ErrorMessage": ERROR_MESSAGES.get(row.error_code, "Unknown error")}]
    return [{**base, "MessageStatus": status, "SmsStatus": status} for status in ("sent", "delivered")]


def _post_callbacks(auth_token, callback_url, public_base, url_root, callbacks):
    # Signed on the public URL (as Twilio does), delivered to this server's own address.
    local_url = callback_url
    if callback_url.startswith(public_base):
        local_url = url_root.rstrip("/") + callback_url[len(public_base):]
    for params in callbacks:
        time.sleep(0.3)
        try:
            requests.post(local_url, data=params, timeout=5,
                          headers={"X-Twilio-Signature": sign(auth_token, callback_url, params)})
        except requests.RequestException:
            return


@bp.get("/twilio/2010-04-01/Accounts/<account_sid>/Messages.json")
@limiter.exempt
def list_messages(account_sid):
    """Messages sent through the fake, newest first, filtered by To and From
    (what the outbox asks when a send's answer was lost)."""
    _check_auth(account_sid)
    query = db.select(SimulatedMessage).where(SimulatedMessage.direction == "out")
    if request.args.get("To"):
        query = query.where(SimulatedMessage.to == request.args["To"])
    if request.args.get("From"):
        query = query.where(SimulatedMessage.from_ == request.args["From"])
    size = min(max(request.args.get("PageSize", 50, type=int), 1), 1000)
    rows = db.session.scalars(query.order_by(SimulatedMessage.id.desc()).limit(size)).all()
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages.json?PageSize={size}&Page=0"
    return {"messages": [_resource(r, account_sid) for r in rows], "end": max(len(rows) - 1, 0),
            "first_page_uri": uri, "next_page_uri": None, "page": 0, "page_size": size,
            "previous_page_uri": None, "start": 0, "uri": uri}


def latency(to: str) -> float:
    """Seconds to wait before answering a send to ``to``: ``FAKE_TWILIO_LATENCY``
    is "0.2", a range "0.05-0.4", and per number "…;whatsapp:+55…=3"."""
    spec = current_app.config.get("FAKE_TWILIO_LATENCY") or ""
    default, per_number = "0", {}
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        number, equals, value = part.rpartition("=")
        if equals:
            per_number[number.strip()] = value
        else:
            default = part
    low, _, high = per_number.get(to, default).partition("-")
    low_s = float(low or 0)
    return random.uniform(low_s, float(high)) if high else low_s


# -- media --------------------------------------------------------------------

def _media_dir() -> Path:
    path = Path(current_app.config["DEV_TWILIO_MEDIA_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cdn_signature(media_sid: str, expires: str) -> str:
    key = current_app.config["TWILIO_AUTH_TOKEN"].encode()
    return hmac.new(key, f"{media_sid}:{expires}".encode(), hashlib.sha256).hexdigest()


@bp.post("/twilio/media")
@limiter.exempt
def upload_media():
    """Put a file where a fake media URL serves it (what the customer's phone
    uploads to Twilio). Returns the URL and content type to use in a webhook."""
    upload = request.files.get("file")
    if upload is None:
        abort(400, "a file is required")
    content_type = request.form.get("content_type") or upload.mimetype or "application/octet-stream"
    media_sid, message_sid = "ME" + uuid.uuid4().hex, request.form.get("message_sid") or "MM" + uuid.uuid4().hex
    folder = _media_dir()
    upload.save(folder / media_sid)
    (folder / f"{media_sid}.json").write_text(json.dumps({"content_type": content_type}))
    account = current_app.config["TWILIO_ACCOUNT_SID"]
    base = current_app.config["TWILIO_API_BASE_URL"] or request.url_root.rstrip("/") + "/dev/twilio"
    url = f"{base.rstrip('/')}/2010-04-01/Accounts/{account}/Messages/{message_sid}/Media/{media_sid}"
    return {"url": url, "content_type": content_type, "sid": media_sid}, 201


@bp.get("/twilio/2010-04-01/Accounts/<account_sid>/Messages/<message_sid>/Media/<media_sid>")
@limiter.exempt
def media(account_sid, message_sid, media_sid):
    _check_auth(account_sid)
    forced = current_app.config.get("FAKE_TWILIO_MEDIA_STATUS")  # tests: make Twilio fail
    if forced:
        return _twilio_error(int(forced), 20500, "Internal Server Error")
    if not media_sid.isalnum() or not (_media_dir() / media_sid).is_file():
        return _twilio_error(404, 20404, f"The requested resource {request.path} was not found")
    expires = str(int(time.time()) + 300)
    target = url_for("dev.media_cdn", media_sid=media_sid, Expires=expires,
                     Signature=_cdn_signature(media_sid, expires))
    # Another host name for the same server, as Twilio's CDN is another host:
    # the client must drop the Authorization header on the way.
    host = request.host
    other = host.replace("127.0.0.1", "localhost") if "127.0.0.1" in host else host.replace("localhost", "127.0.0.1")
    return redirect(f"{request.scheme}://{other}{target}", code=307)


@bp.get("/twilio-cdn/<media_sid>")
@limiter.exempt
def media_cdn(media_sid):
    if request.headers.get("Authorization"):
        abort(400, "Only one auth mechanism allowed")  # what S3 says to a leaked Basic header
    expires = request.args.get("Expires", "")
    signature = _cdn_signature(media_sid, expires)
    if not expires.isdigit() or int(expires) < time.time() or not hmac.compare_digest(
            signature, request.args.get("Signature", "")):
        abort(403)
    folder = _media_dir()
    if not media_sid.isalnum() or not (folder / media_sid).is_file():
        abort(404)
    content_type = json.loads((folder / f"{media_sid}.json").read_text())["content_type"]
    return send_file(folder / media_sid, mimetype=content_type)
